"""Every camera of the bridge: pipelines, recorders, switches, retention, bus events.

The manager is the only part of the camera/recording side that touches the
event loop. Threads report through ``loop.call_soon_threadsafe`` and bus
handlers only hand work to the camera threads (a lock and a queue put).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
import contextlib
from dataclasses import dataclass
import functools
import inspect
import logging
import threading
from typing import TYPE_CHECKING, Any, TypeVarTuple

from doorstep_bridge.camera import mask_sizes
from doorstep_bridge.camera.mask_sizes import MaskSizes
from doorstep_bridge.camera.pipeline import (
    CameraPipeline,
    DetectorFactory,
    GateFactory,
    PipelineHooks,
    SourceFactory,
    open_source,
)
from doorstep_bridge.camera.sources import Source, source_kind
from doorstep_bridge.camera.switches import (
    CONFIG_RECORDING,
    FILE_NAME,
    initial_recording,
    load_switches,
    save_switches,
)
from doorstep_bridge.events import (
    CameraAvailability,
    CameraStatusChanged,
    CameraSwitchChanged,
    ClipDeleted,
    ClipFinished,
    ClipsHeld,
    Event,
    EventBus,
    MaskProblem,
    MotionChanged,
    NoClips,
    PackageChanged,
    PersonChanged,
    RecordingProblem,
    RecordRequested,
    SnapshotTaken,
    StatsChanged,
)
from doorstep_bridge.models import CameraHealth, ClipInfo, RingEvent, StreamStatus, utcnow
from doorstep_bridge.motion import MotionGate, create_detector
from doorstep_bridge.mqtt.topics import SWITCHES
from doorstep_bridge.recording.recorder import Recorder, RecorderHooks
from doorstep_bridge.recording.retention import Retention

if TYPE_CHECKING:
    from doorstep_bridge.config import CameraSettings
    from doorstep_bridge.recording.settings import StorageSettings
    from doorstep_bridge.recording.store import ClipStore

_LOGGER = logging.getLogger(__name__)

_Args = TypeVarTuple("_Args")

TICK_SECONDS = 0.25
RETENTION_EVERY = 600.0
#: A clock step the index could not take is tried again this much later (the disk is
#: most likely still full); retention tries it too, before deleting anything.
FOLLOW_RETRY = 10.0


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """What a camera is doing right now.

    Attributes:
        online: Its main stream delivers.
        motion: Motion is on.
        motion_detection: The motion detection switch.
        recording: The recording switch (not whether a clip is being written).
        error: Why recording fails right now (disk full, ...), or None.
        recording_clip: A clip is being written at this moment.
        health: The stream's status (``online``, ``auth_failed``...), why and since when.
    """

    online: bool
    motion: bool
    motion_detection: bool
    recording: bool
    error: str | None = None
    recording_clip: bool = False
    health: CameraHealth | None = None


def default_factories() -> tuple[Callable[[float], DetectorFactory], GateFactory]:
    """The motion core's factories: (detect rate → detector factory, gate factory)."""

    def detector_for(fps: float) -> DetectorFactory:
        factory: DetectorFactory = functools.partial(create_detector, fps=fps)
        return factory

    return detector_for, MotionGate


class CameraManager:
    """Owns one pipeline and one recorder per configured camera.

    Args:
        cameras: Each configured camera's settings, by name.
        storage: Where clips live and how long they are kept (retention).
        bus: The event bus.
        store: The clip store (open).
        on_ring: Called on the event loop when the demo visitor presses the bell.
        detector_factory: Detector factory per detect rate (default: the motion core).
        gate_factory: Motion gate factory (default: the motion core's MotionGate).
        source_factory: Opens camera sources (tests inject their own).
        min_free_bytes: Retention keeps at least this much disk free for new clips.
        on_delete: Called (on a worker thread) for each clip retention deletes.
    """

    def __init__(
        self,
        cameras: Mapping[str, CameraSettings],
        storage: StorageSettings,
        bus: EventBus,
        store: ClipStore,
        on_ring: Callable[[str], object],
        *,
        detector_factory: Callable[[float], DetectorFactory] | None = None,
        gate_factory: GateFactory | None = None,
        source_factory: SourceFactory = open_source,
        min_free_bytes: int | None = None,
        on_delete: Callable[[ClipInfo, str], None] | None = None,
    ) -> None:
        self._cameras = cameras
        self._bus = bus
        self._store = store
        self._on_ring = on_ring
        self._detector_factory = detector_factory
        self._gate_factory = gate_factory
        self._source_factory = source_factory
        self.retention = Retention(
            store,
            storage,
            min_free_bytes=min_free_bytes,
            on_delete=on_delete,
            # A clip a full disk kept from being repaired at start: announced like any
            # finished clip (it may well be the camera's newest).
            on_repair=self._threadsafe(self._clip_finished),
            on_step=self._threadsafe(self._clips_moved),
        )
        self._pipelines: dict[str, CameraPipeline] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._background: set[asyncio.Future[Any]] = set()
        self._switch_file = storage.path / FILE_NAME
        self._mask_sizes = MaskSizes(storage.path / mask_sizes.FILE_NAME)
        #: The mask problem last published per camera (None: the masks fit).
        self._mask_problems: dict[str, str | None] = {}
        self._save_lock = threading.Lock()
        # Recorder threads make room one at a time, so each reads its own check's problem.
        self._room_lock = threading.Lock()
        self._stats_asked = 0
        self._stats_sent = 0
        #: The clip each camera's retained ``clip`` topic names.
        self._latest: dict[str, ClipInfo] = {}
        #: The clips the picture on each camera's retained ``snapshot`` topic may show:
        #: one clip once the bridge published a picture, the newest clip and the newest
        #: one with a snapshot for what an earlier run left retained.
        self._snapshot_of: dict[str, frozenset[str]] = {}
        #: Each camera's stream status as last published.
        self._health: dict[str, CameraHealth] = {}
        # A step of the wall clock is being followed (in a worker thread), or not again
        # before this loop time.
        self._following = False
        self._follow_after = 0.0

    @property
    def cameras(self) -> tuple[str, ...]:
        """The configured camera names."""
        return tuple(self._cameras)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start every camera, the post-roll ticker and retention."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        if self._detector_factory is None or self._gate_factory is None:
            detector_for, gate = default_factories()
            self._detector_factory = self._detector_factory or detector_for
            self._gate_factory = self._gate_factory or gate
        saved = await asyncio.to_thread(load_switches, self._switch_file)
        config_edited = False
        for name, settings in self._cameras.items():
            snapshot = self._threadsafe(functools.partial(self._publish_snapshot, name))
            recorder = Recorder(
                name,
                settings.record,
                self._store,
                settings.privacy_masks,
                RecorderHooks(
                    on_clip=self._threadsafe(self._clip_finished),
                    on_snapshot=snapshot,
                    on_error=self._threadsafe(functools.partial(self._recording_problem, name)),
                    before_clip=self._make_room,
                    on_clip_snapshot=snapshot,
                ),
            )
            pipeline = CameraPipeline(
                settings,
                recorder,
                self._detector_factory(settings.detect_fps),
                self._gate_factory,
                PipelineHooks(
                    on_motion=self._threadsafe(functools.partial(self._motion, name)),
                    on_availability=self._threadsafe(functools.partial(self._availability, name)),
                    on_status=self._threadsafe(functools.partial(self._status_changed, name)),
                    on_person=self._threadsafe(functools.partial(self._person, name)),
                    on_package=self._threadsafe(functools.partial(self._package, name)),
                    on_main_size=functools.partial(self._main_size_seen, name),
                ),
                on_ring=self._threadsafe(functools.partial(self._demo_ring, name)),
                source_factory=self._source_factory,
            )
            switches = saved.get(name, {})
            pipeline.detection.set_enabled(switches.get("motion_detection", True))
            recorder.set_enabled(initial_recording(switches, settings.record.enabled))
            configured = settings.record.enabled
            config_edited |= switches.get(CONFIG_RECORDING, configured) != configured
            self._pipelines[name] = pipeline
        if config_edited:
            # The file must note the record.enabled now applied: otherwise editing it
            # back later would look unchanged, and the old saved switch would win.
            await asyncio.to_thread(self._save_switches)
        self._unsubscribe = [
            self._bus.subscribe(RingEvent, self._ring),
            self._bus.subscribe(RecordRequested, self._record_requested),
            self._bus.subscribe(ClipDeleted, self._clip_deleted),
            self._bus.subscribe(ClipsHeld, self._clips_held),
        ]
        # What the bridge really does, whatever an earlier run left retained: the
        # switches as loaded and motion off (a crash may have left it on). The
        # pipeline reports availability once its first connection attempt ends.
        now = utcnow()
        for name, pipeline in self._pipelines.items():
            self._status_changed(name, *pipeline.status)
            self._publish(MotionChanged(name, active=False, time=now))
            if pipeline.settings.person.enabled:
                self._publish(PersonChanged(name, active=False, time=now))
            self._publish(CameraSwitchChanged(name, "motion_detection", pipeline.detection.enabled))
            self._publish(CameraSwitchChanged(name, "recording", pipeline.recorder.enabled))
            # Clears what an earlier run left retained (a disk since freed).
            self._publish(RecordingProblem(name, pipeline.recorder.error, now))
        # Each camera's newest clip, so clips repaired at start-up (or a clip deleted
        # while the bridge was down) are reflected in the retained clip topic.
        newest, pictured = await asyncio.to_thread(self._newest_clips)
        for clip in newest:
            self._latest[clip.camera] = clip
            self._publish(ClipFinished(clip))
        with_picture = {clip.camera for clip in pictured}
        for name in self._pipelines:
            if name not in self._latest:
                self._publish(NoClips(name))
            if name not in with_picture:
                # No clip with a picture is left (a new, emptied or moved storage
                # folder): an earlier run's retained snapshot shows a visit that is gone.
                self._publish(SnapshotTaken(name, b""))
        # The retained snapshot is most likely of one of these; a deletion of either
        # replaces it (replacing it with the same picture does no harm).
        for clip in [*newest, *pictured]:
            self._snapshot_of[clip.camera] = self._snapshot_of.get(clip.camera, frozenset()) | {
                clip.id
            }
        for pipeline in self._pipelines.values():
            pipeline.start()
        self._tasks = [
            loop.create_task(self._tick(), name="camera-tick"),
            loop.create_task(self._retention_loop(), name="retention"),
        ]
        self._publish_stats()

    async def stop(self) -> None:
        """Stop the cameras; clips being recorded are finished first."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        pipelines = list(self._pipelines.values())
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in pipelines))
        await asyncio.gather(*(asyncio.to_thread(p.recorder.close) for p in pipelines))
        for name, pipeline in self._pipelines.items():
            if pipeline.mark_offline():
                self._publish(CameraAvailability(name, online=False))
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # -- queries and commands ----------------------------------------------------------

    def pipeline(self, camera: str) -> CameraPipeline:
        """The pipeline of a camera (KeyError when unknown)."""
        return self._pipelines[camera]

    def live_source(self, camera: str, url: str) -> Source | None:
        """The pipeline's own reading of ``url`` for the live view, when it should share it.

        MJPEG cameras only: many serve one client at a time, and their reader is not
        batched (an RTSP camera is read in 0.2 s batches here, which the live view
        would show as delay). None: the live view opens its own connection.
        """
        pipeline = self._pipelines.get(camera)
        if pipeline is None or source_kind(url) != "mjpeg":
            return None
        settings = pipeline.settings
        if url == settings.source:
            return pipeline.shared("main")
        if url == settings.detect_source:
            return pipeline.shared("detect")
        return None

    def main_size(self, camera: str) -> tuple[int, int] | None:
        """The size of the camera's main stream while it delivers; None otherwise.

        Privacy masks are drawn in these pixels: the live view of a detect stream
        scales them from it (KeyError when the camera is unknown).
        """
        pipeline = self._pipelines[camera]
        return pipeline.main_size if pipeline.online else None

    def status(self, camera: str) -> CameraStatus:
        """The camera's current state (KeyError when unknown)."""
        pipeline = self._pipelines[camera]
        return CameraStatus(
            online=pipeline.online,
            motion=pipeline.motion,
            motion_detection=pipeline.detection.enabled,
            recording=pipeline.recorder.enabled,
            error=pipeline.recorder.error,
            recording_clip=pipeline.recorder.recording,
            health=self._health.get(camera),
        )

    def set_switch(self, camera: str, switch: str, on: bool, *, via: str | None = None) -> bool:
        """Switch ``motion_detection`` or ``recording`` of a camera on or off.

        A switch already in the asked state is left alone: no log line, no event,
        no file write, so a command repeated by an automation (or a flood of them)
        costs nothing.

        Args:
            camera: The camera's name.
            switch: ``motion_detection`` or ``recording``.
            on: The state asked for.
            via: Where the command came from, named in the log line (``MQTT``).

        Returns:
            True when the switch changed.

        Raises:
            KeyError: Unknown camera.
            ValueError: Unknown switch.
        """
        pipeline = self._pipelines[camera]
        if switch not in SWITCHES:
            raise ValueError(f"unknown switch {switch!r}")
        target = pipeline.detection if switch == "motion_detection" else pipeline.recorder
        if target.enabled == on:
            return False
        target.set_enabled(on)
        state = "on" if on else "off"
        if via is None:
            _LOGGER.info("Camera %s: %s switched %s", camera, switch, state)
        else:
            _LOGGER.info("Camera %s: %s switched %s (%s)", camera, switch, state, via)
        self._bus.publish(CameraSwitchChanged(camera, switch, on))
        self._in_background(asyncio.to_thread(self._save_switches))
        return True

    def _save_switches(self) -> None:
        """Write every camera's switches (worker thread).

        Each write reads the states when it runs, under a lock, so the last write
        always carries the latest states whatever order the threads run in.
        """
        with self._save_lock:
            states = {
                name: {
                    "motion_detection": pipeline.detection.enabled,
                    "recording": pipeline.recorder.enabled,
                    CONFIG_RECORDING: pipeline.settings.record.enabled,
                }
                for name, pipeline in self._pipelines.items()
            }
            try:
                save_switches(self._switch_file, states)
            except OSError as err:
                _LOGGER.error("Cannot save the camera switches to %s: %s", self._switch_file, err)  # noqa: TRY400

    def record(self, camera: str, duration: float | None = None) -> None:
        """Record now (KeyError when the camera is unknown)."""
        self._pipelines[camera].recorder.manual(duration)

    # -- bus handlers (event loop; hand over, never block) -------------------------------

    def _ring(self, event: RingEvent) -> None:
        pipeline = self._pipelines.get(event.camera)
        if pipeline is not None:
            pipeline.recorder.ring()

    def _record_requested(self, event: RecordRequested) -> None:
        pipeline = self._pipelines.get(event.camera)
        if pipeline is not None:
            pipeline.recorder.manual(event.duration)

    # -- reports from the threads (run on the loop) --------------------------------------

    def _threadsafe(self, handler: Callable[[*_Args], None]) -> Callable[[*_Args], None]:
        def call(*args: *_Args) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(handler, *args)

        return call

    def _publish(self, event: Event) -> None:
        self._bus.publish(event)

    def _motion(self, camera: str, active: bool) -> None:
        _LOGGER.debug("Camera %s: motion %s", camera, "on" if active else "off")
        self._publish(MotionChanged(camera, active, utcnow()))

    def _person(self, camera: str, active: bool) -> None:
        _LOGGER.debug("Camera %s: person %s", camera, "in view" if active else "gone")
        self._publish(PersonChanged(camera, active, utcnow()))

    def _package(self, camera: str, change: str) -> None:
        _LOGGER.info("Camera %s: parcel %s", camera, change)
        self._publish(PackageChanged(camera, change, utcnow()))

    def _availability(self, camera: str, online: bool) -> None:
        self._publish(CameraAvailability(camera, online))

    def _status_changed(self, camera: str, status: StreamStatus, detail: str | None) -> None:
        health = CameraHealth(status, utcnow(), detail)
        self._health[camera] = health
        self._publish(CameraStatusChanged(camera, health))

    def _recording_problem(self, camera: str, problem: str | None) -> None:
        self._publish(RecordingProblem(camera, problem, utcnow()))

    def _main_size_seen(self, camera: str, size: tuple[int, int]) -> None:
        """In the camera's reader thread: do its privacy masks fit frames of ``size``?"""
        # A small file, read and written only here: off the event loop.
        problem = self._mask_sizes.seen(camera, self._cameras[camera].privacy_masks, size)
        self._threadsafe(self._mask_problem)(camera, problem)

    def _mask_problem(self, camera: str, problem: str | None) -> None:
        # The first answer of a run is always sent: it clears what an earlier run left.
        if camera in self._mask_problems and self._mask_problems[camera] == problem:
            return
        self._mask_problems[camera] = problem
        self._publish(MaskProblem(camera, problem, utcnow()))

    def _clip_finished(self, clip: ClipInfo) -> None:
        latest = self._latest.get(clip.camera)
        if latest is None or clip.start >= latest.start:
            # A clip finished late (after a full disk) must not replace a newer one.
            self._latest[clip.camera] = clip
            self._publish(ClipFinished(clip))
        self._publish_stats()

    def _newest_clips(self) -> tuple[list[ClipInfo], list[ClipInfo]]:
        """Each camera's newest clip, and newest clip with a snapshot (blocking)."""
        newest: list[ClipInfo] = []
        pictured: list[ClipInfo] = []
        for name in self._pipelines:
            clips, _ = self._store.list(camera=name, limit=1)
            newest.extend(clips)
            clip = self._store.newest_with_snapshot(name)
            if clip is not None:
                pictured.append(clip)
        return newest, pictured

    def _clip_deleted(self, event: ClipDeleted) -> None:
        latest = self._latest.get(event.camera)
        if latest is not None and latest.id == event.clip_id:
            self._in_background(self._announce_newest(event.camera, event.clip_id))
        if event.clip_id in self._snapshot_of.get(event.camera, ()):
            self._in_background(self._replace_snapshot(event.camera, event.clip_id))
        if event.reason != "retention":
            # A visit forgotten on request frees space too; retention's deletions
            # publish the figures once for the whole batch (see _deleted).
            self._publish_stats()

    def _newest_picture(self, camera: str) -> tuple[str, bytes] | None:
        """The newest clip with a snapshot left, and that snapshot (blocking)."""
        clip = self._store.newest_with_snapshot(camera)
        if clip is None or clip.snapshot_path is None:
            return None
        try:
            return clip.id, clip.snapshot_path.read_bytes()
        except OSError as err:
            _LOGGER.warning("Cannot read the snapshot of clip %s: %s", clip.id, err)
            return None

    async def _replace_snapshot(self, camera: str, deleted: str) -> None:
        """The retained snapshot may show a deleted clip: show the newest one left.

        With no clip (with a snapshot) left, the retained snapshot is cleared, so
        that nothing of a forgotten visit stays on the broker.
        """
        newest = await asyncio.to_thread(self._newest_picture, camera)
        if deleted not in self._snapshot_of.get(camera, ()):
            return  # a newer picture was published meanwhile
        if newest is None:
            self._snapshot_of[camera] = frozenset()
            _LOGGER.info("Camera %s: no snapshot left; the retained snapshot is cleared", camera)
            self._publish(SnapshotTaken(camera, b""))
        else:
            self._snapshot_of[camera] = frozenset({newest[0]})
            self._publish(SnapshotTaken(camera, newest[1]))

    def _clips_held(self, event: ClipsHeld) -> None:
        held = set(event.clip_ids)
        for camera, latest in self._latest.items():
            if latest.id in held:
                self._in_background(self._announce_again(camera, latest.id))

    def _clips_moved(self, clip_ids: list[str]) -> None:
        """The times of these clips followed a step of the clock: announce the latest anew."""
        moved = set(clip_ids)
        for camera, latest in self._latest.items():
            if latest.id in moved:
                self._in_background(self._announce_again(camera, latest.id))

    async def _announce_again(self, camera: str, clip_id: str) -> None:
        """The camera's latest clip changed: announce it as it is now.

        A share holds or lets go of it (its ``held``), or its times followed a clock step.
        """
        clip = await asyncio.to_thread(self._store.get, clip_id)
        latest = self._latest.get(camera)
        if clip is None or latest is None or latest.id != clip_id:
            return  # deleted, or a newer clip was announced meanwhile
        self._latest[camera] = clip
        self._publish(ClipFinished(clip))

    async def _announce_newest(self, camera: str, deleted: str) -> None:
        """The camera's latest clip is gone: name the newest one left instead."""
        clips, _ = await asyncio.to_thread(self._store.list, camera, limit=1)
        latest = self._latest.get(camera)
        if latest is None or latest.id != deleted:
            return  # a newer clip was announced meanwhile
        if clips:
            self._latest[camera] = clips[0]
            self._publish(ClipFinished(clips[0]))
        else:
            del self._latest[camera]
            _LOGGER.info("Camera %s has no clips left", camera)

    def _publish_snapshot(self, camera: str, jpeg: bytes, clip_id: str | None = None) -> None:
        self._snapshot_of[camera] = frozenset() if clip_id is None else frozenset({clip_id})
        self._publish(SnapshotTaken(camera, jpeg))

    def _demo_ring(self, camera: str) -> None:
        result = self._on_ring(camera)
        if inspect.isawaitable(result):
            self._in_background(result)

    def _in_background(self, awaitable: Awaitable[Any]) -> None:
        """Run on the loop without waiting; :meth:`stop` waits for it."""
        future = asyncio.ensure_future(awaitable)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    def _deleted(self, clips: list[ClipInfo]) -> None:
        for clip in clips:
            self._publish(ClipDeleted(clip.id, clip.camera, "retention"))
        if clips:
            self._publish_stats()

    def _publish_stats(self) -> None:
        """Publish fresh storage figures; the index is read off the loop."""
        self._stats_asked += 1
        self._in_background(self._read_stats(self._stats_asked))

    async def _read_stats(self, asked: int) -> None:
        size, count = await asyncio.to_thread(self._store.usage)
        if asked < self._stats_sent:
            return  # a newer reading was published already
        self._stats_sent = asked
        self._publish(StatsChanged({"storage_used_bytes": size, "clips": count}))

    # -- background work ------------------------------------------------------------------

    def _make_room(self) -> str | None:
        """Before a clip (recorder thread): free disk space for it if needed.

        Returns:
            Why not enough space could be freed (the recorder reports it), or None.
        """
        with self._room_lock:
            deleted = self.retention.make_room()
            problem = self.retention.problem
        if deleted:
            self._threadsafe(self._deleted)(deleted)
        return problem

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for pipeline in self._pipelines.values():
                pipeline.recorder.tick()
            if (
                not self._following
                and asyncio.get_running_loop().time() >= self._follow_after
                and self._store.clock_stepped()
            ):
                # Retention follows a step before it deletes anything, and before each new
                # clip; this shows the right times in the clip lists without waiting for it.
                self._following = True
                self._in_background(self._follow_clock())

    async def _follow_clock(self) -> None:
        try:
            await asyncio.to_thread(self.retention.follow_clock)
        finally:
            self._following = False
            self._follow_after = asyncio.get_running_loop().time() + FOLLOW_RETRY

    async def _retention_loop(self) -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(self.retention.run)
            except Exception:
                _LOGGER.exception("Retention failed")
            else:
                self._deleted(deleted)
            await asyncio.sleep(RETENTION_EVERY)
