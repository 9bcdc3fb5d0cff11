"""Publishes what happens in the bridge to MQTT.

The one place that maps bus events to topics, payloads, QoS and retain flags
(docs/mqtt.md is the user-facing copy of this table).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
import json
import logging
from typing import Any

from doorstep_bridge import PROTOCOL_VERSION, __version__
from doorstep_bridge.config import RESERVED_CAMERA_NAMES, Config
from doorstep_bridge.detect.packages import doorstep_zone
from doorstep_bridge.events import (
    CameraAvailability,
    CameraStatusChanged,
    CameraSwitchChanged,
    ClipDeleted,
    ClipFinished,
    EventBus,
    MaskProblem,
    MotionChanged,
    NoClips,
    PackageChanged,
    PersonChanged,
    RecordingProblem,
    ShareStateChanged,
    SnapshotTaken,
    StatsChanged,
)
from doorstep_bridge.mqtt.client import MqttClient
from doorstep_bridge.mqtt.topics import DISCOVERY_PREFIX, OFF, OFFLINE, ON, ONLINE, Topics

_LOGGER = logging.getLogger(__name__)

#: Seconds before asking the broker again when it did not say which cameras it holds.
REMOVED_CAMERAS_RETRY = 30.0


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
        "cameras": {
            name: {
                "name": cam.friendly_name,
                **({"person": True} if cam.person.enabled else {}),
                **({"package": True} if doorstep_zone(cam.motion.zones) else {}),
            }
            for name, cam in config.cameras.items()
        },
        "retention": config.storage.retention.payload(),
    }


def publish_egress(mqtt: MqttClient, report: dict[str, Any]) -> None:
    """``<b>/bridge/egress``: what the egress guard refused (retained)."""
    mqtt.publish(mqtt.topics.bridge_egress, _json(report), qos=1, retain=True)


def start_lookups(topics: Topics) -> list[str]:
    """What :func:`clear_stale_retained` needs from the broker as the bridge connects.

    Asked before the bridge's own messages reach the broker
    (:meth:`MqttClient.retained_at_connect`): every bridge's discovery (this one's
    names the base topic it had before), and who last published under this base topic.
    """
    return [topics.discovery("+"), topics.available, topics.bridge_info, *topics.camera_lookups]


async def clear_stale_retained(
    mqtt: MqttClient,
    found_at_connect: Awaitable[dict[str, bytes]],
    cameras: Collection[str],
    bridge_id: str,
) -> list[str]:
    """Clear what earlier runs left retained on the broker and nobody publishes any more.

    * The announcement of a bridge that no longer runs under this base topic (this
      bridge before its storage folder, which keeps its id, was replaced): see
      :func:`_gone`.
    * Everything this bridge published under its previous base topic, after
      ``mqtt.base_topic`` changed.
    * Every retained topic of cameras no longer in the config.

    A removed or renamed camera's retained topics would otherwise stay on the broker
    for good, its last snapshot (a picture of the porch) among them, readable by
    anyone on the broker. The broker itself says which cameras it holds state of
    under this bridge's base topic: a list kept in the storage folder would miss
    what a bridge started on an emptied or moved folder, or an older version, left.

    Another bridge announcing the same base topic (a misconfiguration) holds cameras
    there too: then no camera is cleared, and the log names that bridge.

    Returns:
        The cameras cleared.
    """
    found = await found_at_connect
    topics = mqtt.topics
    announced = _announcements(found)
    previous = announced.get(bridge_id, {}).get("base_topic")
    if isinstance(previous, str) and previous and previous != topics.base:
        await _clear_previous_base(mqtt, Topics(previous), announced, bridge_id)
    others = []
    for other in _announcing(announced, topics.base, bridge_id):
        if _gone(other, topics, found):
            mqtt.publish(topics.discovery(other), b"", qos=1, retain=True)
            _LOGGER.info(
                "Cleared the announcement of bridge %s, which no longer publishes under the "
                "base topic %s (its storage folder was replaced?)",
                other,
                topics.base,
            )
        else:
            others.append(other)
    if others:
        _LOGGER.error(
            "Bridge %s also publishes under the base topic %s: give each bridge a base "
            "topic of its own (mqtt.base_topic). Retained topics of removed cameras are "
            "left as they are meanwhile. If no such bridge runs any more, clear its "
            "announcement: an empty retained message on %s",
            ", ".join(others),
            topics.base,
            ", ".join(topics.discovery(other) for other in others),
        )
        return []
    held = {camera for topic in found if (camera := topics.camera_of(topic)) is not None}
    removed = sorted(held - set(cameras) - RESERVED_CAMERA_NAMES)
    for camera in removed:
        for topic in topics.camera_retained(camera):
            mqtt.publish(topic, b"", qos=1, retain=True)
        _LOGGER.info(
            "Camera %s is no longer in the config: cleared its retained MQTT topics", camera
        )
    return removed


async def _clear_previous_base(
    mqtt: MqttClient, previous: Topics, announced: Mapping[str, dict[str, Any]], bridge_id: str
) -> None:
    """Clear what this bridge left retained under the base topic it had before.

    Its last snapshot among it: nobody publishes there any more, and nobody
    would ever clear it. Left as it is while another bridge publishes there.
    """
    while True:
        await mqtt.wait_connected()
        held = await mqtt.retained_messages(
            [
                previous.available,
                previous.bridge_info,
                *previous.camera_lookups,
                previous.share("+"),
            ]
        )
        if held is not None:
            break
        await asyncio.sleep(REMOVED_CAMERAS_RETRY)
    others = [
        other
        for other in _announcing(announced, previous.base, bridge_id)
        if not _gone(other, previous, held)
    ]
    if others:
        _LOGGER.info(
            "The base topic changed from %s: left the retained topics there as they are, "
            "bridge %s publishes there",
            previous.base,
            ", ".join(others),
        )
        return
    had = announced[bridge_id].get("cameras")
    cameras = set(had) if isinstance(had, dict) else set()
    cameras |= {camera for topic in held if (camera := previous.camera_of(topic)) is not None}
    cameras -= RESERVED_CAMERA_NAMES
    shares = [topic for topic in held if topic.startswith(previous.share(""))]
    for topic in [
        *previous.bridge_retained,
        *shares,
        *(topic for camera in sorted(cameras) for topic in previous.camera_retained(camera)),
    ]:
        mqtt.publish(topic, b"", qos=1, retain=True)
    _LOGGER.info(
        "The base topic changed from %s to %s: cleared the bridge's retained topics under "
        "%s (cameras: %s)",
        previous.base,
        mqtt.topics.base,
        previous.base,
        ", ".join(sorted(cameras)) or "none",
    )


def _announcements(retained: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """The retained discovery messages among ``retained``, by bridge id."""
    announced = {}
    for topic, payload in retained.items():
        bridge = topic.removeprefix(f"{DISCOVERY_PREFIX}/")
        if bridge != topic and isinstance(message := _json_object(payload), dict):
            announced[bridge] = message
    return announced


def _announcing(announced: Mapping[str, dict[str, Any]], base: str, bridge_id: str) -> list[str]:
    """Ids of other bridges whose retained discovery message names ``base``."""
    return sorted(
        other
        for other, message in announced.items()
        if other != bridge_id and message.get("base_topic") == base
    )


def _gone(other: str, topics: Topics, retained: Mapping[str, bytes]) -> bool:
    """Has bridge ``other``, announced under ``topics.base``, stopped publishing there?

    Yes when it was the last bridge to publish its info there and is not ``online``
    there (its clean stop or last will said ``offline``); ``retained`` is the broker's
    state from before this bridge published. Two running bridges on one base topic
    overwrite each other's info and availability, so anything else may be a second
    running bridge: it is left alone, and the caller says so.
    """
    info = _json_object(retained.get(topics.bridge_info, b""))
    return (
        isinstance(info, dict)
        and info.get("id") == other
        and retained.get(topics.available) != ONLINE.encode()
    )


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


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
            bus.subscribe(PersonChanged, self._on_person),
            bus.subscribe(PackageChanged, self._on_package),
            bus.subscribe(CameraAvailability, self._on_availability),
            bus.subscribe(CameraStatusChanged, self._on_status),
            bus.subscribe(RecordingProblem, self._on_recording_problem),
            bus.subscribe(MaskProblem, self._on_mask_problem),
            bus.subscribe(ClipFinished, self._on_clip),
            bus.subscribe(ClipDeleted, self._on_clip_deleted),
            bus.subscribe(NoClips, self._on_no_clips),
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
        for camera, provides in info["cameras"].items():
            if not provides.get("person"):
                # Person detection was turned off: no ON/OFF of an earlier run stays behind.
                self._mqtt.publish(self._topics.person(camera), b"", qos=1, retain=True)

    def _on_motion(self, event: MotionChanged) -> None:
        state = ON if event.active else OFF
        self._mqtt.publish(self._topics.motion(event.camera), state, qos=1, retain=True, state=True)

    def _on_person(self, event: PersonChanged) -> None:
        state = ON if event.active else OFF
        self._mqtt.publish(self._topics.person(event.camera), state, qos=1, retain=True, state=True)

    def _on_package(self, event: PackageChanged) -> None:
        payload = {"camera": event.camera, "type": event.change, "time": event.time.isoformat()}
        self._mqtt.publish(self._topics.package(event.camera), _json(payload), qos=1)

    def _on_availability(self, event: CameraAvailability) -> None:
        state = ONLINE if event.online else OFFLINE
        self._mqtt.publish(self._topics.camera_available(event.camera), state, qos=1, retain=True)

    def _on_status(self, event: CameraStatusChanged) -> None:
        topic = self._topics.camera_status(event.camera)
        self._mqtt.publish(topic, _json(event.health.payload()), qos=1, retain=True)

    def _on_recording_problem(self, event: RecordingProblem) -> None:
        self._publish_problem(self._topics.recording_problem(event.camera), event)

    def _on_mask_problem(self, event: MaskProblem) -> None:
        self._publish_problem(self._topics.mask_problem(event.camera), event)

    def _publish_problem(self, topic: str, event: RecordingProblem | MaskProblem) -> None:
        """``{"problem", "since"}``, retained; empty (clearing the topic) without a problem."""
        payload = (
            ""
            if event.problem is None
            else _json({"problem": event.problem, "since": event.since.isoformat()})
        )
        self._mqtt.publish(topic, payload, qos=1, retain=True)

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

    def _on_no_clips(self, event: NoClips) -> None:
        # An earlier run's retained clip names a clip that is not there any more.
        self._last_clip.pop(event.camera, None)
        self._mqtt.publish(self._topics.clip(event.camera), b"", qos=1, retain=True)

    def _on_snapshot(self, event: SnapshotTaken) -> None:
        topic = self._topics.snapshot(event.camera)
        if not event.jpeg:
            # No picture left (its clip was erased): clear the retained one. QoS 1, so
            # that a clear made while the broker is away still reaches it.
            self._mqtt.publish(topic, b"", qos=1, retain=True)
            return
        self._mqtt.publish(topic, event.jpeg, qos=0, retain=True)

    def _on_switch(self, event: CameraSwitchChanged) -> None:
        state = ON if event.on else OFF
        topic = self._topics.switch(event.camera, event.switch)
        self._mqtt.publish(topic, state, qos=1, retain=True)

    def _on_share(self, event: ShareStateChanged) -> None:
        topic = self._topics.share(event.share_id)
        # No state clears the retained topic (a forgotten share).
        payload = "" if event.view is None else _json(event.view.payload())
        self._mqtt.publish(topic, payload, qos=1, retain=event.retain)

    def _on_stats(self, event: StatsChanged) -> None:
        # Several features report their own figures; the topic carries them merged.
        self._stats.update(event.stats)
        self._mqtt.publish(self._topics.bridge_stats, _json(self._stats), qos=0, retain=True)
