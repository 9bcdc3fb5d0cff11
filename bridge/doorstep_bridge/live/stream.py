"""A camera's live view: one masked MJPEG stream, decoded once, shared by every viewer.

::

    source (detect or main) ─packets─► worker thread: decode → fill masks → JPEG
                                                         │ one encoded frame
                                       event loop: ──────┴─► viewer queues (2 frames each)

The source is opened when the first viewer joins and closed ``linger`` seconds
after the last one leaves: no viewers, no cost. An HTTP MJPEG camera is not opened
a second time: the live view takes the packets the camera pipeline reads already
(many such cameras serve one client at a time). Decoding and encoding run on a
worker thread, never on the event loop. Each viewer holds at most
:data:`VIEWER_QUEUE` frames; a viewer that reads slower than the camera loses
its oldest frames instead of growing a buffer, so a stalled client costs two
JPEGs of memory and nothing else. A worker that falls behind the camera (frames
captured more than :data:`MAX_LAG` ago) skips to the next keyframe instead of
lagging for good. Privacy masks are filled before a frame is encoded: masked
pixels never leave the bridge, live or recorded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Mapping
import contextlib
from dataclasses import dataclass
import functools
import logging
import threading
import time
from typing import Any

import av
import cv2

from doorstep_bridge.camera.pipeline import SourceFactory, open_source
from doorstep_bridge.camera.sources import Source
from doorstep_bridge.config import CameraSettings
from doorstep_bridge.convert import to_ndarray
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.masks import MaskSet

_LOGGER = logging.getLogger(__name__)

#: Frames a viewer may fall behind before its oldest is dropped.
VIEWER_QUEUE = 2
#: Multipart boundary of the MJPEG stream.
BOUNDARY = "frame"
MJPEG_CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
BACKOFF_START = 1.0
BACKOFF_MAX = 10.0
#: A connection that ran this long (seconds) starts the backoff over, as in the camera
#: pipeline: a view left open all day must not wait the longest backoff after every blip.
STABLE_AFTER = 10.0
#: Seconds between reads of a live RTSP connection (a 15 fps camera sends every 67 ms).
LIVE_BATCH_INTERVAL = 0.02
#: A frame captured longer ago than this (seconds) is not decoded: the live view skips to
#: the next keyframe, so a worker that fell behind catches up instead of lagging for good.
MAX_LAG = 1.0


class LiveUnavailableError(Exception):
    """The live view cannot be served; the message says why (shown to clients).

    Attributes:
        reason: A stable key: ``too_many_viewers``, ``source_failed`` or ``stopped``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One masked, encoded frame, shared by every viewer.

    Attributes:
        sequence: Frame number since the stream started (gaps: frames not sent).
        jpeg: The JPEG.
        part: The same JPEG as one part of the multipart MJPEG stream.
        captured: Wall-clock time the camera captured it (seconds since the epoch).
        width: Frame width in pixels.
        height: Frame height in pixels.
    """

    sequence: int
    jpeg: bytes
    part: bytes
    captured: float
    width: int
    height: int


#: What a ``multipart/x-mixed-replace`` stream starts with: the first part's boundary.
MJPEG_START = f"--{BOUNDARY}\r\n".encode("ascii")


def mjpeg_part(jpeg: bytes) -> bytes:
    """A JPEG framed as one part of a ``multipart/x-mixed-replace`` stream.

    The part ends with the next part's boundary (the stream starts with
    :data:`MJPEG_START`): a browser shows a part once it sees the boundary after it,
    so a boundary sent only with the next frame would hold every picture back one
    frame interval (100 ms at 10 fps).
    """
    head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode("ascii")
    return head + jpeg + b"\r\n" + MJPEG_START


def encode_jpeg(frame: Any, masks: MaskSet, quality: int) -> bytes:
    """A decoded PyAV frame as a JPEG, privacy masks filled first.

    Raises:
        CameraError: OpenCV could not encode the picture.
    """
    image = to_ndarray(frame, "bgr24")  # a fresh array: filling it spares the decoder
    if masks:
        masks.fill_bgr(image)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise CameraError("cannot encode a live frame as JPEG")
    return bytes(jpeg.tobytes())


def open_live_source(url: str, on_ring: Callable[[], None] | None = None) -> Source:
    """The pipeline's :func:`open_source`, but an RTSP camera is read without batching.

    The pipeline reads RTSP in batches of 0.2 s (cheap, and recording does not mind);
    a viewer would see that as up to 0.2 s more delay, so while someone watches the
    live connection is read every :data:`LIVE_BATCH_INTERVAL`.
    """
    return open_source(url, on_ring, batch_interval=LIVE_BATCH_INTERVAL)


def _packets(source: Source, stop: threading.Event) -> Generator[EncodedPacket]:
    """The source's packets as a generator, so closing it closes the camera connection."""
    yield from source.packets(stop)


class Viewer:
    """One client of a live stream: the newest frames, at most :data:`VIEWER_QUEUE`.

    Used on the event loop only. Leave with :meth:`close` (or use
    :meth:`LiveStream.watch`).
    """

    def __init__(self, stream: LiveStream) -> None:
        self._stream = stream
        self._frames: deque[LiveFrame] = deque(maxlen=VIEWER_QUEUE)
        self._ready = asyncio.Event()
        self._error: LiveUnavailableError | None = None
        self.received = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        """Frames waiting to be read."""
        return len(self._frames)

    def offer(self, frame: LiveFrame) -> None:
        """A new frame; the oldest waiting one is dropped when the queue is full."""
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def fail(self, error: LiveUnavailableError) -> None:
        """The stream cannot deliver: the next read raises ``error``."""
        self._error = error
        self._ready.set()

    async def next_frame(self) -> LiveFrame:
        """The oldest waiting frame, waiting for one if needed.

        Raises:
            LiveUnavailableError: The stream failed before this viewer got a frame,
                or the bridge is stopping.
        """
        while not self._frames:
            if self._error is not None:
                raise self._error
            self._ready.clear()
            await self._ready.wait()
        self.received += 1
        return self._frames.popleft()

    def close(self) -> None:
        """Leave the stream (idempotent)."""
        self._stream.leave(self)


class LiveStream:
    """One camera's live view.

    Args:
        settings: The camera's settings (its ``live`` section, masks and sources).
        source_factory: Opens camera sources (:func:`open_live_source`).
        main_size: The main stream's frame size as the camera pipeline reads it now
            (None while it does not): places the masks on a detect stream without
            opening the main stream, and follows the camera when its size changes.
        shared_source: The camera pipeline's own reading of a URL, when the live view
            should use it rather than a connection of its own (None: open one).
    """

    def __init__(
        self,
        settings: CameraSettings,
        *,
        source_factory: SourceFactory = open_live_source,
        main_size: Callable[[], tuple[int, int] | None] | None = None,
        shared_source: Callable[[str], Source | None] | None = None,
    ) -> None:
        self.settings = settings
        self._source_factory = source_factory
        self._known_main_size = main_size
        self._shared_source = shared_source
        live = settings.live
        self._url = (
            settings.detect_source
            if live.source == "detect" and settings.detect_source
            else settings.source
        )
        # Masks are drawn in main-stream pixels: streaming another stream needs the
        # main stream's size to scale them.
        self._needs_main_size = bool(settings.privacy_masks) and self._url != settings.source
        self._interval = 1.0 / live.fps
        self._viewers: set[Viewer] = set()
        self._worker: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latest: LiveFrame | None = None
        self._still_masks: MaskSet | None = None
        self._closed = False
        self._lock = threading.Lock()
        #: Connections to the camera opened so far, and how many are open now.
        self.sources_opened = 0
        self.sources_open = 0
        self.frames_encoded = 0
        #: Packets not decoded while waiting for a keyframe (at the start, after an
        #: undecodable packet, or to catch up: see :data:`MAX_LAG`).
        self.frames_skipped = 0

    # -- viewers (event loop) -------------------------------------------------------

    @property
    def viewers(self) -> int:
        """Viewers watching now."""
        return len(self._viewers)

    @property
    def running(self) -> bool:
        """True while the worker (and so the camera connection) is active."""
        return self._worker is not None and self._worker.is_alive()

    @property
    def latest(self) -> LiveFrame | None:
        """The newest frame sent to the viewers; None when nobody watches."""
        return self._latest

    def still(self, frame: Any, captured: float, main_size: tuple[int, int] | None) -> LiveFrame:
        """A frame the camera pipeline decoded already, masked and encoded as a JPEG.

        Blocking (a few ms): call it on a worker thread. It opens no source and
        starts no viewer session: the detect frames are decoded for motion anyway.

        Args:
            frame: A decoded PyAV frame of the stream the pipeline analyses.
            captured: Its capture time (seconds since the epoch).
            main_size: The main stream's frame size, needed to place the masks when
                the frame comes from a separate detect stream.

        Raises:
            CameraError: The masks cannot be placed (main stream size unknown), or
                OpenCV could not encode the picture.
        """
        settings = self.settings
        reference = None
        if settings.privacy_masks and settings.detect_source:
            if main_size is None:
                raise CameraError("cannot place the privacy masks: main stream size unknown")
            reference = main_size
        masks = self._still_masks
        if masks is None or masks.reference != reference:
            masks = self._still_masks = MaskSet(settings.privacy_masks, reference)
        data = encode_jpeg(frame, masks, settings.live.quality)
        return LiveFrame(0, data, mjpeg_part(data), captured, frame.width, frame.height)

    def join(self) -> Viewer:
        """A new viewer; opens the source if it is the first.

        Raises:
            LiveUnavailableError: The camera has ``max_viewers`` viewers already,
                or the bridge is stopping.
        """
        if self._closed:
            raise LiveUnavailableError("stopped", "the bridge is stopping")
        if len(self._viewers) >= self.settings.live.max_viewers:
            raise LiveUnavailableError(
                "too_many_viewers",
                f"camera {self.settings.name} has {len(self._viewers)} live viewers already"
                f" (cameras.{self.settings.name}.live.max_viewers)",
            )
        self._loop = asyncio.get_running_loop()
        viewer = Viewer(self)
        self._viewers.add(viewer)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._stop is None or self._stop.is_set():
            self._start()
        elif self._latest is not None:
            viewer.offer(self._latest)  # a picture at once; the next one follows
        return viewer

    def leave(self, viewer: Viewer) -> None:
        """A viewer is gone; the last one out closes the source (after ``linger``)."""
        self._viewers.discard(viewer)
        if self._viewers or self._stop is None or self._stop.is_set():
            return
        linger = self.settings.live.linger
        if linger <= 0 or self._loop is None:
            self._halt()
        elif self._linger is None:
            self._linger = self._loop.call_later(linger, self._halt_if_idle)

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[Viewer]:
        """Join for the duration of a ``with`` block."""
        viewer = self.join()
        try:
            yield viewer
        finally:
            viewer.close()

    async def close(self) -> None:
        """Bridge shutdown: end every viewer and stop the worker."""
        self._closed = True
        error = LiveUnavailableError("stopped", "the bridge is stopping")
        for viewer in list(self._viewers):
            viewer.fail(error)
        self._halt()
        worker = self._worker
        if worker is not None:
            await asyncio.to_thread(worker.join, 10.0)

    def _halt_if_idle(self) -> None:
        self._linger = None
        if not self._viewers:
            self._halt()

    def _halt(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._stop is not None:
            self._stop.set()
        self._latest = None

    def _start(self) -> None:
        stop = threading.Event()
        self._stop = stop
        self._latest = None
        self._worker = threading.Thread(
            target=self._run, args=(stop,), name=f"live-{self.settings.name}", daemon=True
        )
        self._worker.start()

    def _publish(self, frame: LiveFrame, stop: threading.Event) -> None:
        """On the loop: hand a frame to every viewer (unless the worker was stopped)."""
        if stop.is_set():
            return
        self._latest = frame
        for viewer in self._viewers:
            viewer.offer(frame)

    def _failed(self, message: str, stop: threading.Event) -> None:
        """On the loop: the source failed; viewers still waiting for a first frame give up."""
        if stop.is_set():
            return
        self._latest = None
        error = LiveUnavailableError("source_failed", message)
        for viewer in self._viewers:
            if viewer.received == 0 and viewer.queued == 0:
                viewer.fail(error)

    # -- worker thread --------------------------------------------------------------

    def _call_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
                loop.call_soon_threadsafe(callback, *args)

    def _run(self, stop: threading.Event) -> None:
        backoff = BACKOFF_START
        name = self.settings.name
        _LOGGER.debug("Live view of %s: opening the source", name)
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._consume(stop)
            except CameraError as err:
                why = str(err)
            except Exception as err:  # a bug must not leave viewers waiting forever
                _LOGGER.exception("Live view of %s failed", name)
                why = type(err).__name__
            else:
                why = "the stream ended"
            if stop.is_set():
                break
            if time.monotonic() - started >= STABLE_AFTER:
                backoff = BACKOFF_START
            _LOGGER.warning("Live view of %s: %s; retrying in %.0f s", name, why, backoff)
            self._call_loop(self._failed, f"camera {name}: {why}", stop)
            if stop.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_MAX)
        _LOGGER.debug("Live view of %s: source closed", name)

    def _main_size(self) -> tuple[int, int] | None:
        """The main stream's size as the camera pipeline reads it now, when it does."""
        return self._known_main_size() if self._known_main_size is not None else None

    def _probe_main_size(self, stop: threading.Event) -> tuple[int, int]:
        """The main stream's frame size now (masks are drawn in its pixels).

        Asked again for every connection, never kept: a camera that comes back at
        another resolution (the owner changed it) must not get masks placed for the
        old one, while its clips take them at the new size.
        """
        if (known := self._main_size()) is not None:
            return known
        source = self._open(self.settings.source)
        with contextlib.closing(_packets(source, stop)) as packets:
            for packet in packets:
                if packet.stream.width and packet.stream.height:
                    return (packet.stream.width, packet.stream.height)
        raise CameraError("cannot place the privacy masks: main stream size unknown")

    def _open(self, url: str) -> Source:
        """The pipeline's reading of ``url`` when it shares it, else a connection of our own."""
        if self._shared_source is not None and (shared := self._shared_source(url)) is not None:
            return shared
        return self._source_factory(url, None)

    def _masks_now(self, masks: MaskSet) -> MaskSet:
        """``masks``, or new ones when the main stream reconnected at another size.

        The detect stream this view shows may stay up meanwhile: its masks move with
        the main stream, as the clips' do.
        """
        size = self._main_size()
        if size is None or size == masks.reference:
            return masks
        return MaskSet(self.settings.privacy_masks, size)

    def _consume(self, stop: threading.Event) -> None:
        """One connection to the camera: decode, mask, encode, publish until stopped."""
        settings = self.settings
        reference = self._probe_main_size(stop) if self._needs_main_size else None
        masks = MaskSet(settings.privacy_masks, reference)
        source = self._open(self._url)
        decoder: Any = None
        codec = ""
        need_key = True
        last_sent: float | None = None
        sequence = 0
        with self._lock:
            self.sources_opened += 1
            self.sources_open += 1
        try:
            with contextlib.closing(_packets(source, stop)) as packets:
                for packet in packets:
                    if stop.is_set():
                        return
                    # Behind (a starved CPU, a burst): skip to the next keyframe rather
                    # than show the porch ever later.
                    if not packet.keyframe and (need_key or time.time() - packet.wall > MAX_LAG):
                        need_key = True
                        self.frames_skipped += 1
                        continue
                    now = time.monotonic()
                    due = last_sent is None or now - last_sent >= self._interval * 0.9
                    if not due and packet.stream.codec != "h264":
                        continue  # intra-only codecs need not decode skipped frames
                    if decoder is None or codec != packet.stream.codec:
                        decoder = av.CodecContext.create(packet.stream.codec, "r")
                        decoder.thread_count = 1  # frame threads would add frames of delay
                        if packet.stream.extradata:
                            decoder.extradata = packet.stream.extradata
                        codec = packet.stream.codec
                    need_key = False
                    try:
                        frames = decoder.decode(av.Packet(packet.data))
                    except av.FFmpegError:
                        decoder, need_key = None, True
                        continue
                    if not due:
                        continue
                    if self._needs_main_size and frames:
                        masks = self._masks_now(masks)
                    for frame in frames:
                        data = encode_jpeg(frame, masks, settings.live.quality)
                        sequence += 1
                        last_sent = now
                        self.frames_encoded += 1
                        live = LiveFrame(
                            sequence, data, mjpeg_part(data), packet.wall, frame.width, frame.height
                        )
                        self._call_loop(self._publish, live, stop)
        finally:
            with self._lock:
                self.sources_open -= 1


class LiveHub:
    """Every camera's live stream.

    Args:
        cameras: Each configured camera's settings, by name.
        source_factory: Opens camera sources.
        main_size: A camera's main stream size as its pipeline reads it now (None
            while it does not); without it the live view asks the camera.
        shared_source: A camera's pipeline reading of a URL, when the live view should
            use it (MJPEG cameras); None: the live view opens its own connection.
    """

    def __init__(
        self,
        cameras: Mapping[str, CameraSettings],
        *,
        source_factory: SourceFactory = open_live_source,
        main_size: Callable[[str], tuple[int, int] | None] | None = None,
        shared_source: Callable[[str, str], Source | None] | None = None,
    ) -> None:
        self._streams = {
            name: LiveStream(
                settings,
                source_factory=source_factory,
                main_size=functools.partial(main_size, name) if main_size is not None else None,
                shared_source=(
                    functools.partial(shared_source, name) if shared_source is not None else None
                ),
            )
            for name, settings in cameras.items()
        }

    def stream(self, camera: str) -> LiveStream:
        """A camera's live stream (KeyError when unknown)."""
        return self._streams[camera]

    async def close(self) -> None:
        """End every viewer and close every source."""
        await asyncio.gather(*(stream.close() for stream in self._streams.values()))
