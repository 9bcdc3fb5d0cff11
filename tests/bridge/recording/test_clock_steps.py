"""Clips recorded before the system clock steps keep their real age and time.

A board without a real-time clock records at a stale clock (1970, or the time of the
last shutdown) until NTP sets it. The wall and steady clocks are injected: the test
steps the wall clock as NTP would, the machine's clock is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
import logging
from pathlib import Path
import sqlite3
import threading
import time
from typing import Any

import av
import pytest

from doorstep_bridge.camera import sources
from doorstep_bridge.camera.sources import AvSource
from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.models import ClipInfo
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording import recorder as recorder_module
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.recorder import Recorder, RecorderHooks
from doorstep_bridge.recording.retention import Retention
from doorstep_bridge.recording.settings import RecordSettings, RetentionPeriods, StorageSettings
from doorstep_bridge.recording.store import INDEX_NAME, ClipStore
from doorstep_bridge.recording.writer import ClipWriter, finalize
from doorstep_bridge.validation import Polygon
from tests.support.media import Footage, decode_all, file_packets, write_mjpeg_frames
from tests.support.servers import mjpeg_server

#: What the clock of a board without a real-time clock says after a power cut.
STALE = datetime(1970, 1, 1, 0, 2, tzinfo=UTC)
#: What NTP sets it to.
REAL = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The wall clock and a steady one nobody sets, moved by hand."""

    now: datetime = STALE
    seconds: float = 42.0

    def __call__(self) -> datetime:
        return self.now

    def steady(self) -> float:
        return self.seconds

    def advance(self, **delta: float) -> None:
        """Time passes."""
        self.now += timedelta(**delta)
        self.seconds += timedelta(**delta).total_seconds()

    def step(self, to: datetime) -> timedelta:
        """NTP sets the wall clock while no time passes; how far it moved."""
        step, self.now = to - self.now, to
        return step


@dataclass
class Harness:
    """A store and retention on the injected clocks, and a recorder feeding the store."""

    storage: Path
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.store = ClipStore(self.storage, clock=self.clock, steady=self.clock.steady)
        self.store.open()
        self.moved: list[list[str]] = []
        self.retention = Retention(
            self.store,
            StorageSettings(
                path=self.storage, retention=RetentionPeriods(ring=30, person=30, motion=7)
            ),
            now=self.clock,
            on_step=self.moved.append,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "storage")
    yield h
    h.store.close()


def _ring_clip(store: ClipStore, footage: Footage, wall: datetime) -> ClipInfo:
    """A visitor rings: the real recorder records the clip from packets captured at ``wall``."""
    packets = file_packets(footage.path, base_wall=wall.timestamp())
    clips: list[ClipInfo] = []
    now = [0.0]
    recorder = Recorder(
        "front_door",
        RecordSettings(pre_roll=1.0, post_roll=2.0),
        store,
        (),
        RecorderHooks(clips.append, lambda _jpeg: None, lambda _error: None),
        clock=lambda: now[0],
    )

    def feed(part: list[EncodedPacket]) -> None:
        for packet in part:
            now[0] = packet.wall
            recorder.feed(packet)

    feed(packets[:30])
    recorder.ring()
    feed(packets[30:90])
    recorder.flush()
    recorder.close()
    [clip] = clips
    return clip


def _clip(store: ClipStore, footage: Footage, start: datetime, reason: str) -> ClipInfo:
    """A one-second clip that started at ``start`` by the wall clock of the moment."""
    packets = file_packets(footage.path)
    pending = store.new_clip("front_door", start, reason)
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()))
    for packet in packets[:15]:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    return store.complete(pending, duration=done.duration, size=done.size)


def test_a_ring_recorded_before_ntp_set_the_clock_is_kept_and_shows_the_real_time(
    harness: Harness, footage: Footage
) -> None:
    clock = harness.clock
    clip = _ring_clip(harness.store, footage, STALE + timedelta(seconds=5))
    assert clip.reason == "ring"
    assert clip.start.year == 1970
    clock.advance(minutes=3)
    step = clock.step(REAL)

    # The first retention run after NTP set the clock: a 56-year-old visit by its stamp.
    assert harness.retention.run() == []

    kept = harness.store.get(clip.id)
    assert kept is not None
    assert kept.path.is_file()
    assert kept.start == clip.start + step
    assert kept.end == clip.end + step
    assert REAL - timedelta(minutes=4) < kept.start < REAL
    assert harness.store.list(camera="front_door")[0] == [kept]
    assert harness.moved == [[clip.id]]
    # Its period counts from the real time: kept for 30 days, then deleted.
    clock.advance(days=29)
    assert harness.retention.run() == []
    clock.advance(days=2)
    assert [c.id for c in harness.retention.run()] == [clip.id]


def test_a_clip_recorded_while_the_clock_steps_keeps_its_length(
    harness: Harness, footage: Footage
) -> None:
    packets = file_packets(footage.path, base_wall=STALE.timestamp())
    pending = harness.store.new_clip("front_door", STALE, "ring")
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()))
    for packet in packets[:15]:
        writer.write(packet)
    step = harness.clock.step(REAL)  # NTP sets the clock halfway through the clip
    harness.retention.follow_clock()
    for packet in packets[15:30]:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)

    clip = harness.store.complete(pending, duration=done.duration, size=done.size)

    assert clip.start == STALE + step
    assert clip.duration == pytest.approx(done.duration)


def test_a_clock_set_back_leaves_the_later_visit_the_newest(
    tmp_path: Path, footage: Footage
) -> None:
    clock = Clock(now=REAL + timedelta(hours=3))  # a clock found three hours ahead
    harness = Harness(tmp_path / "storage", clock)
    try:
        ahead = _clip(harness.store, footage, clock(), "ring")
        clock.advance(minutes=10)
        clock.step(REAL + timedelta(minutes=10))
        harness.retention.follow_clock()
        clock.advance(minutes=5)
        later = _clip(harness.store, footage, clock(), "ring")

        listed = [c.id for c in harness.store.list(camera="front_door")[0]]
        assert listed == [later.id, ahead.id]
        moved = harness.store.get(ahead.id)
        assert moved is not None
        assert moved.start == REAL
    finally:
        harness.store.close()


def test_a_person_seen_before_the_step_still_makes_the_clip_a_person_clip(
    harness: Harness, footage: Footage
) -> None:
    clock, store = harness.clock, harness.store
    store.person_seen("front_door", clock(), active=True)
    clip = _clip(store, footage, clock(), "motion")
    clock.advance(seconds=5)
    store.person_seen("front_door", clock(), active=False)
    clock.step(REAL)
    harness.retention.run()

    # Past motion's week, within person's 30 days: kept only if the sighting moved too.
    clock.advance(days=10)
    assert harness.retention.run() == []
    assert store.get(clip.id) is not None


def test_clips_of_an_earlier_run_are_not_moved(tmp_path: Path, footage: Footage) -> None:
    storage = tmp_path / "storage"
    earlier = ClipStore(storage)
    earlier.open()
    old = _clip(earlier, footage, REAL - timedelta(days=3), "ring")
    earlier.close()
    harness = Harness(storage)
    try:
        ours = _clip(harness.store, footage, STALE, "ring")
        step = harness.clock.step(REAL)
        harness.retention.follow_clock()

        assert harness.store.get(old.id) == old
        moved = harness.store.get(ours.id)
        assert moved is not None
        assert moved.start == STALE + step
        assert harness.moved == [[ours.id]]
    finally:
        harness.store.close()


def test_nothing_is_deleted_while_the_index_cannot_take_the_step(
    harness: Harness, footage: Footage, caplog: pytest.LogCaptureFixture
) -> None:
    # Another program holds the index (a backup reading it with a write lock, a database
    # browser): the times cannot move, and the 1970 stamp must not be taken for the age.
    clock = harness.clock
    clip = _ring_clip(harness.store, footage, STALE + timedelta(seconds=5))
    clock.advance(minutes=3)
    step = clock.step(REAL)
    other = sqlite3.connect(harness.storage / INDEX_NAME, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    harness.retention.min_free_bytes = 2**62  # and the disk is short of room
    try:
        with caplog.at_level(logging.ERROR):
            assert harness.retention.run() == []
            assert harness.retention.make_room() == []  # said once until the index takes it
        problem = harness.retention.problem
        assert problem is not None
        assert "could not follow a step of the system clock" in problem
        held = harness.store.get(clip.id)
        assert held is not None
        assert held.path.is_file()
        assert held.start == clip.start
        assert harness.moved == []
        said = [r.getMessage() for r in caplog.records if "clock step" in r.getMessage()]
        assert len(said) == 1, said
        assert "Retention deletes nothing until the clock step is followed" in said[0]
    finally:
        other.execute("ROLLBACK")
        other.close()
    harness.retention.min_free_bytes = 0

    # The index is free again: the step is followed, and the visit is kept for 30 days.
    assert harness.retention.run() == []
    kept = harness.store.get(clip.id)
    assert kept is not None
    assert kept.path.is_file()
    assert kept.start == clip.start + step
    assert harness.moved == [[clip.id]]


def test_small_differences_are_no_step(harness: Harness, footage: Footage) -> None:
    clip = _clip(harness.store, footage, harness.clock(), "ring")
    harness.clock.now += timedelta(seconds=1.5)  # the kernel slews errors this small

    harness.retention.follow_clock()

    assert harness.store.get(clip.id) == clip
    assert harness.moved == []


@pytest.mark.parametrize("step", [200.0, -3600.0], ids=["set forward", "set back"])
def test_an_mjpeg_clip_recorded_while_the_clock_steps_plays_as_it_was_filmed(
    tmp_path: Path, store: ClipStore, monkeypatch: pytest.MonkeyPatch, step: float
) -> None:
    # An HTTP MJPEG camera's frames are timed on arrival. Timed by the wall clock, NTP
    # setting it 200 s forward made this 4 s visit a 204 s clip, 200 s of it one frozen
    # picture; a clock set back made every later frame a nominal 1/25 s apart, this
    # 10 fps camera playing 2.5 times too fast.
    offset = [0.0]
    monkeypatch.setattr(
        sources, "PacketClock", partial(sources.PacketClock, now=lambda: time.time() + offset[0])
    )
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, jpeg in enumerate(write_mjpeg_frames(10, 320, 240)):
        (frames / f"{index:03d}.jpg").write_bytes(jpeg)
    clips: list[ClipInfo] = []
    now = [0.0]
    recorder = Recorder(
        "front_door",
        RecordSettings(pre_roll=0.0),
        store,
        (),
        RecorderHooks(clips.append, lambda _jpeg: None, lambda _error: None),
        clock=lambda: now[0],
    )
    arrived: list[float] = []
    stop = threading.Event()
    with mjpeg_server(frames, fps=10) as url:
        packets = AvSource(url).packets(stop)
        for packet in packets:
            arrived.append(time.monotonic())
            now[0] += 0.1
            recorder.feed(packet)
            if len(arrived) == 1:
                recorder.manual(60.0)
            elif len(arrived) == 20:
                offset[0] = step  # NTP sets the clock halfway through the visit
            elif len(arrived) == 40:
                break
        stop.set()
        packets.close()
    recorder.stream_lost()
    recorder.flush()
    recorder.close()

    [clip] = clips
    assert len(decode_all(clip.path)) == 40
    with av.open(str(clip.path)) as container:
        stream = container.streams.video[0]
        times = [float(p.pts * stream.time_base) for p in container.demux(stream) if p.size]
    # Each frame is where it arrived, a tenth of a second after the one before.
    filmed = [at - arrived[0] for at in arrived]
    shown = sorted(at - min(times) for at in times)
    assert shown == pytest.approx(filmed, abs=0.1)
    assert clip.duration == pytest.approx(filmed[-1] + 0.1, abs=0.2)


def _stepped(packets: list[EncodedPacket], at: int, step: float) -> list[EncodedPacket]:
    """The packets as captured while the wall clock steps by ``step`` before packet ``at``."""
    return packets[:at] + [replace(p, wall=p.wall + step) for p in packets[at:]]


def _record(
    store: ClipStore,
    packets: list[EncodedPacket],
    settings: RecordSettings,
    *,
    motion_at: int = 0,
    masks: tuple[Polygon, ...] = (),
) -> list[ClipInfo]:
    """The clips, in the order recorded, of a camera moving from packet ``motion_at`` to
    the end of ``packets``; the recorder's steady clock follows the stream, whatever the
    wall clock does."""
    clips: list[ClipInfo] = []
    steady = [0.0]
    recorder = Recorder(
        "front_door",
        settings,
        store,
        masks,
        RecorderHooks(clips.append, lambda _jpeg: None, lambda _error: None),
        clock=lambda: steady[0],
    )
    for index, packet in enumerate(packets):
        steady[0] = packet.seconds
        recorder.feed(packet)
        if index == motion_at:
            recorder.motion(True)
    recorder.motion(False)
    recorder.stream_lost()
    recorder.flush()
    recorder.close()
    return clips


@pytest.mark.parametrize("step", [3 * 3600.0, -3600.0], ids=["set forward", "set back"])
def test_a_long_event_is_split_at_max_length_whatever_the_clock_does(
    store: ClipStore, packets: list[EncodedPacket], step: float
) -> None:
    # Measured on capture times, a clock set back an hour 2 s into the event kept its
    # clip going for that hour past max_length; set forward, it cut the clip at once.
    clips = _record(
        store,
        _stepped(packets, 30, step),
        RecordSettings(pre_roll=0.0, post_roll=0.0, max_length=3.0),
    )
    assert [clip.duration for clip in clips] == pytest.approx([3.0, 3.0, 2.0], abs=0.1)
    assert sum(len(decode_all(clip.path)) for clip in clips) == len(packets)


def test_an_event_cut_by_a_full_disk_goes_on_after_a_clock_set_back(
    store: ClipStore, packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tried every 2 s by capture time, the new clip waited out the hour the clock went
    # back: the rest of the visit was lost.
    real_write = recorder_module.ClipWriter.write

    def full_for_two_seconds(self: Any, packet: EncodedPacket) -> None:
        if 1.5 <= packet.seconds < 3.5:
            raise StorageError("cannot write clip: No space left on device")
        real_write(self, packet)

    monkeypatch.setattr(recorder_module.ClipWriter, "write", full_for_two_seconds)
    early, resumed = _record(store, _stepped(packets, 40, -3600.0), RecordSettings(pre_roll=0.0))
    assert 0.9 <= early.duration <= 1.6
    # Tried at the keyframe at 2 s (the disk still full), then 2 s later, at 4 s.
    assert resumed.duration == pytest.approx(len(packets) / 15 - 4.0, abs=0.01)
    assert resumed.reason == "motion"


#: A privacy mask in the top left corner: the clip is re-encoded, and starts at a frame
#: rather than a keyframe.
CORNER: Polygon = ((0, 0), (200, 0), (200, 100), (0, 100))


@pytest.mark.parametrize("masked", [False, True], ids=["copied", "masked"])
@pytest.mark.parametrize(
    ("step", "motion_at"),
    [(3 * 3600.0, 44), (-3600.0, 105)],
    ids=["set forward 0.27 s before the motion", "set back 4.3 s before the motion"],
)
def test_a_clip_keeps_its_pre_roll_whatever_the_clock_does(
    store: ClipStore, packets: list[EncodedPacket], step: float, motion_at: int, masked: bool
) -> None:
    # The clock steps at 2.67 s, between two keyframes (one a second). Trimmed on capture
    # times, the pre-roll buffer kept everything after a clock set back (up to 64 MiB,
    # minutes of 1080p): this clip started 6 s before the motion. Set forward, it dropped
    # all but the newest keyframe's GOP, and a masked clip started at the step: 0.93 s
    # and 0.33 s of pre-roll instead of 1.5.
    clips = _record(
        store,
        _stepped(packets, 40, step),
        RecordSettings(pre_roll=1.5, post_roll=0.0),
        motion_at=motion_at,
        masks=(CORNER,) if masked else (),
    )
    [clip] = clips
    after = len(packets) - motion_at  # the frames from the motion on
    pre_roll = (len(decode_all(clip.path)) - after) / 15
    if masked:  # from pre_roll and a quarter second before the motion, to the frame
        assert pre_roll == pytest.approx(1.5 + 0.25, abs=1 / 15 + 0.001)
    else:  # from the keyframe at or before pre_roll before the motion
        assert 1.5 <= pre_roll < 1.5 + 1.0
