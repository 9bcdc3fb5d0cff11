"""Faults: a full disk (a real, tiny tmpfs), retention making room, kill -9 mid-clip."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.models import ClipInfo
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.recorder import Recorder, RecorderHooks
from doorstep_bridge.recording.retention import Retention
from doorstep_bridge.recording.settings import (
    RecordSettings,
    StorageSettings,
    retention_periods,
)
from doorstep_bridge.recording.store import ClipStore, PendingClip
from tests.support import disk
from tests.support.media import Footage, decodable_frames, decode_all

from ..bridge_runner import bridge_config, run_bridge
from ..conftest import Broker


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (needs root; skipped elsewhere)."""
    with disk.small_disk(tmp_path) as mount:
        yield mount


class Rig:
    def __init__(self, store: ClipStore, before_clip: Any = None) -> None:
        self.clips: list[ClipInfo] = []
        self.errors: list[str | None] = []
        self.now = 0.0
        hooks = RecorderHooks(self.clips.append, lambda _: None, self.errors.append)
        if before_clip is not None:
            hooks = RecorderHooks(
                self.clips.append, lambda _: None, self.errors.append, before_clip
            )
        self.recorder = Recorder(
            "front_door",
            RecordSettings(pre_roll=0.0, post_roll=1.0),
            store,
            (),
            hooks,
            clock=lambda: self.now,
        )

    def ring_clip(self, packets: list[EncodedPacket], shift: float) -> None:
        """Ring, then feed 2 s of packets (shifted in time so every clip is new)."""
        from dataclasses import replace

        first = True
        for packet in packets[:45]:
            moved = replace(packet, wall=packet.wall + shift)
            self.now = moved.wall
            self.recorder.feed(moved)
            if first:
                self.recorder.ring()
                first = False
        self.recorder.flush()


def test_full_disk_stops_recording_clearly_keeps_the_clip_and_resumes(
    small_disk: Path, packets: list[EncodedPacket], caplog: pytest.LogCaptureFixture
) -> None:
    store = ClipStore(small_disk / "storage")
    store.open()
    rig = Rig(store)
    filler = disk.fill(small_disk, leave=48 * 1024)
    rig.ring_clip(packets, 0.0)
    assert rig.clips == []
    assert len(rig.errors) == 1
    assert "No space left on device" in str(rig.errors[0])
    assert rig.recorder.error is not None
    assert "Recording on front_door stopped" in caplog.text
    assert store.list() == ([], 0)  # nothing broken is listed...
    [partial] = small_disk.rglob("*.partial.mp4")  # ...but what was recorded is kept

    filler.unlink()  # space returns
    rig.ring_clip(packets, 100.0)
    assert len(rig.clips) == 2
    late, new = rig.clips
    assert late.id == partial.name.split(".")[0]  # finished before the next clip
    assert late.duration > 0  # all that reached the disk before it filled up
    assert not partial.exists()
    assert rig.errors[-1] is None
    assert not rig.recorder.error
    for clip in (late, new):
        assert len(decode_all(clip.path)) == pytest.approx(clip.duration * 15, abs=1)
    rig.recorder.close()
    store.close()


def test_a_clip_that_cannot_be_finished_is_repaired_at_the_next_start(
    small_disk: Path, packets: list[EncodedPacket]
) -> None:
    store = ClipStore(small_disk / "storage")
    store.open()
    rig = Rig(store)
    filler = disk.fill(small_disk, leave=48 * 1024)
    rig.ring_clip(packets, 0.0)
    rig.recorder.close()  # shuts down with the disk still full
    store.close()
    filler.unlink()

    store = ClipStore(small_disk / "storage")
    [event] = store.open()
    assert event.action == "repaired"
    [clip] = store.list()[0]
    assert clip.duration > 0
    assert len(decode_all(clip.path)) == pytest.approx(clip.duration * 15, abs=1)
    store.close()


def test_a_crash_on_a_full_disk_keeps_the_clip_until_there_is_room(
    small_disk: Path, packets: list[EncodedPacket], caplog: pytest.LogCaptureFixture
) -> None:
    """A real full disk (tmpfs): the repair at start fails with ENOSPC, the clip is kept.

    The bridge "crashes" with a partial clip on disk (the store is closed without
    the recorder finishing anything) and starts again while the disk is still full.
    """
    store = ClipStore(small_disk / "storage")
    store.open()
    rig = Rig(store)
    filler = disk.fill(small_disk, leave=48 * 1024)
    rig.ring_clip(packets, 0.0)
    store.close()  # crash: nothing is finished
    [partial] = small_disk.rglob("*.partial.mp4")
    frames = decodable_frames(partial)
    assert frames > 0
    filler.unlink()
    filler = disk.fill(small_disk, leave=16 * 1024)  # room for the index, not for a remux

    store = ClipStore(small_disk / "storage")
    assert store.open() == []
    assert partial.is_file()  # kept: the disk is at fault, not the file
    assert decodable_frames(partial) == frames
    assert store.list() == ([], 0)
    assert store.status(partial.name.split(".")[0]) == "recording"
    assert "cannot be repaired now" in caplog.text
    assert "No space left on device" in caplog.text
    assert store.retry_repairs() == []  # still no room: still kept
    assert partial.is_file()

    filler.unlink()  # space returns: the next retention run repairs the clip
    Retention(store, StorageSettings(path=store.root)).run()
    [clip] = store.list()[0]
    assert store.status(clip.id) == "repaired"
    assert len(decode_all(clip.path)) == frames
    assert not partial.exists()
    assert store.retry_repairs() == []
    store.close()
    store = ClipStore(small_disk / "storage")
    store.open()
    assert store.list()[0] == [clip]  # the next start keeps it as it is
    store.close()


def _recorded(store: ClipStore, packets: list[EncodedPacket], start: datetime) -> PendingClip:
    """A finished motion clip; its file says ``motion``, as the recorder writes it."""
    from doorstep_bridge.recording.masks import MaskSet
    from doorstep_bridge.recording.writer import ClipWriter, finalize

    pending = store.new_clip("front_door", start, "motion")
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()), pending.comment())
    for packet in packets[:15]:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    store.complete(pending, duration=done.duration, size=done.size)
    return pending


def test_a_start_on_a_full_disk_keeps_the_index_and_what_only_it_knows(
    small_disk: Path, packets: list[EncodedPacket], caplog: pytest.LogCaptureFixture
) -> None:
    """A clean stop, then a start with the disk full: the index is not taken for corrupt.

    The first open after a clean stop makes SQLite's shared-memory file, which a full
    disk has no room for ("disk I/O error"). Taken for a corrupt index, it was set
    aside and rebuilt from the files: a visit came back a motion clip (deleted after
    7 days instead of 30), and sightings and the erasure history were gone.
    """
    storage = small_disk / "storage"
    day = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    store = ClipStore(storage)
    store.open()
    visit = _recorded(store, packets, day)
    store.set_reason(visit.id, "ring")  # a press during the motion clip: only the index knows
    passer = _recorded(store, packets, day + timedelta(hours=1))
    store.person_seen("front_door", passer.start, active=True)
    store.person_seen("front_door", passer.start + timedelta(seconds=1), active=False)
    forgotten = _recorded(store, packets, day + timedelta(hours=2))
    store.erase(forgotten.id, "forgotten on request of Alice")
    store.close()
    assert not (storage / "clips.db-wal").exists()  # a clean stop
    filler = disk.fill(small_disk, leave=0)

    store = ClipStore(storage)
    started = store.open()  # the bridge starts, with the index it had: nothing adopted
    assert {e.action for e in started} <= {"erased"}  # (the erasure a moment ago)
    assert "the disk is full or failing" in caplog.text
    assert "unreadable" not in caplog.text
    assert not list(storage.glob("clips.db.corrupt-*"))
    assert [(c.id, c.reason) for c in store.list()[0]] == [
        (passer.id, "motion"),
        (visit.id, "ring"),
    ]
    with pytest.raises(StorageError, match="disk is full"):  # like any write on a full disk
        store.new_clip("front_door", day + timedelta(hours=3), "motion")

    filler.unlink()  # space returns: the index takes writes again
    late = store.new_clip("front_door", day + timedelta(hours=3), "motion")
    store.discard(late, "a test clip")
    # Ten days on, the visit and the person clip are kept (30 days), as before the restart.
    ten_days_on = Retention(
        store, StorageSettings(path=storage), now=lambda: day + timedelta(days=10)
    )
    assert ten_days_on.run() == []
    store.close()

    store = ClipStore(storage)
    assert {e.action for e in store.open()} <= {"erased", "discarded"}
    try:
        kept = store.get(visit.id)
        assert kept is not None
        assert kept.reason == "ring"
        assert [c.id for c in store.deletable(reason="person")] == [passer.id]
        assert [(e.clip_id, e.action) for e in store.events()] == [
            (forgotten.id, "erased"),
            (late.id, "discarded"),
        ]
        assert not list(storage.glob("clips.db.corrupt-*"))
    finally:
        store.close()


def test_a_start_on_a_full_disk_after_a_kill_opens_and_tidies_up_later(
    small_disk: Path, packets: list[EncodedPacket], caplog: pytest.LogCaptureFixture
) -> None:
    """Killed while someone was in view, restarted with the disk full: the start's own
    writes (closing that sighting) cannot be made, and they stopped the start."""
    storage = small_disk / "storage"
    day = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    store = ClipStore(storage)
    store.open()
    visit = _recorded(store, packets, day)
    store.person_seen("front_door", visit.start, active=True)
    store.close()  # killed: the sighting is still open
    filler = disk.fill(small_disk, leave=0)

    store = ClipStore(storage)
    store.open()  # raised sqlite3.OperationalError ("database or disk is full")
    try:
        assert "the next start with free space does it" in caplog.text
        assert [c.id for c in store.list()[0]] == [visit.id]
    finally:
        store.close()

    filler.unlink()
    store = ClipStore(storage)
    store.open()
    try:  # the sighting is closed now: a later motion clip is not taken for a person's
        later = store.get(_recorded(store, packets, day + timedelta(days=1)).id)
        assert later is not None
        assert later.reason == "motion"
    finally:
        store.close()


def test_an_index_a_full_disk_cannot_open_at_all_stops_the_start_saying_so(
    small_disk: Path,
) -> None:
    storage = small_disk / "storage"
    storage.mkdir()
    disk.fill(small_disk, leave=0)  # not even room for a new index's first page
    with pytest.raises(StorageError, match="disk is full; it is kept as it is"):
        ClipStore(storage).open()
    assert [p.name for p in storage.iterdir() if "corrupt" in p.name] == []


async def test_the_bridge_starts_on_a_full_disk_with_the_clips_it_had(
    small_disk: Path, mqtt_broker: Broker, packets: list[EncodedPacket]
) -> None:
    """Both of the bridge's SQLite files need room to open after a clean stop."""
    config = bridge_config(mqtt_broker, small_disk / "bridge")
    async with run_bridge(config) as bridge:  # a first run makes every file it keeps
        await bridge.wait_mqtt()
    store = ClipStore(config.storage.path)
    store.open()
    visit = _recorded(store, packets, datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    store.set_reason(visit.id, "ring")
    store.close()
    disk.fill(small_disk, leave=0)

    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        async with bridge.session.get(f"{bridge.url}/api/clips", headers=bridge.auth) as response:
            assert response.status == 200
            clips = (await response.json())["clips"]
    assert [(clip["id"], clip["reason"]) for clip in clips] == [(visit.id, "ring")]
    assert not list(config.storage.path.rglob("*.corrupt-*"))


def test_finishing_a_clip_on_a_full_disk_makes_room_and_retries(
    small_disk: Path, packets: list[EncodedPacket]
) -> None:
    store = ClipStore(small_disk / "storage")
    store.open()
    retention = Retention(store, StorageSettings(path=store.root), min_free_bytes=64 * 1024)
    rig = Rig(store, before_clip=retention.make_room)
    for index in range(3):  # old clips retention may delete
        rig.ring_clip(packets, index * 100.0)
    assert len(rig.clips) == 3
    # Another program fills the disk while a clip is being recorded.
    for packet in packets[:20]:  # the first second is flushed to the partial file
        moved = replace(packet, wall=packet.wall + 1000.0)
        rig.now = moved.wall
        rig.recorder.feed(moved)
        if packet is packets[0]:
            rig.recorder.manual(3.0)
    rig.recorder.flush()
    disk.fill(small_disk, leave=16 * 1024)  # room for the index, not for the clip
    rig.now += 5.0
    rig.recorder.tick()  # the 3 s ran out: the clip is finished
    rig.recorder.flush()
    assert rig.errors == []
    assert len(rig.clips) == 4
    assert decode_all(rig.clips[-1].path)
    deleted = {e.clip_id for e in store.events() if e.action == "deleted"}
    assert deleted
    assert deleted <= {c.id for c in rig.clips[:3]}
    rig.recorder.close()
    store.close()


def test_retention_frees_space_before_a_clip_so_recording_goes_on(
    small_disk: Path, packets: list[EncodedPacket]
) -> None:
    store = ClipStore(small_disk / "storage")
    store.open()
    retention = Retention(store, StorageSettings(path=store.root), min_free_bytes=900 * 1024)
    deleted: list[ClipInfo] = []
    rig = Rig(store, before_clip=lambda: deleted.extend(retention.make_room()))
    disk.fill(small_disk, leave=1200 * 1024)
    for index in range(14):  # 14 clips of ~80 kB: more than the 300 kB above the reserve
        rig.ring_clip(packets, index * 100.0)
    assert rig.errors == []
    assert len(rig.clips) == 14
    assert deleted
    oldest_first = sorted(rig.clips, key=lambda c: c.start)
    assert [c.id for c in deleted] == [c.id for c in oldest_first[: len(deleted)]]
    kept = store.list(limit=100)[0]
    assert {c.id for c in kept} == {c.id for c in rig.clips} - {c.id for c in deleted}
    assert {e.clip_id for e in store.events() if e.action == "deleted"} == {c.id for c in deleted}
    rig.recorder.close()
    store.close()


KILLER = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
from tests.support.media import file_packets
from doorstep_bridge.recording.recorder import Recorder, RecorderHooks
from doorstep_bridge.recording.settings import RecordSettings
from doorstep_bridge.recording.store import ClipStore
store = ClipStore(__import__("pathlib").Path({storage!r}))
store.open()
clock = [0.0]
recorder = Recorder("front_door", RecordSettings(pre_roll=0.0, post_roll=30.0), store, (),
                    RecorderHooks(lambda c: print("clip", c.id, flush=True), lambda j: None,
                                  lambda e: None), clock=lambda: clock[0])
packets = file_packets({footage!r})
for index, packet in enumerate(packets):
    clock[0] = packet.wall
    recorder.feed(packet)
    if index == 5:
        recorder.manual(60)
    if index == {kill_at}:
        recorder.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("kill_at", [10, 70])
def test_kill_9_during_a_clip_leaves_no_broken_clip(
    tmp_path: Path, footage: Footage, kill_at: int
) -> None:
    storage = tmp_path / "storage"
    script = KILLER.format(
        root=str(Path.cwd()), storage=str(storage), footage=str(footage.path), kill_at=kill_at
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, env=os.environ)
    assert result.returncode == -9

    store = ClipStore(storage)
    events = store.open()
    assert len(events) == 1
    clip_id = events[0].clip_id
    if kill_at == 10:
        # Not even one fragment was complete: nothing playable, removed, and logged.
        assert events[0].action == "removed"
        assert store.list() == ([], 0)
    else:
        assert events[0].action == "repaired"
        assert store.status(clip_id) == "repaired"
    for clip in store.list()[0]:
        frames = decode_all(clip.path)
        assert len(frames) == pytest.approx(clip.duration * 15, abs=1)
    assert not list(storage.rglob("*.partial.mp4"))
    store.close()


def _clip(store: ClipStore, packets: list[EncodedPacket], start: Any) -> ClipInfo:
    from doorstep_bridge.recording.masks import MaskSet
    from doorstep_bridge.recording.writer import ClipWriter, finalize

    pending = store.new_clip("front_door", start, "motion")
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()))
    for packet in packets[:15]:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    return store.complete(pending, duration=done.duration, size=done.size)


def test_retention_by_age_and_size_never_touches_held_clips(
    storage: Path, packets: list[EncodedPacket]
) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    store = ClipStore(storage)
    store.open()
    old = [_clip(store, packets, now - timedelta(days=20, minutes=i)) for i in range(3)]
    recent = [_clip(store, packets, now - timedelta(hours=i + 1)) for i in range(3)]
    store.hold("s_1", [old[0].id])
    audited: list[tuple[str, str]] = []
    fortnight = retention_periods(14.0, {})
    retention = Retention(
        store,
        StorageSettings(path=storage, retention=fortnight),
        now=lambda: now,
        on_delete=lambda clip, why: audited.append((clip.id, why)),
    )
    deleted = retention.run()
    assert {c.id for c in deleted} == {old[1].id, old[2].id}
    assert sorted(audited) == sorted((c.id, "motion clip older than 14 days") for c in deleted)
    assert store.get(old[0].id) is not None  # held by an active share
    assert not old[1].path.exists()

    size = recent[0].size
    capped = Retention(
        store,
        StorageSettings(path=storage, retention=fortnight, max_size_gb=(size * 2.5) / 1024**3),
        now=lambda: now,
    )
    deleted = capped.run()
    # Oldest unheld first, until the clips no share holds fit: the held clip stays although
    # it is oldest, and does not count (counted, it cost recent[1] too).
    assert [c.id for c in deleted] == [recent[2].id]
    assert {c.id for c in store.list()[0]} == {old[0].id, recent[0].id, recent[1].id}
    store.release("s_1")
    assert [c.id for c in retention.run()] == [old[0].id]
    store.close()


def test_a_disk_filled_by_something_else_does_not_cost_the_clip_history(
    storage: Path, packets: list[EncodedPacket], caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    store = ClipStore(storage)
    store.open()
    old = [_clip(store, packets, now - timedelta(days=2, minutes=i)) for i in range(3)]
    young = [_clip(store, packets, now - timedelta(minutes=10 + i)) for i in range(3)]
    size = old[0].size
    free = [0]
    retention = Retention(
        store,
        StorageSettings(path=storage),
        min_free_bytes=10 * size,
        free_bytes=lambda: free[0],
        now=lambda: now,
    )
    # Another program filled the disk: all old clips together cannot free 10 clips' worth.
    free[0] = 0
    assert retention.make_room() == []
    assert retention.problem is not None
    assert "nothing was deleted" in retention.problem
    assert "Retention: disk almost full" in caplog.text
    assert len(store.list(limit=100)[0]) == 6
    # Young clips never go for space, although with them the shortfall would be covered.
    free[0] = 10 * size - 5 * size
    assert retention.make_room() == []
    assert retention.problem is not None
    assert all(store.get(c.id) for c in young)
    # The old clips cover the shortfall: just enough of them go, oldest first.
    free[0] = 10 * size - 2 * size + 1
    deleted = retention.make_room()
    assert not retention.problem
    assert [c.id for c in deleted] == [old[2].id, old[1].id]
    assert {c.id for c in store.list(limit=100)[0]} == {old[0].id} | {c.id for c in young}
    store.close()


def test_the_recorder_reports_a_disk_it_cannot_make_room_on_and_still_records(
    storage: Path, packets: list[EncodedPacket]
) -> None:
    store = ClipStore(storage)
    store.open()
    retention = Retention(
        store, StorageSettings(path=storage), min_free_bytes=1 << 30, free_bytes=lambda: 0
    )

    def before_clip() -> str | None:
        retention.make_room()
        return retention.problem

    rig = Rig(store, before_clip=before_clip)
    rig.ring_clip(packets, 0.0)
    assert len(rig.clips) == 1  # recorded while the disk still takes it
    assert rig.recorder.error is not None
    assert "disk almost full" in rig.recorder.error
    assert rig.errors == [rig.recorder.error]  # reported once
    rig.ring_clip(packets, 100.0)
    assert len(rig.clips) == 2
    assert len(rig.errors) == 1
    rig.recorder.close()
    store.close()


def test_a_disk_that_stays_full_is_reported_once_not_at_every_attempt(
    small_disk: Path, packets: list[EncodedPacket], caplog: pytest.LogCaptureFixture
) -> None:
    # Each attempt while the disk is full used to report "at risk" (retention cannot make
    # room) and then "stopped" (the clip fails) again: three errors in the log every 2 s,
    # and a problem in Home Assistant that changed at every attempt.
    store = ClipStore(small_disk / "storage")
    store.open()
    free = [10 * 1024 * 1024]  # what the retention stand-in sees as free: less and less
    retention = Retention(
        store,
        StorageSettings(path=small_disk),
        min_free_bytes=256 * 1024 * 1024,
        free_bytes=lambda: free[0],
    )

    def before_clip() -> str | None:
        free[0] -= 1024 * 1024
        retention.make_room()
        return retention.problem

    rig = Rig(store, before_clip=before_clip)
    filler = disk.fill(small_disk, leave=0)
    for attempt in range(4):
        rig.ring_clip(packets, attempt * 100.0)
    assert rig.clips == []
    [at_risk, stopped] = rig.errors  # once each, whatever the attempts said after
    assert str(at_risk).startswith("disk almost full")
    assert "No space left on device" in str(stopped) or "disk is full" in str(stopped)
    assert rig.recorder.error == stopped
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len([m for m in said if m.startswith("Retention: disk almost full")]) == 1
    assert len([m for m in said if m.startswith("Recording on front_door")]) == 2

    filler.unlink()
    free[0] = 1 << 40  # room again
    rig.ring_clip(packets, 1000.0)
    assert rig.errors[-1] is None
    assert rig.recorder.error is None
    rig.recorder.close()
    store.close()
