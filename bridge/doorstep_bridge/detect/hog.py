"""Looks for people in the regions that moved, with OpenCV's HOG people detector.

The detector and its weights are part of OpenCV itself
(``cv2.HOGDescriptor.getDefaultPeopleDetector``, Dalal and Triggs' linear SVM):
nothing is downloaded, nothing leaves the machine. It looks only where the motion
core saw movement: each region is widened to a standing person's shape, scaled so
that a person filling it is about as tall as the detector's window, and searched
at a few scales around that. A still scene costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.detect.settings import DEFAULT_THRESHOLD
from doorstep_bridge.motion.types import Box

#: The detector's window (pixels): a person is about 96 px tall inside it.
WINDOW = (64, 128)
#: A region is scaled so that its height maps to this many pixels.
TARGET_HEIGHT = 144
#: Scaling is kept within these bounds (tiny regions are not blown up past 4x).
MIN_SCALE = 0.25
MAX_SCALE = 4.0
#: Regions searched per frame, largest first.
MAX_REGIONS = 4
#: Regions smaller than this (pixels, either side) are not searched.
MIN_SIDE = 8


@dataclass(frozen=True, slots=True)
class PersonHit:
    """One person found: a box in frame pixels and the detector's score."""

    box: Box
    score: float


def _region(box: Box, width: int, height: int) -> Box:
    """A motion box widened to a standing person's proportions, with a margin."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rh = max(h * 1.3, w * 2.0 * 1.3)
    rw = max(w * 1.3, rh / 2.0)
    nx1 = max(0, int(cx - rw / 2))
    ny1 = max(0, int(cy - rh / 2))
    nx2 = min(width, int(cx + rw / 2 + 0.5))
    ny2 = min(height, int(cy + rh / 2 + 0.5))
    return (nx1, ny1, nx2, ny2)


def regions_to_search(boxes: tuple[Box, ...], width: int, height: int) -> list[Box]:
    """The regions to search for the motion ``boxes``, largest first.

    Each box is widened to a person's shape (``_region``); at most ``MAX_REGIONS`` are
    kept, none smaller than ``MIN_SIDE`` and none inside one already kept.
    """
    regions = sorted(
        (_region(b, width, height) for b in boxes),
        key=lambda r: (r[2] - r[0]) * (r[3] - r[1]),
        reverse=True,
    )
    chosen: list[Box] = []
    for region in regions:
        if len(chosen) >= MAX_REGIONS:
            break
        x1, y1, x2, y2 = region
        if x2 - x1 < MIN_SIDE or y2 - y1 < MIN_SIDE:
            continue
        if any(_inside(region, done) for done in chosen):
            continue
        chosen.append(region)
    return chosen


class HogPersonDetector:
    """Finds people in the moving regions of a grey frame (not thread-safe)."""

    def __init__(
        self, threshold: float = DEFAULT_THRESHOLD, *, stride: int = 8, step: float = 1.1
    ) -> None:
        self.threshold = threshold
        self._stride = (stride, stride)
        self._step = step
        self._hog = cv2.HOGDescriptor()
        weights = np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32)
        self._hog.setSVMDetector(weights)

    def find(self, gray: npt.NDArray[np.uint8], boxes: tuple[Box, ...]) -> list[PersonHit]:
        """People in ``gray`` (a 2-D luma image) within the motion ``boxes``."""
        height, width = gray.shape[:2]
        hits: list[PersonHit] = []
        for region in regions_to_search(boxes, width, height):
            hits.extend(self._search(gray, region))
        return hits

    def _search(self, gray: npt.NDArray[np.uint8], region: Box) -> list[PersonHit]:
        x1, y1, x2, y2 = region
        scale = min(MAX_SCALE, max(MIN_SCALE, TARGET_HEIGHT / (y2 - y1)))
        crop = gray[y1:y2, x1:x2]
        w = max(WINDOW[0], round((x2 - x1) * scale))
        h = max(WINDOW[1], round((y2 - y1) * scale))
        patch = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
        # Pad so a person at the region's edge still fits the window.
        pad = 16
        patch = cv2.copyMakeBorder(patch, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        found, weights = self._hog.detectMultiScale(
            patch, hitThreshold=0.0, winStride=self._stride, padding=(0, 0), scale=self._step
        )
        hits: list[PersonHit] = []
        for (bx, by, bw, bh), weight in zip(found, np.ravel(weights), strict=True):
            score = float(weight)
            if score < self.threshold:
                continue
            fx1 = x1 + (bx - pad) / scale
            fy1 = y1 + (by - pad) / scale
            hits.append(
                PersonHit(
                    (
                        int(max(0, fx1)),
                        int(max(0, fy1)),
                        int(min(gray.shape[1], fx1 + bw / scale)),
                        int(min(gray.shape[0], fy1 + bh / scale)),
                    ),
                    score,
                )
            )
        return hits


def _inside(inner: Box, outer: Box) -> bool:
    return (
        inner[0] >= outer[0]
        and inner[1] >= outer[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )
