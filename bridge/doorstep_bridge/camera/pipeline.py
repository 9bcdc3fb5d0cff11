"""One camera's pipeline: reader threads, detect decoding, motion, availability, reconnect.

::

    main source ──packets──► Recorder (pre-roll buffer, clips by stream copy)
         │                      ▲ motion on/off, frames for snapshots
         └─(no detect_source)─► Detection: decode → luma at detect_fps → detector → gate
    detect source ─packets────► Detection

Each source runs on its own thread (PyAV reads block) and reconnects with
exponential backoff (1 s doubling, capped at 30 s). The detect stream is decoded
in full (H.264 needs every frame) but analysed at most ``detect_fps`` times a
second; when neither motion detection nor a snapshot needs frames, decoding
stops until the next keyframe. With a detect source the main stream is never
decoded here: the recorder keeps it as packets, and a camera with privacy masks
decodes it (to mask and re-encode) only while a clip is written. Nothing here
touches the event loop: results go out through :class:`PipelineHooks`, which the
manager hands to the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass, replace
import logging
import queue
import threading
import time
from typing import Any, Protocol, TypeAlias

import av

from doorstep_bridge.camera.demo import DemoSource
from doorstep_bridge.camera.rtsp import BATCH_INTERVAL, RtspSource
from doorstep_bridge.camera.sources import (
    READ_TIMEOUT,
    AvSource,
    Source,
    SourceError,
    failure_status,
    source_kind,
)
from doorstep_bridge.config import CameraSettings
from doorstep_bridge.detect.packages import PackageChange, PackageTracker, doorstep_zone
from doorstep_bridge.detect.person import PersonWatcher
from doorstep_bridge.detect.privacy import PrivacyMasks
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.models import StreamStatus
from doorstep_bridge.motion import MotionDetector
from doorstep_bridge.motion.luma import luma_plane
from doorstep_bridge.motion.settings import MotionSettings
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.recorder import Recorder
from doorstep_bridge.validation import Polygon

_LOGGER = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
#: A stream that ran this long resets the backoff.
STABLE_AFTER = 10.0
#: A failing motion detector is logged at most this often (seconds).
DETECT_ERROR_LOG_EVERY = 60.0
#: Packets a shared stream's reader (the live view) may fall behind before its oldest
#: is dropped: it must never hold the pipeline's reader back.
SHARED_QUEUE = 8


class Gate(Protocol):
    """Hysteresis on per-frame motion (``doorstep_bridge.motion.MotionGate``)."""

    def update(self, moving: bool, now: float) -> bool | None:
        """Feed one frame's verdict; returns the new state when it changes, else None."""
        ...


Receiver: TypeAlias = Callable[[EncodedPacket | None], None]
DetectorFactory: TypeAlias = Callable[[int, int, MotionSettings], MotionDetector]
GateFactory: TypeAlias = Callable[[int, float], Gate]
SourceFactory: TypeAlias = Callable[[str, Callable[[], None] | None], Source]


def open_source(
    url: str, on_ring: Callable[[], None] | None = None, *, batch_interval: float = BATCH_INTERVAL
) -> Source:
    """The source for a configured URL (``on_ring`` is used by the demo only).

    ``batch_interval`` is how often an RTSP camera is read (the live view reads more often).
    """
    kind = source_kind(url)
    if kind == "demo":
        return DemoSource(url, on_ring)
    if kind == "rtsp" and url.lower().startswith("rtsp://"):
        return RtspSource(url, fallback=AvSource(url), batch_interval=batch_interval)
    return AvSource(url)


class SharedStream:
    """A stream the camera pipeline reads, handed on to another reader as a source.

    For MJPEG cameras, whose live view would otherwise open a second connection:
    many of them (ESP32-CAM and other small cameras) serve one client at a time, so
    that connection would get no picture at all. Their reader is not batched, so
    sharing it adds no delay. A reader that falls behind loses its oldest packets
    (every MJPEG packet is a whole picture) and never slows the pipeline.

    Args:
        description: The stream, without credentials.
        tap: Starts handing the stream's packets to a receiver (None: the stream
            was lost); returns what stops it.
    """

    def __init__(self, description: str, tap: Callable[[Receiver], Callable[[], None]]) -> None:
        self._description = description
        self._tap = tap

    @property
    def description(self) -> str:
        """The stream without credentials."""
        return self._description

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        """The pipeline's packets from now on, until ``stop`` or until the stream is lost."""
        waiting: queue.Queue[EncodedPacket | None] = queue.Queue(SHARED_QUEUE)

        def receive(packet: EncodedPacket | None) -> None:  # the pipeline's reader thread
            while True:
                try:
                    waiting.put_nowait(packet)
                except queue.Full:
                    with contextlib.suppress(queue.Empty):  # the reader took one meanwhile
                        waiting.get_nowait()
                else:
                    return

        untap = self._tap(receive)
        try:
            last = time.monotonic()
            while not stop.is_set():
                try:
                    packet = waiting.get(timeout=0.1)
                except queue.Empty:
                    if time.monotonic() - last > READ_TIMEOUT:
                        raise SourceError(
                            f"{self._description}: no data for {READ_TIMEOUT:.0f} s",
                            StreamStatus.NO_VIDEO,
                        ) from None
                    continue
                if packet is None:
                    raise CameraError(f"{self._description}: the camera's stream was lost")
                last = time.monotonic()
                yield packet
        finally:
            untap()


@dataclass(frozen=True, slots=True)
class PipelineHooks:
    """Where a pipeline reports to (called from its threads).

    Attributes:
        on_motion: Motion turned on or off.
        on_availability: The main stream came up (True) or went down (False);
            called on changes only.
        on_status: The main stream's status and its detail (why it is down);
            called on changes only.
        on_person: A person is (True) or no longer is (False) in view; only for
            cameras with person detection on (``cameras.<cam>.person``).
        on_package: A parcel was left in or taken from the camera's ``doorstep``
            motion zone; only for cameras that have one.
        on_main_size: The main stream delivers frames of a new (width, height): at
            its first frame, and when the camera changes its resolution.
    """

    on_motion: Callable[[bool], None]
    on_availability: Callable[[bool], None]
    on_status: Callable[[StreamStatus, str | None], None] | None = None
    on_person: Callable[[bool], None] | None = None
    on_package: Callable[[PackageChange], None] | None = None
    on_main_size: Callable[[tuple[int, int]], None] | None = None


class Detection:
    """Decodes the detect stream and runs the motion detector at ``detect_fps``."""

    def __init__(
        self,
        settings: CameraSettings,
        recorder: Recorder,
        detector_factory: DetectorFactory,
        gate_factory: GateFactory,
        *,
        on_motion: Callable[[bool], None],
        clock: Callable[[], float] = time.monotonic,
        person: PersonWatcher | None = None,
        packages: PackageTracker | None = None,
        privacy: PrivacyMasks | None = None,
    ) -> None:
        self._settings = settings
        #: The camera's privacy masks: movement under them is not motion either.
        self._privacy = privacy
        #: Checks moving frames for people (its own thread), when enabled.
        self.person = person
        #: Follows the ``doorstep`` zone for parcels (on this thread), when there is one.
        self.packages = packages
        self._recorder = recorder
        self._detector_factory = detector_factory
        self._gate_factory = gate_factory
        self._on_motion = on_motion
        self._clock = clock
        self._interval = 1.0 / settings.detect_fps
        self._decoder: Any = None
        self._codec: str | None = None
        self._detector: MotionDetector | None = None
        #: What the detector was built for: the frame size and the privacy masks in it.
        self._built_for: tuple[tuple[int, int], tuple[Polygon, ...]] | None = None
        self._gate: Gate | None = None
        self._need_key = True
        self._last_analysed: float | None = None
        self.enabled = True
        self.motion = False
        self.frames_analysed = 0
        #: The newest analysed frame (PyAV) and its capture time: the live view's still.
        self.latest: tuple[Any, float] | None = None

    def set_enabled(self, on: bool) -> None:
        """Switch motion detection (any thread); the detect thread reports motion off."""
        self.enabled = on

    def reset(self) -> None:
        """The stream went away: start over at the next keyframe, motion off."""
        self._decoder = None
        self._need_key = True
        self._gate = None
        self._last_analysed = None
        self.latest = None
        self._set_motion(active=False)

    def recover(self) -> None:
        """After an error in decoding or detection: start over with a fresh detector."""
        self.reset()
        self._detector = None
        self._built_for = None

    def _set_motion(self, *, active: bool) -> None:
        if active != self.motion:
            self.motion = active
            self._recorder.motion(active)
            self._on_motion(active)

    def feed(self, packet: EncodedPacket) -> None:
        """One packet of the detect stream."""
        if not self.enabled and (self._gate is not None or self.motion):
            # Switched off: the gate and the motion state belong to this thread.
            self._gate = None
            self._set_motion(active=False)
        wants_frame = self._recorder.wants_frame()
        if not self.enabled and not wants_frame:
            self._need_key = True  # skip decoding; resume at a keyframe
            return
        if self._need_key and not packet.keyframe:
            return
        # A time before the last analysed one is the wall clock set back (a clock found
        # ahead): analyse now, or motion would go unseen for as long as the step. Paced by
        # the packets' place in the stream: with B-frames, a picture shown before the
        # last one sent is no step of the clock.
        sent = packet.sent
        due = self._last_analysed is None or not (
            0.0 <= sent - self._last_analysed < self._interval * 0.9
        )
        if not due and packet.stream.codec != "h264":
            return  # intra-only codecs need not decode skipped frames
        if self._decoder is None or self._codec != packet.stream.codec:
            self._decoder = av.CodecContext.create(packet.stream.codec, "r")
            self._decoder.thread_count = 1
            if packet.stream.extradata:
                self._decoder.extradata = packet.stream.extradata
            self._codec = packet.stream.codec
        self._need_key = False
        try:
            frames = self._decoder.decode(av.Packet(packet.data))
        except av.FFmpegError as err:
            _LOGGER.debug("%s: undecodable detect packet (%s)", self._settings.name, err)
            self._decoder = None
            self._need_key = True
            return
        if not due:
            return
        for frame in frames:
            self._last_analysed = sent
            self.latest = (frame, packet.wall)
            self._analyse(frame, wants_frame)

    def _detector_for(self, width: int, height: int) -> MotionDetector | None:
        """The motion detector for frames of this size; None while masks cannot be placed.

        Movement under a privacy mask is not motion: it would record a clip of a black
        area. The masks join the camera's motion masks; until the main stream's size
        places them in a detect frame, nothing is analysed (as for people and parcels).
        """
        hidden = self._privacy.polygons_at(width, height) if self._privacy else ()
        if hidden is None:
            return None
        built_for = ((width, height), hidden)
        if self._detector is None or self._built_for != built_for:
            motion = self._settings.motion
            if hidden:
                motion = replace(motion, masks=motion.masks + hidden)
            self._detector = self._detector_factory(width, height, motion)
            self._built_for = built_for
        return self._detector

    def _analyse(self, frame: Any, wants_frame: bool) -> None:
        score = 0.0
        detector = self._detector_for(frame.width, frame.height) if self.enabled else None
        if detector is not None:
            gate = self._gate
            if gate is None:
                motion = self._settings.motion
                gate = self._gate = self._gate_factory(motion.frames_to_start, motion.off_delay)
            luma = luma_plane(frame)
            result = detector.detect(luma)
            self.frames_analysed += 1
            if self.person is not None and result.moving:
                self.person.offer(luma, result.boxes)
            if self.packages is not None:
                self.packages.feed(luma, result.moving, self._clock())
            score = result.area
            changed = gate.update(result.moving, self._clock())
            if changed is not None:
                self._set_motion(active=changed)
        if wants_frame or self._recorder.wants_frame():
            self._recorder.offer_frame(frame, score)


class CameraPipeline:
    """Runs one camera: its source thread(s), detection and the recorder feed.

    Args:
        settings: The camera's settings.
        recorder: Its recorder.
        detector_factory: Builds a motion detector for a frame size.
        gate_factory: Builds the motion hysteresis gate.
        hooks: Motion and availability callbacks (called from the threads).
        on_ring: For the demo source: its visitor pressed the bell.
        source_factory: Opens sources (tests inject failing ones).
    """

    def __init__(
        self,
        settings: CameraSettings,
        recorder: Recorder,
        detector_factory: DetectorFactory,
        gate_factory: GateFactory,
        hooks: PipelineHooks,
        *,
        on_ring: Callable[[], None] | None = None,
        source_factory: SourceFactory = open_source,
    ) -> None:
        self.settings = settings
        self.recorder = recorder
        self._hooks = hooks
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # None until the first connection attempt ends either way: that first
        # outcome is always reported (it replaces whatever an earlier run left).
        self._online: bool | None = None
        self._online_lock = threading.Lock()
        self._status: tuple[StreamStatus, str | None] = (StreamStatus.CONNECTING, None)
        #: The main stream's frame size once it delivered (privacy masks are in its pixels).
        self.main_size: tuple[int, int] | None = None
        self._detect_errors = 0
        self._detect_error_logged: float | None = None
        #: Who else gets each role's packets (see :class:`SharedStream`); replaced, never
        #: changed in place, so the reader threads iterate without a lock.
        self._receivers: dict[str, tuple[Receiver, ...]] = {"main": (), "detect": ()}
        self._receivers_lock = threading.Lock()
        # Nothing in a masked area counts: not a person, not a parcel.
        privacy = PrivacyMasks(settings.privacy_masks, lambda: self.main_size)
        person = None
        if settings.person.enabled and hooks.on_person is not None:
            person = PersonWatcher(
                settings.name, settings.person, self._person_changed, privacy=privacy
            )
        packages = None
        zone = doorstep_zone(settings.motion.zones)
        if zone is not None and hooks.on_package is not None:
            packages = PackageTracker(
                zone, self._package_changed, camera=settings.name, privacy=privacy
            )
        self.detection = Detection(
            settings,
            recorder,
            detector_factory,
            gate_factory,
            on_motion=hooks.on_motion,
            person=person,
            packages=packages,
            privacy=privacy,
        )
        self._main = source_factory(settings.source, on_ring)
        self._detect = (
            source_factory(settings.detect_source, None) if settings.detect_source else None
        )

    def shared(self, role: str) -> SharedStream:
        """The ``main`` or ``detect`` stream as this pipeline reads it, for another reader.

        Without a detect source the main stream is the detect stream.
        """
        if self._detect is None:
            role = "main"
        source = self._main if role == "main" else self._detect
        assert source is not None

        def tap(receive: Receiver) -> Callable[[], None]:
            with self._receivers_lock:
                self._receivers[role] = (*self._receivers[role], receive)

            def untap() -> None:
                with self._receivers_lock:
                    self._receivers[role] = tuple(
                        other for other in self._receivers[role] if other is not receive
                    )

            return untap

        return SharedStream(source.description, tap)

    def _person_changed(self, active: bool) -> None:
        """Someone came into or left the view (the watcher's thread): clips say so."""
        self.recorder.person(active)
        assert self._hooks.on_person is not None
        self._hooks.on_person(active)

    def _package_changed(self, change: PackageChange) -> None:
        """A parcel came or went (detect thread): the frame that saw it becomes the snapshot."""
        # The tracker runs before the frame is offered to the recorder, so the picture
        # is of this very frame, masked like every snapshot.
        self.recorder.picture()
        assert self._hooks.on_package is not None
        self._hooks.on_package(change)

    @property
    def online(self) -> bool:
        """True while the main stream delivers."""
        return bool(self._online)

    @property
    def status(self) -> tuple[StreamStatus, str | None]:
        """The main stream's status and, when it is down, why."""
        with self._online_lock:
            return self._status

    def _set_status(self, status: StreamStatus, detail: str | None = None) -> None:
        with self._online_lock:
            if self._status == (status, detail):
                return
            self._status = (status, detail)
        if self._hooks.on_status is not None:
            self._hooks.on_status(status, detail)

    @property
    def motion(self) -> bool:
        """Current motion state."""
        return self.detection.motion

    def start(self) -> None:
        """Start the reader thread(s)."""
        roles: list[tuple[str, Source]] = [("main", self._main)]
        if self._detect is not None:
            roles.append(("detect", self._detect))
        if self.detection.person is not None:
            self.detection.person.start()
        for role, source in roles:
            thread = threading.Thread(
                target=self._run,
                args=(role, source),
                name=f"camera-{self.settings.name}-{role}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading (blocking; reads time out within a few seconds)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self.detection.person is not None:
            self.detection.person.stop()

    def mark_offline(self) -> bool:
        """After :meth:`stop`: the camera is offline; True when it was online."""
        with self._online_lock:
            was, self._online = self._online, False
        return bool(was)

    def _set_online(self, *, online: bool, why: str = "") -> None:
        with self._online_lock:
            if self._online == online:
                return
            self._online = online
        if online:
            self._set_status(StreamStatus.ONLINE)
            _LOGGER.info("Camera %s is online", self.settings.name)
        else:
            _LOGGER.warning("Camera %s is offline: %s", self.settings.name, why or "stopped")
        self._hooks.on_availability(online)

    def _consume(self, role: str, source: Source) -> tuple[bool, str, StreamStatus]:
        """Read one connection until it ends.

        Returns:
            Whether it delivered anything, why it ended, and the status that stands for.
        """
        delivered = False
        feeds_detection = role == "detect" or self._detect is None
        stream = None
        try:
            for packet in source.packets(self._stop):
                if role == "main" and packet.stream is not stream:
                    # A camera may change its size within a connection (the owner
                    # changed its resolution): masks on other streams follow it.
                    stream = packet.stream
                    size = (stream.width, stream.height)
                    if size != self.main_size and self._hooks.on_main_size is not None:
                        self._hooks.on_main_size(size)
                    self.main_size = size
                if not delivered:
                    delivered = True
                    if role == "main":
                        self._set_online(online=True)
                    else:
                        _LOGGER.info("Camera %s: detect stream is up", self.settings.name)
                for receive in self._receivers[role]:
                    receive(packet)  # first: a live viewer waits for it, the recorder does not
                if role == "main":
                    self.recorder.feed(packet)
                if feeds_detection:
                    self._feed_detection(packet)
        except CameraError as err:
            return delivered, str(err), failure_status(err)
        except Exception as err:  # a bug must not kill the camera for good
            _LOGGER.exception("Camera %s: %s reader failed", self.settings.name, role)
            return delivered, type(err).__name__, StreamStatus.ERROR
        return delivered, "stopped", StreamStatus.ERROR

    def _feed_detection(self, packet: EncodedPacket) -> None:
        """Feed detection; its failures never reach the reader (recording goes on)."""
        try:
            self.detection.feed(packet)
        except Exception:
            self._detect_errors += 1
            now = time.monotonic()
            last = self._detect_error_logged
            if last is None or now - last >= DETECT_ERROR_LOG_EVERY:
                self._detect_error_logged = now
                _LOGGER.exception(
                    "Camera %s: motion detection failed (%d time(s) so far); recording goes on",
                    self.settings.name,
                    self._detect_errors,
                )
            self.detection.recover()

    def _run(self, role: str, source: Source) -> None:
        backoff = BACKOFF_START
        name = self.settings.name
        feeds_detection = role == "detect" or self._detect is None
        detect_down_logged = False  # once per outage, like the main stream's
        while not self._stop.is_set():
            started = time.monotonic()
            delivered, why, status = self._consume(role, source)
            for receive in self._receivers[role]:
                receive(None)  # the stream is lost (or the bridge stops)
            if role == "main" and not self._stop.is_set():
                self.recorder.stream_lost()  # at shutdown the recorder closes the clip itself
            if feeds_detection:
                self.detection.reset()
            if self._stop.is_set():
                break
            if time.monotonic() - started >= STABLE_AFTER:
                backoff = BACKOFF_START
            if role == "main":
                self._set_online(online=False, why=why)
                self._set_status(status, why)
            elif delivered:
                _LOGGER.warning("Camera %s: detect stream lost: %s", name, why)
                detect_down_logged = True
            elif not detect_down_logged:
                # Without its detect stream the camera records but never sees motion.
                _LOGGER.warning(
                    "Camera %s: cannot read the detect stream: %s; no motion detection"
                    " until it comes up",
                    name,
                    why,
                )
                detect_down_logged = True
            _LOGGER.debug("Camera %s: %s stream retry in %.0f s (%s)", name, role, backoff, why)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_MAX)
