"""Render a share: the footage of a window, redacted, as one new H.264 MP4.

For each camera in turn, the clips overlapping the window are decoded, cut to
the window, privacy masks filled (again: recordings already have them burnt in,
this is defence in depth), faces pixelated unless the approver chose otherwise,
a small watermark at the top (the share id, camera and time, the recipient and the
link's expiry) added, and encoded with libx264 into ``<file>.part``, renamed to the
final name only when complete.

Faces are looked for about once a second of video (by the frames' timestamps) with
the CNN detector (the whole frame, then small faces at full resolution where the
picture changed), 5 times a second (mostly near what changed) with the Haar
fallback. The frames in between wait for the next search and are covered by the
boxes of the searches just before *and* just after them, and by the path a face
swept from one to the next. When the faces of two searches do not link up (one
came, went, or moved beyond the sweep's reach), the frames between are searched
too, by halves, down to single frames, so a face moving between two searches stays
covered. Blocking: call from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
import itertools
import logging
from pathlib import Path
import threading
from typing import Any, TypeAlias

import av

from doorstep_bridge.convert import reformat
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.sharing.faces import CnnFaceFinder, CnnTracker, export_finder
from doorstep_bridge.sharing.redact import (
    Box,
    FaceTracker,
    Finder,
    Plane,
    YuvFrame,
    blur_faces,
    links,
    pad,
    sweep,
    watermark,
)
from doorstep_bridge.validation import Polygon

_LOGGER = logging.getLogger(__name__)

#: Milliseconds: the output's time base.
TIME_BASE = Fraction(1, 1000)
#: Faces are looked for about this many times per second of video with the Haar
#: fallback (cheap, and mostly only near what changed) ...
DETECTIONS_PER_SECOND = 5.0
#: ... and with the CNN, which searches the whole frame each time: the share export's
#: budget (1 CPU-s per second of 1080p video, decoding and encoding included) allows this.
CNN_DETECTIONS_PER_SECOND = 1.0
#: At most this many frames wait for the search after them (a second at 60 fps: 190 MB
#: of 1080p yuv420p frames); with odd timestamps, the search comes earlier.
MAX_HELD = 60


class RenderCancelledError(Exception):
    """The share was revoked while rendering."""


@dataclass(frozen=True, slots=True)
class Segment:
    """The part of one clip that falls in the window."""

    camera: str
    path: Path
    clip_start: datetime
    keep_from: datetime
    keep_until: datetime
    masks: tuple[Polygon, ...] = ()

    @property
    def seconds(self) -> float:
        """Length of the kept part."""
        return max(0.0, (self.keep_until - self.keep_from).total_seconds())


@dataclass(frozen=True, slots=True)
class RenderJob:
    """Everything needed to render one share."""

    share_id: str
    segments: tuple[Segment, ...]
    output: Path
    redact_faces: bool = True
    #: Who the export is for, and until when its link works: in the watermark.
    recipient: str = ""
    link_expires: datetime | None = None
    crf: int = 23
    preset: str = "veryfast"


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What was written."""

    frames: int
    seconds: float
    size: int
    faces: int


Progress: TypeAlias = Callable[[float], None]


@dataclass(slots=True)
class _Decoded:
    array: Plane
    width: int
    height: int
    time: datetime
    pts_ms: int


def _frames(segment: Segment, cancel: threading.Event) -> Iterator[_Decoded]:
    """Decoded frames of `segment` inside its window, as yuv420p arrays."""
    with av.open(str(segment.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first: float | None = None
        for frame in container.decode(stream):
            if cancel.is_set():
                raise RenderCancelledError
            when: float | None = frame.time
            if when is None:
                continue  # a packet without timestamps (seen right after connecting)
            if first is None:
                first = when
            offset = when - first
            moment = segment.clip_start + timedelta(seconds=offset)
            if moment < segment.keep_from:
                continue
            if moment > segment.keep_until:
                break
            width, height = frame.width & ~1, frame.height & ~1
            image = frame
            if frame.format.name != "yuv420p" or (width, height) != (frame.width, frame.height):
                image = reformat(frame, width=width, height=height, format="yuv420p")
            array: Plane = image.to_ndarray()  # type: ignore[assignment]
            yield _Decoded(array, width, height, moment, round(offset * 1000))


class _Encoder:
    """One libx264 MP4 with millisecond timestamps, sized by its first frame."""

    def __init__(self, path: Path, crf: int, preset: str) -> None:
        self._container = av.open(
            str(path), mode="w", format="mp4", options={"movflags": "+faststart"}
        )
        self._crf, self._preset = crf, preset
        self._stream: Any = None
        self.size: tuple[int, int] | None = None
        self._last_pts = -1
        self.frames = 0

    def add(self, array: Plane, width: int, height: int, pts_ms: int) -> None:
        if self._stream is None:
            stream = self._container.add_stream(
                "libx264",
                rate=30,
                options={"crf": str(self._crf), "preset": self._preset},
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            self._stream = stream
            self.size = (width, height)
        frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
        if self.size != (width, height):
            assert self.size is not None
            frame = reformat(frame, width=self.size[0], height=self.size[1])
        pts = max(pts_ms, self._last_pts + 1)
        frame.pts, frame.time_base = pts, TIME_BASE
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    @property
    def next_pts(self) -> int:
        return self._last_pts + 1

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        self._container.close()


def _label(job: RenderJob, camera: str, moment: datetime) -> list[str]:
    """The watermark: the share, camera and time; then the recipient and the link's expiry."""
    lines = [f"Doorstep {job.share_id}  {camera}  {moment.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    second = []
    if job.recipient:
        second.append(f"For {job.recipient[:60]}")
    if job.link_expires is not None:
        second.append(f"link expires {job.link_expires.strftime('%Y-%m-%d %H:%M %Z')}")
    if second:
        lines.append("  ".join(second))
    return lines


def render(job: RenderJob, progress: Progress, cancel: threading.Event) -> RenderResult:
    """Write the share video for `job` (blocking; run in a worker thread).

    Returns a result with ``frames == 0`` (and no file) when no footage fell in
    the window.

    Raises:
        RenderCancelledError: `cancel` was set; the partial file is removed.
        av.error.FFmpegError, OSError: The clips could not be read or written.
    """
    part = job.output.with_name(job.output.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    total = sum(segment.seconds for segment in job.segments) or 1.0
    done = 0.0
    faces = 0
    finder = export_finder() if job.redact_faces else None
    encoder = _Encoder(part, job.crf, job.preset)
    try:
        base = 0
        for segment in job.segments:
            first_pts: int | None = None
            # The recorder's own rasteriser: polygons are in main-stream pixels, which is
            # what clips hold; another frame size gets its own (cached) raster.
            masks = MaskSet(segment.masks)
            reported = done

            def emit(
                item: _Decoded,
                boxes: Sequence[Box],
                *,
                segment: Segment = segment,
                masks: MaskSet = masks,
                base: int = base,
                done: float = done,
            ) -> None:
                nonlocal first_pts, reported
                if masks:
                    masks.fill_yuv420(item.array, item.width, item.height)
                frame = YuvFrame.of(item.array, item.width, item.height)
                blur_faces(frame, boxes)
                if masks and boxes:
                    # A face box across a mask's edge smears the fill: masks win, again.
                    masks.fill_yuv420(item.array, item.width, item.height)
                watermark(frame, _label(job, segment.camera, item.time))
                if first_pts is None:
                    first_pts = item.pts_ms
                encoder.add(item.array, item.width, item.height, base + item.pts_ms - first_pts)
                position = done + (item.time - segment.keep_from).total_seconds()
                if position - reported >= total / 100:  # every 1 %: cheap for the caller
                    reported = position
                    progress(min(1.0, position / total))

            faces += _redact_segment(segment, finder, emit, cancel)
            done += segment.seconds
            progress(min(1.0, done / total))
            if first_pts is not None:
                base = encoder.next_pts + 33
        encoder.close()
    except BaseException:
        encoder_close_quietly(encoder)
        part.unlink(missing_ok=True)
        raise
    if encoder.frames == 0:
        part.unlink(missing_ok=True)
        return RenderResult(frames=0, seconds=0.0, size=0, faces=0)
    part.replace(job.output)
    return RenderResult(
        frames=encoder.frames,
        seconds=encoder.next_pts / 1000,
        size=job.output.stat().st_size,
        faces=faces,
    )


def encoder_close_quietly(encoder: _Encoder) -> None:
    """Close a failed encoder without masking the original error."""
    try:
        encoder.close()
    except Exception:
        _LOGGER.debug("Closing a failed render", exc_info=True)


def _redact_segment(
    segment: Segment,
    finder: Finder | None,
    emit: Callable[[_Decoded, Sequence[Box]], None],
    cancel: threading.Event,
) -> int:
    """Run one segment's frames through face detection and `emit`; returns faces seen."""
    if finder is None:
        for item in _frames(segment, cancel):
            emit(item, ())
        return 0
    faces = 0
    tracker: FaceTracker | CnnTracker
    if isinstance(finder, CnnFaceFinder):
        # The whole frame, then small faces at full resolution where things changed.
        rate = CNN_DETECTIONS_PER_SECOND
        tracker = CnnTracker(finder)
    else:
        # Whole-frame searches about once a second, in between only where things changed.
        rate = DETECTIONS_PER_SECOND
        tracker = FaceTracker(finder, full_every=round(DETECTIONS_PER_SECOND))
    # Milliseconds of video between searches, by the frames' own timestamps: a camera's
    # first frames can come a few ms apart, so the first gap says nothing of the rate.
    # One ms less for timestamps rounded to the ms.
    interval = 1000 / rate - 1
    last_search: int | None = None
    waiting: list[_Decoded] = []
    # Boxes of the two detections before the frames in `waiting`: a face the detector
    # misses once is still covered by where it was a moment ago.
    recent: list[list[Box]] = [[], []]

    def search(on: _Decoded, *, remember: bool = True) -> list[Box]:
        luma = YuvFrame.of(on.array, on.width, on.height).y
        return [pad(box, on.width, on.height) for box in tracker.find(luma, remember=remember)]

    def release(on: _Decoded) -> list[Box]:
        """Detect faces on `on`, then emit the waiting frames covered on both sides."""
        nonlocal faces, waiting
        found = search(on)
        faces += len(found)
        covering = recent[0] + recent[1] + found + sweep(recent[1], found)
        # Boxes at the searched frames, by position in `waiting` (-1: the previous search).
        searched = {-1: recent[1], len(waiting) - 1: found}

        def look_between(before: int, after: int) -> None:
            # A face that came, went or jumped between two searches was somewhere in the
            # frames between them: search the middle one, then each half that still
            # does not link up, down to single frames.
            if after - before < 2 or links(searched[before], searched[after]):
                return
            middle = (before + after) // 2
            searched[middle] = search(waiting[middle], remember=False)
            look_between(before, middle)
            look_between(middle, after)

        look_between(-1, len(waiting) - 1)
        positions = sorted(searched)
        for before, after in itertools.pairwise(positions):
            # The frames after one searched frame, up to and including the next.
            covered = covering + _boxes_around(searched[before], searched[after], covering)
            for held in waiting[before + 1 : after + 1]:
                emit(held, covered)
        waiting = []
        return found

    for item in _frames(segment, cancel):
        waiting.append(item)
        if (
            last_search is None
            or item.pts_ms - last_search >= interval
            # Bounds memory whatever the timestamps (a camera clock stepping back).
            or len(waiting) >= MAX_HELD
        ):
            last_search = item.pts_ms
            recent = [recent[1], release(item)]
    if waiting:
        # The frames after the last detection: one more on the segment's last frame, so
        # they are covered on both sides like the others.
        release(waiting[-1])
    return faces


def _boxes_around(before: list[Box], after: list[Box], covering: list[Box]) -> list[Box]:
    """The boxes of the searched frames on either side of a frame, not yet in `covering`."""
    known = set(covering)
    extra = dict.fromkeys(before + after + sweep(before, after))
    # Blurring a box twice would change its pixels: each box once.
    return [box for box in extra if box not in known]
