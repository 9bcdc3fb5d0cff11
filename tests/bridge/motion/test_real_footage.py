"""Synthetic light changes and a close visitor on real labelled footage (../shared/data).

Skipped when the shared data folder is absent (it is not shipped with the project).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from doorstep_bridge.motion import create_detector, create_for_scoring
from doorstep_bridge.motion.settings import MotionSettings
from tests.bridge.motion.conftest import u8

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "motion"
CAVIAR = DATA / "CAVIAR2"

pytestmark = pytest.mark.skipif(
    not (CAVIAR / "input").is_dir(), reason=f"no shared test data at {DATA}"
)

Frame = npt.NDArray[np.uint8]


def caviar(number: int) -> Frame:
    """Left half of a CAVIAR2 frame (the `CAVIAR2@L` view), as luma."""
    bgr = cv2.imread(str(CAVIAR / "input" / f"in{number:06d}.jpg"))
    assert bgr is not None
    return np.ascontiguousarray(u8(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[:, :192])


def people_pixels(number: int) -> int:
    gt = u8(cv2.imread(str(CAVIAR / "groundtruth" / f"gt{number:06d}.png"), cv2.IMREAD_GRAYSCALE))
    return int(np.count_nonzero(gt[:, :192] == 255))


def test_the_chosen_stretch_is_empty() -> None:
    assert all(people_pixels(n) == 0 for n in range(200, 300, 5))


@pytest.mark.parametrize(
    "name",
    [
        "exposure up",
        "exposure down",
        "IR tone curve",
        "flash",
        "saturating flash",
        "headlight sweep",
    ],
)
def test_light_changes_on_a_real_empty_scene_are_not_motion(name: str) -> None:
    def relight(img: Frame, i: int) -> Frame:
        f = img.astype(np.float64)
        if name == "exposure up":
            f = f * 1.4
        elif name == "exposure down":
            f = f * 0.6
        elif name == "IR tone curve":
            f = 255.0 * (f / 255.0) ** 0.55
        elif name == "flash":
            f = f + (40 if i % 6 < 2 else 0)
        elif name == "saturating flash":
            f = f + (80 if i % 6 < 2 else 0)
        else:  # a bright band sweeping across, 12 px per frame
            x = np.arange(img.shape[1])[None, :]
            f = f * (1.0 + 0.6 * np.exp(-(((x - 12 * i) / 40.0) ** 2)))
        return np.clip(f, 0, 255).astype(np.uint8)

    detector = create_detector(192, 256, MotionSettings())
    for n in range(200, 230):
        detector.detect(caviar(n))
    moving = [detector.detect(relight(caviar(n), i)).moving for i, n in enumerate(range(230, 290))]
    assert not any(moving), moving


def test_close_visitor_with_exposure_change_is_motion() -> None:
    # Crop the walker of frame 120 and scale him to fill most of the view, as someone
    # stepping up to a doorbell camera; the camera darkens its exposure at the same time.
    gt = u8(cv2.imread(str(CAVIAR / "groundtruth" / "gt000120.png"), cv2.IMREAD_GRAYSCALE))[:, :192]
    ys, xs = np.nonzero(gt == 255)
    crop = caviar(120)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    big = cv2.resize(crop, (150, 230), interpolation=cv2.INTER_LINEAR)
    detector = create_detector(192, 256, MotionSettings())
    for n in range(200, 230):
        detector.detect(caviar(n))
    moving = []
    for n in range(230, 234):
        frame = caviar(n)
        frame[10:240, 20:170] = big
        moving.append(detector.detect(u8(cv2.convertScaleAbs(frame, alpha=0.7, beta=0))).moving)
    assert all(moving), moving


def _score_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("motion_score", DATA / "score.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scores_well_on_a_labelled_view() -> None:
    score = _score_module()
    args = argparse.Namespace(
        k_frac=0.001, k_pixels=None, ambiguous="ignore", gap=15, tol=5, warmup=10, stride=1,
        max_frames=0,
    )  # fmt: skip
    view = {"name": "CAVIAR2@L", "path": str(CAVIAR), "crop": (0, 0, 192, 256)}
    row = score.eval_labelled(view, create_for_scoring, args)
    _precision, _recall, f1 = score.prf(row["tp"], row["fp"], row["fn"])
    assert f1 >= 0.95, row
    assert row["fp"] / (row["fp"] + row["tn"]) <= 0.05, row
    assert row["missed"] == 0, row
