"""Publishes what happens in the bridge to MQTT and routes MQTT commands to features.

The one place that maps bus events to topics, payloads, QoS and retain flags
(docs/mqtt.md is the user-facing copy of this table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import json
from typing import Any

from aiohttp import web

from doorstep_bridge import PROTOCOL_VERSION, __version__
from doorstep_bridge.config import Config
from doorstep_bridge.events import (
    CameraAvailability,
    CameraSwitchChanged,
    ClipDeleted,
    ClipFinished,
    EventBus,
    MotionChanged,
    RecordRequested,
    ShareStateChanged,
    SnapshotTaken,
    StatsChanged,
)
from doorstep_bridge.exceptions import IgnoredMessageError
from doorstep_bridge.keys import BRIDGE_ID, BUS, CAMERAS, CONFIG, MQTT
from doorstep_bridge.models import parse_record_request
from doorstep_bridge.mqtt.client import MqttClient
from doorstep_bridge.mqtt.topics import OFF, OFFLINE, ON, ONLINE, SWITCHES


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def bridge_info(config: Config, bridge_id: str) -> dict[str, Any]:
    """The discovery / ``<b>/bridge/info`` JSON."""
    return {
        "id": bridge_id,
        "name": config.name,
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "base_topic": config.mqtt.base_topic,
        "api_url": config.http.announced_url,
        "cameras": {name: {"name": cam.friendly_name} for name, cam in config.cameras.items()},
    }


class Publisher:
    """Subscribes to the bus and mirrors events onto MQTT.

    Ring events are the exception: the doorbell publishes them itself, straight
    from whichever thread took the press, because latency matters most there.
    """

    def __init__(self, mqtt: MqttClient, bus: EventBus) -> None:
        self._mqtt = mqtt
        self._topics = mqtt.topics
        self._stats: dict[str, Any] = {}
        self._last_clip: dict[str, str] = {}
        self._unsubscribes: list[Callable[[], None]] = [
            bus.subscribe(MotionChanged, self._on_motion),
            bus.subscribe(CameraAvailability, self._on_availability),
            bus.subscribe(ClipFinished, self._on_clip),
            bus.subscribe(ClipDeleted, self._on_clip_deleted),
            bus.subscribe(SnapshotTaken, self._on_snapshot),
            bus.subscribe(CameraSwitchChanged, self._on_switch),
            bus.subscribe(ShareStateChanged, self._on_share),
            bus.subscribe(StatsChanged, self._on_stats),
        ]

    def close(self) -> None:
        """Stop mirroring events."""
        for unsubscribe in self._unsubscribes:
            unsubscribe()

    def publish_info(self, info: dict[str, Any]) -> None:
        """Bridge info and discovery, both retained."""
        payload = _json(info)
        self._mqtt.publish(self._topics.bridge_info, payload, qos=1, retain=True)
        self._mqtt.publish(self._topics.discovery(info["id"]), payload, qos=1, retain=True)

    def _on_motion(self, event: MotionChanged) -> None:
        state = ON if event.active else OFF
        self._mqtt.publish(self._topics.motion(event.camera), state, qos=1, retain=True)

    def _on_availability(self, event: CameraAvailability) -> None:
        state = ONLINE if event.online else OFFLINE
        self._mqtt.publish(self._topics.camera_available(event.camera), state, qos=1, retain=True)

    def _on_clip(self, event: ClipFinished) -> None:
        clip = event.clip
        self._last_clip[clip.camera] = clip.id
        topic = self._topics.clip(clip.camera)
        self._mqtt.publish(topic, _json(clip.payload()), qos=1, retain=True)

    def _on_clip_deleted(self, event: ClipDeleted) -> None:
        # The retained clip must never name a deleted clip; the camera manager then
        # publishes the newest clip left, if any.
        if self._last_clip.get(event.camera) == event.clip_id:
            del self._last_clip[event.camera]
            self._mqtt.publish(self._topics.clip(event.camera), b"", qos=1, retain=True)

    def _on_snapshot(self, event: SnapshotTaken) -> None:
        self._mqtt.publish(self._topics.snapshot(event.camera), event.jpeg, qos=0, retain=True)

    def _on_switch(self, event: CameraSwitchChanged) -> None:
        state = ON if event.on else OFF
        topic = self._topics.switch(event.camera, event.switch)
        self._mqtt.publish(topic, state, qos=1, retain=True)

    def _on_share(self, event: ShareStateChanged) -> None:
        topic = self._topics.share(event.share_id)
        # An empty state clears the retained topic (a forgotten share).
        payload = _json(event.state) if event.state else ""
        self._mqtt.publish(topic, payload, qos=1, retain=event.retain)

    def _on_stats(self, event: StatsChanged) -> None:
        # Several features report their own figures; the topic carries them merged.
        self._stats.update(event.stats)
        self._mqtt.publish(self._topics.bridge_stats, _json(self._stats), qos=0, retain=True)


def _parse_switch(payload: bytes) -> bool | None:
    if len(payload) > 16:  # longer than any spelling of on or off: skip decoding it
        return None
    text = payload.decode("utf-8", "replace").strip().upper()
    if text in {ON, "TRUE", "1"}:
        return True
    if text in {OFF, "FALSE", "0"}:
        return False
    return None


async def mqtt_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the broker connection for the bridge's lifetime; ``offline`` on a clean stop.

    The connection itself is opened by :func:`mqtt_connect_ctx` once every
    feature has subscribed: the persistent session may deliver what was sent
    while the bridge was down right after the CONNACK, and it must find its
    handler. What is published before that is queued.
    """
    config = app[CONFIG]
    client = MqttClient(config.mqtt, client_id=f"doorstep-{app[BRIDGE_ID]}")
    app[MQTT] = client
    yield
    await client.stop()


async def mqtt_connect_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the broker connection, after every subscription is registered."""
    await app[MQTT].start()
    yield


async def publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Mirror bus events to MQTT and publish the bridge info."""
    config = app[CONFIG]
    publisher = Publisher(app[MQTT], app[BUS])
    publisher.publish_info(bridge_info(config, app[BRIDGE_ID]))
    yield
    publisher.close()


async def commands_ctx(app: web.Application) -> AsyncIterator[None]:
    """Route camera commands (record now, switches) from MQTT to the camera manager."""
    config = app[CONFIG]
    mqtt = app[MQTT]
    bus = app[BUS]
    topics = mqtt.topics

    # The handlers raise IgnoredMessageError for input they do not act on: the MQTT
    # client logs that rate-limited (anyone on the broker can send garbage).

    def camera_of(topic: str, levels_after: int) -> str:
        camera = topic.split("/")[-1 - levels_after]
        if camera not in config.cameras:
            raise IgnoredMessageError(f"unknown camera {camera!r}", kind="unknown camera")
        return camera

    def on_record(topic: str, payload: bytes) -> None:
        camera = camera_of(topic, 2)
        try:
            duration = parse_record_request(payload)
        except ValueError as err:
            # The messages are fixed texts, one per kind of mistake.
            raise IgnoredMessageError(f"record command: {err}") from None
        bus.publish(RecordRequested(camera=camera, duration=duration))

    def switch_handler(switch: str) -> Callable[[str, bytes], None]:
        def on_switch(topic: str, payload: bytes) -> None:
            camera = camera_of(topic, 2)
            on = _parse_switch(payload)
            if on is None:
                raise IgnoredMessageError("expected ON or OFF")
            if not on:
                # Anyone who can write to the broker (often anonymous on a home LAN)
                # could otherwise stop the doorbell recording. Lowering protection
                # takes the API token; raising it takes nothing.
                raise IgnoredMessageError(
                    f"switching {switch} off over MQTT is refused: turn it off from Home"
                    " Assistant or with the bridge's HTTP API",
                    kind="switching off refused",
                )
            app[CAMERAS].set_switch(camera, switch, on, via="MQTT")

        return on_switch

    unsubscribes = [mqtt.subscribe(topics.record_set("+"), on_record)]
    unsubscribes += [
        mqtt.subscribe(topics.switch_set("+", switch), switch_handler(switch))
        for switch in SWITCHES
    ]
    yield
    for unsubscribe in unsubscribes:
        unsubscribe()
