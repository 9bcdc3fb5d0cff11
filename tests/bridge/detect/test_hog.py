"""The HOG people detector on moving regions: people found, other things not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from doorstep_bridge.detect.hog import MAX_REGIONS, HogPersonDetector, _region
from tests.bridge.detect.synthetic import draw_box, draw_person, porch

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "motion"


def _overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("height", [60, 160, 300])
def test_a_standing_figure_is_found_where_it_moved(height: int) -> None:
    img = porch()
    box = draw_person(img, 320, 30, height)
    hits = HogPersonDetector().find(img, (box,))
    assert hits, "no person found"
    assert all(_overlaps(hit.box, box) for hit in hits)
    assert max(hit.score for hit in hits) >= 1.2


def test_nothing_is_searched_without_motion_boxes() -> None:
    img = porch()
    draw_person(img, 320, 30, 160)
    assert HogPersonDetector().find(img, ()) == []


def test_a_person_outside_the_moving_regions_is_not_looked_for() -> None:
    img = porch()
    draw_person(img, 100, 30, 160)
    parcel = draw_box(img, 450, 250, 80, 60)
    assert HogPersonDetector().find(img, (parcel,)) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_parcel_or_an_empty_porch_is_not_a_person(seed: int) -> None:
    img = porch(seed=seed)
    parcel = draw_box(img, 280, 200, 90, 70)
    assert HogPersonDetector().find(img, (parcel, (0, 0, 640, 360))) == []


def test_regions_are_widened_to_a_standing_shape_within_the_frame() -> None:
    x1, y1, x2, y2 = _region((100, 100, 200, 120), 640, 360)  # a wide, flat change
    assert (y2 - y1) >= 1.9 * (x2 - x1) or y1 == 0 or y2 == 360
    assert min(x1, y1) >= 0
    assert (x2, y2) <= (640, 360)
    assert _region((0, 0, 640, 360), 640, 360) == (0, 0, 640, 360)


def test_tiny_and_nested_regions_are_skipped_and_at_most_four_searched() -> None:
    img = porch()
    detector = HogPersonDetector()
    assert detector.find(img, ((10, 10, 13, 13),)) == []
    calls: list[tuple[int, ...]] = []
    original = detector._search

    def counting(gray: np.ndarray, region: tuple[int, int, int, int]) -> list:  # type: ignore[type-arg]
        calls.append(region)
        return original(gray, region)

    detector._search = counting  # type: ignore[method-assign]
    boxes = tuple((40 + 100 * i, 100, 80 + 100 * i, 180) for i in range(6))
    detector.find(img, (*boxes, (45, 110, 60, 150)))
    assert len(calls) == MAX_REGIONS


def test_the_threshold_decides() -> None:
    img = porch()
    box = draw_person(img, 320, 30, 160)
    best = max(hit.score for hit in HogPersonDetector(threshold=-5.0).find(img, (box,)))
    assert HogPersonDetector(threshold=best + 0.01).find(img, (box,)) == []


@pytest.mark.skipif(not (SHARED / "CAVIAR2").is_dir(), reason="no ../shared/data/motion here")
def test_people_in_the_labelled_lobby_are_found() -> None:
    frames = sorted((SHARED / "CAVIAR2" / "input").iterdir())[::20]
    detector = HogPersonDetector()
    found = 0
    for path in frames:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        gt = cv2.imread(
            str(SHARED / "CAVIAR2" / "groundtruth" / f"gt{path.stem[-6:]}.png"),
            cv2.IMREAD_GRAYSCALE,
        )
        count, _, stats, _ = cv2.connectedComponentsWithStats((gt == 255).astype(np.uint8))
        boxes = tuple(
            (int(x), int(y), int(x + w), int(y + h))
            for x, y, w, h, area in stats[1:count]
            if area > 100
        )
        if boxes and detector.find(gray, boxes):
            found += 1
    assert found >= len(frames) // 4  # bench/person.py has the real figures


def test_a_finer_search_finds_the_figure_too() -> None:
    img = porch()
    box = draw_person(img, 320, 30, 100)
    hits = HogPersonDetector(stride=4, step=1.05).find(img, (box,))
    assert hits
    assert all(_overlaps(hit.box, box) for hit in hits)
