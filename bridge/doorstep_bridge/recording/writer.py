"""Writing one clip: packets → crash-safe partial file → finished, browser-ready MP4.

While a clip records, packets go to ``<id>.partial.mp4``, a *fragmented* MP4
flushed at every keyframe and at least every second: after a ``kill -9``
everything but the last second is readable. When the clip ends, the partial file is remuxed (stream
copy, ~0.05 ms a packet) into a plain MP4 with ``+faststart`` (browsers show the
whole duration at once), written to a temporary file, fsynced and renamed into
place. The same remux repairs a partial file left by a crash.

H.264 sources without privacy masks are stream-copied. Other codecs (MJPEG)
and cameras with privacy masks are decoded and re-encoded with libx264, masks
filled first, so masked pixels never reach the disk. Only a clip being written is
decoded: the decoder and the encoder live as long as their clip. A re-encoded clip
can start at any frame (``show_from``): the packets from the keyframe before it
are decoded only to rebuild that frame, and nothing before it is encoded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
import logging
import os
from pathlib import Path
from typing import Any

import av

from doorstep_bridge.convert import reformat
from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.files import fsync_dir
from doorstep_bridge.packets import EncodedPacket, StreamInfo
from doorstep_bridge.recording.masks import MaskSet

_LOGGER = logging.getLogger(__name__)

PARTIAL_FLAGS = "frag_keyframe+empty_moov+delay_moov+default_base_moof"
FINAL_FLAGS = "+faststart"
OUT_TIME_BASE = Fraction(1, 90000)
#: libx264 settings for re-encoded clips: fast enough for 1080p15 on one core.
ENCODER_OPTIONS = {"preset": "ultrafast", "crf": "24", "tune": "zerolatency"}
#: One thread each for decoding and encoding a clip: threads add ~15 % CPU per frame
#: (measured with bench/pipeline.py) and a bridge runs several cameras in parallel anyway.
CODEC_THREADS = 1


@dataclass(frozen=True, slots=True)
class FinishedFile:
    """A finished MP4 on disk."""

    path: Path
    duration: float
    size: int
    frames: int


class NothingPlayableError(StorageError):
    """A partial clip holds no playable frame: there is nothing to keep."""


def transcodes(stream: StreamInfo, masks: MaskSet) -> bool:
    """True when clips of ``stream`` are re-encoded (privacy masks, or not H.264)."""
    return bool(masks) or not stream.copyable


def _storage_error(err: BaseException, what: str) -> StorageError:
    if isinstance(err, av.FFmpegError):
        return StorageError(f"{what}: {err.strerror or type(err).__name__}")
    return StorageError(f"{what}: {err}")


class ClipWriter:
    """Writes the packets of one clip into a fragmented partial MP4.

    Args:
        partial: Where to write (``<id>.partial.mp4``).
        stream: The source stream the packets come from.
        masks: Privacy masks; when non-empty the clip is re-encoded with them filled.
        comment: Stored in the file's metadata (lets a lost index be rebuilt).
        show_from: For a re-encoded clip: the ``pts`` of its first frame; earlier
            frames (from the first keyframe written) are decoded but not kept.
            None: the clip starts at the first keyframe.
    """

    def __init__(
        self,
        partial: Path,
        stream: StreamInfo,
        masks: MaskSet,
        comment: str = "",
        *,
        show_from: int | None = None,
    ) -> None:
        self.partial = partial
        self.stream = stream
        self.transcode = transcodes(stream, masks)
        self._masks = masks
        self._show_from = show_from if self.transcode else None
        self._base: int | None = None
        self._origin = 0  # the first kept frame's pts, counted from `_base`
        self._last_dts = -1
        self._last_pts = -1  # of the last frame encoded (re-encoded clips)
        self.frames = 0
        try:
            self._out: Any = av.open(
                str(partial),
                "w",
                format="mp4",
                # Fragments end at keyframes or after 1 s, whichever comes first: a
                # crash loses at most the last second, whatever the camera's GOP.
                options={
                    "movflags": PARTIAL_FLAGS,
                    "frag_duration": "1000000",
                    "flush_packets": "1",
                },
            )
            if comment:
                self._out.metadata["comment"] = comment
            if self.transcode:
                self._decoder: Any = av.CodecContext.create(stream.codec, "r")
                self._decoder.thread_count = CODEC_THREADS
                if stream.extradata:
                    self._decoder.extradata = stream.extradata
                self._video: Any = self._out.add_stream("libx264", rate=round(stream.fps) or 15)
                self._video.width = stream.width
                self._video.height = stream.height
                self._video.pix_fmt = "yuv420p"
                self._video.codec_context.time_base = stream.time_base
                self._video.codec_context.gop_size = max(1, round(stream.fps * 2))
                self._video.codec_context.options = dict(ENCODER_OPTIONS)
                self._video.codec_context.thread_count = CODEC_THREADS
            else:
                self._video = self._out.add_mux_stream(
                    "h264", rate=round(stream.fps) or 15, width=stream.width, height=stream.height
                )
                self._video.time_base = OUT_TIME_BASE
        except (av.FFmpegError, OSError) as err:
            raise _storage_error(err, f"cannot create {partial.name}") from None

    def write(self, packet: EncodedPacket) -> None:
        """Add one packet (the first must be a keyframe).

        Raises:
            StorageError: The disk is full or the file cannot be written.
        """
        if self._base is None:
            if not packet.keyframe:
                return
            self._base = packet.pts
            if self._show_from is not None:
                self._origin = max(0, self._show_from - packet.pts)
        try:
            if self.transcode:
                self._write_transcoded(packet)
            else:
                self._write_copy(packet)
        except (av.FFmpegError, OSError) as err:
            raise _storage_error(err, f"cannot write {self.partial.name}") from None

    def _write_copy(self, packet: EncodedPacket) -> None:
        assert self._base is not None
        out = av.Packet(packet.data)
        out.pts = packet.pts - self._base
        out.dts = max(packet.dts - self._base, self._last_dts + 1) if self.frames else 0
        out.pts = max(out.pts, out.dts)
        self._last_dts = out.dts
        out.time_base = packet.stream.time_base
        out.is_keyframe = packet.keyframe
        out.stream = self._video
        self._out.mux(out)
        self.frames += 1

    def _write_transcoded(self, packet: EncodedPacket) -> None:
        assert self._base is not None
        source = av.Packet(packet.data)
        source.pts = packet.pts - self._base
        source.dts = source.pts
        source.time_base = packet.stream.time_base
        try:
            frames = self._decoder.decode(source)
        except av.FFmpegError:
            _LOGGER.debug("Undecodable packet skipped in %s", self.partial.name)
            return
        for frame in frames:
            self._encode(frame)

    def _encode(self, frame: Any) -> None:
        if frame.pts is not None and frame.pts < self._origin:
            return  # before the clip's first frame: decoded only as a reference
        width, height = self.stream.width, self.stream.height
        if frame.width != width or frame.height != height or frame.format.name != "yuv420p":
            frame = reformat(frame, width=width, height=height, format="yuv420p")
        if self._masks:
            # The decoder keeps predicting from this picture: fill a private copy
            # (a no-op when `reformat` already made one).
            frame.make_writable()
            self._masks.fill_frame(frame)
        if frame.pts is not None:
            # The encoder takes increasing times only. A source that stamps pictures as
            # they arrive (in decoding order) gives a B-frame's picture an earlier time
            # than the one shown before it: it goes right after that one.
            frame.pts = max(frame.pts - self._origin, self._last_pts + 1)
            self._last_pts = frame.pts
        frame.time_base = self.stream.time_base
        frame.pict_type = av.video.frame.PictureType.NONE
        self._out.mux(self._video.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the partial file (it stays a valid fragmented MP4)."""
        try:
            if self.transcode:
                for frame in self._decoder.decode(None):
                    self._encode(frame)
                self._out.mux(self._video.encode(None))
            self._out.close()
        except (av.FFmpegError, OSError) as err:
            raise _storage_error(err, f"cannot close {self.partial.name}") from None

    def release(self) -> None:
        """Give up writing but keep the partial file: what reached the disk is a clip.

        Used when the disk fails mid-clip: the fragments flushed so far stay
        readable and are finished later (or repaired at the next start).
        """
        with contextlib.suppress(av.FFmpegError, OSError):
            self._out.close()

    def abort(self) -> None:
        """Give up on this clip: close what can be closed and delete the partial file."""
        with contextlib.suppress(av.FFmpegError, OSError):
            self._out.close()
        self.partial.unlink(missing_ok=True)


def finalize(partial: Path, final: Path) -> FinishedFile:
    """Remux a (possibly truncated) partial MP4 into ``final`` with ``+faststart``.

    Written to a temporary file, fsynced and renamed, so ``final`` is either
    absent or complete. The partial file is removed afterwards.

    Raises:
        NothingPlayableError: Nothing playable in ``partial``.
        StorageError: The disk failed.
    """
    temp = final.with_name(f".{final.name}.tmp")
    frames = 0
    first: Fraction | None = None
    last: Fraction | None = None
    step = Fraction(0)
    try:
        with av.open(str(partial), "r") as source:
            if not source.streams.video:
                raise NothingPlayableError(f"{partial.name}: no video")
            video_in = source.streams.video[0]
            comment = source.metadata.get("comment", "")
            with av.open(str(temp), "w", format="mp4", options={"movflags": FINAL_FLAGS}) as target:
                if comment:
                    target.metadata["comment"] = comment
                video_out = target.add_stream_from_template(video_in)
                for packet in source.demux(video_in):
                    if packet.is_corrupt:
                        # Cut short (a crash, a full disk): this and what follows is lost.
                        break
                    if packet.size == 0 or packet.dts is None or packet.pts is None:
                        continue
                    if frames == 0 and not packet.is_keyframe:
                        continue
                    moment = packet.pts * packet.time_base
                    first = moment if first is None else min(first, moment)
                    last = moment if last is None else max(last, moment)
                    if packet.duration:
                        step = packet.duration * packet.time_base
                    packet.stream = video_out
                    target.mux(packet)
                    frames += 1
                if frames == 0:
                    raise NothingPlayableError(f"{partial.name}: no playable frames")
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        temp.replace(final)
        fsync_dir(final.parent)
    except StorageError:
        temp.unlink(missing_ok=True)
        raise
    except (av.FFmpegError, OSError, ValueError) as err:
        temp.unlink(missing_ok=True)
        raise _storage_error(err, f"cannot finish {final.name}") from None
    partial.unlink(missing_ok=True)
    assert first is not None
    assert last is not None
    return FinishedFile(final, float(last - first + step), final.stat().st_size, frames)


def probe(path: Path) -> tuple[float, int, str]:
    """(duration in seconds, frame count, metadata comment) of a finished MP4.

    Raises:
        StorageError: The file is not a playable MP4.
    """
    try:
        with av.open(str(path), "r") as container:
            if not container.streams.video:
                raise StorageError(f"{path.name}: no video")
            stream = container.streams.video[0]
            frames = stream.frames
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration
                else float((container.duration or 0) / av.time_base)
            )
            return duration, frames, container.metadata.get("comment", "")
    except (av.FFmpegError, OSError) as err:
        raise _storage_error(err, f"{path.name} is not playable") from None
