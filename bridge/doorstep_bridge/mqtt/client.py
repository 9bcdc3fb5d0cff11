"""paho-mqtt 2.x bridged into asyncio.

paho runs its network loop in its own thread; every callback is handed to the
event loop with ``call_soon_threadsafe`` so the rest of the bridge only ever
sees MQTT on the loop. What this adds on top of paho:

* ``<b>/available``: last will ``offline`` (retained), ``online`` only after a
  successful CONNACK, ``offline`` published on a clean stop.
* Reconnect with exponential backoff (1 s doubling to 30 s), for the first
  connection too.
* Nothing lost while the broker is away: paho keeps every message published
  while disconnected in its outgoing queue and sends it after reconnecting;
  QoS 1 messages unacknowledged at the drop are sent again.
* Retained state is remembered and published again after every reconnect, so
  a broker restarted without persistence gets it back.
* Subscriptions are renewed on every connect; oversized payloads are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import ssl
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from doorstep_bridge.config import MqttSettings
from doorstep_bridge.mqtt.topics import OFFLINE, ONLINE, Topics

_LOGGER = logging.getLogger(__name__)

#: Commands and share requests are small; anything bigger is a mistake or an attack.
MAX_INCOMING_PAYLOAD = 64 * 1024

type MessageHandler = Callable[[str, bytes], None]


@dataclass(slots=True)
class _Subscription:
    topic: str
    handler: MessageHandler
    qos: int = field(default=1)


class MqttClient:
    """One connection to the broker, owned by the bridge's event loop."""

    def __init__(self, settings: MqttSettings, client_id: str) -> None:
        self._settings = settings
        self._topics = Topics(settings.base_topic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: list[_Subscription] = []
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._connected = asyncio.Event()
        self._lock = threading.Lock()
        self._stopping = False
        self._on_connect_callbacks: list[Callable[[], None]] = []
        self._ever_connected = False

        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id or client_id,
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            client.tls_set(
                ca_certs=settings.tls.ca_certs,
                certfile=settings.tls.certfile,
                keyfile=settings.tls.keyfile,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(settings.tls.insecure)
        client.will_set(self._topics.available, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Keep everything queued while the broker is away (paho's default is unbounded
        # already; stated here because the bridge relies on it).
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    @property
    def topics(self) -> Topics:
        """Topic names under this bridge's base topic."""
        return self._topics

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the next disconnect."""
        return self._connected.is_set()

    async def start(self) -> None:
        """Start connecting in the background; returns at once (the broker may be down)."""
        self._loop = asyncio.get_running_loop()
        _LOGGER.info(
            "Connecting to MQTT broker %s:%s (base topic %s)",
            self._settings.host,
            self._settings.port,
            self._settings.base_topic,
        )
        self._client.connect_async(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive
        )
        self._client.loop_start()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait for the connection; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Publish ``offline``, flush what is queued (briefly) and disconnect."""
        self._stopping = True
        if self.connected:
            info = self._client.publish(self._topics.available, OFFLINE, qos=1, retain=True)
            await asyncio.to_thread(self._wait_published, info, 3.0)
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._connected.clear()

    @staticmethod
    def _wait_published(info: paho.MQTTMessageInfo, timeout: float) -> None:
        try:
            info.wait_for_publish(timeout)
        except (ValueError, RuntimeError):
            _LOGGER.warning("Could not confirm the offline message before disconnecting")

    def on_connect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` on the loop after every successful (re)connect."""
        self._on_connect_callbacks.append(callback)
        return lambda: self._on_connect_callbacks.remove(callback)

    def publish(
        self, topic: str, payload: str | bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish now, or queue until the broker is back; never raises for a lost link."""
        data = payload.encode() if isinstance(payload, str) else payload
        if retain:
            with self._lock:
                self._retained[topic] = (data, qos)
        info = self._client.publish(topic, data, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            _LOGGER.warning("Publishing to %s failed: %s", topic, paho.error_string(info.rc))

    def subscribe(self, topic: str, handler: MessageHandler, qos: int = 1) -> Callable[[], None]:
        """Call `handler(topic, payload)` on the loop for messages matching `topic`."""
        subscription = _Subscription(topic, handler, qos)
        self._subscriptions.append(subscription)
        if self.connected:
            self._client.subscribe(topic, qos)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
                if not any(s.topic == topic for s in self._subscriptions) and self.connected:
                    self._client.unsubscribe(topic)

        return unsubscribe

    # --- paho thread ---------------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        _flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        if reason_code.is_failure:
            # A refused CONNACK is not a connection (bad credentials, not authorised):
            # say why once per attempt and let paho retry with backoff.
            _LOGGER.error("MQTT broker refused the connection: %s", reason_code)
            return
        for sub_topic, sub_qos in {s.topic: s.qos for s in self._subscriptions}.items():
            client.subscribe(sub_topic, sub_qos)
        client.publish(self._topics.available, ONLINE, qos=1, retain=True)
        if self._ever_connected:
            # The broker may have restarted without persistence: give it our state back.
            # (Before the first connect, everything published is still in paho's queue.)
            with self._lock:
                retained = list(self._retained.items())
            for topic, (data, qos) in retained:
                client.publish(topic, data, qos=qos, retain=True)
        self._ever_connected = True
        self._call_soon(self._connected_on_loop)

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        self._call_soon(self._disconnected_on_loop, str(reason_code))

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        self._call_soon(self._dispatch, msg.topic, msg.payload)

    def _call_soon(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    # --- event loop ------------------------------------------------------------------

    def _connected_on_loop(self) -> None:
        if not self._connected.is_set():
            _LOGGER.info("Connected to MQTT broker %s:%s", self._settings.host, self._settings.port)
        self._connected.set()
        for callback in list(self._on_connect_callbacks):
            try:
                callback()
            except Exception:
                _LOGGER.exception("MQTT on-connect callback failed")

    def _disconnected_on_loop(self, reason: str) -> None:
        if self._connected.is_set() and not self._stopping:
            _LOGGER.warning("Lost the MQTT broker (%s); reconnecting with backoff", reason)
        self._connected.clear()

    def _dispatch(self, topic: str, payload: bytes) -> None:
        if len(payload) > MAX_INCOMING_PAYLOAD:
            _LOGGER.warning(
                "Ignoring %d-byte message on %s (limit %d bytes)",
                len(payload),
                topic,
                MAX_INCOMING_PAYLOAD,
            )
            return
        for subscription in list(self._subscriptions):
            if paho.topic_matches_sub(subscription.topic, topic):
                try:
                    subscription.handler(topic, payload)
                except Exception:
                    _LOGGER.exception("Handling a message on %s failed", topic)
