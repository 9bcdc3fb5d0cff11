"""Parcels: synthetic visits through the real motion core into the package tracker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
import json
from typing import Any

import numpy as np
import pytest

from doorstep_bridge.camera.pipeline import CameraPipeline, PipelineHooks
from doorstep_bridge.config import parse_config
from doorstep_bridge.detect.packages import (
    PackageChange,
    PackageSettings,
    PackageTracker,
    doorstep_zone,
)
from doorstep_bridge.events import EventBus, PackageChanged
from doorstep_bridge.motion import MotionResult
from doorstep_bridge.motion.detector import create_detector
from doorstep_bridge.motion.settings import MotionSettings
from doorstep_bridge.mqtt.publisher import Publisher, bridge_info
from tests.bridge.detect.stand_ins import Frame, scripted_detection
from tests.bridge.detect.synthetic import Gray, draw_box, draw_person, porch
from tests.bridge.test_publisher import RecordingMqtt

W, H, FPS = 320, 180, 5.0
ZONE = ((110, 120), (230, 120), (230, 175), (110, 175))
Scene = Callable[[float], Gray]


def _background(t: float) -> Gray:
    img = porch(W, H, seed=int(t * FPS) % 7)
    img[118:, :] = np.clip(img[118:, :].astype(np.int16) - 40, 0, 255).astype(np.uint8)  # step
    return img


def _walker(img: Gray, t: float, start: float, stop: float, *, sway: bool = True) -> None:
    """A visitor walks in from the left to the door, waits, and walks out to the right."""
    if not start <= t < stop:
        return
    walk = 3.0
    if t < start + walk:
        x = -20 + (170 + 20) * (t - start) / walk
    elif t < stop - walk:
        x = 170 + (3 * np.sin(t * 4) if sway else 0)
    else:
        x = 170 + 180 * (t - (stop - walk)) / walk
    draw_person(img, x, 50, 120)


def _run(scene: Scene, seconds: float) -> list[tuple[float, PackageChange]]:
    motion = create_detector(W, H, MotionSettings(), fps=FPS)
    events: list[tuple[float, PackageChange]] = []
    now = 0.0
    tracker = PackageTracker(ZONE, lambda change: events.append((now, change)))
    for i in range(int(seconds * FPS)):
        now = i / FPS
        frame = scene(now)
        tracker.feed(frame, motion.detect(frame).moving, now)
    return events


def _parcel(img: Gray) -> None:
    draw_box(img, 150, 140, 40, 28, shade=200)


def test_a_box_left_is_a_delivery_and_taken_a_pickup() -> None:
    def scene(t: float) -> Gray:
        img = _background(t)
        if 16.0 <= t < 60.0:  # put down at the door by the courier, taken by the owner
            _parcel(img)
        _walker(img, t, 10.0, 22.0)  # the courier
        _walker(img, t, 50.0, 62.0)  # the owner
        return img

    events = _run(scene, 80.0)
    assert [change for _, change in events] == ["delivered", "removed"]
    delivered, removed = events[0][0], events[1][0]
    # The motion core holds a new still thing as motion for still_hold (10 s); then the
    # scene settles (2 s) and the parcel must stay (5 s).
    assert 22.0 + 10.0 < delivered < 22.0 + 10.0 + 2.0 + 5.0 + 3.0
    assert 62.0 < removed < 72.0


def test_a_person_who_only_waits_is_no_delivery() -> None:
    def scene(t: float) -> Gray:
        img = _background(t)
        _walker(img, t, 10.0, 30.0)
        return img

    assert _run(scene, 45.0) == []


def test_a_moving_shadow_is_no_delivery() -> None:
    def scene(t: float) -> Gray:
        img = _background(t)
        if 10.0 <= t < 25.0:  # a shadow sweeps across the step and on
            x = int(-120 + 440 * (t - 10.0) / 15.0)
            band = img[100:, max(0, x) : max(0, x + 120)]
            band[:] = (band * 0.55).astype(np.uint8)
        return img

    assert _run(scene, 40.0) == []


def test_a_change_of_light_alone_is_no_delivery() -> None:
    def scene(t: float) -> Gray:
        img = _background(t)
        gain = 1.0 if t < 10.0 else 0.6
        return (img * gain).astype(np.uint8)

    assert _run(scene, 30.0) == []


def test_something_left_outside_the_zone_is_not_a_parcel() -> None:
    def scene(t: float) -> Gray:
        img = _background(t)
        if t >= 16.0:
            draw_box(img, 20, 130, 40, 28, shade=200)
        _walker(img, t, 10.0, 22.0)
        return img

    assert _run(scene, 40.0) == []


def test_a_new_frame_size_starts_over_instead_of_failing() -> None:
    changes: list[PackageChange] = []
    beyond = ((200, 100), (400, 100), (400, 300), (200, 300))  # larger than the first frames
    tracker = PackageTracker(beyond, changes.append, PackageSettings(settle=0.0, confirm=0.0))
    tracker.feed(_background(0.0), moving=False, now=0.0)
    bigger = np.zeros((H * 2, W * 2), np.uint8)
    bigger[:H, :W] = _background(0.0)
    tracker.feed(bigger, moving=True, now=1.0)
    tracker.feed(bigger, moving=False, now=2.0)  # the zone grew: a new empty reference
    assert changes == []
    tracker.feed(bigger, moving=False, now=3.0)  # the same, half black, zone: nothing new
    assert changes == []


def test_a_zone_outside_the_frame_is_logged_once_and_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = PipelineHooks(
        on_motion=lambda _a: None, on_availability=lambda _a: None, on_package=lambda _c: None
    )
    beyond = [[400, 300], [500, 300], [500, 350]]  # main-stream pixels, say: past 320x180
    camera = _config({"doorstep": beyond}).cameras["front_door"]
    tracker = CameraPipeline(camera, None, None, None, hooks).detection.packages  # type: ignore[arg-type]
    assert tracker is not None
    for i in range(5):
        tracker.feed(_background(0.0), moving=i == 2, now=float(i * 3))
    assert caplog.text.count("outside the 320x180 detect frame") == 1
    assert "Camera front_door: the doorstep zone (x 400-500, y 300-350)" in caplog.text
    assert not tracker.present


def test_only_the_doorstep_zone_counts() -> None:
    assert doorstep_zone((("path", ZONE), ("doorstep", ZONE[:3]))) == ZONE[:3]
    assert doorstep_zone((("path", ZONE),)) is None


def test_the_tracker_is_rate_limited() -> None:
    changes: list[PackageChange] = []
    tracker = PackageTracker(ZONE, changes.append, PackageSettings(checks_per_second=1.0))
    steps = []
    original = tracker._zone

    def counting(luma: Gray) -> object:
        steps.append(1)
        return original(luma)

    tracker._zone = counting  # type: ignore[method-assign]
    for i in range(50):  # 10 s of a still scene at 5 fps
        tracker.feed(_background(0.0), moving=False, now=i / 5)
    assert len(steps) == pytest.approx(10, abs=1)


# -- in the bridge ----------------------------------------------------------------------


def _config(zones: dict[str, object]) -> Any:
    cam = {"source": "demo://", "motion": {"zones": zones}}
    return parse_config({"cameras": {"front_door": cam}})


def test_a_camera_with_a_doorstep_zone_follows_parcels() -> None:
    calls: list[PackageChange] = []
    hooks = PipelineHooks(
        on_motion=lambda _a: None, on_availability=lambda _a: None, on_package=calls.append
    )
    with_zone = _config({"doorstep": [list(p) for p in ZONE]}).cameras["front_door"]
    pipeline = CameraPipeline(with_zone, None, None, None, hooks)  # type: ignore[arg-type]
    assert isinstance(pipeline.detection.packages, PackageTracker)
    path_only = _config({"path": [list(p) for p in ZONE]}).cameras["front_door"]
    pipeline = CameraPipeline(path_only, None, None, None, hooks)  # type: ignore[arg-type]
    assert pipeline.detection.packages is None


def test_detection_feeds_every_analysed_frame_to_the_tracker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fed: list[bool] = []

    class Tracker:
        def feed(self, luma: Any, moving: bool, now: float) -> None:
            fed.append(moving)

    results = [MotionResult(), MotionResult(((1, 1, 5, 5),), 0.1)]
    detection = scripted_detection(
        monkeypatch, _config({}).cameras["front_door"], results, packages=Tracker()
    )
    detection._analyse(Frame(), wants_frame=False)
    detection._analyse(Frame(), wants_frame=False)
    assert fed == [False, True]


def test_parcels_go_to_mqtt_and_the_bridge_info_says_who_has_a_doorstep() -> None:
    bus, mqtt = EventBus(), RecordingMqtt()
    Publisher(mqtt, bus)  # type: ignore[arg-type]
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    bus.publish(PackageChanged("front_door", "delivered", at))
    topic, payload, qos, retain = mqtt.sent[0]
    assert (topic, qos, retain) == ("doorstep/front_door/package", 1, False)
    assert json.loads(payload) == {
        "camera": "front_door",
        "type": "delivered",
        "time": "2026-12-01T09:30:00+00:00",
    }
    with_zone = _config({"doorstep": [list(p) for p in ZONE]})
    assert bridge_info(with_zone, "b1")["cameras"]["front_door"]["package"] is True
    assert "package" not in bridge_info(_config({}), "b1")["cameras"]["front_door"]


def _through_pipeline(
    monkeypatch: pytest.MonkeyPatch, scene: Scene, seconds: float, masks: list[Any]
) -> list[PackageChange]:
    """``scene`` through a camera pipeline (real motion core) whose doorstep zone is ZONE."""
    from doorstep_bridge.camera.manager import default_factories

    camera = parse_config(
        {
            "cameras": {
                "front_door": {
                    "source": "demo://",
                    "motion": {"zones": {"doorstep": [list(p) for p in ZONE]}},
                    "privacy_masks": masks,
                }
            }
        }
    ).cameras["front_door"]
    changes: list[PackageChange] = []
    detector_for, gate = default_factories()

    class Recorder:
        def wants_frame(self) -> bool:
            return False

        def motion(self, active: bool) -> None:
            pass

        def picture(self) -> None:
            pass

    pipeline = CameraPipeline(
        camera,
        Recorder(),  # type: ignore[arg-type]
        detector_for(FPS),
        gate,
        PipelineHooks(
            on_motion=lambda _a: None, on_availability=lambda _a: None, on_package=changes.append
        ),
    )
    pipeline.main_size = (W, H)
    clock = [0.0]
    monkeypatch.setattr(pipeline.detection, "_clock", lambda: clock[0])
    frame = type("Frame", (), {"width": W, "height": H})()
    for i in range(int(seconds * FPS)):
        clock[0] = i / FPS
        image = scene(clock[0])
        monkeypatch.setattr("doorstep_bridge.camera.pipeline.luma_plane", lambda _f, i=image: i)
        pipeline.detection._analyse(frame, wants_frame=False)
    return changes


def _delivery(t: float) -> Gray:
    img = _background(t)
    if 16.0 <= t < 60.0:
        _parcel(img)
    _walker(img, t, 10.0, 22.0)
    _walker(img, t, 50.0, 62.0)
    return img


def test_a_parcel_under_a_privacy_mask_is_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step is masked (main-stream pixels, here the same size): nothing there counts."""
    step = [[100, 110], [240, 110], [240, 179], [100, 179]]
    assert _through_pipeline(monkeypatch, _delivery, 80.0, [step]) == []


def test_a_parcel_beside_a_privacy_mask_is_still_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = [[0, 0], [60, 0], [60, 60], [0, 60]]
    assert _through_pipeline(monkeypatch, _delivery, 80.0, [elsewhere]) == [
        "delivered",
        "removed",
    ]
