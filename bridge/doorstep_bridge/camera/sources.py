"""Camera sources read with PyAV: RTSP (over TCP), HTTP MJPEG and local files.

A source is a blocking generator of :class:`EncodedPacket` run on a worker
thread. It normalises what cameras get wrong so the rest of the bridge does not
have to: H.264 is turned into Annex B with the parameter sets in front of every
keyframe (MP4 files carry them out of band; some cameras only in the SDP),
packets before the first keyframe are dropped, missing timestamps are repaired
(media.md: the first IDR after connecting may come without a ``pts``) and every
packet gets a wall-clock capture time. Local files are paced in real time and
loop, so a file behaves like a camera.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
import errno
from fractions import Fraction
import logging
from pathlib import Path
import socket
import threading
import time
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import av

from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.models import StreamStatus
from doorstep_bridge.packets import EncodedPacket, StreamInfo
from doorstep_bridge.urls import redact_url

_LOGGER = logging.getLogger(__name__)

#: media.md: default probing makes opening an RTSP stream take ~1.9 s; these take 0.1 s.
RTSP_OPTIONS = {
    "rtsp_transport": "tcp",
    "probesize": "32768",
    "analyzeduration": "0",
}
OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 5.0
#: When a wall-clock estimate drifts further than this from arrival, re-anchor it.
MAX_CLOCK_DRIFT = 2.0
#: When even the promptest packets arrive this much later (or earlier) than their estimated
#: capture, the camera's clock and ours have drifted apart: the estimate is moved by that much.
CLOCK_SETTLE = 0.25
#: How fast (seconds per second) the promptest arrival may be taken to move later: far
#: faster than any camera clock drifts (a few hundred ppm at worst), far slower than a
#: reader that falls behind.
CLOCK_FLOOR_RISE = 0.01
DEFAULT_FPS = 15.0
"""Frame rate assumed for a stream that does not say, or says something implausible."""
#: How long the probe that explains an unexplained failure waits for the camera's host.
PROBE_TIMEOUT = 3.0

#: Socket errors that mean the host cannot be reached (rather than refusing).
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
)


class SourceError(CameraError):
    """A camera source failed, and which kind of failure it was.

    Attributes:
        status: What the camera's status becomes (``auth_failed``, ``refused``...).
    """

    def __init__(self, message: str, status: StreamStatus) -> None:
        super().__init__(message)
        self.status = status


def failure_status(err: BaseException) -> StreamStatus:
    """The stream status an error of a source stands for (``error`` when it does not say)."""
    if isinstance(err, SourceError):
        return err.status
    return StreamStatus.ERROR


def os_error_status(err: OSError) -> StreamStatus:
    """``refused``, ``unreachable`` or ``error`` for a socket error."""
    if isinstance(err, ConnectionRefusedError) or err.errno == errno.ECONNREFUSED:
        return StreamStatus.REFUSED
    if isinstance(err, socket.gaierror | TimeoutError) or err.errno in _UNREACHABLE_ERRNOS:
        return StreamStatus.UNREACHABLE
    return StreamStatus.ERROR


def av_error_status(err: BaseException) -> StreamStatus:
    """The stream status an FFmpeg (PyAV) error stands for."""
    if isinstance(err, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return StreamStatus.AUTH_FAILED
    if isinstance(err, av.error.HTTPNotFoundError):
        return StreamStatus.NOT_FOUND
    if isinstance(err, av.error.ExitError):  # PyAV's timeout interrupts the read
        return StreamStatus.UNREACHABLE
    if isinstance(err, OSError):
        return os_error_status(err)
    return StreamStatus.ERROR


def probe_host(url: str, timeout: float = PROBE_TIMEOUT) -> SourceError | None:
    """Why the host of a network URL cannot be reached, or None when it answers.

    FFmpeg reports a name that does not resolve as a plain input/output error;
    a short look at the host (resolve, then a TCP connection) tells the user
    which of "wrong address", "nothing listens" and "no answer" it is.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host:
        return None
    try:
        port = parts.port or {"rtsp": 554, "rtsps": 322, "https": 443}.get(scheme, 80)
    except ValueError:
        return SourceError("bad port in the camera URL", StreamStatus.ERROR)
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return SourceError(f"cannot resolve the camera's host {host}", StreamStatus.UNREACHABLE)
    except OSError as err:
        status = os_error_status(err)
        reason = "connection refused" if status is StreamStatus.REFUSED else _describe(err)
        return SourceError(f"cannot connect to {where}: {reason}", status)


class Source(Protocol):
    """A camera stream: yields packets until stopped or until the stream fails."""

    @property
    def description(self) -> str:
        """What the source is, without credentials (for logs)."""
        ...

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        """Open the stream and yield its packets until ``stop`` is set.

        Raises:
            CameraError: The stream could not be opened or failed while reading.
        """
        ...


def source_kind(url: str) -> str:
    """``rtsp``, ``mjpeg``, ``file`` or ``demo`` for a configured source string."""
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in {"rtsp", "rtsps"}:
        return "rtsp"
    if scheme in {"http", "https"}:
        return "mjpeg"
    if scheme == "demo":
        return "demo"
    return "file"


def file_path(url: str) -> Path:
    """The local path of a ``file://`` URL or a plain path.

    The URL's path is percent-decoded: ``file:///srv/front%20door.mp4`` is
    ``/srv/front door.mp4``. The config refuses a URL with a host or no path.
    """
    if url.lower().startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    return Path(url)


def _has_sps(data: bytes) -> bool:
    """True when an Annex B access unit contains an H.264 sequence parameter set."""
    start = data.find(b"\x00\x00\x01")
    while 0 <= start < len(data) - 3:
        if data[start + 3] & 0x1F == 7:
            return True
        start = data.find(b"\x00\x00\x01", start + 3)
    return False


def _sps_of(data: bytes) -> bytes | None:
    """The H.264 sequence parameter set in an Annex B access unit, or None."""
    start = data.find(b"\x00\x00\x01")
    while 0 <= start < len(data) - 3:
        if data[start + 3] & 0x1F == 7:
            end = data.find(b"\x00\x00\x01", start + 3)
            return data[start + 3 : end if end >= 0 else len(data)].rstrip(b"\x00")
        start = data.find(b"\x00\x00\x01", start + 3)
    return None


class SizeWatch:
    """Notices an H.264 camera changing its picture size within one connection.

    Changing the resolution in a camera's settings often keeps the RTSP session and
    only sends a new sequence parameter set. Privacy masks are placed (and snapshots
    masked) from the size a packet's :class:`StreamInfo` says, so it must follow.
    A keyframe is decoded only when its parameter set differs from the last one,
    which for a camera left alone is never.
    """

    def __init__(self, description: str) -> None:
        self._description = description
        self._sps: bytes | None = None

    def check(self, info: StreamInfo, data: bytes) -> StreamInfo:
        """``info``, or a copy with the new size when ``data`` (a keyframe) changed it."""
        sps = _sps_of(data)
        if sps is None or sps == self._sps:
            return info
        first = self._sps is None
        self._sps = sps
        if first:
            return info  # the readers learn the size of the first picture themselves
        probed = probe_size(info, data)
        if (probed.width, probed.height) == (info.width, info.height) or not probed.width:
            return info
        _LOGGER.info(
            "%s: the camera changed its picture size from %dx%d to %dx%d",
            self._description,
            info.width,
            info.height,
            probed.width,
            probed.height,
        )
        return probed


class PacketClock:
    """Turns stream timestamps into monotonic pts and wall-clock capture times.

    Output timestamps start at 0 and keep increasing across :meth:`restart`
    (a looping file), so a clip never sees time go backwards.

    Args:
        time_base: Unit of the incoming timestamps.
        fps: Nominal frame rate, used to fill in missing timestamps.
        now: Wall clock (injectable for tests).
        arrival: Ignore the stream's timestamps and time frames by their arrival (MJPEG).
        steady: A clock nobody sets, that arrival times are measured on (injectable).
    """

    def __init__(
        self,
        time_base: Fraction,
        fps: float,
        now: Callable[[], float] = time.time,
        *,
        arrival: bool = False,
        steady: Callable[[], float] = time.monotonic,
    ) -> None:
        self._time_base = time_base
        self._seconds_per_tick = float(time_base)  # floats: Fraction maths per packet is slow
        self._arrival = arrival
        self._frame = max(1, round(1 / (fps * time_base))) if fps > 0 else 1
        self._now = now
        self._steady = steady
        #: Arrival timing: the wall clock minus the steady one, as last anchored.
        self._wall_offset: float | None = None
        self._offset = 0
        self._fresh = True
        self._last_pts: int | None = None
        self._last_dts: int | None = None
        self._anchor: tuple[int, float] | None = None
        #: How much later than estimated the promptest recent packet arrived, and when.
        self._floor = (0.0, 0.0)

    @property
    def frame_duration(self) -> int:
        """One frame in ``time_base`` units."""
        return self._frame

    def restart(self) -> None:
        """The input starts over (a looping file): continue after the last packet."""
        self._fresh = True

    def stamp(
        self, pts: int | None, dts: int | None, arrived: float | None = None
    ) -> tuple[int, int, float]:
        """Repair and shift one packet's timestamps; returns (pts, dts, wall).

        ``arrived`` is when a packet that was held back arrived (wall clock); by
        default, now.
        """
        following = self._last_pts + self._frame if self._last_pts is not None else 0
        if self._arrival:
            return self._arrived(following)
        if pts is None:
            pts = dts
        if self._fresh:
            self._fresh = False
            self._offset = following - (pts if pts is not None else 0)
        out_pts = pts + self._offset if pts is not None else following
        out_dts = dts + self._offset if dts is not None else out_pts
        out_dts = min(out_dts, out_pts)
        if self._last_dts is not None and out_dts <= self._last_dts:
            # A timestamp that does not move on: a camera that repeats one (some send the
            # same for every frame) or sets its clock back. Moved on by a tick only, a
            # clip's frames would all fall within microseconds and play thousands of times
            # too fast: this frame comes a frame after the last, and the ones after it follow.
            step = self._last_dts + self._frame - out_dts
            self._offset += step
            out_dts += step
            out_pts += step
        self._last_pts = max(out_pts, self._last_pts or 0)
        self._last_dts = out_dts
        now = self._now() if arrived is None else arrived
        anchor = self._anchor
        wall = now if anchor is None else anchor[1] + (out_pts - anchor[0]) * self._seconds_per_tick
        if anchor is None or abs(wall - now) > MAX_CLOCK_DRIFT:
            # The first packet, or timestamps that jumped: this packet is the new anchor.
            self._anchor, self._floor = (out_pts, now), (0.0, now)
            return out_pts, out_dts, now
        shift = self._settle(now - wall, now)
        if shift:
            self._anchor = (anchor[0], anchor[1] + shift)
        return out_pts, out_dts, wall + shift

    def _arrived(self, following: int) -> tuple[int, int, float]:
        """Time a frame by its arrival (MJPEG over HTTP has no real timestamps).

        Measured on the steady clock: a step of the wall clock (NTP setting the stale
        clock of a board without a real-time clock, a clock set back) would otherwise put
        a gap of hours into a clip, or make its timestamps go back. The capture time
        follows such a step as an RTSP camera's does: re-anchored to the wall clock once
        it is more than ``MAX_CLOCK_DRIFT`` off.
        """
        now, steady = self._now(), self._steady()
        if self._anchor is None:
            self._anchor = (following, steady)
        pts = self._anchor[0] + round((steady - self._anchor[1]) / self._seconds_per_tick)
        pts = max(pts, following)
        self._last_pts = self._last_dts = pts
        offset = self._wall_offset
        if offset is None or abs(steady + offset - now) > MAX_CLOCK_DRIFT:
            offset = self._wall_offset = now - steady
        return pts, pts, steady + offset

    def _settle(self, late: float, now: float) -> float:
        """How far to move the capture estimate, given how late this packet arrived.

        A camera's clock runs a little fast or slow against ours (tens of ppm: a second
        every several hours). Left alone, the estimate ends up to ``MAX_CLOCK_DRIFT`` behind
        arrival, and the live view, which skips frames captured more than a second ago,
        would show only keyframes for hours. Moved by the lateness of the promptest
        recent packets instead, the estimate stays within ``CLOCK_SETTLE`` of arrival,
        while one late packet (a network stall, a reader behind) moves nothing.
        """
        floor, since = self._floor
        floor = min(floor + (now - since) * CLOCK_FLOOR_RISE, late)
        if abs(floor) <= CLOCK_SETTLE:
            self._floor = (floor, now)
            return 0.0
        self._floor = (0.0, now)  # the moved estimate: the promptest packet is on time
        return floor


class AvSource:
    """RTSP, HTTP MJPEG or a local file, demuxed with PyAV.

    Args:
        url: The configured source (may contain credentials; never logged).
        loop: For files: start over at the end (a file then behaves like a camera).
        realtime: For files: deliver packets at the file's own pace.
    """

    def __init__(self, url: str, *, loop: bool = True, realtime: bool = True) -> None:
        self._url = url
        self._kind = source_kind(url)
        self._loop = loop
        self._realtime = realtime

    @property
    def description(self) -> str:
        """The source without credentials."""
        return redact_url(self._url)

    def _open(self) -> Any:
        target: str
        options: dict[str, str] = {}
        fmt: str | None = None
        if self._kind == "rtsp":
            target = self._url
            options = dict(RTSP_OPTIONS)
        elif self._kind == "mjpeg":
            target = self._url
            fmt = "mpjpeg"
            options = {"probesize": "32768", "analyzeduration": "0"}
        else:
            path = file_path(self._url)
            if not path.is_file():
                raise SourceError(f"{path}: no such file", StreamStatus.NOT_FOUND)
            target = str(path)
        try:
            return av.open(
                target, "r", format=fmt, options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT)
            )
        except (av.FFmpegError, OSError) as err:
            if isinstance(err, av.error.ExitError):
                # PyAV's timeout stopped FFmpeg ("Immediate exit requested"): the host
                # took the connection but nothing answered (a hung camera).
                raise SourceError(
                    f"cannot open {self.description}: no answer from the camera",
                    StreamStatus.UNREACHABLE,
                ) from None
            status = av_error_status(err)
            if status is StreamStatus.ERROR and self._kind != "file":
                probed = probe_host(self._url)
                if probed is not None:
                    raise SourceError(
                        f"cannot open {self.description}: {probed}", probed.status
                    ) from None
            raise SourceError(f"cannot open {self.description}: {_describe(err)}", status) from None

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        """Open the stream and yield normalised packets until ``stop`` is set."""
        container = self._open()
        try:
            if not container.streams.video:
                raise SourceError(f"{self.description}: no video stream", StreamStatus.NO_VIDEO)
            stream = container.streams.video[0]
            yield from self._read(container, stream, stop)
        finally:
            container.close()

    def _read_failed(self, why: str, status: StreamStatus, delivered: bool) -> SourceError:
        """The error for a stream that stopped; one that never gave a picture has no video."""
        if not delivered and status is StreamStatus.ERROR:
            return SourceError(
                f"{self.description}: {why} before any picture", StreamStatus.NO_VIDEO
            )
        return SourceError(f"{self.description}: {why}", status)

    def _read(  # noqa: PLR0912, PLR0915 - one loop normalising what cameras get wrong
        self, container: Any, stream: Any, stop: threading.Event
    ) -> Iterator[EncodedPacket]:
        ctx = stream.codec_context
        codec = ctx.name
        rate = stream.average_rate or stream.guessed_rate
        fps = plausible_fps(float(rate) if rate else None)
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        if codec == "mjpeg":
            time_base = Fraction(1, 90000)  # stamped on arrival
        extradata = bytes(ctx.extradata or b"")
        info = StreamInfo(
            codec, ctx.width, ctx.height, fps, time_base, b"" if codec == "h264" else extradata
        )
        bsf = None
        if codec == "h264" and extradata[:1] == b"\x01":
            # avcC (MP4 files): convert to Annex B with parameter sets on every keyframe.
            bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        clock = PacketClock(time_base, fps, arrival=codec == "mjpeg")
        assembler = AccessUnits() if codec == "h264" else None
        sizes = SizeWatch(self.description) if codec == "h264" else None
        started = time.monotonic()
        first_pts: int | None = None
        seen_key = False
        delivered = False
        demuxer = container.demux(stream)
        while not stop.is_set():
            try:
                raw = next(demuxer, None)
            except av.error.ExitError:
                # PyAV's read timeout: a camera that stalls without closing (an MJPEG
                # camera whose encoder hung, a cable pulled). Said as the RTSP client says it.
                raise SourceError(
                    f"{self.description}: no data for {READ_TIMEOUT:.0f} s",
                    StreamStatus.NO_VIDEO,
                ) from None
            except (av.FFmpegError, OSError) as err:
                raise self._read_failed(
                    f"read failed: {_describe(err)}", av_error_status(err), delivered
                ) from None
            if raw is None or raw.size == 0:
                if self._kind == "file" and self._loop:
                    container.seek(0)
                    demuxer = container.demux(stream)
                    clock.restart()
                    if assembler is not None:
                        assembler = AccessUnits()  # the pending unit is the file's last frame
                    seen_key = False
                    continue
                raise self._read_failed("end of stream", StreamStatus.ERROR, delivered)
            units: list[Unit] = []
            for packet in bsf.filter(raw) if bsf is not None else (raw,):
                unit = Unit(
                    bytes(packet),
                    packet.pts,
                    packet.dts,
                    bool(packet.is_keyframe) or codec == "mjpeg",
                )
                units.extend(assembler.push(unit) if assembler is not None else (unit,))
            for unit in units:
                if not seen_key and not unit.keyframe:
                    continue  # undecodable before the first keyframe
                seen_key = True
                data = unit.data
                if codec == "h264" and unit.keyframe and bsf is None and not _has_sps(data):
                    data = extradata + data  # parameter sets only in the SDP
                pts, dts, wall = clock.stamp(unit.pts, unit.dts)
                if info.width == 0:
                    info = probe_size(info, data)
                if sizes is not None and unit.keyframe:
                    info = sizes.check(info, data)
                if self._kind == "file" and self._realtime:
                    first_pts = pts if first_pts is None else first_pts
                    delay = started + float((pts - first_pts) * time_base) - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        return
                delivered = True
                yield EncodedPacket(data, pts, dts, unit.keyframe, wall, info)


@dataclass(slots=True)
class Unit:
    """A demuxed packet (or a whole access unit once assembled)."""

    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool


def _starts_picture(data: bytes) -> bool | None:
    """Whether an Annex B chunk's first slice starts a picture (None: no slice in it).

    A slice with ``first_mb_in_slice == 0`` (the ue(v) code "1", i.e. the top bit
    of the slice header set) starts a new picture; other slices continue one.
    """
    start = data.find(b"\x00\x00\x01")
    while 0 <= start < len(data) - 4:
        nal_type = data[start + 3] & 0x1F
        if nal_type in {1, 5}:
            return bool(data[start + 4] & 0x80)
        start = data.find(b"\x00\x00\x01", start + 3)
    return None


class AccessUnits:
    """Re-joins H.264 access units that the RTSP demuxer split into several packets.

    Multi-slice pictures (and parameter sets repeated between slices) make
    FFmpeg's parser cut one picture into packets that share a timestamp, the
    first of them sometimes without one. Recording those as separate samples
    would break the MP4, so packets are held back until the next picture starts.
    """

    def __init__(self) -> None:
        self._pending: Unit | None = None
        self._prefix = b""

    def push(self, unit: Unit) -> list[Unit]:
        """Add a packet; returns the access units it completed (zero or one)."""
        starts = _starts_picture(unit.data)
        if starts is None:
            self._prefix += unit.data  # parameter sets / SEI only: belong to the next picture
            return []
        if not starts and self._pending is not None:
            pending = self._pending
            pending.data += self._prefix + unit.data
            self._prefix = b""
            pending.keyframe = pending.keyframe or unit.keyframe
            if pending.pts is None:
                pending.pts = unit.pts
            if pending.dts is None:
                pending.dts = unit.dts
            return []
        done = [self._pending] if self._pending is not None else []
        unit.data = self._prefix + unit.data
        self._prefix = b""
        self._pending = unit
        return done


def plausible_fps(fps: float | None) -> float:
    """``fps`` when a camera could send it (1 to 120), else :data:`DEFAULT_FPS`."""
    return fps if fps is not None and 1.0 <= fps <= 120.0 else DEFAULT_FPS


def probe_size(info: StreamInfo, data: bytes) -> StreamInfo:
    """Decode one keyframe to learn the frame size when the stream did not say."""
    try:
        ctx: Any = av.CodecContext.create(info.codec, "r")
        if info.extradata:
            ctx.extradata = info.extradata
        for frame in ctx.decode(av.Packet(data)):
            return replace(info, width=frame.width, height=frame.height)
        # A stream with B-frames: the decoder holds its first picture back to put frames
        # in display order, but the parameter sets it read already gave the size.
        if ctx.width and ctx.height:
            return replace(info, width=ctx.width, height=ctx.height)
    except av.FFmpegError:
        pass
    return info


def _describe(err: BaseException) -> str:
    """An FFmpeg error without the URL it may embed (URLs can carry passwords)."""
    if isinstance(err, av.FFmpegError):
        return str(err.strerror or type(err).__name__)
    return type(err).__name__
