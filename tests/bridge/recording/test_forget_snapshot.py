"""Forgetting a clip whose picture is the camera's retained snapshot replaces or clears it.

A running bridge on a real Mosquitto broker; clips forgotten over its HTTP API; what
a Home Assistant (or any subscriber) sees on ``<b>/<cam>/snapshot``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from doorstep_bridge.config import Config
from doorstep_bridge.files import atomic_write
from doorstep_bridge.models import ClipInfo, utcnow
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.snapshots import make_snapshot
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.recording.writer import ClipWriter, finalize
from doorstep_bridge.sharing.audit import AuditLog, audit_dir

from ..bridge_runner import RunningBridge, bridge_config, run_bridge
from ..conftest import Broker, Listener

TOPIC = "doorstep/front_door/snapshot"


def _clip(
    store: ClipStore, packets: list[EncodedPacket], minutes_ago: int, grey: int | None
) -> tuple[ClipInfo, bytes | None]:
    """A finished clip of front_door; with a snapshot of one grey level unless None."""
    pending = store.new_clip("front_door", utcnow() - timedelta(minutes=minutes_ago), "motion")
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()))
    for packet in packets[:15]:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    jpeg = None
    if grey is not None:
        snapshot = make_snapshot(np.full((360, 640, 3), grey, np.uint8), MaskSet(()))
        atomic_write(pending.snapshot, snapshot.jpeg)
        atomic_write(pending.thumbnail, snapshot.thumbnail)
        jpeg = snapshot.jpeg
    info = store.complete(
        pending, duration=done.duration, size=done.size, snapshot=jpeg is not None
    )
    return info, jpeg


async def _forget(bridge: RunningBridge, clip: ClipInfo) -> None:
    async with bridge.session.delete(
        f"{bridge.url}/api/clips/{clip.id}", headers=bridge.auth, json={"by": "Alice"}
    ) as response:
        assert response.status == 200, await response.text()


async def _seed_picture(broker: Broker, mqtt_listener: Any, jpeg: bytes) -> Any:
    """What an earlier run left retained: ``jpeg``; a listener that has seen it."""
    seed = Listener(broker, [])
    seed.publish(TOPIC, jpeg, retain=True)
    seed.close()
    listener = mqtt_listener(TOPIC)
    assert await asyncio.to_thread(listener.wait_for, TOPIC) == jpeg
    return listener


async def _retained_picture(broker: Broker, mqtt_listener: Any) -> bytes | None:
    """What a subscriber arriving now is given on the snapshot topic, if anything.

    It subscribes to the snapshot, then to a retained marker: the broker answers the
    subscriptions in order, so the marker comes after any picture.
    """
    marker = Listener(broker, [])
    marker.publish("doorstep/marker", b"end", retain=True)
    marker.close()
    late = mqtt_listener(TOPIC, "doorstep/marker")
    assert await asyncio.to_thread(late.wait_for, "doorstep/marker") == b"end"
    pictures = [payload for topic, payload, _retain in late.seen if topic == TOPIC]
    return pictures[0] if pictures else None


def _config(broker: Broker, storage: Path, tmp_path: Path) -> Config:
    """The bridge on ``storage``, no camera to read: only its start and forgets touch the snapshot."""
    return bridge_config(
        broker, storage, cameras={"front_door": {"source": str(tmp_path / "absent.mp4")}}
    )


@pytest.fixture
def clips(
    tmp_path: Path, packets: list[EncodedPacket]
) -> tuple[Path, list[tuple[ClipInfo, bytes | None]]]:
    """Four clips, oldest first: pictured, pictured, pictured, no snapshot (the newest)."""
    storage = tmp_path / "bridge"
    AuditLog(audit_dir(storage))  # before the store: a new storage folder
    store = ClipStore(storage)
    store.open()
    try:
        made = [
            _clip(store, packets, minutes, grey)
            for minutes, grey in ((40, 40), (30, 90), (20, 160), (10, None))
        ]
    finally:
        store.close()
    return storage, made


async def test_forgetting_the_pictured_clip_shows_the_newest_left_then_nothing(
    mqtt_broker: Broker,
    mqtt_listener: object,
    tmp_path: Path,
    clips: tuple[Path, list[tuple[ClipInfo, bytes | None]]],
) -> None:
    storage, made = clips
    (oldest, oldest_jpeg), (middle, middle_jpeg), (newer, newer_jpeg), (newest, _) = made
    assert None not in {oldest_jpeg, middle_jpeg, newer_jpeg}
    assert len({oldest_jpeg, middle_jpeg, newer_jpeg}) == 3
    assert oldest_jpeg is not None
    assert newer_jpeg is not None
    # What an earlier run left retained: the picture of the newest clip with one.
    listener = await _seed_picture(mqtt_broker, mqtt_listener, newer_jpeg)

    async with run_bridge(_config(mqtt_broker, storage, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        # Not the pictured clip: the retained picture stays (the next message on the
        # topic, below, is the one the later forget publishes).
        await _forget(bridge, middle)
        # The pictured clip: the newest clip left with a snapshot takes its place (the
        # newest clip has none).
        await _forget(bridge, newer)
        assert await asyncio.to_thread(listener.wait_for, TOPIC) == oldest_jpeg
        # The newest clip: not pictured since the bridge published a picture itself.
        await _forget(bridge, newest)
        # The last picture's clip: the retained snapshot is cleared.
        await _forget(bridge, oldest)
        assert await asyncio.to_thread(listener.wait_for, TOPIC) == b""

    # A subscriber arriving now finds no picture: nothing of a forgotten visit is left
    # on the broker.
    assert await _retained_picture(mqtt_broker, mqtt_listener) is None


async def test_an_unreadable_picture_left_clears_the_snapshot(
    mqtt_broker: Broker,
    mqtt_listener: object,
    tmp_path: Path,
    clips: tuple[Path, list[tuple[ClipInfo, bytes | None]]],
) -> None:
    storage, made = clips
    (_, _), (_, _), (newer, newer_jpeg), (_, _) = made
    assert newer_jpeg is not None
    # The middle clip's picture, the newest left after `newer`, is gone from the disk.
    middle = made[1][0]
    assert middle.snapshot_path is not None
    middle.snapshot_path.unlink()
    listener = await _seed_picture(mqtt_broker, mqtt_listener, newer_jpeg)

    async with run_bridge(_config(mqtt_broker, storage, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        await _forget(bridge, newer)
        # Never the erased picture: with no readable one to show, none.
        assert await asyncio.to_thread(listener.wait_for, TOPIC) == b""


@pytest.mark.parametrize("left", ["an emptied storage folder", "clips without a picture"])
async def test_a_start_with_no_picture_left_clears_the_snapshot(
    mqtt_broker: Broker,
    mqtt_listener: object,
    tmp_path: Path,
    packets: list[EncodedPacket],
    left: str,
) -> None:
    storage = tmp_path / "bridge"
    AuditLog(audit_dir(storage))  # before the store: a new storage folder
    if left == "clips without a picture":
        store = ClipStore(storage)
        store.open()
        try:
            for minutes in (20, 10):
                _clip(store, packets, minutes, grey=None)
        finally:
            store.close()
    # What an earlier run left retained: the picture of a visit that is gone.
    gone = make_snapshot(np.full((360, 640, 3), 200, np.uint8), MaskSet(())).jpeg
    listener = await _seed_picture(mqtt_broker, mqtt_listener, gone)

    async with run_bridge(_config(mqtt_broker, storage, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        assert await asyncio.to_thread(listener.wait_for, TOPIC) == b""

    assert await _retained_picture(mqtt_broker, mqtt_listener) is None
