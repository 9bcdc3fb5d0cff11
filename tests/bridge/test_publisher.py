"""The publisher's mapping of bus events to MQTT messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import json
import logging
from pathlib import Path

import pytest

from doorstep_bridge.events import (
    ClipDeleted,
    ClipFinished,
    EventBus,
    MotionChanged,
    NoClips,
    PersonChanged,
    RecordingProblem,
    SnapshotTaken,
)
from doorstep_bridge.keys import BRIDGE_ID
from doorstep_bridge.models import ClipInfo, utcnow
from doorstep_bridge.mqtt.publisher import Publisher
from doorstep_bridge.mqtt.topics import Topics
from tests.bridge.bridge_runner import bridge_config, run_bridge
from tests.bridge.conftest import Broker, Listener


class RecordingMqtt:
    """Stands in for MqttClient: records what would be published."""

    def __init__(self) -> None:
        self.topics = Topics("doorstep")
        self.sent: list[tuple[str, bytes | str, int, bool]] = []
        #: Topics published as states (only the newest value is sent after an outage).
        self.states: set[str] = set()

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 0,
        retain: bool = False,
        state: bool = False,
    ) -> None:
        self.sent.append((topic, payload, qos, retain))
        if state:
            self.states.add(topic)


def clip(clip_id: str) -> ClipInfo:
    start = utcnow()
    return ClipInfo(
        id=clip_id,
        camera="front_door",
        start=start,
        end=start + timedelta(seconds=10),
        reason="motion",
        path=Path(f"/tmp/{clip_id}.mp4"),
        size=1000,
    )


def test_deleting_the_announced_clip_clears_the_retained_topic() -> None:
    bus = EventBus()
    mqtt = RecordingMqtt()
    Publisher(mqtt, bus)  # type: ignore[arg-type]
    bus.publish(ClipFinished(clip("c_old")))
    bus.publish(ClipFinished(clip("c_new")))
    mqtt.sent.clear()

    bus.publish(ClipDeleted("c_old", "front_door", "retention"))
    assert mqtt.sent == []  # not the announced clip: nothing to correct

    bus.publish(ClipDeleted("c_new", "front_door", "retention"))
    assert mqtt.sent == [("doorstep/front_door/clip", b"", 1, True)]


def test_a_snapshot_is_retained_and_an_empty_one_clears_it() -> None:
    bus = EventBus()
    mqtt = RecordingMqtt()
    Publisher(mqtt, bus)  # type: ignore[arg-type]
    bus.publish(SnapshotTaken("front_door", b"\xff\xd8jpeg"))
    bus.publish(SnapshotTaken("front_door", b""))
    assert mqtt.sent == [
        ("doorstep/front_door/snapshot", b"\xff\xd8jpeg", 0, True),
        # No picture left: cleared, with QoS 1 so that a clear made offline is kept.
        ("doorstep/front_door/snapshot", b"", 1, True),
    ]


def test_a_recording_problem_is_retained_and_cleared_when_recording_works_again() -> None:
    bus = EventBus()
    mqtt = RecordingMqtt()
    Publisher(mqtt, bus)  # type: ignore[arg-type]
    now = utcnow()
    bus.publish(RecordingProblem("front_door", "cannot write c_1.partial.mp4: disk full", now))
    bus.publish(RecordingProblem("front_door", None, now))
    problem = '{"problem":"cannot write c_1.partial.mp4: disk full","since":"%s"}'
    assert mqtt.sent == [
        ("doorstep/front_door/recording_problem", problem % now.isoformat(), 1, True),
        # Works again: the retained message goes, so no subscriber hears of it later.
        ("doorstep/front_door/recording_problem", "", 1, True),
    ]


def test_a_camera_without_clips_clears_an_earlier_run_s_retained_clip() -> None:
    # The storage folder was emptied or moved: the retained clip names a clip not there.
    bus = EventBus()
    mqtt = RecordingMqtt()
    Publisher(mqtt, bus)  # type: ignore[arg-type]
    bus.publish(NoClips("front_door"))
    assert mqtt.sent == [("doorstep/front_door/clip", b"", 1, True)]


def test_the_person_topic_is_cleared_for_cameras_without_person_detection() -> None:
    mqtt = RecordingMqtt()
    publisher = Publisher(mqtt, EventBus())  # type: ignore[arg-type]
    info = {"id": "b1", "cameras": {"front_door": {"person": True}, "garage": {}}}
    publisher.publish_info(info)
    person = [sent for sent in mqtt.sent if sent[0].endswith("/person")]
    # An earlier run with person detection on left ON or OFF there.
    assert person == [("doorstep/garage/person", b"", 1, True)]


def test_motion_and_person_are_states_the_rest_is_kept_in_full() -> None:
    """After a broker outage only the newest motion and person go out; clips all do."""
    bus, mqtt = EventBus(), RecordingMqtt()
    Publisher(mqtt, bus)  # type: ignore[arg-type]
    bus.publish(MotionChanged("front_door", active=True, time=utcnow()))
    bus.publish(PersonChanged("front_door", active=True, time=utcnow()))
    bus.publish(ClipFinished(clip("c_1")))
    assert mqtt.states == {"doorstep/front_door/motion", "doorstep/front_door/person"}


def _retained(listener: Listener, settle: float = 1.0) -> dict[str, bytes]:
    """The retained messages a fresh subscriber was handed, by topic."""
    return {topic: payload for topic, payload, retain in listener.drain(settle) if retain}


async def test_a_removed_camera_leaves_nothing_retained_on_the_broker(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its last snapshot (a picture of the porch) and state go; the rest stays."""
    caplog.set_level(logging.INFO, logger="doorstep_bridge.mqtt.publisher")
    both = {"front_door": {"source": "demo://"}, "back_door": {"source": "demo://"}}
    # Another bridge on the broker, under a base topic below this bridge's.
    other = mqtt_listener("doorstep/back_door/snapshot")
    nested = {
        "doorstep/garage/available": b"online",
        "doorstep/garage/bridge/info": b"{}",
        "doorstep/garage/back_door/status": b'{"status": "online"}',
        "doorstep/garage/back_door/snapshot": b"\xff\xd8 the garage",
    }
    for topic, payload in nested.items():
        await asyncio.to_thread(other.publish, topic, payload, True)
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, cameras=both)) as bridge:
        await bridge.wait_mqtt()
        async with bridge.session.post(
            f"{bridge.url}/api/cameras/back_door/ring", headers=bridge.auth
        ) as response:
            assert response.status < 300
        # The picture of the press (an empty one first: the camera had no clip yet).
        while not await asyncio.to_thread(other.wait_for, "doorstep/back_door/snapshot", 20):
            pass
        # As the clip the press started would, when it ends.
        clip = {"id": "c_20261123T101500_back_door_3a1f", "camera": "back_door"}
        await asyncio.to_thread(other.publish, "doorstep/back_door/clip", json.dumps(clip), True)
    before = mqtt_listener("doorstep/#")
    held = _retained(before)
    assert {"doorstep/back_door/snapshot", "doorstep/back_door/clip"} <= set(held)
    assert "doorstep/back_door/status" in held
    front_before = {t: p for t, p in held.items() if t.startswith("doorstep/front_door/")}

    only_front = {"front_door": {"source": "demo://"}}
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, cameras=only_front)) as bridge:
        await bridge.wait_mqtt()
        cleared = "Camera back_door is no longer in the config: cleared its retained MQTT topics"
        for _ in range(100):  # up to 10 s
            if cleared in caplog.text:
                break
            await asyncio.sleep(0.1)
        fresh = mqtt_listener("doorstep/#")
        after = await asyncio.to_thread(_retained, fresh)
        info = json.loads(after["doorstep/bridge/info"])

    assert [topic for topic in after if topic.startswith("doorstep/back_door/")] == []
    assert set(info["cameras"]) == {"front_door"}
    # The remaining camera's state, this bridge's own topics and the other bridge's stay.
    assert {t for t in after if t.startswith("doorstep/front_door/")} == set(front_before)
    assert after["doorstep/front_door/motion_detection"] == b"ON"
    assert after["doorstep/available"] == b"online"
    for topic, payload in nested.items():
        assert after[topic] == payload, topic
    assert "Camera garage" not in caplog.text


GARDEN = json.dumps({"id": "0a1b2c3d4e5f6a7b", "name": "Garden", "base_topic": "doorstep"})


@pytest.mark.parametrize(
    "running",
    [
        {},  # only its announcement is known
        {"doorstep/bridge/info": GARDEN.encode(), "doorstep/available": b"online"},
    ],
    ids=["announced", "online"],
)
async def test_another_bridge_s_cameras_under_the_same_topic_are_left_alone(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    running: dict[str, bytes],
) -> None:
    """Two bridges on one base topic (a mistake): neither wipes the other's cameras."""
    caplog.set_level(logging.INFO, logger="doorstep_bridge.mqtt.publisher")
    other = mqtt_listener("doorstep/garden/#")
    theirs = {
        "doorstep/discovery/0a1b2c3d4e5f6a7b": GARDEN.encode(),
        "doorstep/garden/status": b'{"status": "online"}',
        "doorstep/garden/motion": b"OFF",
        "doorstep/garden/snapshot": b"\xff\xd8 the garden",
    }
    for topic, payload in {**theirs, **running}.items():
        await asyncio.to_thread(other.publish, topic, payload, True)
    config = bridge_config(mqtt_broker, tmp_path, cameras={"front_door": {"source": "demo://"}})
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        for _ in range(100):  # up to 10 s
            if "also publishes under the base topic" in caplog.text:
                break
            await asyncio.sleep(0.1)
        fresh = mqtt_listener("doorstep/#")
        after = await asyncio.to_thread(_retained, fresh)
    assert "Bridge 0a1b2c3d4e5f6a7b also publishes under the base topic doorstep" in caplog.text
    for topic, payload in theirs.items():
        assert after[topic] == payload, topic
    assert "Camera garden" not in caplog.text
    assert "Cleared the announcement" not in caplog.text


async def _wait_for_log(caplog: pytest.LogCaptureFixture, text: str) -> None:
    """Wait up to 10 s for `text` in the log (the caller asserts what it expects)."""
    for _ in range(100):
        if text in caplog.text:
            return
        await asyncio.sleep(0.1)


async def test_a_bridge_on_a_new_storage_folder_clears_its_earlier_announcement(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The storage folder (and with it the bridge id) replaced: no ghost of the old bridge.

    Its discovery message is cleared, not taken for a second bridge, and a camera
    removed meanwhile leaves nothing retained.
    """
    caplog.set_level(logging.INFO, logger="doorstep_bridge.mqtt.publisher")
    both = {"front_door": {"source": "demo://"}, "back_door": {"source": "demo://"}}
    async with run_bridge(bridge_config(mqtt_broker, tmp_path / "a", cameras=both)) as bridge:
        await bridge.wait_mqtt()
        first_id = bridge.app[BRIDGE_ID]
        other = mqtt_listener("doorstep/back_door/snapshot")
        # The picture the camera's last press left.
        await asyncio.to_thread(other.publish, "doorstep/back_door/snapshot", b"\xff\xd8", True)
    assert f"doorstep/discovery/{first_id}" in _retained(mqtt_listener("doorstep/#"))

    only_front = {"front_door": {"source": "demo://"}}
    config = bridge_config(mqtt_broker, tmp_path / "b", cameras=only_front)
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        await _wait_for_log(caplog, "Camera back_door is no longer in the config")
        after = await asyncio.to_thread(_retained, mqtt_listener("doorstep/#"))
        second_id = bridge.app[BRIDGE_ID]

    assert second_id != first_id
    assert [t for t in after if t.startswith("doorstep/discovery/")] == [
        f"doorstep/discovery/{second_id}"
    ]
    assert [t for t in after if t.startswith("doorstep/back_door/")] == []
    assert f"Cleared the announcement of bridge {first_id}" in caplog.text
    assert "also publishes under the base topic" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_changed_base_topic_leaves_nothing_retained_under_the_old_one(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No picture of the porch, nor any state, stays readable where nobody publishes."""
    caplog.set_level(logging.INFO, logger="doorstep_bridge.mqtt.publisher")
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        other = mqtt_listener("doorstep/share/#")
        left = {
            "doorstep/front_door/snapshot": b"\xff\xd8 the porch",
            "doorstep/front_door/clip": b'{"id": "c_20261123T101500_front_door_3a1f"}',
            "doorstep/share/s_1": b'{"state": "pending"}',
        }
        for topic, payload in left.items():
            await asyncio.to_thread(other.publish, topic, payload, True)
    before = _retained(mqtt_listener("doorstep/#"))
    assert {"doorstep/bridge/info", "doorstep/front_door/status", *left} <= set(before)

    async with run_bridge(
        bridge_config(mqtt_broker, tmp_path, mqtt={"base_topic": "house"})
    ) as bridge:
        await bridge.wait_mqtt()
        await _wait_for_log(caplog, "The base topic changed from doorstep to house")
        after = await asyncio.to_thread(_retained, mqtt_listener("#"))
        own = f"doorstep/discovery/{bridge.app[BRIDGE_ID]}"

    assert [t for t in after if t.startswith("doorstep/")] == [own]
    assert json.loads(after[own])["base_topic"] == "house"
    assert "cleared the bridge's retained topics under doorstep (cameras: front_door)" in (
        caplog.text
    )
    assert {"house/available", "house/bridge/info", "house/front_door/status"} <= set(after)


async def test_a_changed_base_topic_leaves_a_running_bridge_s_topics_alone(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another bridge now publishes under the old base topic: nothing there is cleared."""
    caplog.set_level(logging.INFO, logger="doorstep_bridge.mqtt.publisher")
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
    other = mqtt_listener("doorstep/garden/#")
    garden = {
        "doorstep/discovery/0a1b2c3d4e5f6a7b": GARDEN.encode(),
        "doorstep/bridge/info": GARDEN.encode(),
        "doorstep/available": b"online",
        "doorstep/garden/status": b'{"status": "online"}',
        "doorstep/garden/snapshot": b"\xff\xd8 the garden",
    }
    for topic, payload in garden.items():
        await asyncio.to_thread(other.publish, topic, payload, True)

    async with run_bridge(
        bridge_config(mqtt_broker, tmp_path, mqtt={"base_topic": "house"})
    ) as bridge:
        await bridge.wait_mqtt()
        await _wait_for_log(caplog, "The base topic changed from doorstep: left")
        after = await asyncio.to_thread(_retained, mqtt_listener("doorstep/#"))
    for topic, payload in garden.items():
        assert after[topic] == payload, topic
    assert "left the retained topics there as they are, bridge 0a1b2c3d4e5f6a7b" in caplog.text
