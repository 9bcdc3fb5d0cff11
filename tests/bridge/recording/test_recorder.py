"""The recorder turns triggers into clips: pre-roll, post-roll, splits, rings, failures."""

from __future__ import annotations

from dataclasses import replace
import logging
from pathlib import Path
from typing import Any

import av
import pytest

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.models import ClipInfo
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording import recorder as recorder_module
from doorstep_bridge.recording.recorder import Recorder, RecorderHooks
from doorstep_bridge.recording.settings import RecordSettings
from doorstep_bridge.recording.store import ClipStore
from tests.support.media import Footage, decode_all, file_packets, write_h264


class Harness:
    """A recorder fed from the fixture, its clock following the packets' capture times."""

    def __init__(self, store: ClipStore, settings: RecordSettings, masks: tuple = ()) -> None:
        self.now = 0.0
        self.clips: list[ClipInfo] = []
        self.snapshots: list[bytes] = []
        self.errors: list[str | None] = []
        self.recorder = Recorder(
            "front_door",
            settings,
            store,
            masks,
            RecorderHooks(self.clips.append, self.snapshots.append, self.errors.append),
            clock=lambda: self.now,
        )

    def feed(self, packets: list[EncodedPacket]) -> None:
        for packet in packets:
            self.now = packet.wall
            self.recorder.feed(packet)

    def done(self) -> list[ClipInfo]:
        self.recorder.flush()
        return self.clips


@pytest.fixture
def frames(footage: Footage) -> list[Any]:
    with av.open(str(footage.path)) as container:
        return list(container.decode(video=0))


def test_motion_clip_has_pre_roll_and_post_roll(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=2.0, post_roll=1.0))
    h.feed(packets[:45])  # 0..3 s
    h.recorder.motion(True)  # motion at t=3 (packets[44].wall = base + 2.93)
    h.feed(packets[45:75])  # until 5 s
    h.recorder.motion(False)
    assert h.recorder.recording
    h.feed(packets[75:120])
    assert not h.recorder.recording
    [clip] = h.done()
    base = packets[0].wall
    motion_at = packets[44].wall
    assert clip.reason == "motion"
    # Starts on the keyframe at or before motion - pre_roll (keyframes each second).
    assert clip.start.timestamp() == pytest.approx(base + 0.0, abs=0.01)
    assert clip.start.timestamp() <= motion_at - 2.0
    # Ends one post-roll after motion stopped (the packet at 5 s + 1 s).
    assert clip.end.timestamp() == pytest.approx(packets[74].wall + 1.0, abs=0.15)
    frames = decode_all(clip.path)
    assert len(frames) == round(clip.duration * 15)


def test_ring_records_around_the_press_and_snapshots_it(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=2.0))
    h.feed(packets[:40])
    h.recorder.ring()
    assert h.recorder.wants_frame()
    h.recorder.offer_frame(frames[40], 0.0)  # the press
    h.feed(packets[40:60])
    h.recorder.offer_frame(frames[60], 0.9)  # more motion later does not replace the press
    h.feed(packets[60:90])
    [clip] = h.done()
    assert clip.reason == "ring"
    assert clip.start.timestamp() <= packets[39].wall - 1.0
    assert clip.end.timestamp() >= packets[39].wall + 2.0 - 0.1
    assert clip.snapshot_path is not None
    assert clip.snapshot_path.read_bytes()[:2] == b"\xff\xd8"
    assert clip.thumbnail_path is not None
    assert clip.thumbnail_path.stat().st_size < clip.snapshot_path.stat().st_size
    # One snapshot published at the press, the same frame again with the clip.
    assert len(h.snapshots) == 2
    assert h.snapshots[1] == clip.snapshot_path.read_bytes()


def test_each_snapshot_names_the_clip_it_shows(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=2.0))
    shown: list[tuple[bytes, str | None]] = []
    h.recorder._hooks = replace(
        h.recorder._hooks,
        on_clip_snapshot=lambda jpeg, clip_id: shown.append((jpeg, clip_id)),
    )
    h.feed(packets[:40])
    h.recorder.ring()
    h.recorder.offer_frame(frames[40], 0.0)  # the press, while its clip is recorded
    h.feed(packets[40:90])
    [clip] = h.done()
    # The press and the clip's own picture, both of this clip; on_snapshot is not used.
    assert [clip_id for _jpeg, clip_id in shown] == [clip.id, clip.id]
    assert clip.snapshot_path is not None
    assert shown[1][0] == clip.snapshot_path.read_bytes()
    assert h.snapshots == []


def test_a_picture_asked_for_is_the_next_frame_once_and_records_nothing(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=2.0))
    h.feed(packets[:40])
    assert not h.recorder.wants_frame()
    h.recorder.picture()  # a parcel came or went
    assert h.recorder.wants_frame()
    h.recorder.offer_frame(frames[40], 0.0)
    assert not h.recorder.wants_frame()
    h.recorder.offer_frame(frames[41], 0.0)  # not asked for
    h.feed(packets[40:90])
    assert h.done() == []  # a picture is not a clip
    (jpeg,) = h.snapshots
    assert jpeg[:2] == b"\xff\xd8"


def test_a_picture_asked_for_at_a_press_is_the_press_snapshot(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=2.0))
    h.feed(packets[:40])
    h.recorder.picture()
    h.recorder.ring()
    h.recorder.offer_frame(frames[40], 0.0)  # one snapshot for both
    h.recorder.offer_frame(frames[41], 0.0)
    h.feed(packets[40:90])
    [clip] = h.done()
    # The press, then the clip's own picture (the same frame): no third one.
    assert len(h.snapshots) == 2
    assert h.snapshots[1] == clip.snapshot_path.read_bytes()  # type: ignore[union-attr]


def test_ring_during_motion_extends_the_clip_and_marks_it(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.feed(packets[30:45])
    h.recorder.motion(False)
    h.feed(packets[45:46])
    h.recorder.ring()
    h.feed(packets[46:75])
    [clip] = h.done()
    assert clip.reason == "ring"
    assert clip.end.timestamp() >= packets[45].wall + 0.5 - 0.1


@pytest.mark.parametrize(("who", "reason"), [("ring", "ring"), ("person", "person")])
def test_a_motion_clip_keeps_its_new_reason_through_a_crash(
    storage: Path, packets: list[EncodedPacket], who: str, reason: str
) -> None:
    store = ClipStore(storage)
    store.open()
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.feed(packets[30:45])
    if who == "ring":
        h.recorder.ring()  # someone presses the doorbell during a motion clip...
    else:
        h.recorder.person(True)
    h.feed(packets[45:75])
    h.recorder.flush()
    store.close()  # ...and the bridge is killed before the clip ends

    store = ClipStore(storage)
    store.open()  # the start-up repair finishes the cut-off clip
    [clip] = store.list()[0]
    assert clip.reason == reason
    assert store.list(reason=reason)[1] == 1
    store.close()


def test_a_press_during_a_motion_clip_cut_by_a_full_disk_keeps_every_part_a_ring(
    store: ClipStore, packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=0.5))
    real_write = recorder_module.ClipWriter.write
    full = False

    def write(self: Any, packet: EncodedPacket) -> None:
        if full:
            raise StorageError("cannot write clip: No space left on device")
        real_write(self, packet)

    monkeypatch.setattr(recorder_module.ClipWriter, "write", write)
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.feed(packets[30:45])
    h.recorder.ring()
    h.feed(packets[45:50])
    h.recorder.flush()
    full = True  # the disk fills up after the press: the clip stops early
    h.feed(packets[50:60])
    h.recorder.flush()
    full = False
    h.recorder.motion(False)
    h.feed(packets[60:80])  # the event goes on in a new clip
    h.recorder.manual(1.0)  # the next clip finishes the one the full disk cut
    h.feed(packets[80:110])
    clips = sorted(h.done(), key=lambda c: c.start)
    assert [clip.reason for clip in clips] == ["ring", "ring", "manual"]
    assert [clip.reason for clip in store.list(reason="ring")[0]] == ["ring", "ring"]


@pytest.mark.parametrize("finished_first", [False, True], ids=["still-cut", "finished-late"])
def test_a_press_after_a_full_disk_cut_the_clip_makes_the_whole_visit_a_ring(
    store: ClipStore,
    packets: list[EncodedPacket],
    monkeypatch: pytest.MonkeyPatch,
    finished_first: bool,
) -> None:
    # The disk fills during a motion clip, before anyone presses: the part kept before
    # the failure was finished later as `motion` (kept 7 days), the rest as `ring`.
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=0.5))
    real_write = recorder_module.ClipWriter.write
    real_finalize = recorder_module.finalize
    full = False
    finishing_fails = not finished_first

    def write(self: Any, packet: EncodedPacket) -> None:
        if full:
            raise StorageError("cannot write clip: No space left on device")
        real_write(self, packet)

    def finalize(partial: Any, final: Any) -> Any:
        if finishing_fails:  # only the cut part is finished meanwhile
            raise StorageError("cannot finish clip: No space left on device")
        return real_finalize(partial, final)

    monkeypatch.setattr(recorder_module.ClipWriter, "write", write)
    monkeypatch.setattr(recorder_module, "finalize", finalize)
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.feed(packets[30:45])
    h.recorder.flush()
    full = True  # the disk fills up: the motion clip stops early
    h.feed(packets[45:55])
    h.recorder.flush()
    full = False
    h.feed(packets[55:75])  # the visit goes on in a new clip
    h.recorder.ring()  # then the visitor presses
    h.feed(packets[75:80])
    h.recorder.motion(False)
    h.recorder.flush()
    finishing_fails = False
    h.feed(packets[80:100])
    h.recorder.manual(1.0)  # the next clip finishes the part the full disk cut, if not yet
    h.feed(packets[100:130])
    clips = sorted(h.done(), key=lambda c: c.start)
    assert [clip.reason for clip in clips][1:] == ["ring", "manual"]
    if not finished_first:  # announced once finished, as a ring
        assert clips[0].reason == "ring"
    # What retention and the clip lists go by: both parts of the visit are a ring.
    listed = sorted(store.list(reason="ring")[0], key=lambda c: c.start)
    assert [clip.id for clip in listed] == [clip.id for clip in clips[:2]]


def test_an_index_that_cannot_take_a_new_reason_does_not_cut_the_clip(
    store: ClipStore,
    packets: list[EncodedPacket],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def locked(*_args: Any) -> None:
        raise StorageError("cannot index clip: database is locked")

    monkeypatch.setattr(store, "set_reason", locked)
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.feed(packets[30:45])
    h.recorder.ring()
    h.feed(packets[45:60])
    h.recorder.motion(False)
    h.feed(packets[60:90])
    [clip] = h.done()
    assert clip.reason == "ring"  # set when the clip is finished
    assert clip.end.timestamp() >= packets[59].wall + 0.5 - 0.1
    assert h.errors == []
    assert "cannot record its reason ring" in caplog.text


def test_a_motion_clip_with_someone_in_view_is_a_person_clip(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.motion(True)  # a cat
    h.feed(packets[30:40])
    h.recorder.motion(False)
    h.feed(packets[40:60])
    h.recorder.motion(True)  # someone, recognised a moment after motion started
    h.feed(packets[60:65])
    h.recorder.person(True)
    h.feed(packets[65:75])
    h.recorder.motion(False)
    h.recorder.person(False)
    h.feed(packets[75:100])
    h.recorder.person(True)  # in view as motion starts: a person clip from the start
    h.recorder.motion(True)
    h.feed(packets[100:110])
    h.recorder.motion(False)
    h.feed(packets[110:140])
    assert [clip.reason for clip in h.done()] == ["motion", "person", "person"]


def test_a_person_does_not_rename_a_ring_or_manual_clip_nor_start_one(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.person(True)
    h.feed(packets[30:40])
    assert not h.recorder.recording  # a person alone records nothing
    h.recorder.ring()
    h.recorder.motion(True)
    h.feed(packets[40:50])
    h.recorder.motion(False)
    h.feed(packets[50:90])
    h.recorder.person(False)
    h.recorder.manual(1.0)
    h.recorder.person(True)
    h.feed(packets[90:120])
    assert [clip.reason for clip in h.done()] == ["ring", "manual"]


def test_recording_only_for_people(store: ClipStore, packets: list[EncodedPacket]) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=0.5, motion="people"))
    h.feed(packets[:15])
    h.recorder.motion(True)  # a cat: nothing is recorded
    h.feed(packets[15:25])
    assert not h.recorder.recording
    h.recorder.motion(False)
    h.feed(packets[25:35])
    h.recorder.motion(True)  # someone, recognised a moment after motion started
    h.feed(packets[35:40])
    assert not h.recorder.recording
    h.recorder.person(True)
    assert h.recorder.recording
    seen_at = packets[39].wall
    h.feed(packets[40:50])
    h.recorder.person(False)  # out of the detector's sight, still moving: the clip goes on
    h.feed(packets[50:55])
    assert h.recorder.recording
    h.recorder.motion(False)
    h.feed(packets[55:70])
    assert not h.recorder.recording
    h.recorder.person(True)  # in view as motion starts
    h.recorder.motion(True)
    assert h.recorder.recording
    h.recorder.motion(False)
    h.feed(packets[70:85])
    h.recorder.ring()  # a ring records whoever is there
    h.feed(packets[85:120])
    clips = h.done()
    assert [clip.reason for clip in clips] == ["person", "person", "ring"]
    # The first clip keeps its pre-roll: the visitor's approach before they were seen.
    assert clips[0].start.timestamp() <= seen_at - 1.0
    assert clips[0].end.timestamp() == pytest.approx(packets[54].wall + 0.5, abs=0.15)


def test_long_events_are_split_at_keyframes(store: ClipStore, packets: list[EncodedPacket]) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.0, max_length=5.0))
    h.feed(packets[:1])
    h.recorder.motion(True)
    h.feed(packets[1:])  # 8 s of continuous motion
    h.recorder.motion(False)
    h.recorder.tick()
    clips = h.done()
    assert len(clips) == 2
    first, second = sorted(clips, key=lambda c: c.start)
    assert first.duration == pytest.approx(5.0, abs=0.1)
    assert second.start == first.end
    assert decode_all(second.path)  # starts on a keyframe: decodable from frame 0


def test_no_clip_runs_past_max_length_by_its_pre_roll(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=2.0, post_roll=0.0, max_length=3.0))
    h.feed(packets[:45])
    h.recorder.motion(True)  # at 2.9 s: the clip starts with the keyframe at 0 s
    h.feed(packets[45:])  # motion until the end, at 8 s
    h.recorder.motion(False)
    h.recorder.tick()
    clips = sorted(h.done(), key=lambda clip: clip.start)
    # Split at the first keyframe 3 s after the clip's first frame, not after the motion.
    assert [clip.duration for clip in clips] == pytest.approx([3.0, 3.0, 2.0], abs=0.1)
    assert clips[0].start.timestamp() == pytest.approx(packets[0].wall, abs=0.01)
    assert [clips[1].start, clips[2].start] == [clips[0].end, clips[1].end]


def test_a_clip_is_split_where_the_camera_changes_its_picture_size(
    store: ClipStore, tmp_path: Path
) -> None:
    # The owner changes the camera's resolution during a visit: a file holds one size, so
    # the visit goes on in a new clip from the first keyframe of the new size.
    small = file_packets(
        write_h264(tmp_path / "small.mp4", width=320, height=180, seconds=3, gop=15).path
    )
    step = small[1].pts - small[0].pts
    large = [
        replace(
            packet, pts=packet.pts + small[-1].pts + step, dts=packet.dts + small[-1].pts + step
        )
        for packet in file_packets(
            write_h264(tmp_path / "large.mp4", width=640, height=360, seconds=3, gop=15).path,
            base_wall=small[-1].wall + step * float(small[0].stream.time_base),
        )
    ]
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.0, max_length=60.0))
    h.feed(small[:1])
    h.recorder.motion(True)
    h.feed(small[1:] + large)
    h.recorder.motion(False)
    h.recorder.tick()
    first, second = sorted(h.done(), key=lambda c: c.start)
    assert second.start == first.end
    for clip, size, seconds in ((first, (320, 180), 3.0), (second, (640, 360), 3.0)):
        with av.open(str(clip.path)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == size
        frames = decode_all(clip.path)
        assert {frame.shape[::-1] for frame in frames} == {size}
        assert len(frames) == pytest.approx(seconds * 15, abs=2)


def test_manual_recording_and_the_recording_switch(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0))
    h.recorder.set_enabled(False)
    h.feed(packets[:15])
    h.recorder.manual(2.0)
    assert not h.recorder.recording
    h.recorder.set_enabled(True)
    h.recorder.manual(2.0)
    h.feed(packets[15:75])
    [clip] = h.done()
    assert clip.reason == "manual"
    assert clip.duration == pytest.approx(2.0 + 1.0, abs=1.1)  # from the GOP start


def test_record_now_longer_than_max_length_is_recorded_whole_in_several_clips(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.0, max_length=5.0))
    h.feed(packets[:15])
    asked_at = h.now
    h.recorder.manual(6.0)
    h.feed(packets[15:])
    clips = sorted(h.done(), key=lambda c: c.start)
    assert [clip.reason for clip in clips] == ["manual", "manual"]
    assert clips[1].start == clips[0].end
    assert clips[-1].end.timestamp() == pytest.approx(asked_at + 6.0, abs=0.1)


def test_recording_switched_on_during_motion_records_it(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=1.0))
    h.recorder.set_enabled(False)
    h.feed(packets[:30])
    h.recorder.motion(True)  # someone at the door, recording off
    h.feed(packets[30:45])
    h.recorder.set_enabled(True)
    assert h.recorder.recording
    h.feed(packets[45:75])
    h.recorder.motion(False)
    h.feed(packets[75:])
    [clip] = h.done()
    assert clip.reason == "motion"
    assert clip.start.timestamp() <= packets[44].wall - 1.0


def test_camera_drop_closes_the_clip(store: ClipStore, packets: list[EncodedPacket]) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=10.0))
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.feed(packets[30:50])
    h.recorder.stream_lost()
    [clip] = h.done()
    assert not h.recorder.recording
    assert clip.end.timestamp() == pytest.approx(packets[49].wall + 1 / 15, abs=0.01)
    assert len(decode_all(clip.path)) == 50  # pre-roll from the keyframe at 0 s


def test_a_press_while_the_camera_reconnects_is_recorded_once_it_is_back(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=5.0))
    h.feed(packets[:30])
    h.recorder.stream_lost()
    h.now = packets[35].wall  # the bell rings while the camera is away
    h.recorder.ring()
    h.recorder.manual(1.0)  # and someone asks to record: one clip holds both
    h.feed(packets[45:])  # back 0.7 s later, at the keyframe at 3 s
    [clip] = h.done()
    assert clip.reason == "ring"
    assert clip.start.timestamp() == pytest.approx(packets[45].wall, abs=0.01)
    assert clip.end.timestamp() >= packets[35].wall + 5.0 - 0.1
    assert len(decode_all(clip.path)) == round(clip.duration * 15)  # each frame once


def test_motion_still_on_when_the_main_stream_is_back_is_recorded(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=1.0))
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.feed(packets[30:40])
    h.recorder.stream_lost()  # the main stream drops; the detect stream still sees motion
    h.feed(packets[45:75])  # back at the keyframe at 3 s
    h.recorder.motion(False)
    h.feed(packets[75:])
    first, second = sorted(h.done(), key=lambda clip: clip.start)
    assert first.end.timestamp() == pytest.approx(packets[39].wall + 1 / 15, abs=0.01)
    assert second.reason == "motion"
    assert second.start.timestamp() == pytest.approx(packets[45].wall, abs=0.01)
    assert second.end.timestamp() >= packets[74].wall + 1.0 - 0.1


def test_a_press_is_not_recorded_by_a_camera_back_after_its_post_roll(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=1.0))
    h.feed(packets[:30])
    h.recorder.stream_lost()
    h.now = packets[35].wall
    h.recorder.ring()
    h.feed(packets[75:])  # back 2.7 s later: the press is over
    assert h.done() == []


def test_a_press_while_the_camera_is_away_gets_no_picture_from_a_camera_back_long_after(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=2.0))
    h.feed(packets[:30])
    h.recorder.stream_lost()
    h.now = packets[35].wall
    h.recorder.ring()  # the bell rings while the camera is away
    assert h.recorder.wants_frame()
    # The camera is back ten minutes later: its picture shows the porch then, not the
    # press, and no clip is made that it could be the picture of.
    h.feed([replace(packet, wall=packet.wall + 600.0) for packet in packets[45:]])
    assert not h.recorder.wants_frame()
    h.recorder.offer_frame(frames[45], 0.0)
    assert h.done() == []
    assert h.snapshots == []


def test_a_press_while_the_camera_is_away_gets_its_picture_from_a_camera_back_in_time(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=2.0))
    h.feed(packets[:30])
    h.recorder.stream_lost()
    h.now = packets[35].wall
    h.recorder.ring()  # the bell rings while the camera is away
    h.feed(packets[45:46])  # back 0.7 s later, at the keyframe at 3 s
    assert h.recorder.wants_frame()
    h.recorder.offer_frame(frames[45], 0.0)  # the first frame it sends
    h.feed(packets[46:])
    [clip] = h.done()
    assert clip.reason == "ring"
    # The press's picture at once, the same frame again with its clip.
    assert clip.snapshot_path is not None
    assert h.snapshots == [clip.snapshot_path.read_bytes()] * 2


def test_a_press_the_detect_stream_missed_gets_no_picture_when_it_is_back_long_after(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=1.0))
    h.feed(packets[:30])
    h.recorder.ring()  # the detect stream is down: no frame comes for the press
    h.feed(packets[30:])  # the main stream records its clip
    h.now += 600.0  # the detect stream is back ten minutes later
    assert not h.recorder.wants_frame()
    h.recorder.offer_frame(frames[0], 0.0)
    [clip] = h.done()
    assert clip.reason == "ring"
    assert h.snapshots == []  # neither the clip (no frame) nor a late press picture


def test_a_press_with_no_post_roll_still_gets_its_picture_from_the_next_keyframe(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=0.0))
    h.feed(packets[:30])
    h.recorder.ring()
    # Detection was off: the detect stream is decoded again from its next keyframe,
    # after the press's clip has ended.
    h.feed(packets[30:52])
    assert h.recorder.wants_frame()
    h.recorder.offer_frame(frames[52], 0.0)
    h.feed(packets[52:])
    assert len(h.done()) == 1
    (jpeg,) = h.snapshots
    assert jpeg[:2] == b"\xff\xd8"


@pytest.mark.parametrize("asked", ["ring", "manual"])
def test_a_ring_or_record_now_cut_short_by_a_drop_goes_on_once_the_camera_is_back(
    store: ClipStore, packets: list[EncodedPacket], asked: str
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=4.0))
    h.feed(packets[:15])
    asked_at = h.now
    if asked == "ring":
        h.recorder.ring()  # footage until 4 s after the press...
    else:
        h.recorder.manual(4.0)  # ...or for the 4 s asked for
    h.feed(packets[15:40])
    h.recorder.stream_lost()  # a Wi-Fi hiccup at 2.6 s
    h.feed(packets[45:])  # back 0.4 s later, at the keyframe at 3 s
    assert not h.recorder.recording
    cut, resumed = sorted(h.done(), key=lambda clip: clip.start)
    assert [cut.reason, resumed.reason] == [asked, asked]
    assert cut.duration == pytest.approx(40 / 15, abs=0.01)  # from the keyframe at 0 s
    # The rest goes on from the first keyframe after the reconnect (no pre-roll: the
    # frames before it are gone) up to what was asked for.
    assert resumed.start.timestamp() == pytest.approx(packets[45].wall, abs=0.01)
    assert resumed.end.timestamp() == pytest.approx(asked_at + 4.0, abs=0.1)
    assert resumed.duration == pytest.approx(asked_at + 4.0 - packets[45].wall, abs=0.1)
    assert len(decode_all(resumed.path)) == round(resumed.duration * 15)


def test_a_press_in_a_motion_clip_cut_by_a_drop_goes_on_to_its_own_post_roll(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=3.0))
    h.feed(packets[:15])
    h.recorder.motion(True)
    h.feed(packets[15:20])
    pressed_at = h.now
    h.recorder.ring()
    h.feed(packets[20:30])
    h.recorder.motion(False)  # motion's post-roll would run 0.7 s past the press's
    h.feed(packets[30:40])
    h.recorder.stream_lost()
    h.feed(packets[45:])
    cut, resumed = sorted(h.done(), key=lambda clip: clip.start)
    assert [cut.reason, resumed.reason] == ["ring", "ring"]
    # Motion that was over before the drop is not resumed: only the press's footage is.
    assert resumed.start.timestamp() == pytest.approx(packets[45].wall, abs=0.01)
    assert resumed.end.timestamp() == pytest.approx(pressed_at + 3.0, abs=0.1)


def test_a_long_record_now_cut_by_a_drop_after_a_split_goes_on(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.0, max_length=2.0))
    h.feed(packets[:1])
    h.recorder.manual(6.0)
    h.feed(packets[1:40])  # split at the keyframe at 2 s
    h.recorder.stream_lost()
    h.feed(packets[45:])
    clips = sorted(h.done(), key=lambda clip: clip.start)
    assert [clip.reason for clip in clips] == ["manual"] * 4
    assert [round(clip.start.timestamp() - packets[0].wall, 1) for clip in clips] == [
        0.0,
        2.0,
        3.0,  # the first keyframe after the reconnect
        5.0,
    ]
    assert clips[-1].end.timestamp() == pytest.approx(packets[0].wall + 6.0, abs=0.1)


def test_a_clip_cut_by_a_drop_after_its_press_is_over_does_not_go_on(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=1.0, post_roll=2.0))
    h.feed(packets[:15])
    h.recorder.ring()  # footage until 2.9 s
    h.feed(packets[15:40])
    h.recorder.stream_lost()  # at 2.6 s
    h.feed(packets[60:])  # back at 4 s: the press is over
    [clip] = h.done()
    assert clip.reason == "ring"
    assert clip.end.timestamp() == pytest.approx(packets[39].wall + 1 / 15, abs=0.01)


def test_post_roll_ends_by_tick_when_the_stream_stalls(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=1.0))
    h.feed(packets[:30])
    h.recorder.ring()
    h.feed(packets[30:35])
    h.now += 5.0  # no packets for a while
    h.recorder.tick()
    assert len(h.done()) == 1


def test_disk_full_stops_recording_with_an_error_and_resumes(
    store: ClipStore, packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    real_write = recorder_module.ClipWriter.write

    def full(self: Any, packet: EncodedPacket) -> None:
        raise StorageError("cannot write clip: No space left on device")

    monkeypatch.setattr(recorder_module.ClipWriter, "write", full)
    h.feed(packets[:15])
    h.recorder.ring()
    h.feed(packets[15:40])
    assert h.done() == []
    assert h.errors == ["cannot write clip: No space left on device"]
    assert h.recorder.error is not None
    assert store.list() == ([], 0)
    assert not list(store.root.glob("*/*/*.mp4"))  # nothing half-written left behind

    monkeypatch.setattr(recorder_module.ClipWriter, "write", real_write)
    h.recorder.ring()
    h.feed(packets[40:75])
    [clip] = h.done()
    assert h.errors[-1] is None
    assert h.recorder.error is None
    assert clip.reason == "ring"


def test_a_clip_whose_file_is_deleted_while_recording_is_dropped_not_retried_for_good(
    store: ClipStore, packets: list[EncodedPacket], caplog: pytest.LogCaptureFixture
) -> None:
    """Deleted by hand, or by another program: nothing is left to finish."""
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.recording")
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:15])
    h.recorder.ring()
    h.feed(packets[15:20])
    h.recorder.flush()
    [partial] = store.root.glob("*/*/*.partial.mp4")
    partial.unlink()
    h.feed(packets[20:40])
    assert h.done() == []
    clip_id = partial.name.split(".")[0]
    assert h.errors == [f"clip {clip_id} dropped: its file was deleted before it could be finished"]

    h.recorder.ring()
    h.feed(packets[40:75])
    [clip] = h.done()
    assert h.errors[-1] is None  # recording works again
    assert store.list() == ([clip], 1)
    # Forgotten: not retried before every clip, not "repaired" at the next start.
    assert "to be finished later" not in caplog.text
    assert "cannot be finished" not in caplog.text
    assert store.db.execute("SELECT id FROM clips WHERE status = 'recording'").fetchall() == []
    assert [e.clip_id for e in store.events() if e.action == "missing"] == [clip_id]


def test_privacy_masks_reach_the_snapshot(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    import cv2
    import numpy as np

    mask = ((0, 0), (320, 0), (320, 360), (0, 360))  # left half of the 640x360 frame
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5), masks=(mask,))
    h.feed(packets[:30])
    h.recorder.ring()
    h.recorder.offer_frame(frames[30], 0.0)
    h.feed(packets[30:60])
    [clip] = h.done()
    assert clip.snapshot_path is not None
    image = cv2.imdecode(np.frombuffer(clip.snapshot_path.read_bytes(), np.uint8), 1)
    assert int(image[10:350, 10:300].max()) <= 8
    assert float(image[10:350, 340:630].mean()) > 40
    luma = decode_all(clip.path)
    assert all(int(frame[10:350, 10:300].max()) <= 2 for frame in luma)


def test_no_snapshot_of_a_masked_camera_whose_frame_size_is_unknown(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    # Masks are in main-stream pixels and scaled to the snapshot's size: without the
    # main stream's size they would land in the wrong place (here: off the picture).
    right_half = ((640, 0), (1280, 0), (1280, 720), (640, 720))  # of a 1280x720 stream
    h = Harness(store, RecordSettings(), masks=(right_half,))
    unknown = replace(packets[0].stream, width=0, height=0)
    h.feed([replace(packet, stream=unknown) for packet in packets[:15]])
    h.recorder.picture()  # a parcel came
    h.recorder.offer_frame(frames[15], 0.0)
    h.recorder.flush()
    assert h.snapshots == []


def test_motion_publishes_its_first_frame_at_once_and_the_best_at_the_end(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.recorder.offer_frame(frames[30], 0.01)
    h.recorder.flush()
    assert len(h.snapshots) == 1  # before the clip ends
    h.recorder.offer_frame(frames[50], 0.2)  # the most telling frame
    h.recorder.offer_frame(frames[55], 0.05)
    h.feed(packets[30:60])
    h.recorder.motion(False)
    h.feed(packets[60:75])
    [clip] = h.done()
    assert len(h.snapshots) == 2
    assert clip.snapshot_path is not None
    assert h.snapshots[1] == clip.snapshot_path.read_bytes()
    assert h.snapshots[0] != h.snapshots[1]


@pytest.mark.parametrize("motion", ["all", "people"])
def test_a_person_clip_publishes_its_first_moving_frame_at_once(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any], motion: str
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5, motion=motion))
    h.feed(packets[:30])
    h.recorder.person(True)  # someone in view as motion starts
    h.recorder.motion(True)
    h.recorder.offer_frame(frames[30], 0.01)
    h.recorder.flush()
    assert len(h.snapshots) == 1  # before the clip ends
    h.feed(packets[30:45])
    h.recorder.motion(False)
    h.feed(packets[45:60])
    [clip] = h.done()
    assert clip.reason == "person"
    assert len(h.snapshots) == 2


def test_a_snapshot_that_cannot_be_made_never_costs_the_clip(
    store: ClipStore,
    packets: list[EncodedPacket],
    frames: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def cannot_encode(*_args: Any) -> Any:
        raise StorageError("cannot encode snapshot")

    monkeypatch.setattr(recorder_module, "make_snapshot", cannot_encode)
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.motion(True)
    h.recorder.offer_frame(frames[30], 0.1)  # the first moving frame: published at once
    h.feed(packets[30:60])
    h.recorder.motion(False)
    h.feed(packets[60:75])
    [clip] = h.done()
    assert clip.start.timestamp() <= packets[29].wall  # one clip, from the motion on
    assert clip.end.timestamp() >= packets[59].wall + 0.5 - 0.1
    assert h.snapshots == []
    assert h.errors == []  # recording never failed


def test_a_clip_whose_best_frame_cannot_be_converted_is_kept_without_snapshot(
    store: ClipStore,
    packets: list[EncodedPacket],
    frames: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unconvertible(_frame: Any) -> Any:
        raise ValueError("unsupported pixel format")

    monkeypatch.setattr(recorder_module, "to_bgr", unconvertible)
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    h.feed(packets[:30])
    h.recorder.ring()
    h.recorder.offer_frame(frames[30], 0.0)
    h.feed(packets[30:60])
    [clip] = h.done()
    assert clip.reason == "ring"
    assert clip.snapshot_path is None
    assert store.list()[0] == [clip]
    assert h.errors == []


def test_a_split_inside_the_post_roll_still_ends_the_next_clip(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=3.0, max_length=5.0))
    h.feed(packets[:1])
    h.recorder.motion(True)
    h.feed(packets[1:60])
    h.recorder.motion(False)  # at ~4 s: the clip ends at ~7 s
    h.feed(packets[60:])  # the split at the keyframe at 5 s falls inside the post-roll
    assert not h.recorder.recording
    clips = sorted(h.done(), key=lambda c: c.start)
    assert len(clips) == 2
    assert clips[1].start == clips[0].end
    assert clips[1].end.timestamp() == pytest.approx(packets[59].wall + 3.0, abs=0.15)


def test_an_event_goes_on_in_a_new_clip_once_the_disk_takes_it_again(
    store: ClipStore, packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0))
    real_write = recorder_module.ClipWriter.write
    base = packets[0].wall

    def full_for_two_seconds(self: Any, packet: EncodedPacket) -> None:
        if 1.5 <= packet.wall - base < 3.5:
            raise StorageError("cannot write clip: No space left on device")
        real_write(self, packet)

    monkeypatch.setattr(recorder_module.ClipWriter, "write", full_for_two_seconds)
    h.feed(packets[:1])
    h.recorder.manual(60.0)
    h.feed(packets[1:])
    h.recorder.stream_lost()
    early, resumed = sorted(h.done(), key=lambda c: c.start)
    # What reached the disk before it filled up is a clip of its own...
    assert early.start.timestamp() == pytest.approx(base)
    assert 0.9 <= early.duration <= 1.6
    # ...and the event goes on from the first keyframe tried once there is room again
    # (keyframes every second, tried every RESUME_EVERY = 2 s: at 2 s, then at 4 s).
    assert resumed.start.timestamp() == pytest.approx(base + 4.0, abs=0.01)
    assert resumed.end.timestamp() == pytest.approx(packets[-1].wall + 1 / 15, abs=0.01)
    assert resumed.reason == "manual"
    assert len(decode_all(resumed.path)) == round(resumed.duration * 15)
    assert h.errors == ["cannot write clip: No space left on device", None]


def test_an_event_whose_clip_cannot_start_goes_on_once_the_disk_takes_it(
    store: ClipStore, packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    real_new_clip = store.new_clip
    failures = [StorageError("cannot start a clip for front_door: database or disk is full")]

    def new_clip(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_new_clip(*args)

    monkeypatch.setattr(store, "new_clip", new_clip)
    base = packets[0].wall
    h.feed(packets[:1])
    h.recorder.motion(True)  # the clip cannot be created (the disk is full at midnight)
    h.feed(packets[1:60])
    h.recorder.ring()  # a press in the middle of the event
    h.feed(packets[60:119])
    h.recorder.motion(False)
    h.recorder.stream_lost()
    [clip] = h.done()
    # The event goes on at the first keyframe tried (the next one, at 1 s) and the
    # press in it is not lost.
    assert clip.reason == "ring"
    assert clip.start.timestamp() == pytest.approx(base + 1.0, abs=0.01)
    assert clip.end.timestamp() == pytest.approx(packets[118].wall + 1 / 15, abs=0.01)
    assert h.errors == ["cannot start a clip for front_door: database or disk is full", None]
    assert store.list(reason="ring")[1] == 1


def test_a_finished_clip_the_index_cannot_take_is_listed_before_the_next_clip(
    store: ClipStore,
    packets: list[EncodedPacket],
    frames: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    real_complete = store.complete
    failures = [StorageError("cannot index clip: database or disk is full")]

    def complete(*args: Any, **kwargs: Any) -> ClipInfo:
        if failures:
            raise failures.pop()
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(store, "complete", complete)
    h.feed(packets[:15])
    h.recorder.motion(True)
    h.feed(packets[15:20])
    h.recorder.ring()
    h.recorder.offer_frame(frames[20], 0.0)
    h.feed(packets[20:30])
    h.recorder.motion(False)
    h.feed(packets[30:45])
    assert h.done() == []  # finished, but the index could not say so
    assert store.list() == ([], 0)
    assert h.errors == ["cannot index clip: database or disk is full"]

    h.recorder.manual(1.0)  # the next clip lists it first
    h.feed(packets[45:90])
    late, manual = h.done()
    assert late.reason == "ring"
    assert late.snapshot_path is not None
    assert late.snapshot_path.is_file()
    assert late.end.timestamp() == pytest.approx(packets[29].wall + 0.5, abs=0.15)
    assert len(decode_all(late.path)) == round(late.duration * 15)
    assert manual.reason == "manual"
    assert sorted(c.id for c in store.list()[0]) == sorted([late.id, manual.id])
    assert h.errors[-1] is None


def test_a_clip_finished_late_that_the_index_cannot_take_is_listed_later(
    store: ClipStore, packets: list[EncodedPacket], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(store, RecordSettings(pre_roll=0.0, post_roll=0.5))
    real_finalize, real_complete = recorder_module.finalize, store.complete
    finish_failures = 2  # finishing, and finishing again after making room
    index_failures = [StorageError("cannot index clip: database or disk is full")]

    def finalize(*args: Any) -> Any:
        nonlocal finish_failures
        if finish_failures:
            finish_failures -= 1
            raise StorageError("cannot finish clip: No space left on device")
        return real_finalize(*args)

    def complete(*args: Any, **kwargs: Any) -> ClipInfo:
        if index_failures:
            raise index_failures.pop()
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(recorder_module, "finalize", finalize)
    monkeypatch.setattr(store, "complete", complete)
    h.feed(packets[:15])
    h.recorder.ring()
    h.feed(packets[15:30])  # kept unfinished: the disk is full
    h.recorder.manual(1.0)  # finished now, but the index cannot list it yet
    h.feed(packets[30:60])
    [manual] = h.done()
    assert [c.id for c in store.list()[0]] == [manual.id]
    h.recorder.close()  # listed at the latest when the recorder stops
    late = h.clips[-1]
    assert late.reason == "ring"
    assert sorted(c.id for c in store.list()[0]) == sorted([late.id, manual.id])


def test_a_masked_clip_starts_exactly_pre_roll_before_the_trigger(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    mask = ((0, 0), (200, 0), (200, 100), (0, 100))
    h = Harness(store, RecordSettings(pre_roll=1.5, post_roll=1.0), masks=(mask,))
    h.feed(packets[:45])
    h.recorder.motion(True)  # the newest frame: packets[44], at 2.93 s
    h.feed(packets[45:75])
    h.recorder.motion(False)
    h.feed(packets[75:100])
    [clip] = h.done()
    # Keyframes come every second (0, 1, 2 s): a copied clip would start at 1 s.
    # This one is decoded from there but starts at 2.93 - 1.5 - 0.25 s (the margin):
    # frame 17 (1.13 s).
    assert clip.start.timestamp() == pytest.approx(packets[17].wall, abs=0.001)
    assert clip.end.timestamp() == pytest.approx(packets[74].wall + 1.0, abs=0.15)
    frames = decode_all(clip.path)
    assert len(frames) == round(clip.duration * 15)
    assert all(int(luma[4:96, 4:196].max()) <= 2 for luma in frames)


def test_no_file_ever_holds_unmasked_pixels(
    store: ClipStore, packets: list[EncodedPacket], frames: list[Any]
) -> None:
    """Not the partial file of a clip being written, not the clip, not a snapshot."""
    import cv2
    import numpy as np

    band = ((0, 120), (640, 120), (640, 240), (0, 240))  # the walker's path, 3 s to 5 s
    inside = (slice(124, 236), slice(4, 636))
    assert any(int(frame.to_ndarray(format="gray")[inside].max()) > 200 for frame in frames)

    def image_masked(jpeg: bytes) -> bool:
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1)
        scale = image.shape[1] / 640  # snapshots and 320 px thumbnails
        rows = slice(round(124 * scale) + 2, round(236 * scale) - 2)
        return int(image[rows, 4:-4].max()) <= 8

    def assert_masked(folder: Path) -> int:
        videos = 0
        for path in sorted(folder.rglob("*")):
            if path.suffix == ".mp4":
                lumas = decode_all(path)
                assert lumas, path
                assert all(int(luma[inside].max()) <= 2 for luma in lumas), path
                assert all(float(luma[250:, :].mean()) > 30 for luma in lumas)  # not all black
                videos += 1
            elif path.suffix == ".jpg":
                assert image_masked(path.read_bytes()), path
            else:  # only the index may hold anything else
                assert path.is_dir() or path.name.startswith("clips.db"), path
        return videos

    h = Harness(store, RecordSettings(pre_roll=2.0, post_roll=3.0), masks=(band,))
    h.feed(packets[:40])
    h.recorder.ring()
    h.recorder.offer_frame(frames[40], 0.0)
    h.feed(packets[40:70])  # the walker is in the picture
    h.recorder.flush()
    assert h.recorder.recording
    assert assert_masked(store.root) == 1  # the partial file, as far as it was flushed
    h.feed(packets[70:100])
    [clip] = h.done()
    assert not h.recorder.recording
    assert clip.snapshot_path is not None
    assert assert_masked(store.root) == 1  # the finished clip
    assert len(h.snapshots) == 2
    assert all(image_masked(jpeg) for jpeg in h.snapshots)
