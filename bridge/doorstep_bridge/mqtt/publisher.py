"""Publishes what happens in the bridge to MQTT.

The one place that maps bus events to topics, payloads, QoS and retain flags
(docs/mqtt.md is the user-facing copy of this table).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
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


async def clear_removed_cameras(
    mqtt: MqttClient, cameras: Collection[str], bridge_id: str
) -> list[str]:
    """Once connected, clear every retained topic of cameras no longer in the config.

    A removed or renamed camera's retained topics would otherwise stay on the broker
    for good, its last snapshot (a picture of the porch) among them, readable by
    anyone on the broker. The broker itself says which cameras it holds state of
    under this bridge's base topic: a list kept in the storage folder would miss
    what a bridge started on an emptied or moved folder, or an older version, left.

    Another bridge announcing the same base topic (a misconfiguration) holds cameras
    there too: then nothing is cleared, and the log names that bridge.

    Returns:
        The cameras cleared.
    """
    topics = mqtt.topics
    while True:
        await mqtt.wait_connected()
        found = await mqtt.retained_messages([*topics.camera_lookups, topics.discovery("+")])
        if found is not None:
            break
        await asyncio.sleep(REMOVED_CAMERAS_RETRY)
    if others := _bridges_on_the_same_topic(topics, found, bridge_id):
        _LOGGER.error(
            "Bridge %s also publishes under the base topic %s: give each bridge a base "
            "topic of its own (mqtt.base_topic). Retained topics of removed cameras are "
            "left as they are meanwhile",
            ", ".join(others),
            topics.base,
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


def _bridges_on_the_same_topic(
    topics: Topics, retained: Mapping[str, bytes], bridge_id: str
) -> list[str]:
    """Ids of other bridges whose retained discovery message names this base topic."""
    others = []
    for topic, payload in retained.items():
        other = topic.removeprefix(f"{DISCOVERY_PREFIX}/")
        if other in (topic, bridge_id):  # not a discovery topic, or this bridge's own
            continue
        try:
            announced = json.loads(payload)
        except ValueError:
            continue
        if isinstance(announced, dict) and announced.get("base_topic") == topics.base:
            others.append(other)
    return sorted(others)


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
        topic = self._topics.recording_problem(event.camera)
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
