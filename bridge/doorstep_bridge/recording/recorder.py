"""One camera's recorder: triggers → clips, with pre-roll, post-roll and splitting.

The recorder is fed encoded packets by the camera's reader thread and triggers
(motion on/off, doorbell presses, "record now") from any thread. Deciding what
to record is cheap and happens under a lock on the caller's thread; everything
that touches the disk (creating the clip, writing, finishing, snapshots, the
index) runs on the recorder's own worker thread, in order, so a slow disk or a
re-encode never stalls the reader.

- Motion: a clip starts with the pre-roll when motion turns on, continues while
  it lasts and ends ``post_roll`` seconds after it turns off.
- Ring: a clip with the pre-roll that lasts at least ``post_roll`` after the press
  (a press during a motion clip extends it and makes it a ``ring`` clip).
- Manual: at least ``duration`` seconds from now.
- Clips longer than ``max_length`` (pre-roll included) are split at the next
  keyframe.
- The stream dropping closes the clip cleanly at its last packet. A ring or a
  record-now while the camera is away (no keyframe to start from) starts its
  clip at the camera's first keyframe, if that comes before the clip would end;
  so does a ring or record-now whose clip the drop cut short, and motion still
  on then (detection says when motion ends).

The pre-roll is kept as encoded packets in memory only. A stream-copied clip
starts at the keyframe at or before the pre-roll; a re-encoded (masked) clip
starts ``pre_roll`` (and a quarter second) before the trigger: its writer decodes
from the keyframe before that frame and encodes from the frame on. A masked
camera decodes its main stream only while a clip is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
import logging
import queue
import threading
import time
from typing import Any, TypeAlias

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.files import atomic_write
from doorstep_bridge.models import ClipInfo
from doorstep_bridge.packets import EncodedPacket, StreamInfo
from doorstep_bridge.recording.buffer import PreRollBuffer
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.settings import RecordSettings
from doorstep_bridge.recording.snapshots import make_snapshot, to_bgr
from doorstep_bridge.recording.store import ClipStore, PendingClip
from doorstep_bridge.recording.writer import (
    ClipWriter,
    FinishedFile,
    NothingPlayableError,
    finalize,
    transcodes,
)
from doorstep_bridge.validation import Polygon

_LOGGER = logging.getLogger(__name__)
#: Why a clip whose partial file vanished is dropped.
_GONE = "its file was deleted before it could be finished"

#: Kinds of recording error (``Recorder.error``).
_AT_RISK = "at risk"
_STOPPED = "stopped"

#: "Record now" without a duration records this long.
DEFAULT_MANUAL_DURATION = 30.0
#: After a failed clip (a write error, a clip that cannot start), a new clip is tried at a
#: keyframe this often (seconds).
RESUME_EVERY = 2.0
#: A re-encoded clip starts this much more than ``pre_roll`` before the newest frame:
#: that frame may be up to 0.2 s old (the RTSP reader takes data in 0.2 s batches) and
#: its capture time a little off, and the clip must hold at least the whole pre-roll.
PRE_ROLL_MARGIN = 0.25
#: A frame this long after a press still shows it, however short the post-roll: with
#: detection off the detect stream is decoded again from its next keyframe only.
PRESS_PICTURE_MIN_WINDOW = 10.0
_PRIORITY = {"motion": 0, "person": 1, "manual": 2, "ring": 3}


@dataclass(frozen=True, slots=True)
class _Start:
    reason: str
    packets: list[EncodedPacket]
    show_from: int  # index in `packets` of the clip's first frame


@dataclass(frozen=True, slots=True)
class _Packet:
    packet: EncodedPacket


@dataclass(frozen=True, slots=True)
class _Reason:
    """The clip being recorded got a weightier reason (a press during a motion clip)."""

    reason: str


@dataclass(frozen=True, slots=True)
class _Finish:
    reason: str
    frame: Any  # a decoded frame for the snapshot, or None
    masks: MaskSet | None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    frame: Any
    masks: MaskSet | None


@dataclass(frozen=True, slots=True)
class _Flush:
    done: threading.Event


_Command: TypeAlias = _Start | _Packet | _Reason | _Finish | _Snapshot | _Flush


@dataclass(frozen=True, slots=True)
class RecorderHooks:
    """Where the recorder reports to (called on its worker thread).

    Attributes:
        on_clip: A clip is finished, indexed and playable.
        on_snapshot: A new JPEG snapshot of the camera (masks filled).
        on_error: Recording failed (message) or works again (None); called on changes.
        before_clip: Runs before a clip is created (retention frees space here);
            may return a problem to report (the disk is almost full), or None.
        on_clip_snapshot: When set, called instead of ``on_snapshot`` with the id of
            the clip the picture belongs to (the clip being recorded, or the one just
            finished), None when no clip could be opened for it.
    """

    on_clip: Callable[[ClipInfo], None]
    on_snapshot: Callable[[bytes], None]
    on_error: Callable[[str | None], None]
    before_clip: Callable[[], object] = lambda: None
    on_clip_snapshot: Callable[[bytes, str | None], None] | None = None


class Recorder:
    """Records one camera's clips.

    Args:
        camera: Camera name.
        settings: The camera's ``record`` settings.
        store: The clip store.
        privacy_masks: Polygons in main-stream pixels, filled in clips and snapshots.
        hooks: Callbacks (run on the worker thread).
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(  # noqa: PLR0917
        self,
        camera: str,
        settings: RecordSettings,
        store: ClipStore,
        privacy_masks: tuple[Polygon, ...],
        hooks: RecorderHooks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera = camera
        self.settings = settings
        self._store = store
        self._polygons = privacy_masks
        self._clip_masks = MaskSet(privacy_masks)
        self._snapshot_masks: MaskSet | None = None if privacy_masks else MaskSet(())
        self._hooks = hooks
        self._clock = clock
        self._lock = threading.Lock()
        self._buffer = PreRollBuffer(settings.pre_roll)
        self._enabled = settings.enabled
        self._recording = False
        self._reason = "motion"
        # Where the clip is split, in its stream's pts: ``max_length`` after its first frame
        # (a clip's length counts its pre-roll). On the clip's own timeline, not the wall
        # clock, which a step (NTP setting a stale clock, a clock set back) would move.
        self._split_at = 0
        self._hold_until: float | None = None
        # The end the rings and record-nows of the clip being recorded asked for (the
        # post-roll after a press, the requested length): what a camera drop must not
        # cost. Motion's post-roll is left out: motion that ended before a drop is over.
        self._asked_until: float | None = None
        self._motion = False
        self._person = False
        self._best: tuple[float, Any] | None = None
        # Until when a frame still shows the press waiting for its picture (the press's
        # post-roll, the footage its clip is made of), None when none waits. A frame after
        # that (a camera back from a long outage) shows the porch later, not the press.
        self._press_until: float | None = None
        self._picture_pending = False
        # A ring or record-now that came with no picture to start from (the camera is
        # reconnecting), or whose clip a drop cut short: its reason and end, until a
        # keyframe arrives or it is over.
        self._waiting: tuple[str, float] | None = None
        self._stream: StreamInfo | None = None
        # Worker-side state.
        self._writer: ClipWriter | None = None
        self._pending: PendingClip | None = None
        self._error: str | None = None
        # What the error is: "at risk" (retention cannot make room, clips still fit) or
        # "stopped" (a clip failed); None while recording works.
        self._error_kind: str | None = None
        # Clips whose file could not be finished (disk full): kept on disk with their
        # ``recording`` row, retried before each new clip, repaired at start-up at the latest.
        self._stranded: list[PendingClip] = []
        # Clips whose file is finished but whose index row could not say so (the
        # database could not be written): listed before each new clip once it can.
        self._unlisted: list[tuple[PendingClip, FinishedFile, bool]] = []
        # What the last before_clip reported (stays the error after a good clip).
        self._room_problem: str | None = None
        # A clip that could not start or whose writing failed midway: its event goes on
        # in a new clip as soon as the disk takes it again (reason of the clip, last
        # attempt's time on the stream's timeline, which no step of the wall clock moves).
        self._open_reason = "motion"
        # The clips of the event being recorded that a failure cut short: a weightier
        # reason later in the event (a press) is theirs too.
        self._cut: list[str] = []
        self._resume: str | None = None
        self._resume_tried: float | None = None
        self._queue: queue.Queue[_Command | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name=f"recorder-{camera}", daemon=True)
        self._worker.start()

    # -- control (any thread) ------------------------------------------------------

    @property
    def recording(self) -> bool:
        """True while a clip is being recorded."""
        return self._recording

    @property
    def enabled(self) -> bool:
        """The camera's recording switch."""
        return self._enabled

    @property
    def error(self) -> str | None:
        """Why recording currently fails (disk full, ...), or None."""
        return self._error

    def wants_frame(self) -> bool:
        """True when a decoded frame would be used (a clip's snapshot, a press)."""
        return self._recording or self._picture_pending or self._press_waits(self._clock())

    def set_enabled(self, on: bool) -> None:
        """Switch recording on or off.

        Switching off ends the current clip; switching on while motion is on starts
        one, with the pre-roll (the reason to switch on may be at the door now).
        """
        with self._lock:
            self._enabled = on
            if not on:
                self._waiting = None
                if self._recording:
                    self._finish()
            elif self._motion_records():
                self._trigger("motion", None)

    def feed(self, packet: EncodedPacket) -> None:
        """A new packet from the camera (reader thread)."""
        now = self._clock()
        with self._lock:
            changed = packet.stream is not self._stream and packet.stream != self._stream
            if changed:
                self._stream = packet.stream
                if self._polygons:
                    # Without the main stream's size the masks cannot be scaled to a
                    # snapshot: no snapshot rather than one with misplaced masks.
                    size = (packet.stream.width, packet.stream.height)
                    self._snapshot_masks = MaskSet(self._polygons, size) if all(size) else None
            if self._recording and self._due(now):
                self._finish()
            self._buffer.append(packet)
            if not self._recording:
                if packet.keyframe:
                    self._start_late(now)  # a clip started here starts with this packet
                return
            if packet.keyframe and (changed or packet.pts >= self._split_at):
                # Split a long event, or one during which the camera changed its stream (a
                # new picture size: a file holds one): the next clip starts at this keyframe
                # and keeps the post-roll already running (motion may be off by now) and
                # the end a ring or record-now asked for (a later drop must not cost it).
                reason, hold, asked = self._reason, self._hold_until, self._asked_until
                self._finish()
                self._start(reason, [packet])
                self._hold_until, self._asked_until = hold, asked
                return
            self._queue.put(_Packet(packet))

    def motion(self, active: bool) -> None:
        """Motion turned on or off (after hysteresis)."""
        now = self._clock()
        with self._lock:
            self._motion = active
            if self._motion_records():
                self._trigger("motion", None)
            elif not active and self._recording:
                self._extend(now + self.settings.post_roll)

    def person(self, active: bool) -> None:
        """Person detection saw someone come into (True) or leave (False) the view.

        A motion clip recorded while someone is in view is a ``person`` clip. With
        ``record.motion: people``, motion records only from here on (with the pre-roll).
        """
        with self._lock:
            self._person = active
            if not active:
                return
            if self._recording and self._reason == "motion":
                self._upgrade("person")
            elif not self._recording and self._motion and self.settings.motion == "people":
                self._trigger("person", None)

    def ring(self) -> None:
        """The doorbell was pressed: record around it and snapshot the press."""
        now = self._clock()
        with self._lock:
            self._press_until = now + max(self.settings.post_roll, PRESS_PICTURE_MIN_WINDOW)
            self._trigger("ring", now + self.settings.post_roll)

    def picture(self) -> None:
        """Publish the next frame offered as the camera's snapshot (a parcel came or went)."""
        with self._lock:
            self._picture_pending = True

    def manual(self, duration: float | None = None) -> None:
        """Record now, for ``duration`` seconds (default 30).

        A duration beyond ``max_length`` is recorded whole, split into clips like
        any long event.
        """
        now = self._clock()
        seconds = duration if duration and duration > 0 else DEFAULT_MANUAL_DURATION
        with self._lock:
            self._trigger("manual", now + seconds)

    def offer_frame(self, frame: Any, score: float) -> None:
        """A decoded frame and how telling it is (the moving area); keeps the best one.

        The frame of a doorbell press, and the first moving frame of a motion or person clip,
        are also published as the camera's snapshot right away, and so is the frame
        asked for by :meth:`picture`. A press's frame must come within its post-roll
        (at least :data:`PRESS_PICTURE_MIN_WINDOW`): a camera back later shows the porch
        then, and publishes no press picture.
        """
        now = self._clock()
        with self._lock:
            press = self._press_waits(now)
            self._press_until = None  # this frame is the press's, or the press is over
            if self._picture_pending and not press:
                self._picture_pending = False
                self._queue.put(_Snapshot(frame, self._snapshot_masks))
            if press:
                self._picture_pending = False
                if self._recording:
                    self._best = (float("inf"), frame)
                self._queue.put(_Snapshot(frame, self._snapshot_masks))
            elif self._recording and (self._best is None or score > self._best[0]):
                if self._best is None and self._reason in {"motion", "person"} and score > 0:
                    # Motion (someone in view or not): show the first moving frame at
                    # once; the clip's best frame follows when the clip ends.
                    self._queue.put(_Snapshot(frame, self._snapshot_masks))
                self._best = (score, frame)

    def tick(self) -> None:
        """Periodic check (a few times a second): ends clips whose post-roll ran out."""
        now = self._clock()
        with self._lock:
            if self._recording and self._due(now):
                self._finish()

    def stream_lost(self) -> None:
        """The camera dropped: close the current clip at its last packet.

        A ring or record-now in that clip goes on in a new clip from the camera's
        first keyframe once it is back, as one asked for while it was away: a press
        during a Wi-Fi hiccup still gets its footage after the press.
        """
        now = self._clock()
        with self._lock:
            if self._recording:
                asked_until = self._asked_until
                if asked_until is not None and now < asked_until:
                    _LOGGER.info(
                        "Camera %s dropped during a %s clip; closing it, the rest follows"
                        " if the camera is back in time",
                        self.camera,
                        self._reason,
                    )
                    self._wait_for_keyframe(self._reason, asked_until)
                else:
                    _LOGGER.info("Camera %s dropped during a clip; closing it", self.camera)
                self._finish()
            self._buffer.clear()

    def close(self, timeout: float = 30.0) -> None:
        """Finish the current clip and stop the worker (blocking)."""
        with self._lock:
            if self._recording:
                self._finish()
            self._queue.put(None)
        self._worker.join(timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the worker has handled everything queued so far (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(_Flush(done))
        done.wait(timeout)

    # -- control helpers (lock held) -----------------------------------------------

    def _press_waits(self, now: float) -> bool:
        """A press waits for its picture, and a frame now would still show it.

        Also read without the lock (:meth:`wants_frame`): it reads one attribute once.
        """
        until = self._press_until
        return until is not None and now < until

    def _motion_records(self) -> bool:
        """Motion is on and records (``record.motion: people`` waits for a person)."""
        return self._motion and (self.settings.motion == "all" or self._person)

    def _due(self, now: float) -> bool:
        return not self._motion and self._hold_until is not None and now >= self._hold_until

    def _extend(self, until: float) -> None:
        self._hold_until = until if self._hold_until is None else max(self._hold_until, until)

    def _trigger(self, reason: str, until: float | None) -> None:
        if not self._enabled:
            return
        if reason == "motion" and self._person:
            reason = "person"
        if not self._recording:
            self._start(reason, self._buffer.packets())
            if not self._recording:
                if until is not None:
                    self._wait_for_keyframe(reason, until)
                return
        elif _PRIORITY[reason] > _PRIORITY[self._reason]:
            self._upgrade(reason)
        if until is not None:
            self._extend(until)
            asked = self._asked_until
            self._asked_until = until if asked is None else max(asked, until)

    def _upgrade(self, reason: str) -> None:
        """The clip being recorded is now a ``reason`` clip; the worker records that at once.

        Waiting for the clip's end is not enough: a crash, or a full disk that
        stops the clip, would keep the visit as the reason it started with.
        """
        self._reason = reason
        self._queue.put(_Reason(reason))

    def _start_late(self, now: float) -> None:
        """Start what came while there was no keyframe to start from (the camera was away).

        A ring or record-now whose clip would not have ended yet, and motion that is
        still on (a camera whose detect stream stayed up while its main stream dropped).
        """
        if self._waiting is not None:
            reason, until = self._waiting
            self._waiting = None
            if now < until:
                self._trigger(reason, until)
        if not self._recording and self._motion_records():
            self._trigger("motion", None)

    def _wait_for_keyframe(self, reason: str, until: float) -> None:
        """Start this ring or record-now clip once the camera sends a keyframe."""
        if self._waiting is not None:
            waiting_reason, waiting_until = self._waiting
            if _PRIORITY[waiting_reason] > _PRIORITY[reason]:
                reason = waiting_reason
            until = max(until, waiting_until)
        self._waiting = (reason, until)

    def _start(self, reason: str, packets: list[EncodedPacket]) -> None:
        if not packets:
            return  # nothing to record yet (no keyframe since the camera came up)
        self._recording = True
        self._reason = reason
        show_from = self._first_shown(packets)
        first = packets[show_from]
        self._split_at = first.pts + round(self.settings.max_length / first.stream.time_base)
        self._hold_until = self._asked_until = None
        self._best = None
        self._queue.put(_Start(reason, packets, show_from))

    def _first_shown(self, packets: list[EncodedPacket]) -> int:
        """Index of a new clip's first frame: ``pre_roll`` before the newest packet.

        A stream-copied clip must start at a keyframe (index 0); a re-encoded one
        starts at the last frame ``pre_roll`` (plus a margin) or more before the
        newest, on the stream's timeline (a step of the wall clock moves capture times).
        """
        stream = packets[0].stream
        if not transcodes(stream, self._clip_masks):
            return 0
        since = packets[-1].pts - round(
            (self.settings.pre_roll + PRE_ROLL_MARGIN) / stream.time_base
        )
        first = 0
        for index, packet in enumerate(packets):
            if packet.pts > since:
                break
            first = index
        return first

    def _finish(self) -> None:
        frame = self._best[1] if self._best is not None else None
        self._queue.put(_Finish(self._reason, frame, self._snapshot_masks))
        self._recording = False
        self._hold_until = self._asked_until = None
        self._best = None

    # -- worker ----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            command = self._queue.get()
            if command is None:
                self._salvage()
                return
            try:
                self._handle(command)
            except StorageError as err:
                self._failed(str(err))
            except Exception:
                _LOGGER.exception("Recorder for %s failed", self.camera)
                self._failed("internal error while recording (see the log)")

    def _handle(self, command: _Command) -> None:
        match command:
            case _Start(reason, packets, show_from):
                self._resume = None
                self._cut = []
                self._open_clip(reason, packets, show_from)
            case _Packet(packet):
                if self._writer is not None:
                    self._writer.write(packet)
                elif self._resume is not None and packet.keyframe:
                    self._resume_at(packet)
            case _Reason(reason):
                self._set_reason(reason)
            case _Finish(reason, frame, masks):
                self._resume = self._resume_tried = None
                self._cut = []
                self._close_clip(reason, frame, masks)
            case _Snapshot(frame, masks):
                if masks is not None:
                    self._publish_picture(frame, masks)
            case _Flush(done):
                done.set()

    def _set_reason(self, reason: str) -> None:
        """Record a clip's new reason where a crash or a failed clip would look for it.

        The index row is what a repair at start-up goes by, the pending clip what a
        late finish goes by, and the open reason what a clip resumed after a
        failure is. The MP4's metadata comment was written with the clip's start
        and cannot change mid-file: only an index lost as well falls back to it.
        """
        self._open_reason = reason
        if self._resume is not None:
            self._resume = reason
        # The parts a failure cut short: a late finish goes by the stranded clip, an
        # unlisted one by its entry, and one already finished by its row alone.
        self._stranded = [
            replace(p, reason=reason) if p.id in self._cut else p for p in self._stranded
        ]
        self._unlisted = [
            (replace(p, reason=reason) if p.id in self._cut else p, finished, snapshot)
            for p, finished, snapshot in self._unlisted
        ]
        ids = list(self._cut)
        pending = self._pending
        if pending is not None:
            self._pending = replace(pending, reason=reason)
            ids.append(pending.id)
        for clip_id in ids:
            try:
                self._store.set_reason(clip_id, reason)
            except StorageError as err:
                # Not worth the clip: one still recording gets its reason when finished.
                _LOGGER.warning(
                    "Clip %s: cannot record its reason %s yet: %s", clip_id, reason, err
                )

    def _resume_at(self, packet: EncodedPacket) -> None:
        """Continue an event whose clip failed (or never started) in a new clip from here."""
        assert self._resume is not None
        tried, at = self._resume_tried, packet.seconds
        if tried is not None and at - tried < RESUME_EVERY:
            return
        self._resume_tried = at
        self._open_clip(self._resume, [packet])  # raises again while the disk is full
        self._resume = self._resume_tried = None
        _LOGGER.warning("Recording on %s goes on in clip %s", self.camera, self._pending_id())

    def _pending_id(self) -> str:
        return self._pending.id if self._pending is not None else "?"

    def _open_clip(self, reason: str, packets: list[EncodedPacket], show_from: int = 0) -> None:
        if self._writer is not None:  # a previous clip was not closed: close it first
            self._close_clip(reason, None, None)
        self._make_room()
        self._salvage()
        self._open_reason = reason
        first = packets[show_from]
        start = datetime.fromtimestamp(first.wall, UTC)
        try:
            self._pending = self._store.new_clip(self.camera, start, reason)
            self._writer = ClipWriter(
                self._pending.partial,
                first.stream,
                self._clip_masks,
                self._pending.comment(),
                show_from=first.pts if show_from else None,
            )
        except Exception:
            # A clip that cannot even start (a full disk cannot take the day's new
            # folder, the index cannot be written) is a failed clip too: its event,
            # which the control side records on, goes on once the disk allows.
            self._resume = reason
            raise
        for packet in packets:
            self._writer.write(packet)

    def _close_clip(self, reason: str, frame: Any, masks: MaskSet | None) -> None:
        writer, pending = self._writer, self._pending
        self._writer, self._pending = None, None
        if writer is None or pending is None:
            return  # the clip failed earlier; the failure was reported then
        try:
            writer.close()
        except StorageError as err:
            # The fragments flushed so far are still readable: finish those.
            writer.release()
            _LOGGER.warning("Clip %s: %s; finishing what was written", pending.id, err)
        if writer.frames == 0:
            self._store.discard(pending, "nothing was recorded")
            return
        finished = self._finalize(pending)
        jpeg = None
        if frame is not None and masks is not None:
            jpeg = self._write_snapshot(pending, frame, masks)
        try:
            info = self._store.complete(
                pending,
                duration=finished.duration,
                size=finished.size,
                reason=reason,
                snapshot=jpeg is not None,
            )
        except StorageError:
            self._unlisted.append((replace(pending, reason=reason), finished, jpeg is not None))
            raise
        self._set_error(self._room_problem)
        _LOGGER.info(
            "Clip %s (%s, %.1f s, %d bytes)", info.id, info.reason, info.duration, info.size
        )
        self._hooks.on_clip(info)
        if jpeg is not None:
            self._snapshot(jpeg, info.id)

    def _write_snapshot(self, pending: PendingClip, frame: Any, masks: MaskSet) -> bytes | None:
        """Write a finished clip's snapshot and thumbnail; None when there is none.

        The clip is kept whatever happens here: a full disk, or a frame that cannot
        be converted or encoded, only costs its picture.
        """
        try:
            snapshot = make_snapshot(to_bgr(frame), masks)
            atomic_write(pending.snapshot, snapshot.jpeg)
            atomic_write(pending.thumbnail, snapshot.thumbnail)
        except (OSError, StorageError) as err:
            _LOGGER.warning("No snapshot for clip %s: %s", pending.id, err)
        except Exception:
            _LOGGER.exception("No snapshot for clip %s", pending.id)
        else:
            return snapshot.jpeg
        pending.snapshot.unlink(missing_ok=True)
        pending.thumbnail.unlink(missing_ok=True)
        return None

    def _publish_picture(self, frame: Any, masks: MaskSet) -> None:
        """Publish a snapshot now (a press, a first moving frame, a parcel).

        Making it may fail (a frame that cannot be converted or encoded); that must
        never reach the worker's error handling, which would cut the clip short.
        """
        clip_id = self._pending.id if self._pending is not None else None
        try:
            jpeg = make_snapshot(to_bgr(frame), masks).jpeg
        except Exception:
            _LOGGER.exception("No snapshot for camera %s", self.camera)
            return
        self._snapshot(jpeg, clip_id)

    def _snapshot(self, jpeg: bytes, clip_id: str | None) -> None:
        if self._hooks.on_clip_snapshot is not None:
            self._hooks.on_clip_snapshot(jpeg, clip_id)
        else:
            self._hooks.on_snapshot(jpeg)

    def _finalize(self, pending: PendingClip) -> FinishedFile:
        """Finish a clip's file; on failure make room and retry once, else keep the partial.

        Raises:
            StorageError: Still failing; the partial file and its ``recording`` row
                stay, to be finished before a later clip or repaired at start-up.
        """
        try:
            return finalize(pending.partial, pending.final)
        except NothingPlayableError as err:
            self._store.discard(pending, str(err))
            raise
        except StorageError as err:
            if self._drop_if_gone(pending):
                raise NothingPlayableError(f"clip {pending.id} dropped: {_GONE}") from None
            _LOGGER.warning("Cannot finish clip %s (%s); making room and retrying", pending.id, err)
        self._make_room()
        try:
            return finalize(pending.partial, pending.final)
        except NothingPlayableError as err:
            self._store.discard(pending, str(err))
            raise
        except StorageError as err:
            self._stranded.append(pending)
            raise StorageError(f"{err} (clip {pending.id} kept, to be finished later)") from None

    def _drop_if_gone(self, pending: PendingClip) -> bool:
        """Forget a clip whose partial file is gone (deleted by hand or by another program).

        Nothing is left to finish: kept, it would be retried before every clip, for good.
        """
        if pending.partial.exists() or pending.final.exists():
            return False
        self._store.discard(pending, _GONE, "missing")
        _LOGGER.warning("Clip %s dropped: %s", pending.id, _GONE)
        return True

    def _make_room(self) -> None:
        """Let retention free disk space; a failure there must not cost the clip."""
        try:
            problem = self._hooks.before_clip()
        except Exception:
            _LOGGER.exception("Could not make room for clips of %s", self.camera)
            return
        self._room_problem = problem if isinstance(problem, str) else None
        if self._room_problem is not None and self._error_kind != _STOPPED:
            # A clip that failed says more than the warning before it: it stands until
            # a clip is kept again.
            self._set_error(self._room_problem)

    def _salvage(self) -> None:
        """Finish and list the clips a full disk left unfinished, now that there may be room."""
        self._list_unlisted()
        for pending in list(self._stranded):
            if self._drop_if_gone(pending):
                self._stranded.remove(pending)
                continue
            try:
                finished = finalize(pending.partial, pending.final)
            except NothingPlayableError as err:
                self._stranded.remove(pending)
                self._store.discard(pending, str(err))
                continue
            except StorageError as err:
                _LOGGER.debug("Clip %s still cannot be finished: %s", pending.id, err)
                continue
            self._stranded.remove(pending)
            try:
                info = self._store.complete(pending, duration=finished.duration, size=finished.size)
            except StorageError as err:
                _LOGGER.warning("Clip %s finished but not indexed: %s", pending.id, err)
                self._unlisted.append((pending, finished, False))
                continue
            _LOGGER.warning("Clip %s was finished late (%.1f s kept)", info.id, info.duration)
            self._hooks.on_clip(info)

    def _list_unlisted(self) -> None:
        """Index the finished clips the index could not take when they were finished.

        Until then their row reads ``recording``: they are not listed, and only a
        restart would repair them.
        """
        for entry in list(self._unlisted):
            pending, finished, snapshot = entry
            try:
                info = self._store.complete(
                    pending, duration=finished.duration, size=finished.size, snapshot=snapshot
                )
            except StorageError as err:
                _LOGGER.debug("Clip %s still cannot be indexed: %s", pending.id, err)
                continue
            self._unlisted.remove(entry)
            _LOGGER.warning("Clip %s was indexed late (%.1f s)", info.id, info.duration)
            self._hooks.on_clip(info)

    def _failed(self, message: str) -> None:
        writer, pending = self._writer, self._pending
        self._writer, self._pending = None, None
        if writer is not None:
            self._resume = self._open_reason  # the event goes on once the disk allows
        if writer is not None and pending is not None and writer.frames > 0:
            # Keep what was written: the clip is finished once there is room again.
            writer.release()
            self._stranded.append(pending)
            self._cut.append(pending.id)
            _LOGGER.warning("Clip %s stopped early; what was written is kept", pending.id)
        else:
            if writer is not None:
                writer.abort()
            if pending is not None:
                self._store.discard(pending, message)
        self._set_error(message, kind=_STOPPED)

    def _set_error(self, message: str | None, *, kind: str = _AT_RISK) -> None:
        """Report why recording fails or is at risk, once per outage.

        While the disk stays full, every attempt (one every 2 s) fails again, each
        naming its own clip or free space: the first message of a kind stands, and
        is logged and reported once, until recording works again or the kind changes.
        """
        kind_now = None if message is None else kind
        if kind_now is not None and kind_now == self._error_kind:
            if message != self._error:
                _LOGGER.debug("Recording on %s still %s: %s", self.camera, kind, message)
            return
        if message is None and self._error is None:
            return
        self._error, self._error_kind = message, kind_now
        if message is None:
            _LOGGER.warning("Recording on %s works again", self.camera)
        elif kind == _AT_RISK:
            _LOGGER.error("Recording on %s is at risk: %s", self.camera, message)
        else:
            _LOGGER.error("Recording on %s stopped: %s", self.camera, message)
        self._hooks.on_error(message)
