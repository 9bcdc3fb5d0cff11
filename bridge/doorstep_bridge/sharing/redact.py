"""Pixel redaction on decoded frames: faces pixelated, watermark.

Privacy masks are filled by the recorder's own rasteriser
(:class:`doorstep_bridge.recording.masks.MaskSet`), so an export masks exactly
what recordings mask.

Frames are handled as planar YUV 4:2:0 (what H.264 decodes to and encodes
from), so redaction needs no colour conversion: the luma plane is the grey
image the face detector wants, and filling or pixelating a region means doing
it on the luma plane and on the half-size chroma planes.

Exports find faces with a CNN (:mod:`doorstep_bridge.sharing.faces`); the
Haar cascades here (frontal and profile, both directions, shipped inside the
``opencv-python-headless`` 4.x wheel) are the fallback when its weights are
missing. Both miss some faces (very small or strongly turned ones);
docs/sharing.md says so, and the approver can see what was released.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import cv2
import numpy as np
from numpy.typing import NDArray

Plane: TypeAlias = NDArray[np.uint8]

#: Black in limited-range YUV.
BLACK_Y = 16
#: Faces are detected on a copy of the luma plane at most this wide.
DETECT_WIDTH = 640
#: Detector pyramid steps (frontal, profile) and smallest face in pixels of the detection
#: copy (at 1080p: faces of 72 px and more). Haar recall drops sharply with coarser steps
#: (1.2 missed most frames of a 128 px face in our tests; 1.1 found all), so the frontal
#: detector, which matters most at a door, gets the fine step.
FRONTAL_STEP = 1.1
PROFILE_STEP = 1.15
MIN_FACE = 24
#: Boxes grow by this fraction on each side to cover hair, ears and chin.
FACE_PADDING = 0.3
#: A face is pixelated into blocks this many across, then softened.
FACE_BLOCKS = 5


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in frame pixels."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class YuvFrame:
    """Views of the three planes of one yuv420p frame (from ``to_ndarray()``).

    Writing to a plane writes to the frame's array.
    """

    y: Plane
    u: Plane
    v: Plane

    @classmethod
    def of(cls, array: Plane, width: int, height: int) -> YuvFrame:
        """Split the (height * 3/2, width) array PyAV gives for ``yuv420p``."""
        quarter = (height // 2) * (width // 2)
        chroma = array[height:].reshape(-1)
        return cls(
            y=array[:height],
            u=chroma[:quarter].reshape(height // 2, width // 2),
            v=chroma[quarter : 2 * quarter].reshape(height // 2, width // 2),
        )


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"cannot load the face detector {path} (opencv-python-headless 4.x?)")
    return cascade


#: Grey-level change (of a slightly blurred copy) that counts as a change.
CHANGE = 18
#: Changed areas smaller than this (pixels of the copy) are noise.
MIN_CHANGE_AREA = 40


def changed_areas(
    blurred: Any, previous: Any, change: int = CHANGE, min_area: int = MIN_CHANGE_AREA
) -> list[Box]:
    """Bounding boxes of the areas where two blurred copies differ by more than `change`.

    The difference is dilated first so a moving body is one area; areas whose outline
    encloses fewer than `min_area` pixels are noise.
    """
    changed = (cv2.absdiff(blurred, previous) > change).astype(np.uint8)
    changed = cv2.dilate(changed, np.ones((9, 9), np.uint8))
    contours, _hierarchy = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [
        Box(*map(int, cv2.boundingRect(contour)))
        for contour in contours
        if cv2.contourArea(contour) >= min_area
    ]


def shrink(luma: Plane, detect_width: int = DETECT_WIDTH) -> tuple[Any, float]:
    """The copy of `luma` faces are looked for in, and its scale."""
    height, width = luma.shape
    scale = min(1.0, detect_width / width)
    if scale == 1.0:
        return luma, 1.0
    size = (round(width * scale), round(height * scale))
    return cv2.resize(luma, size, interpolation=cv2.INTER_AREA), scale


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def merge(boxes: list[Box]) -> list[Box]:
    """Overlapping boxes joined until none overlap."""
    merged: list[Box] = []
    for box in boxes:
        current = box
        changed = True
        while changed:
            changed = False
            for other in merged:
                if _overlap(current, other):
                    merged.remove(other)
                    current = _union(current, other)
                    changed = True
                    break
        merged.append(current)
    return merged


class Finder(Protocol):
    """A face detector working on grey images shrunk to its `width`."""

    @property
    def width(self) -> int:
        """Width of the copy of a frame that `find_in` expects."""
        ...

    def find_in(self, small: Any) -> list[Box]:
        """Faces in an (already shrunk) grey image, in its pixel coordinates."""
        ...


class FaceFinder:
    """Haar cascade face detection on the luma plane (blocking: run off the event loop)."""

    width = DETECT_WIDTH

    def __init__(self) -> None:
        self._frontal = _cascade("haarcascade_frontalface_default.xml")
        self._profile = _cascade("haarcascade_profileface.xml")

    @staticmethod
    def _detect(cascade: cv2.CascadeClassifier, image: Any, step: float) -> Sequence[Sequence[int]]:
        return cascade.detectMultiScale(
            image, scaleFactor=step, minNeighbors=3, minSize=(MIN_FACE, MIN_FACE)
        )

    def find_in(self, small: Any) -> list[Box]:
        """Faces in an (already shrunk) grey image, in its pixel coordinates."""
        found: list[Sequence[int]] = []
        found.extend(self._detect(self._frontal, small, FRONTAL_STEP))
        found.extend(self._detect(self._profile, small, PROFILE_STEP))
        small_width = small.shape[1]
        for x, y, w, h in self._detect(self._profile, cv2.flip(small, 1), PROFILE_STEP):
            found.append((small_width - x - w, y, w, h))
        return [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]

    def find(self, luma: Plane) -> list[Box]:
        """Faces in a whole luma plane, in its pixel coordinates."""
        small, scale = shrink(luma)
        return [scaled(box, 1 / scale) for box in self.find_in(small)]


def scaled(box: Box, factor: float) -> Box:
    """`box` with every coordinate multiplied by `factor` (and rounded)."""
    return Box(
        round(box.x * factor), round(box.y * factor), round(box.w * factor), round(box.h * factor)
    )


class FaceTracker:
    """Faces in successive frames of one video, looked for where they can be.

    Every `full_every`-th call searches the whole frame (faces standing still are
    found there); the calls in between search only around what changed since the
    previous call and around the faces found last time, which on a door camera is
    a small part of the frame. When much of the frame changed, the whole frame is
    searched anyway.
    """

    #: Above this share of the frame, search the whole frame.
    MAX_SHARE = 0.5

    def __init__(self, finder: Finder, full_every: int = 5) -> None:
        self._finder = finder
        self._full_every = full_every
        self._calls = 0
        self._previous: Any = None
        self._faces: list[Box] = []
        self.full_searches = 0

    def find(self, luma: Plane, *, remember: bool = True) -> list[Box]:
        """Faces in this frame's luma plane, in its pixel coordinates.

        With `remember` false (a frame between two searches, looked at afterwards) the
        search is around what changed since the last remembered call, which stays the
        reference for the next one, and it does not count toward `full_every`.
        """
        small, scale = shrink(luma, self._finder.width)
        blurred = cv2.GaussianBlur(small, (5, 5), 0)
        regions = None
        due = remember and self._calls % self._full_every == 0
        if not due and self._previous is not None and self._previous.shape == blurred.shape:
            regions = self._regions(blurred)
        if regions is None:
            self.full_searches += 1
            faces = self._finder.find_in(small)
        else:
            faces = []
            for region in regions:
                crop = small[region.y : region.y + region.h, region.x : region.x + region.w]
                faces.extend(
                    Box(f.x + region.x, f.y + region.y, f.w, f.h)
                    for f in self._finder.find_in(crop)
                )
        if remember:
            self._calls += 1
            self._previous = blurred
            self._faces = faces
        return [scaled(face, 1 / scale) for face in faces]

    def _regions(self, blurred: Any) -> list[Box] | None:
        """Where to search: changed areas and last faces, with margins; None = everywhere."""
        height, width = blurred.shape
        areas = changed_areas(blurred, self._previous)
        grown = [self._grow(box, width, height) for box in areas + self._faces]
        regions = [r for r in merge(grown) if r.w >= MIN_FACE and r.h >= MIN_FACE]
        if sum(r.w * r.h for r in regions) > self.MAX_SHARE * width * height:
            return None
        return regions

    @staticmethod
    def _grow(box: Box, width: int, height: int) -> Box:
        # A face can be anywhere near a moving arm or a changing patch of a person.
        margin = max(2 * MIN_FACE, box.w // 2, box.h // 2)
        x0, y0 = max(0, box.x - margin), max(0, box.y - margin)
        x1 = min(width, box.x + box.w + margin)
        y1 = min(height, box.y + box.h + margin)
        return Box(x0, y0, x1 - x0, y1 - y0)


def sweep(before: Sequence[Box], after: Sequence[Box]) -> list[Box]:
    """For each face in `after`, the rectangle it swept since the nearest one in `before`.

    Frames between two detections are covered by where a face was and where it is;
    a face that moved further than its own size between them would slip between the
    two boxes, so the whole path from one to the other is covered as well.
    """
    swept: list[Box] = []
    for b in after:
        reach = 3 * max(b.w, b.h)
        centre = (b.x + b.w / 2, b.y + b.h / 2)
        near = [
            a
            for a in before
            if abs(a.x + a.w / 2 - centre[0]) <= reach and abs(a.y + a.h / 2 - centre[1]) <= reach
        ]
        if near:
            nearest = min(
                near, key=lambda a: abs(a.x + a.w / 2 - centre[0]) + abs(a.y + a.h / 2 - centre[1])
            )
            swept.append(_union(nearest, b))
    return swept


def links(before: Sequence[Box], after: Sequence[Box]) -> bool:
    """Whether every face of each detection is within `sweep`'s reach of one in the other.

    When they are not (a face came or went, or moved further than `sweep` reaches), the
    boxes at the two detections and the path between them do not account for the frames
    in between: those need looking at.
    """
    return len(sweep(before, after)) == len(after) and len(sweep(after, before)) == len(before)


def pad(box: Box, width: int, height: int, padding: float = FACE_PADDING) -> Box:
    """`box` grown by `padding` on each side, clipped to the frame, even-aligned."""
    dx, dy = round(box.w * padding), round(box.h * padding)
    x0 = max(0, box.x - dx) & ~1
    y0 = max(0, box.y - dy) & ~1
    x1 = min(width, box.x + box.w + dx)
    y1 = min(height, box.y + box.h + dy)
    x1 += x1 % 2 if x1 < width else 0
    y1 += y1 % 2 if y1 < height else 0
    return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _pixelate(region: Plane) -> None:
    height, width = region.shape
    if width < 2 or height < 2:
        return
    block = max(2, max(width, height) // FACE_BLOCKS)
    small = cv2.resize(
        region,
        (max(1, width // block), max(1, height // block)),
        interpolation=cv2.INTER_AREA,
    )
    # Bilinear enlargement softens the blocks' edges; a Gaussian blur of the enlarged
    # blocks would too, but its cost grows with the box's area times its kernel (which
    # grows with the box): a third of a CPU-second per frame for a 700 px box.
    region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def blur_faces(frame: YuvFrame, boxes: Sequence[Box]) -> None:
    """Pixelate and soften each (already padded) box in `frame`, in place."""
    for box in boxes:
        if box.w < 2 or box.h < 2:
            continue
        _pixelate(frame.y[box.y : box.y + box.h, box.x : box.x + box.w])
        cx, cy, cw, ch = box.x // 2, box.y // 2, box.w // 2, box.h // 2
        _pixelate(frame.u[cy : cy + ch, cx : cx + cw])
        _pixelate(frame.v[cy : cy + ch, cx : cx + cw])


def watermark(frame: YuvFrame, lines: Sequence[str]) -> None:
    """Write ``lines`` small in the top-left corner of the luma plane.

    At the top: a player's controls cover the bottom of the picture. The font has
    only ASCII; other characters are drawn as ``?``.
    """
    height = frame.y.shape[0]
    scale = max(0.35, height / 1080 * 0.7)
    thickness = max(1, round(height / 1080 * 2))
    step = round(scale * 30) + thickness + 4
    left = max(4, height // 60)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for number, line in enumerate(lines):
        text = line.encode("ascii", "replace").decode("ascii")
        origin = (left, max(6, height // 60) + step * (number + 1) - 4)
        cv2.putText(frame.y, text, origin, font, scale, BLACK_Y, thickness + 2, cv2.LINE_AA)
        cv2.putText(frame.y, text, origin, font, scale, 235, thickness, cv2.LINE_AA)
