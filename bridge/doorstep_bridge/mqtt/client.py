"""paho-mqtt 2.x bridged into asyncio.

paho runs its network loop in its own thread; every callback is handed to the
event loop with ``call_soon_threadsafe`` so the rest of the bridge only ever
sees MQTT on the loop. What this adds on top of paho:

* ``<b>/available``: last will ``offline`` (retained), ``online`` only after a
  successful CONNACK, ``offline`` published on a clean stop.
* Reconnect with exponential backoff (1 s doubling to 30 s), for the first
  connection too.
* Nothing lost while the broker is away: paho keeps every QoS 1 message
  published while disconnected (rings, clips, share states) in its outgoing
  queue and sends it after reconnecting, and sends again those unacknowledged
  at the drop. QoS 0 messages are dropped by paho while disconnected, so only
  retained state uses QoS 0, and:
* Retained state is remembered and published again after every (re)connect,
  so a broker restarted without persistence gets it back. paho sends its queue
  after that replay, so a topic with a value in the queue is left out of the
  replay and its values arrive in order, the newest last: a value published
  while paho sends that queue waits for it, and while the link is down a
  retained QoS 0 message on a topic with a QoS 1 message queued is queued
  behind it. The newest value wins, and no older one follows it.
* State topics that automations start from (``state=True``: motion, person)
  are only remembered while the link is down, not queued: the replay gives the
  broker the newest value, and Home Assistant does not see motion that started
  and ended during the outage start again when the broker is back (a porch light
  switched on for a visitor long gone).
* A persistent session under the bridge's stable client id, so commands sent
  with QoS 1 while the bridge restarts are delivered when it is back. The id
  has a random part (:func:`doorstep_bridge.identity.mqtt_client_id`): a client
  that connected under it would take that session over, presses and all.
* Subscriptions are renewed on every connect; retained messages on them are
  ignored (they are past commands) and oversized payloads are dropped.
* :meth:`MqttClient.retained_messages` asks the broker which retained messages
  it holds (the cameras an earlier run published), leaving no subscription
  behind in the persistent session; :meth:`MqttClient.retained_at_connect`
  asks it at the connection, before the bridge's own ``online`` and queued
  messages, so the answer is what an earlier run (or another bridge) left.
* Ignored input is logged rate-limited (:mod:`doorstep_bridge.mqtt.ignored`):
  anyone who can write to the broker can send the bridge garbage.
* Broker outages are logged once: a warning naming the address and the reason
  when the broker cannot be reached (or is lost), info when connected again;
  each failed attempt in between only at DEBUG. A broker that hangs up before
  answering the CONNECT (a TLS port spoken to in plain text does) is such an
  outage too, not silence.
* No Nagle/delayed-ACK stalls (see :func:`_tune_socket`): a ring leaves at once
  even right behind a snapshot, whatever the broker's ``set_tcp_nodelay``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass, field
import logging
import socket
import ssl
import sys
import threading
from typing import TypeAlias

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from doorstep_bridge.config import MqttSettings, tls_problems
from doorstep_bridge.exceptions import ConfigError, IgnoredMessageError
from doorstep_bridge.mqtt.ignored import IgnoredInputLog
from doorstep_bridge.mqtt.topics import OFFLINE, ONLINE, Topics

_LOGGER = logging.getLogger(__name__)

#: Commands and share requests are small; anything bigger is a mistake or an attack.
MAX_INCOMING_PAYLOAD = 64 * 1024

#: A connection the broker closes within this many seconds is a short one...
SHORT_LINK = 5.0
#: ... and this many in a row mean something closes every connection we make.
SHORT_LINKS_IN_A_ROW = 3
#: Seconds between attempts while that goes on (paho's 1 s would fight every second).
SHORT_LINK_RETRY = 30

MessageHandler: TypeAlias = Callable[[str, bytes], None]

# Linux only; elsewhere the bridge just does without it.
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def _tune_socket(sock: object) -> None:
    """Switch off Nagle's algorithm and ask for prompt ACKs on the broker connection.

    MQTT is small messages in both directions, and TCP's defaults make them wait:
    with Nagle on, a ring written while earlier data (a snapshot, a PUBACK) is
    unacknowledged waits for the broker's ACK, which the broker delays by ~40 ms
    when it has nothing to answer (a QoS 0 snapshot). With Nagle off on our side
    only, the mirror case appears: a broker without ``set_tcp_nodelay`` holds a
    press back until the bridge acknowledges the broker's last PUBACK, which the
    bridge's kernel also delays by ~40 ms. Quick ACKs (re-armed after every
    packet received, as Linux drops them again) close that gap from our side.
    """
    if not isinstance(sock, socket.socket):  # a proxy or websocket wrapper: leave it
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _ack_promptly(sock)


def _ack_promptly(sock: object) -> None:
    """Acknowledge what was received now rather than after the delayed-ACK timer."""
    if _TCP_QUICKACK is not None and isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


def connect_error_reason(error: BaseException | None) -> str:
    """Why a connection attempt failed, in words (no address: the caller adds it)."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(error, TimeoutError):
        return "no answer (timeout)"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({_tls_reason(error)})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return type(error).__name__ if error is not None else "unknown error"


def _tls_reason(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        # The reason alone (CERTIFICATE_VERIFY_FAILED) is the same for an unknown CA, a
        # host name the certificate is not for and an expired one: each has its own fix.
        return f"the broker's certificate is not accepted: {error.verify_message.rstrip('.')}"
    return str(getattr(error, "reason", None) or error.strerror or type(error).__name__)


@dataclass(slots=True)
class _Subscription:
    topic: str
    handler: MessageHandler
    qos: int = field(default=1)
    network_thread: bool = False


def _paho_client(settings: MqttSettings, client_id: str, *, clean_session: bool) -> paho.Client:
    """A paho client for the broker in ``settings``, with its credentials and TLS.

    Raises:
        ConfigError: The TLS files cannot be used.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=clean_session,
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls is not None:
        try:
            client.tls_set(
                ca_certs=settings.tls.ca_certs,
                certfile=settings.tls.certfile,
                keyfile=settings.tls.keyfile,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except OSError as err:  # ssl.SSLError too: the files changed since the config was read
            problems = tls_problems(settings.tls) or [f"mqtt.tls: cannot be used: {err}"]
            raise ConfigError(problems) from None
        client.tls_insecure_set(settings.tls.insecure)
    return client


def _fail(future: asyncio.Future[dict[str, bytes]] | None, error: Exception) -> None:
    if future is not None and not future.done():
        future.set_exception(error)


@dataclass(slots=True)
class _RetainedLookup:
    """One :meth:`MqttClient.retained_messages` under way."""

    filters: tuple[str, ...]
    found: dict[str, bytes] = field(default_factory=dict)
    unsubscribe_mid: int | None = None
    #: Set for :meth:`MqttClient.retained_at_connect`: asked at every connect until answered.
    answer: asyncio.Future[dict[str, bytes]] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class MqttClient:
    """One connection to the broker, owned by the bridge's event loop."""

    def __init__(self, settings: MqttSettings, client_id: str) -> None:
        self._settings = settings
        self._topics = Topics(settings.base_topic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: list[_Subscription] = []
        self._retained: dict[str, tuple[bytes, int]] = {}
        # Retained topics with a QoS 1 message in paho's queue while the link is down.
        self._queued_retained: set[str] = set()
        # State topics, and the last message on each handed to paho: while one is not
        # acknowledged, paho sends it again after a reconnect (after the replay), so a
        # newer value is queued behind it rather than only remembered.
        self._state_topics: set[str] = set()
        self._state_sent: dict[str, paho.MQTTMessageInfo] = {}
        # Right after a (re)connect, the retained topics with values still in paho's
        # queue: paho sends that queue only once on_connect has returned, so a newer
        # value published meanwhile (from the event loop) waits in _held until then.
        self._flushing: set[str] = set()
        self._held: list[tuple[str, bytes, int]] = []
        # Successful connections so far (paho's thread, under _lock): a release scheduled
        # for one connection is not made after the next one has started.
        self._connection = 0
        self._connected = asyncio.Event()
        self._lock = threading.RLock()
        self._stopping = False
        self._pending_subacks: set[int] = set()
        # Written under _lock from paho's thread; lets subscribe() and on_connect agree
        # on who sends a subscription made while the connection comes up.
        self._link_up = False
        # Written under _lock from paho's thread: the broker answered the last CONNECT
        # with a refusal (already reported; the disconnect that follows says no more).
        self._refused = False
        # Written under _lock from paho's thread: attempts in a row the broker closed
        # before any CONNACK (see _on_disconnect).
        self._hangups = 0
        self._subscribed = asyncio.Event()
        # Set on the loop before its SUBSCRIBE is sent; read in paho's thread.
        self._lookup: _RetainedLookup | None = None
        self._ignored = IgnoredInputLog(_LOGGER)
        self._summaries: asyncio.Task[None] | None = None
        # The current outage was logged (loop only): one warning per outage.
        self._outage_logged = False
        # A refusal by the broker was logged in the current outage (loop only).
        self._refusal_logged = False
        # Connections the broker closed right after they were made, in a row (loop only);
        # the timer marks the current connection as steady once it lasted SHORT_LINK.
        self._short_links = 0
        self._kicked_out = False
        self._steady_timer: asyncio.TimerHandle | None = None
        self._client_id = settings.client_id or client_id

        # A persistent session: the broker keeps (QoS 1) presses and requests sent
        # while the bridge restarts and delivers them when it is back.
        client = _paho_client(settings, self._client_id, clean_session=False)
        client.will_set(self._topics.available, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Keep everything queued while the broker is away (paho's default is unbounded
        # already; stated here because the bridge relies on it).
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_publish = self._on_publish
        client.on_socket_open = lambda _client, _userdata, sock: _tune_socket(sock)
        self._client = client

    @property
    def topics(self) -> Topics:
        """Topic names under this bridge's base topic."""
        return self._topics

    @property
    def client_id(self) -> str:
        """The client id the bridge connects with (``mqtt.client_id``, else the default)."""
        return self._client_id

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
        self._summaries = asyncio.create_task(self._summarise_ignored())

    async def _summarise_ignored(self) -> None:
        """Write the due summaries of ignored input, also when no more garbage arrives."""
        while True:
            await asyncio.sleep(self._ignored.interval)
            self._ignored.flush()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait for the connection; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def wait_subscribed(self, timeout: float | None = None) -> bool:
        """Wait until connected and every subscription is acknowledged; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                # Two flags set from two threads: polling is simpler than chaining events.
                while not (self._connected.is_set() and self._subscribed.is_set()):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Publish ``offline``, flush what is queued (briefly) and disconnect."""
        self._stopping = True
        if self._summaries is not None:
            self._summaries.cancel()
        if self._steady_timer is not None:
            self._steady_timer.cancel()
            self._steady_timer = None
        self._ignored.flush(final=True)
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

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        state: bool = False,
    ) -> None:
        """Publish now, or queue until the broker is back; never raises for a lost link.

        ``state`` (retained topics only): only the newest value matters; while the
        broker is away it is remembered for the replay instead of queued.
        """
        data = payload.encode() if isinstance(payload, str) else payload
        state = state and retain
        # Under the lock, so a replay after a reconnect cannot overtake a newer value.
        with self._lock:
            if retain:
                if data:
                    self._retained[topic] = (data, qos)
                else:  # an empty retained payload clears the topic on the broker
                    self._retained.pop(topic, None)
                if state:
                    self._state_topics.add(topic)
                if topic in self._flushing:
                    self._held.append((topic, data, max(qos, 1)))
                    return
                if not self._link_up and state and data and self._delivered(topic):
                    return  # the replay after the reconnect sends it
                if not self._link_up:
                    # paho sends what it queued while the broker was away after the
                    # replay of retained state: a newer QoS 0 value (a snapshot after
                    # a clear) goes into the queue too, or the older one would win.
                    if qos > 0:
                        self._queued_retained.add(topic)
                    elif topic in self._queued_retained:
                        qos = 1
            info = self._client.publish(topic, data, qos=qos, retain=retain)
            if state:
                self._state_sent[topic] = info
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            _LOGGER.warning("Publishing to %s failed: %s", topic, paho.error_string(info.rc))

    def _delivered(self, topic: str) -> bool:
        """No message on ``topic`` waits in paho's queue for the broker (caller holds _lock)."""
        sent = self._state_sent.get(topic)
        if sent is None:
            return True
        if sent.rc != paho.MQTT_ERR_SUCCESS:
            return False  # queued while the broker was away (paho raises if asked)
        return sent.is_published()

    def subscribe(
        self, topic: str, handler: MessageHandler, qos: int = 1, *, network_thread: bool = False
    ) -> Callable[[], None]:
        """Call `handler(topic, payload)` for messages matching `topic`.

        Handlers run on the event loop, except with ``network_thread=True``: then
        they run in paho's thread, before the message is acknowledged, and must be
        thread-safe and quick. The doorbell uses this: its ring leaves without
        waiting for the event loop to get round to the press.

        A handler raises :class:`IgnoredMessageError` for input it does not act on;
        that is logged rate-limited, like any exception a handler raises.
        """
        subscription = _Subscription(topic, handler, qos, network_thread)
        with self._lock:
            self._subscriptions.append(subscription)
            if self._link_up:
                self._send_subscribe(self._client, topic, qos)

        def unsubscribe() -> None:
            # Local only: the broker keeps the subscription in the bridge's persistent
            # session, so what arrives while the bridge restarts is kept for it.
            with self._lock:
                if subscription in self._subscriptions:
                    self._subscriptions.remove(subscription)

        return unsubscribe

    async def retained_messages(
        self, filters: Sequence[str], timeout: float = 10.0
    ) -> dict[str, bytes] | None:
        """The retained messages the broker holds now on topics matching ``filters``.

        One SUBSCRIBE (QoS 0) and, right behind it, one UNSUBSCRIBE: the broker sends
        the retained messages in answer to the first and handles the second after it,
        so its UNSUBACK comes after the last of them, and no subscription stays in the
        persistent session. None when not connected, or when the broker did not
        answer within ``timeout`` seconds (the connection dropped meanwhile).
        """
        if self._lookup is not None:
            raise RuntimeError("one retained lookup at a time")
        lookup = _RetainedLookup(tuple(filters))
        with self._lock:
            if not self._link_up:
                return None
            self._lookup = lookup
            try:
                self._client.subscribe([(topic, 0) for topic in lookup.filters])
                _rc, lookup.unsubscribe_mid = self._client.unsubscribe(list(lookup.filters))
            except ValueError:
                self._lookup = None
                raise
        try:
            async with asyncio.timeout(timeout):
                await lookup.done.wait()
        except TimeoutError:
            return None
        finally:
            self._lookup = None
        return lookup.found

    def retained_at_connect(self, filters: Sequence[str]) -> asyncio.Future[dict[str, bytes]]:
        """The retained messages on topics matching ``filters`` as the bridge found them.

        Asked when the connection comes up, before the bridge's ``online`` and what
        it published while not connected (bridge info, discovery) reach the broker:
        the answer is what an earlier run, or another bridge, left there. Call it
        before :meth:`start`. Asked again after a reconnect if the connection
        dropped before the broker answered (the answer may then hold the bridge's
        own messages). Until answered, :meth:`retained_messages` is refused.
        """
        if self._lookup is not None:
            raise RuntimeError("one retained lookup at a time")
        answer: asyncio.Future[dict[str, bytes]] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._lookup = _RetainedLookup(tuple(filters), answer=answer)
        return answer

    async def end_session(self, client_id: str, timeout: float = 10.0) -> bool:
        """End the broker's persistent session of ``client_id``, if it has one.

        A connection under that id with a clean session, then a disconnect: the broker
        drops the old session, its subscriptions and the messages queued for it. True
        once the broker accepted the connection.
        """
        return await asyncio.to_thread(self._end_session, client_id, timeout)

    def _end_session(self, client_id: str, timeout: float) -> bool:
        accepted = threading.Event()

        def on_connect(
            _client: paho.Client,
            _userdata: object,
            _flags: paho.ConnectFlags,
            reason_code: ReasonCode,
            _properties: object,
        ) -> None:
            if not reason_code.is_failure:
                accepted.set()

        try:
            client = _paho_client(self._settings, client_id, clean_session=True)
        except ConfigError:
            return False
        client.on_connect = on_connect
        try:
            client.connect(
                self._settings.host, self._settings.port, keepalive=self._settings.keepalive
            )
        except (OSError, ValueError) as err:
            _LOGGER.debug("Cannot connect as %r: %s", client_id, connect_error_reason(err))
            return False
        client.loop_start()
        try:
            return accepted.wait(timeout)
        finally:
            client.disconnect()
            client.loop_stop()

    # --- paho thread ---------------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        _flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        with self._lock:
            self._hangups = 0
        if reason_code.is_failure:
            # A refused CONNACK is not a connection (bad credentials, not authorised):
            # an error once per outage (a setting to fix), and paho retries with backoff.
            why = f"the broker refused the connection ({reason_code})"
            with self._lock:
                self._refused = True
            self._call_soon(self._connect_failed_on_loop, why, logging.ERROR)
            return
        with self._lock:
            self._link_up = True
            # paho sends these after this callback, oldest first, ending with the newest:
            # replaying them too would put the newest value before the older ones (a
            # count of refused connections seen going 1, 0, 1).
            self._connection += 1
            # Values still held from the last connection wait for this one's queue too.
            self._flushing = set(self._queued_retained) | {topic for topic, _, _ in self._held}
            self._queued_retained.clear()
            for sub_topic, sub_qos in {s.topic: s.qos for s in self._subscriptions}.items():
                self._send_subscribe(client, sub_topic, sub_qos)
            lookup = self._lookup
            if lookup is not None and lookup.answer is not None:
                self._ask_at_connect(client, lookup)
        client.publish(self._topics.available, ONLINE, qos=1, retain=True)
        # The broker may have restarted without persistence, and paho drops QoS 0
        # messages published before a connection: give the broker our state back.
        with self._lock:
            for topic, (data, qos) in self._retained.items():
                if topic in self._flushing:
                    continue
                info = client.publish(topic, data, qos=qos, retain=True)
                if topic in self._state_topics:
                    self._state_sent[topic] = info
        self._call_soon(self._connected_on_loop)

    def _ask_at_connect(self, client: paho.Client, lookup: _RetainedLookup) -> None:
        """Send the lookup of :meth:`retained_at_connect` (caller holds _lock).

        The broker answers it before it handles what on_connect publishes after it.
        """
        self._call_soon(lookup.found.clear)  # a part answer from before a drop
        try:
            client.subscribe([(topic, 0) for topic in lookup.filters])
            _rc, lookup.unsubscribe_mid = client.unsubscribe(list(lookup.filters))
        except ValueError as err:
            # Raised here, in paho's thread, it would end the connection for good.
            self._lookup = None
            self._call_soon(_fail, lookup.answer, err)

    def _on_connect_fail(self, _client: paho.Client, _userdata: object) -> None:
        # paho calls this from inside its ``except OSError`` around the connection
        # attempt, without the error: the error being handled is that one.
        error = sys.exc_info()[1]
        with self._lock:
            self._hangups = 0
        why = connect_error_reason(error)
        if self._settings.tls is not None and isinstance(error, ConnectionResetError):
            # A plain-text listener drops the TLS handshake's first message.
            why += " (mqtt.tls is set: is it a TLS port?)"
        # A certificate the bridge refuses (expired, renewed by another CA) is a setting
        # to fix, like a refused password: an error, also after "Lost the MQTT broker".
        level = (
            logging.ERROR if isinstance(error, ssl.SSLCertVerificationError) else logging.WARNING
        )
        self._call_soon(self._connect_failed_on_loop, why, level)

    def _send_subscribe(self, client: paho.Client, topic: str, qos: int) -> None:
        """Send one SUBSCRIBE and remember to wait for its SUBACK (caller holds _lock)."""
        try:
            _rc, mid = client.subscribe(topic, qos)
        except ValueError as err:
            # paho raises for a malformed filter; raised here in its network thread
            # (on_connect), that would end the connection for good and with it every
            # other subscription. The config check refuses such filters; should one
            # slip through, it alone is lost, and said so.
            _LOGGER.error("Cannot subscribe to %r: %s", topic, err)  # noqa: TRY400
            return
        if mid is not None:
            self._pending_subacks.add(mid)
        self._subscribed.clear()

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        mid: int,
        _reason_codes: object,
        _properties: object,
    ) -> None:
        with self._lock:
            self._pending_subacks.discard(mid)
            if not self._pending_subacks:
                self._call_soon(self._subscribed.set)

    def _on_unsubscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        mid: int,
        _reason_codes: object,
        _properties: object,
    ) -> None:
        # After the retained messages of a lookup's SUBSCRIBE: queued on the loop after them.
        self._call_soon(self._unsubscribed_on_loop, mid)

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        with self._lock:
            was_up, self._link_up = self._link_up, False
            refused, self._refused = self._refused, False
            self._pending_subacks.clear()
            hung_up = not was_up and not refused
            self._hangups = self._hangups + 1 if hung_up else 0
            hangups = self._hangups
        if self._flushing:
            self._call_soon(self._release_held, self._connection)
        if hung_up:
            # The TCP (and TLS) connection was made, but the broker hung up without a
            # CONNACK: paho calls neither on_connect nor on_connect_fail, and retries.
            # paho writes the messages queued meanwhile right behind the CONNECT, and a
            # broker that refuses the bridge closes with them unread: the reset that
            # follows can end the connection before paho reads the refusal. So one
            # hang-up may be a refusal whose answer was lost; the next attempt tells.
            if hangups == 1:
                self._call_soon(
                    _LOGGER.debug,
                    "The MQTT broker at %s closed the connection without answering;"
                    " trying again before saying so",
                    self._address,
                )
            else:
                self._call_soon(self._connect_failed_on_loop, self._hung_up_reason())
        self._call_soon(self._disconnected_on_loop, str(reason_code))

    def _hung_up_reason(self) -> str:
        why = "the broker closed the connection without answering"
        if self._settings.tls is None:
            # Mosquitto closes a TLS listener's connection on a plain-text CONNECT.
            return f"{why} (is it a TLS port? then set mqtt.tls)"
        return why

    def _on_publish(
        self,
        client: paho.Client,
        _userdata: object,
        _mid: int,
        _reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        # The broker's PUBACK came in: acknowledge it now (see _tune_socket).
        _ack_promptly(client.socket())
        # paho calls this holding its own lock, which publish() takes inside _lock:
        # taking _lock here could deadlock, so the held values go from the event loop.
        if self._flushing:
            self._call_soon(self._release_held, self._connection)

    def _on_message(self, client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        _ack_promptly(client.socket())
        lookup = self._lookup
        if (
            msg.retain
            and lookup is not None
            and any(paho.topic_matches_sub(topic, msg.topic) for topic in lookup.filters)
        ):
            self._call_soon(lookup.found.__setitem__, msg.topic, msg.payload)
            return
        if msg.retain:
            # Every subscription is a command (a press, a request, a switch): a retained
            # one is a past command the broker replays on (re)subscribe, not a new one.
            _LOGGER.debug("Ignoring retained message on %s", msg.topic)
            return
        if self._payload_too_big(msg.topic, msg.payload):
            return
        for subscription in list(self._subscriptions):
            if subscription.network_thread and paho.topic_matches_sub(
                subscription.topic, msg.topic
            ):
                self._run_handler(subscription, msg.topic, msg.payload)
        self._call_soon(self._dispatch, msg.topic, msg.payload)

    def _call_soon(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    # --- event loop ------------------------------------------------------------------

    def _release_held(self, connection: int) -> None:
        """Send the values held back while paho sent its queue, which it has now done.

        Any callback after on_connect comes after paho sent its queue, and one always
        comes: the PUBACK of ``online``, or the disconnect. A release for an earlier
        connection is dropped: the current one's callbacks release the values after
        its own queue.
        """
        with self._lock:
            if connection != self._connection or not self._flushing:
                return
            self._flushing.clear()
            held, self._held = self._held, []
            for topic, data, qos in held:
                info = self._client.publish(topic, data, qos=qos, retain=True)
                if topic in self._state_topics:
                    self._state_sent[topic] = info
                if not self._link_up:
                    self._queued_retained.add(topic)

    def _unsubscribed_on_loop(self, mid: int) -> None:
        lookup = self._lookup
        if lookup is not None and lookup.unsubscribe_mid == mid:
            lookup.done.set()
            if lookup.answer is not None:
                with self._lock:  # on_connect sends the lookup while it is set
                    self._lookup = None
                if not lookup.answer.done():
                    lookup.answer.set_result(dict(lookup.found))

    @property
    def _address(self) -> str:
        host = self._settings.host
        return f"[{host}]:{self._settings.port}" if ":" in host else f"{host}:{self._settings.port}"

    def _connected_on_loop(self) -> None:
        if not self._connected.is_set():
            again = " again" if self._outage_logged else ""
            # While something closes every connection, each one is not news.
            level = logging.DEBUG if self._kicked_out else logging.INFO
            _LOGGER.log(level, "Connected to the MQTT broker at %s%s", self._address, again)
        self._outage_logged = False
        self._refusal_logged = False
        self._connected.set()
        if self._steady_timer is not None:
            self._steady_timer.cancel()
        assert self._loop is not None
        self._steady_timer = self._loop.call_later(SHORT_LINK, self._steady)
        with self._lock:
            if not self._pending_subacks:
                self._subscribed.set()

    def _steady(self) -> None:
        """The connection lasted: whatever closed the earlier ones has stopped."""
        self._steady_timer = None
        self._short_links = 0
        if self._kicked_out:
            self._kicked_out = False
            self._client.reconnect_delay_set(min_delay=1, max_delay=30)
            _LOGGER.info("The connection to the MQTT broker at %s is steady again", self._address)

    def _disconnected_on_loop(self, reason: str) -> None:
        if self._connected.is_set() and not self._stopping:
            short = self._steady_timer is not None
            if self._steady_timer is not None:
                self._steady_timer.cancel()
                self._steady_timer = None
            self._short_links = self._short_links + 1 if short else 0
            if self._short_links >= SHORT_LINKS_IN_A_ROW and not self._kicked_out:
                # Mosquitto closes a client's connection when another one connects with
                # its client id; the two would take turns every second, forever.
                self._kicked_out = True
                self._client.reconnect_delay_set(
                    min_delay=SHORT_LINK_RETRY, max_delay=SHORT_LINK_RETRY
                )
                _LOGGER.error(
                    "The MQTT broker at %s closed the bridge's connection right after it was"
                    " made, %d times in a row: most likely another client uses the same client"
                    " id %r (a second bridge with a copy of this storage folder, or the same"
                    " mqtt.client_id on two bridges); retrying every %d s",
                    self._address,
                    self._short_links,
                    self._client_id,
                    SHORT_LINK_RETRY,
                )
            level = logging.DEBUG if self._kicked_out else logging.WARNING
            _LOGGER.log(
                level,
                "Lost the MQTT broker at %s (%s); reconnecting with backoff",
                self._address,
                reason,
            )
            self._outage_logged = True
        self._connected.clear()

    def _connect_failed_on_loop(self, reason: str, level: int = logging.WARNING) -> None:
        if self._stopping or self._connected.is_set():
            return
        # A refusal (credentials, ACL, the broker's certificate) is a setting to fix,
        # not the outage already logged: said once per outage even after "Lost the MQTT
        # broker".
        refusal = level >= logging.ERROR and not self._refusal_logged
        if self._outage_logged and not refusal:
            _LOGGER.debug("Cannot connect to the MQTT broker at %s: %s", self._address, reason)
            return
        self._outage_logged = True
        self._refusal_logged |= refusal
        _LOGGER.log(
            level,
            "Cannot connect to the MQTT broker at %s: %s; retrying with backoff "
            "(rings and clips are queued meanwhile)",
            self._address,
            reason,
        )

    def _payload_too_big(self, topic: str, payload: bytes) -> bool:
        if len(payload) <= MAX_INCOMING_PAYLOAD:
            return False
        # Keyed by the subscription it came through: topics are the sender's choice.
        through = next(
            (s.topic for s in list(self._subscriptions) if paho.topic_matches_sub(s.topic, topic)),
            "#",
        )
        self._ignored.report(
            through,
            "too big",
            topic,
            f"{len(payload)}-byte message (limit {MAX_INCOMING_PAYLOAD} bytes)",
        )
        return True

    def _run_handler(self, subscription: _Subscription, topic: str, payload: bytes) -> None:
        try:
            subscription.handler(topic, payload)
        except IgnoredMessageError as err:
            self._ignored.report(subscription.topic, err.kind, topic, str(err))
        except Exception as err:  # noqa: BLE001  # a bug: one traceback, then counted
            self._ignored.report(
                subscription.topic,
                f"handler failed: {type(err).__name__}",
                topic,
                f"handling it failed: {type(err).__name__}",
                exc_info=True,
            )

    def _dispatch(self, topic: str, payload: bytes) -> None:
        for subscription in list(self._subscriptions):
            if not subscription.network_thread and paho.topic_matches_sub(
                subscription.topic, topic
            ):
                self._run_handler(subscription, topic, payload)
