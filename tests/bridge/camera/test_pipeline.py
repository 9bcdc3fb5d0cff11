"""The per-camera pipeline: detect rate, detect substream, demo camera, the real motion core."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import threading
import time
from typing import Any

import pytest

from doorstep_bridge.camera.manager import CameraManager, default_factories
from doorstep_bridge.camera.pipeline import Detection
from doorstep_bridge.config import parse_config
from doorstep_bridge.detect.privacy import PrivacyMasks
from doorstep_bridge.events import CameraAvailability, ClipFinished, EventBus, MotionChanged
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.recording.store import ClipStore
from tests.bridge.camera.conftest import CountingGate, FrameDifference, Recorded, stand_in_detector
from tests.support.media import Footage, encode_annexb, file_packets, write_h264
from tests.support.servers import rtsp_server


class FakeRecorder:
    """Records what detection tells the recorder."""

    def __init__(self) -> None:
        self.motion_calls: list[bool] = []
        self.frames: list[tuple[Any, float]] = []
        self.want = False

    def wants_frame(self) -> bool:
        return self.want

    def motion(self, active: bool) -> None:
        self.motion_calls.append(active)

    def offer_frame(self, frame: Any, score: float) -> None:
        self.frames.append((frame, score))


def _camera(**extra: Any) -> Any:
    data = {"source": "demo://", "motion": {"frames_to_start": 2, "off_delay": 0.5}, **extra}
    return parse_config({"cameras": {"front_door": data}}).cameras["front_door"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run_detection(
    porch: Footage, detection: Detection, clock: Clock, recorder: FakeRecorder
) -> None:
    for packet in file_packets(porch.path):
        clock.now = packet.wall
        detection.feed(packet)


@pytest.mark.parametrize("footage", ["porch", "porch_b_frames"], ids=["no B-frames", "B-frames"])
def test_detection_runs_at_detect_fps_and_reports_motion(
    footage: str, request: pytest.FixtureRequest
) -> None:
    # With B-frames, pictures arrive out of the order they are shown: a picture shown
    # before the last one analysed must not count as the clock set back.
    porch: Footage = request.getfixturevalue(footage)
    recorder, clock, changes = FakeRecorder(), Clock(), []
    detection = Detection(
        _camera(detect_fps=5),
        recorder,  # type: ignore[arg-type]
        FrameDifference,
        CountingGate,
        on_motion=changes.append,
        clock=clock,
    )
    _run_detection(porch, detection, clock, recorder)
    frames = round(porch.seconds * porch.fps)
    assert detection.frames_analysed == pytest.approx(frames * 5 / porch.fps, abs=1)
    assert changes == [True, False]  # the walker at 3.0-4.5 s
    assert recorder.motion_calls == changes


def test_a_clock_set_back_does_not_blind_motion_detection(porch: Footage) -> None:
    # Detect frames were paced by capture time: after a clock found an hour ahead was set
    # back, no frame was analysed for that hour, and the walker was never seen.
    recorder, clock, changes = FakeRecorder(), Clock(), []
    detection = Detection(
        _camera(detect_fps=5),
        recorder,  # type: ignore[arg-type]
        FrameDifference,
        CountingGate,
        on_motion=changes.append,
        clock=clock,
    )
    for index, packet in enumerate(file_packets(porch.path)):
        clock.now = packet.seconds  # the steady clock goes on
        detection.feed(replace(packet, wall=packet.wall - 3600 * (index >= 30)))
    frames = round(porch.seconds * porch.fps)
    assert detection.frames_analysed == pytest.approx(frames * 5 / porch.fps, abs=1)
    assert changes == [True, False]  # the walker at 3.0-4.5 s, after the step at 2 s


def test_switched_off_detection_decodes_only_for_snapshots(porch: Footage) -> None:
    recorder, clock, changes = FakeRecorder(), Clock(), []
    detection = Detection(
        _camera(),
        recorder,
        FrameDifference,
        CountingGate,  # type: ignore[arg-type]
        on_motion=changes.append,
        clock=clock,
    )
    detection.set_enabled(False)
    _run_detection(porch, detection, clock, recorder)
    assert detection.frames_analysed == 0
    assert changes == []
    assert recorder.frames == []
    recorder.want = True  # a press wants the next frame even with detection off
    _run_detection(porch, detection, clock, recorder)
    assert recorder.frames
    assert all(score == 0.0 for _, score in recorder.frames)


def test_real_motion_core_sees_the_walker(porch: Footage) -> None:
    detector_for, gate = default_factories()
    recorder, clock, changes = FakeRecorder(), Clock(), []
    detection = Detection(
        _camera(),
        recorder,
        detector_for(5.0),
        gate,  # type: ignore[arg-type]
        on_motion=changes.append,
        clock=clock,
    )
    _run_detection(porch, detection, clock, recorder)
    assert changes[:1] == [True]


# Where the porch's walker crosses (the middle of a 640x360 picture), and the sky above.
WALKER_BAND = [[0, 120], [640, 120], [640, 240], [0, 240]]
SKY = [[0, 0], [640, 0], [640, 60], [0, 60]]


def _masked_detection(
    camera: Any,
    main_size: list[tuple[int, int] | None],
    changes: list[bool],
    clock: Clock,
    built: list[Any] | None = None,
) -> Detection:
    """The real motion core behind a camera's privacy masks; ``built`` gets its settings."""
    real, gate = default_factories()

    def make(width: int, height: int, settings: Any) -> Any:
        if built is not None:
            built.append(((width, height), settings.masks))
        return real(5.0)(width, height, settings)

    return Detection(
        camera,
        FakeRecorder(),  # type: ignore[arg-type]
        make,
        gate,  # type: ignore[arg-type]
        on_motion=changes.append,
        clock=clock,
        privacy=PrivacyMasks(camera.privacy_masks, lambda: main_size[0]),
    )


def test_movement_under_a_privacy_mask_is_not_motion(porch: Footage) -> None:
    # It would record a clip of a black area: nothing to see, and a clip all the same.
    clock, changes = Clock(), []
    detection = _masked_detection(
        _camera(privacy_masks=[WALKER_BAND]), [(640, 360)], changes, clock
    )
    _run_detection(porch, detection, clock, FakeRecorder())
    assert detection.frames_analysed > 20
    assert changes == []


def test_movement_beside_a_privacy_mask_is_still_motion(porch: Footage) -> None:
    clock, changes = Clock(), []
    detection = _masked_detection(_camera(privacy_masks=[SKY]), [(640, 360)], changes, clock)
    _run_detection(porch, detection, clock, FakeRecorder())
    assert changes[:1] == [True]


def test_privacy_masks_are_placed_in_a_smaller_detect_stream(tmp_path: Path) -> None:
    # Masks are drawn on the main stream (640x360); motion looks at a 320x180 substream.
    sub = write_h264(
        tmp_path / "sub.mp4", width=320, height=180, fps=15, seconds=6, gop=15, motion=(3.0, 4.5)
    )
    camera = _camera(privacy_masks=[WALKER_BAND], motion={"masks": [SKY]})
    clock, changes, built = Clock(), [], []
    detection = _masked_detection(camera, [(640, 360)], changes, clock, built)
    _run_detection(sub, detection, clock, FakeRecorder())
    # The camera's own motion mask, then the privacy mask at half the size.
    assert built == [
        ((320, 180), (tuple(map(tuple, SKY)), ((0, 60), (320, 60), (320, 120), (0, 120))))
    ]
    assert changes == []


def test_nothing_is_analysed_until_the_privacy_masks_can_be_placed(porch: Footage) -> None:
    # Until the main stream delivered, where its masks lie in a detect frame is unknown.
    clock, changes = Clock(), []
    main_size: list[tuple[int, int] | None] = [None]
    detection = _masked_detection(_camera(privacy_masks=[SKY]), main_size, changes, clock)
    packets = file_packets(porch.path)
    for packet in packets:
        clock.now = packet.wall
        if packet.wall - packets[0].wall >= 2.0 and main_size[0] is None:
            assert detection.latest is not None  # frames came and were decoded
            assert detection.frames_analysed == 0
            main_size[0] = (640, 360)  # the main stream delivered
        detection.feed(packet)
    assert detection.frames_analysed >= 15  # 4 s at 5 fps, from then on
    assert changes[:1] == [True]


@pytest.mark.slow
async def test_detect_substream_drives_motion_and_main_stream_is_recorded(
    rtsp_ok: None, porch: Footage, storage: Path, tmp_path: Path
) -> None:
    sub = write_h264(
        tmp_path / "sub.mp4", width=320, height=180, fps=15, seconds=6, gop=15, motion=(3.0, 4.5)
    )
    sizes: set[tuple[int, int]] = set()

    def sized(fps: float) -> Any:
        def make(width: int, height: int, settings: Any) -> FrameDifference:
            sizes.add((width, height))
            return FrameDifference(width, height, settings)

        return make

    with rtsp_server({"/main": porch.path, "/sub": sub.path}) as url:
        config = parse_config(
            {
                "storage": {"path": str(storage)},
                "cameras": {
                    "front_door": {
                        "source": f"{url}/main",
                        "detect_source": f"{url}/sub",
                        "record": {"pre_roll": 1.0, "post_roll": 0.5},
                        "motion": {"frames_to_start": 2, "off_delay": 0.5},
                    }
                },
            }
        )
        store = ClipStore(config.storage.path)
        store.open()
        bus = EventBus()
        recorded = Recorded(bus)
        recorded.watch(ClipFinished, MotionChanged)
        manager = CameraManager(
            config.cameras,
            config.storage,
            bus,
            store,
            lambda _: None,
            detector_factory=sized,
            gate_factory=CountingGate,
        )
        await manager.start()
        try:
            clip = (await recorded.wait(ClipFinished)).clip
        finally:
            await manager.stop()
            store.close()
    assert sizes == {(320, 180)}
    import av

    with av.open(str(clip.path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 360)


@pytest.mark.slow
async def test_demo_camera_rings_and_moves(storage: Path) -> None:
    config = parse_config(
        {
            "storage": {"path": str(storage)},
            "cameras": {
                "front_door": {
                    "source": "demo://?period=4&fps=10&width=320&height=180",
                    "motion": {"frames_to_start": 2, "off_delay": 0.5},
                }
            },
        }
    )
    store = ClipStore(config.storage.path)
    store.open()
    bus = EventBus()
    recorded = Recorded(bus)
    recorded.watch(MotionChanged, CameraAvailability)
    rings: list[str] = []
    manager = CameraManager(
        config.cameras,
        config.storage,
        bus,
        store,
        rings.append,
        detector_factory=stand_in_detector,
        gate_factory=CountingGate,
    )
    await manager.start()
    try:
        await recorded.wait(MotionChanged, lambda e: e.active, timeout=10)
        await recorded.wait(MotionChanged, lambda _: bool(rings), timeout=10)
    finally:
        await manager.stop()
        store.close()
    assert rings == ["front_door"]
    assert recorded.of(CameraAvailability)[0].online


@pytest.mark.slow
async def test_mjpeg_camera_is_recorded_as_h264(storage: Path, tmp_path: Path) -> None:
    from tests.support.media import write_mjpeg_frames
    from tests.support.servers import mjpeg_server

    frames = tmp_path / "frames"
    frames.mkdir()
    for index, jpeg in enumerate(write_mjpeg_frames(40, 320, 240, motion=(20, 35))):
        (frames / f"{index:03d}.jpg").write_bytes(jpeg)
    with mjpeg_server(frames, fps=10) as url:
        config = parse_config(
            {
                "storage": {"path": str(storage)},
                "cameras": {
                    "porch": {
                        "source": url,
                        "record": {"pre_roll": 1.0, "post_roll": 0.5},
                        "motion": {"frames_to_start": 2, "off_delay": 0.3},
                    }
                },
            }
        )
        store = ClipStore(config.storage.path)
        store.open()
        bus = EventBus()
        recorded = Recorded(bus)
        recorded.watch(ClipFinished, MotionChanged)
        manager = CameraManager(
            config.cameras,
            config.storage,
            bus,
            store,
            lambda _: None,
            detector_factory=stand_in_detector,
            gate_factory=CountingGate,
        )
        await manager.start()
        try:
            clip = (await recorded.wait(ClipFinished)).clip
        finally:
            await manager.stop()
            store.close()
    import av

    with av.open(str(clip.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (320, 240)
        decoded = sum(1 for _ in container.decode(stream))
    assert decoded >= 10
    assert clip.snapshot_path is not None


class FailingSource:
    """A camera that never answers."""

    description = "rtsp://***@192.0.2.1/stream"

    def __init__(self) -> None:
        self.attempts = 0

    def packets(self, stop: Any) -> Any:
        self.attempts += 1
        raise CameraError("cannot open rtsp://***@192.0.2.1/stream: Connection refused")
        yield  # a generator, like the real sources


class CountingStop(threading.Event):
    """Records every backoff wait instead of sleeping; stops after ``limit`` waits."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = limit

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


def test_reconnect_backs_off_exponentially_up_to_30_s(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from doorstep_bridge.camera.pipeline import CameraPipeline, PipelineHooks
    from doorstep_bridge.recording.recorder import Recorder, RecorderHooks

    source = FailingSource()
    availability: list[bool] = []
    store = ClipStore(storage)
    store.open()
    settings = _camera()
    recorder = Recorder(
        "front_door",
        settings.record,
        store,
        (),
        RecorderHooks(lambda _c: None, lambda _j: None, lambda _e: None),
    )
    pipeline = CameraPipeline(
        settings,
        recorder,
        FrameDifference,
        CountingGate,
        PipelineHooks(on_motion=lambda _a: None, on_availability=availability.append),
        source_factory=lambda _url, _ring: source,
    )
    stop = CountingStop(limit=8)
    pipeline._stop = stop
    pipeline._run("main", source)
    recorder.close()
    store.close()
    assert stop.waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert source.attempts == 8
    assert availability == [False]  # reported once, not per attempt
    offline_lines = [r for r in caplog.records if "is offline" in r.getMessage()]
    assert len(offline_lines) == 1
    assert "Connection refused" in offline_lines[0].getMessage()


def test_the_main_stream_size_follows_a_camera_that_changes_it_mid_stream(
    storage: Path, tmp_path: Path
) -> None:
    """Masks on the detect stream (live view, stills) are placed from this size."""
    from doorstep_bridge.camera.pipeline import CameraPipeline, PipelineHooks
    from doorstep_bridge.camera.sources import AvSource
    from doorstep_bridge.recording.recorder import Recorder, RecorderHooks

    path = tmp_path / "resized.h264"
    path.write_bytes(b"".join(encode_annexb(320, 180, 20) + encode_annexb(640, 360, 20)))
    source = AvSource(str(path), loop=False, realtime=False)
    store = ClipStore(storage)
    store.open()
    settings = _camera()
    recorder = Recorder(
        "front_door",
        settings.record,
        store,
        (),
        RecorderHooks(lambda _c: None, lambda _j: None, lambda _e: None),
    )
    pipeline = CameraPipeline(
        settings,
        recorder,
        FrameDifference,
        CountingGate,
        PipelineHooks(on_motion=lambda _a: None, on_availability=lambda _o: None),
        source_factory=lambda _url, _ring: source,
    )
    sizes: list[tuple[int, int] | None] = []
    feed = recorder.feed

    def feed_and_look(packet: Any) -> None:
        feed(packet)
        sizes.append(pipeline.main_size)

    recorder.feed = feed_and_look  # type: ignore[method-assign]
    pipeline._consume("main", source)
    recorder.close()
    store.close()
    assert sizes[0] == (320, 180)
    assert sizes[-1] == (640, 360), "the camera's new size, in the same connection"


def test_a_shared_stream_never_holds_the_camera_back_and_ends_with_it(porch: Footage) -> None:
    """The live view reads an MJPEG camera over the pipeline's connection: a slow live
    view loses old pictures (the recorder and motion never wait for it), and when the
    camera's stream is lost the live view learns it at once."""
    from doorstep_bridge.camera.pipeline import SHARED_QUEUE, Receiver, SharedStream

    receivers: list[Receiver] = []

    def tap(receive: Receiver) -> Any:
        receivers.append(receive)
        return lambda: receivers.remove(receive)

    sent = list(file_packets(porch.path))[:40]
    fed = threading.Event()

    def camera() -> None:
        while not receivers:
            time.sleep(0.01)
        for packet in sent:
            receivers[0](packet)  # never blocks, however slow the reader
        receivers[0](None)
        fed.set()

    feeder = threading.Thread(target=camera)
    feeder.start()
    packets = SharedStream("http://cam/video.mjpg", tap).packets(threading.Event())
    read = [next(packets)]
    assert fed.wait(10), "the camera went on while its reader did not read"
    with pytest.raises(CameraError, match="stream was lost"):
        read.extend(packets)
    feeder.join()
    assert len(read) <= SHARED_QUEUE + 1
    assert read[-1] is sent[-1], "the newest pictures, not the oldest"
    assert receivers == [], "the reader let go of the stream"


def test_a_detect_stream_that_never_comes_up_is_logged_once(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from doorstep_bridge.camera.pipeline import CameraPipeline, PipelineHooks
    from doorstep_bridge.recording.recorder import Recorder, RecorderHooks

    source = FailingSource()
    store = ClipStore(storage)
    store.open()
    settings = _camera(detect_source="rtsp://user:pass@192.0.2.1/stream")
    recorder = Recorder(
        "front_door",
        settings.record,
        store,
        (),
        RecorderHooks(lambda _c: None, lambda _j: None, lambda _e: None),
    )
    pipeline = CameraPipeline(
        settings,
        recorder,
        FrameDifference,
        CountingGate,
        PipelineHooks(on_motion=lambda _a: None, on_availability=lambda _o: None),
        source_factory=lambda _url, _ring: source,
    )
    pipeline._stop = CountingStop(limit=4)
    pipeline._run("detect", source)
    recorder.close()
    store.close()
    # A wrong detect_source leaves the camera without motion detection: say so, once.
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "detect stream" in warnings[0]
    assert "Connection refused" in warnings[0]


def test_switching_detection_off_during_motion_reports_motion_off(porch: Footage) -> None:
    recorder, clock, changes = FakeRecorder(), Clock(), []
    detection = Detection(
        _camera(),
        recorder,
        FrameDifference,
        CountingGate,  # type: ignore[arg-type]
        on_motion=changes.append,
        clock=clock,
    )
    packets = file_packets(porch.path)
    for packet in packets:
        clock.now = packet.wall
        detection.feed(packet)
        if changes == [True]:
            detection.set_enabled(False)
    assert changes == [True, False]
    assert recorder.motion_calls == [True, False]
    assert not detection.motion


class BrokenDetector:
    """A motion detector with a bug: every frame raises."""

    def __init__(self, width: int, height: int, settings: Any) -> None:
        self.calls = 0

    def detect(self, luma: Any) -> Any:
        raise RuntimeError("detector bug")


async def test_a_failing_motion_detector_never_stops_the_recording(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config(
        {
            "storage": {"path": str(storage)},
            "cameras": {
                "front_door": {
                    "source": "demo://?period=60&fps=10&width=320&height=180",
                    "record": {"pre_roll": 0.0},
                }
            },
        }
    )
    store = ClipStore(config.storage.path)
    store.open()
    bus = EventBus()
    recorded = Recorded(bus)
    recorded.watch(ClipFinished, CameraAvailability, MotionChanged)
    manager = CameraManager(
        config.cameras,
        config.storage,
        bus,
        store,
        lambda _: None,
        detector_factory=lambda _fps: BrokenDetector,
        gate_factory=CountingGate,
    )
    await manager.start()
    try:
        await recorded.wait(CameraAvailability, lambda e: e.online, timeout=10)
        manager.record("front_door", 2.0)
        clip = (await recorded.wait(ClipFinished, timeout=15)).clip
        online = [e.online for e in recorded.of(CameraAvailability)]
    finally:
        await manager.stop()
        store.close()
    assert clip.duration >= 2.0 - 0.2  # recorded through, not cut at the first error
    assert online == [True]  # the main stream was never torn down
    assert not any(e.active for e in recorded.of(MotionChanged))
    failures = [r for r in caplog.records if "motion detection failed" in r.getMessage()]
    assert len(failures) == 1  # rate-limited: once a minute at most
