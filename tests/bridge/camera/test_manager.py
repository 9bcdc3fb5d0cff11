"""Cameras end to end: a real RTSP camera → motion → clips in the store → bus events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
import threading
from typing import Any

import av
import pytest

from doorstep_bridge.camera.manager import CameraManager, default_factories
from doorstep_bridge.config import parse_config
from doorstep_bridge.events import (
    CameraAvailability,
    CameraSwitchChanged,
    ClipDeleted,
    ClipFinished,
    ClipsHeld,
    EventBus,
    MaskProblem,
    MotionChanged,
    NoClips,
    RecordingProblem,
    RecordRequested,
    SnapshotTaken,
    StatsChanged,
)
from doorstep_bridge.models import RingEvent, utcnow
from doorstep_bridge.recording.store import ClipStore
from tests.bridge.camera.conftest import CountingGate, Recorded, stand_in_detector
from tests.support import disk
from tests.support.media import Footage, decode_all
from tests.support.servers import free_port, rtsp_server

pytestmark = pytest.mark.slow

EVENTS = (
    CameraAvailability,
    CameraSwitchChanged,
    ClipFinished,
    MaskProblem,
    MotionChanged,
    NoClips,
    RecordingProblem,
    SnapshotTaken,
    StatsChanged,
)


@asynccontextmanager
async def running(
    storage: Path,
    cameras: dict[str, Any],
    rings: list[str] | None = None,
    min_free_bytes: int | None = None,
    detector_factory: Any = stand_in_detector,
) -> AsyncIterator[tuple[CameraManager, Recorded, ClipStore]]:
    config = parse_config({"storage": {"path": str(storage)}, "cameras": cameras})
    store = ClipStore(config.storage.path)
    store.open()
    bus = EventBus()
    recorded = Recorded(bus)
    recorded.watch(*EVENTS)
    manager = CameraManager(
        config.cameras,
        config.storage,
        bus,
        store,
        (rings if rings is not None else []).append,
        detector_factory=detector_factory,
        gate_factory=CountingGate,
        min_free_bytes=min_free_bytes,
    )
    await manager.start()
    try:
        yield manager, recorded, store
    finally:
        await manager.stop()
        store.close()


def _first_packet_is_keyframe(path: Path) -> bool:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return bool(next(container.demux(stream)).is_keyframe)


@pytest.mark.parametrize("footage", ["porch", "porch_b_frames"], ids=["no B-frames", "B-frames"])
async def test_rtsp_motion_clip(
    rtsp_ok: None, footage: str, storage: Path, request: pytest.FixtureRequest
) -> None:
    porch: Footage = request.getfixturevalue(footage)
    camera = {
        "record": {"pre_roll": 1.5, "post_roll": 1.0},
        "motion": {"frames_to_start": 2, "off_delay": 0.5},
    }
    with rtsp_server({"/main": porch.path}) as url:
        camera["source"] = f"{url}/main"
        async with running(storage, {"front_door": camera}) as (manager, recorded, store):
            await recorded.wait(CameraAvailability, lambda e: e.online)
            on = await recorded.wait(MotionChanged, lambda e: e.active)
            finished = await recorded.wait(ClipFinished)
            off = next(e for e in recorded.of(MotionChanged) if not e.active)
            assert manager.status("front_door").online
            listed, total = store.list(camera="front_door")
    clip = finished.clip
    assert clip.camera == "front_door"
    assert clip.reason == "motion"
    assert clip.path.suffix == ".mp4"
    assert _first_packet_is_keyframe(clip.path)
    frames = decode_all(clip.path)
    assert len(frames) == pytest.approx(clip.duration * 15, abs=1)
    # The pre-roll: the clip starts at least pre_roll before motion was reported
    # (at the keyframe before), and ends about post_roll after motion stopped.
    assert clip.start.timestamp() <= on.time.timestamp() - 1.5
    assert clip.start.timestamp() >= on.time.timestamp() - 1.5 - 1.0 - 0.5
    assert clip.end.timestamp() >= off.time.timestamp() + 1.0 - 0.3
    # Snapshot of the largest motion, stored and published.
    assert clip.snapshot_path is not None
    assert clip.snapshot_path.read_bytes()[:3] == b"\xff\xd8\xff"
    snapshot = recorded.of(SnapshotTaken)[-1]
    assert snapshot.jpeg == clip.snapshot_path.read_bytes()
    assert total >= 1
    assert clip.id in [c.id for c in listed]
    stats = recorded.of(StatsChanged)[-1].stats
    assert stats["clips"] >= 1
    assert stats["storage_used_bytes"] >= clip.size
    # The first availability report is "online", reported once; a clean stop ends offline.
    assert [e.online for e in recorded.of(CameraAvailability)] == [True, False]


async def test_privacy_masked_camera_never_records_masked_pixels(
    rtsp_ok: None, porch: Footage, storage: Path
) -> None:
    mask = [[0, 0], [400, 0], [400, 360], [0, 360]]  # the walker's path, mostly
    camera = {
        "record": {"pre_roll": 1.0, "post_roll": 0.5},
        "motion": {"frames_to_start": 2, "off_delay": 0.5},
        "privacy_masks": [mask],
    }
    with rtsp_server({"/main": porch.path}) as url:
        camera["source"] = f"{url}/main"
        async with running(storage, {"front_door": camera}) as (_, recorded, _store):
            finished = await recorded.wait(ClipFinished)
    clip = finished.clip
    assert _first_packet_is_keyframe(clip.path)
    frames = decode_all(clip.path)
    assert len(frames) >= 15
    for luma in frames:
        assert int(luma[4:356, 4:396].max()) <= 2  # filled black in every frame
    assert any(float(luma[:, 420:].mean()) > 30 for luma in frames)
    assert clip.snapshot_path is not None
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(clip.snapshot_path.read_bytes(), np.uint8), 1)
    assert int(image[4:356, 4:396].max()) <= 8


async def test_a_walker_wholly_under_a_privacy_mask_records_nothing(
    rtsp_ok: None, porch: Footage, storage: Path
) -> None:
    # Two cameras on the same stream, the real motion core; one masks the walker's band.
    band = [[0, 120], [640, 120], [640, 240], [0, 240]]
    cameras = {}
    with rtsp_server({"/main": porch.path}) as url:
        for name, extra in (("open", {}), ("masked", {"privacy_masks": [band]})):
            cameras[name] = {
                "source": f"{url}/main",
                "record": {"pre_roll": 0.5, "post_roll": 0.5},
                "motion": {"frames_to_start": 2, "off_delay": 0.5},
                **extra,
            }
        async with running(storage, cameras, detector_factory=default_factories()[0]) as (
            _,
            recorded,
            store,
        ):
            # The open camera saw the walker come and go: so did the masked one's stream.
            await recorded.wait(ClipFinished, lambda e: e.clip.camera == "open")
            clips, _ = store.list()
    assert [e.camera for e in recorded.of(MotionChanged) if e.active] == ["open"]
    assert {clip.camera for clip in clips} == {"open"}


async def test_ring_and_manual_record_with_switches(
    rtsp_ok: None, porch: Footage, storage: Path
) -> None:
    camera = {"record": {"pre_roll": 1.0, "post_roll": 1.0}}
    with rtsp_server({"/main": porch.path}) as url:
        camera["source"] = f"{url}/main"
        async with running(storage, {"front_door": camera}) as (manager, recorded, _):
            manager.set_switch("front_door", "motion_detection", on=False)
            await recorded.wait(CameraAvailability, lambda e: e.online)
            await asyncio.sleep(1.5)  # let the pre-roll fill
            recorded.bus.publish(RingEvent("r_1", "front_door", utcnow(), "http"))
            press = await recorded.wait(SnapshotTaken, lambda e: bool(e.jpeg))
            ring_clip = (await recorded.wait(ClipFinished)).clip
            manager.set_switch("front_door", "recording", on=False)
            recorded.bus.publish(RecordRequested("front_door", 1.0))
            assert not manager.status("front_door").recording_clip
            manager.set_switch("front_door", "recording", on=True)
            recorded.bus.publish(RecordRequested("front_door", 1.0))
            manual = (await recorded.wait(ClipFinished, lambda e: e.clip.reason == "manual")).clip
            status = manager.status("front_door")
    assert press.jpeg[:2] == b"\xff\xd8"
    assert ring_clip.reason == "ring"
    assert ring_clip.duration >= 2.0 - 0.2
    assert manual.duration >= 1.0
    # Motion was announced off at start, and never on: detection was off.
    assert [e.active for e in recorded.of(MotionChanged)] == [False]
    assert status.motion_detection is False
    assert status.recording is True
    switches = [(e.switch, e.on) for e in recorded.of(CameraSwitchChanged)]
    assert switches == [
        ("motion_detection", True),  # the states at start
        ("recording", True),
        ("motion_detection", False),
        ("recording", False),
        ("recording", True),
    ]


async def test_a_full_disk_is_announced_until_a_clip_is_kept_again(
    rtsp_ok: None, porch: Footage, tmp_path: Path
) -> None:
    # Home Assistant learns of it from these events (the retained
    # <b>/<cam>/recording_problem topic): before, only the log and /api/info said it.
    camera = {"record": {"pre_roll": 0.5, "post_roll": 0.5}}
    with disk.small_disk(tmp_path, size="8m") as mount, rtsp_server({"/main": porch.path}) as url:
        camera["source"] = f"{url}/main"
        storage = mount / "storage"
        async with running(storage, {"front_door": camera}, min_free_bytes=0) as (
            manager, recorded, _store,
        ):  # fmt: skip
            manager.set_switch("front_door", "motion_detection", on=False)
            await recorded.wait(CameraAvailability, lambda e: e.online)
            await asyncio.sleep(1.0)  # let the pre-roll fill
            # At start: no problem (what an earlier run left retained is cleared).
            assert [e.problem for e in recorded.of(RecordingProblem)] == [None]
            filler = disk.fill(mount, leave=16 * 1024)
            recorded.bus.publish(RingEvent("r_1", "front_door", utcnow(), "http"))
            failed = await recorded.wait(RecordingProblem, lambda e: e.problem is not None)
            assert "No space left on device" in str(failed.problem)
            assert manager.status("front_door").error == failed.problem
            filler.unlink()
            await asyncio.sleep(1.5)  # the ring clip ends; the next one can start
            recorded.bus.publish(RingEvent("r_2", "front_door", utcnow(), "http"))
            await recorded.wait(
                RecordingProblem, lambda e: e.problem is None and e.since > failed.since, timeout=15
            )
            assert manager.status("front_door").error is None
    problems = [e.problem is None for e in recorded.of(RecordingProblem)]
    assert problems == [True, False, True]  # once each way, not per frame


async def test_camera_drop_closes_the_clip_and_reconnects(
    rtsp_ok: None, porch: Footage, storage: Path
) -> None:
    port = free_port()
    camera = {
        "source": f"rtsp://127.0.0.1:{port}/main",
        "record": {"pre_roll": 1.0, "post_roll": 30.0},
    }
    async with running(storage, {"front_door": camera}) as (manager, recorded, store):
        with rtsp_server({"/main": porch.path}, port=port):
            await recorded.wait(CameraAvailability, lambda e: e.online)
            await asyncio.sleep(1.0)
            manager.record("front_door", 60.0)
            await asyncio.sleep(2.0)
            assert manager.status("front_door").recording_clip
        # The server is gone mid-clip: the clip is closed cleanly, the camera offline.
        dropped = (await recorded.wait(ClipFinished)).clip
        await recorded.wait(CameraAvailability, lambda e: not e.online)
        assert not manager.status("front_door").online
        with rtsp_server({"/main": porch.path}, port=port):
            await recorded.wait(
                CameraAvailability, lambda e: e.online and recorded.of(CameraAvailability)[-1] is e
            )
            assert manager.status("front_door").online
            assert store.get(dropped.id) == dropped
    assert dropped.reason == "manual"
    assert 2.0 <= dropped.duration <= 10.0
    assert len(decode_all(dropped.path)) == pytest.approx(dropped.duration * 15, abs=1)
    # Down before the first server, up, down, up, down (the second server stops first):
    # one report per change however many reconnect attempts failed in between.
    assert [e.online for e in recorded.of(CameraAvailability)] == [False, True, False, True, False]


class ThreadNotingStore(ClipStore):
    """The real store, noting which thread asks for its figures."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.usage_threads: list[threading.Thread] = []

    def usage(self) -> tuple[int, int]:
        self.usage_threads.append(threading.current_thread())
        return super().usage()


async def test_storage_figures_are_read_off_the_event_loop(storage: Path) -> None:
    config = parse_config(
        {
            "storage": {"path": str(storage)},
            "cameras": {"front_door": {"source": "demo://?period=60&fps=10&width=320&height=180"}},
        }
    )
    store = ThreadNotingStore(config.storage.path)
    store.open()
    bus = EventBus()
    recorded = Recorded(bus)
    recorded.watch(ClipFinished, StatsChanged, CameraAvailability)
    manager = CameraManager(
        config.cameras,
        config.storage,
        bus,
        store,
        lambda _: None,
        detector_factory=stand_in_detector,
        gate_factory=CountingGate,
    )
    await manager.start()
    try:
        await recorded.wait(CameraAvailability, lambda e: e.online, timeout=10)
        manager.record("front_door", 1.0)
        clip = (await recorded.wait(ClipFinished, timeout=15)).clip
        stats = await recorded.wait(StatsChanged, lambda e: e.stats["clips"] == 1, timeout=10)
    finally:
        await manager.stop()
        store.close()
    assert stats.stats["storage_used_bytes"] == clip.size
    assert store.usage_threads
    assert threading.current_thread() not in store.usage_threads  # never the loop's thread


def _stored_clip(store: ClipStore, porch: Footage, start: Any) -> Any:
    from doorstep_bridge.recording.masks import MaskSet
    from doorstep_bridge.recording.writer import ClipWriter, finalize
    from tests.support.media import file_packets

    packets = file_packets(porch.path)
    pending = store.new_clip("front_door", start, "motion")
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()), pending.comment())
    for packet in packets[:15]:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    return store.complete(pending, duration=done.duration, size=done.size)


async def test_the_retained_clip_names_the_newest_clip_left(porch: Footage, storage: Path) -> None:
    from datetime import timedelta

    store = ClipStore(storage)
    store.open()
    now = utcnow()
    held = _stored_clip(store, porch, now - timedelta(days=20))
    newest = _stored_clip(store, porch, now - timedelta(days=19))
    store.hold("s_1", [held.id])  # an active share keeps the older clip
    store.close()
    camera = {"source": f"rtsp://127.0.0.1:{free_port()}/none"}  # no camera needed
    async with running(storage, {"front_door": camera}) as (_, recorded, store):
        # At start the newest clip is announced; retention (14 days) then deletes it
        # and the clip topic moves to the newest clip left.
        await recorded.wait(ClipFinished, lambda e: e.clip.id == held.id, timeout=10)
    assert [e.clip.id for e in recorded.of(ClipFinished)] == [newest.id, held.id]


async def test_the_latest_clip_is_announced_again_when_a_share_holds_it(
    porch: Footage, storage: Path
) -> None:
    store = ClipStore(storage)
    store.open()
    latest = _stored_clip(store, porch, utcnow())
    store.close()
    camera = {"source": f"rtsp://127.0.0.1:{free_port()}/none"}  # no camera needed
    async with running(storage, {"front_door": camera}) as (_, recorded, store):
        await recorded.wait(ClipFinished, lambda e: e.clip.id == latest.id, timeout=10)
        await asyncio.to_thread(store.hold, "s_1", [latest.id])
        recorded.bus.publish(ClipsHeld((latest.id,)))
        held = await recorded.wait(ClipFinished, lambda e: e.clip.held_by, timeout=10)
        assert held.clip.id == latest.id
        assert held.clip.payload()["held"] is True
        await asyncio.to_thread(store.release, "s_1")
        recorded.bus.publish(ClipsHeld(("c_other", latest.id)))
        await recorded.wait(ClipFinished, lambda _: len(recorded.of(ClipFinished)) == 3, 10)
    announced = recorded.of(ClipFinished)
    assert [e.clip.id for e in announced] == [latest.id] * 3
    assert [bool(e.clip.held_by) for e in announced] == [False, True, False]


async def test_the_retained_clip_follows_a_step_of_the_clock(porch: Footage, storage: Path) -> None:
    """A board restored the time of its last shutdown, two days ago; NTP sets it."""
    from datetime import timedelta

    real = utcnow()
    wall, steady = [real - timedelta(days=2)], [100.0]
    store = ClipStore(storage, clock=lambda: wall[0], steady=lambda: steady[0])
    store.open()
    clip = _stored_clip(store, porch, wall[0])
    config = parse_config(
        {
            "storage": {"path": str(storage)},
            "cameras": {"front_door": {"source": f"rtsp://127.0.0.1:{free_port()}/none"}},
        }
    )
    bus = EventBus()
    recorded = Recorded(bus)
    recorded.watch(ClipFinished)
    manager = CameraManager(
        config.cameras,
        config.storage,
        bus,
        store,
        [].append,
        detector_factory=stand_in_detector,
        gate_factory=CountingGate,
    )
    await manager.start()
    try:
        await recorded.wait(ClipFinished, lambda e: e.clip.id == clip.id, timeout=10)
        wall[0] = real

        moved = await recorded.wait(ClipFinished, lambda e: e.clip.start != clip.start, 10)
    finally:
        await manager.stop()
        store.close()
    assert moved.clip.id == clip.id
    assert moved.clip.start == clip.start + timedelta(days=2)
    assert moved.clip.end == clip.end + timedelta(days=2)


async def test_a_camera_without_clips_says_so_at_start(porch: Footage, storage: Path) -> None:
    store = ClipStore(storage)
    store.open()
    _stored_clip(store, porch, utcnow())
    store.close()
    cameras = {
        name: {"source": f"rtsp://127.0.0.1:{free_port()}/none"}  # no camera needed
        for name in ("front_door", "garage")
    }
    async with running(storage, cameras) as (_, recorded, _store):
        pass
    # Only the camera whose clips are gone (an emptied storage folder, a new camera).
    assert [e.camera for e in recorded.of(NoClips)] == ["garage"]


async def test_a_clip_repaired_once_the_disk_takes_it_is_announced(
    porch: Footage, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta
    import errno

    from doorstep_bridge.recording import store as store_module
    from doorstep_bridge.recording.masks import MaskSet
    from doorstep_bridge.recording.writer import ClipWriter
    from tests.support.media import file_packets

    store = ClipStore(storage)
    store.open()
    now = utcnow()
    older = _stored_clip(store, porch, now - timedelta(hours=2))
    # The bridge was killed while recording: the newest clip is a partial file.
    packets = file_packets(porch.path)
    crashed = store.new_clip("front_door", now - timedelta(minutes=1), "ring")
    writer = ClipWriter(crashed.partial, packets[0].stream, MaskSet(()), crashed.comment())
    for packet in packets[:15]:
        writer.write(packet)
    writer.close()
    store.close()

    real_finalize = store_module.finalize
    disk_full = [True]  # at start; retention's next run finds room

    def finalize(partial: Path, final: Path) -> Any:
        if disk_full.pop() if disk_full else False:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_finalize(partial, final)

    monkeypatch.setattr(store_module, "finalize", finalize)
    camera = {"source": f"rtsp://127.0.0.1:{free_port()}/none"}  # no camera needed
    async with running(storage, {"front_door": camera}) as (_, recorded, _store):
        # The clip topic names the newest clip as soon as it is repaired.
        await recorded.wait(ClipFinished, lambda e: e.clip.id == crashed.id, timeout=10)
    assert [e.clip.id for e in recorded.of(ClipFinished)] == [older.id, crashed.id]


async def test_the_recording_switch_is_kept_unless_the_config_changed_since(
    storage: Path,
) -> None:
    def camera(enabled: bool) -> dict[str, Any]:
        return {
            "source": f"rtsp://127.0.0.1:{free_port()}/none",  # no camera needed
            "record": {"enabled": enabled},
        }

    async def recording_after_start(enabled: bool, switch_to: bool | None = None) -> bool:
        async with running(storage, {"front_door": camera(enabled)}) as (manager, _, _store):
            on = manager.status("front_door").recording
            if switch_to is not None:
                manager.set_switch("front_door", "recording", on=switch_to)
            return on

    assert await recording_after_start(True, switch_to=False)
    assert not await recording_after_start(True, switch_to=True)  # switched off stays off
    # Turned on again, then record.enabled set to false in the config: the config wins.
    assert not await recording_after_start(False, switch_to=True)
    # Switched on since, with the config unchanged: the switch is kept.
    assert await recording_after_start(False)
    # Switched off, then record.enabled edited to false and back to true: each edit wins.
    assert await recording_after_start(True, switch_to=False)
    assert not await recording_after_start(False)
    assert await recording_after_start(True)


def test_each_camera_learns_its_own_room_problem(storage: Path) -> None:
    """Two cameras start clips at once: each is told what its own room check found."""
    config = parse_config(
        {"storage": {"path": str(storage)}, "cameras": {"a": {"source": "demo://"}}}
    )
    store = ClipStore(config.storage.path)
    store.open()
    manager = CameraManager({}, config.storage, EventBus(), store, [].append)
    answers: dict[str, str | None] = {}
    others: list[threading.Thread] = []

    class Retention:
        """The disk is almost full for the first check, fine again for the second."""

        problem: str | None = None

        def make_room(self) -> list[Any]:
            first = not others
            self.problem = "disk almost full" if first else None
            if first:
                # The second camera's check runs now, if nothing keeps it from it.
                other = threading.Thread(target=lambda: answers.update(b=manager._make_room()))
                others.append(other)
                other.start()
                other.join(0.5)
            return []

    manager.retention = Retention()  # type: ignore[assignment]
    answers["a"] = manager._make_room()
    others[0].join(5)
    store.close()
    assert answers == {"a": "disk almost full", "b": None}


async def test_forgetting_a_visit_refreshes_the_storage_figures(
    porch: Footage, storage: Path
) -> None:
    from datetime import timedelta

    store = ClipStore(storage)
    store.open()
    clip = _stored_clip(store, porch, utcnow() - timedelta(hours=1))
    store.close()
    camera = {"source": f"rtsp://127.0.0.1:{free_port()}/none"}  # no camera needed
    async with running(storage, {"front_door": camera}) as (_, recorded, store):
        await recorded.wait(StatsChanged, lambda e: e.stats["clips"] == 1, timeout=10)
        # What DELETE /api/clips/<id> does ("forget this visit").
        await asyncio.to_thread(store.erase, clip.id, "forgotten on request of a test")
        recorded.bus.publish(ClipDeleted(clip.id, "front_door", "forgotten"))
        stats = await recorded.wait(StatsChanged, lambda e: e.stats["clips"] == 0, timeout=10)
    assert stats.stats["storage_used_bytes"] == 0
