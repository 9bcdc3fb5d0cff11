"""Parcels at the door: a still object that a visit leaves in the ``doorstep`` zone.

No model: the zone (a motion zone named ``doorstep``, docs/detection.md) is compared,
cell by cell, with how it looked when it was last empty. A comparison is made only when
the scene has settled after a visit (movement, then ``settle`` seconds of stillness):

* something new that is still there ``confirm`` seconds later is a delivery;
* after a later visit, a zone that looks empty again is a pickup (``removed``);
* a visit that leaves the zone as it was (someone who only waited, a passing shadow)
  reports nothing, and the empty zone is taken as the new reference.

Cells are compared by their texture (zero-mean normalised cross-correlation, which a
change of light leaves alone) and, where neither side has texture, by their brightness
after the zone's overall change of light is taken out. The tracker runs on the detect
thread at most ``checks_per_second`` times; each step costs a crop and a resize of the
zone to at most 96 pixels across.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import logging
from typing import Literal, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.detect.privacy import PrivacyMasks, filled
from doorstep_bridge.validation import Polygon

_LOGGER = logging.getLogger(__name__)

PackageChange: TypeAlias = Literal["delivered", "removed"]

#: The zone is analysed at most this wide (pixels).
WORK_WIDTH = 96
#: Cells of the comparison grid (pixels of the analysed zone).
CELL = 8
#: A cell has texture when its standard deviation is at least this (grey levels).
TEXTURE = 6.0
#: Textured cells whose correlation falls below this differ.
MIN_CORRELATION = 0.6
#: Flat cells whose brightness differs by more than this (after the light) differ.
MAX_LEVEL_CHANGE = 30.0
#: Share of the zone's cells that must differ for something to be there.
MIN_CHANGED = 0.04


@dataclass(frozen=True, slots=True)
class PackageSettings:
    """How a package is recognised.

    Attributes:
        settle: Seconds without movement after a visit before the zone is compared.
        confirm: Seconds something new must stay before it is reported delivered.
        checks_per_second: Steps per second at most.
    """

    settle: float = 2.0
    confirm: float = 5.0
    checks_per_second: float = 1.0


def doorstep_zone(zones: tuple[tuple[str, Polygon], ...]) -> Polygon | None:
    """The motion zone named ``doorstep``, if the camera has one."""
    return next((polygon for name, polygon in zones if name == "doorstep"), None)


class PackageTracker:
    """Follows one camera's doorstep zone (not thread-safe: the detect thread's).

    Args:
        zone: The ``doorstep`` polygon, in pixels of the frames fed.
        on_change: Called with ``"delivered"`` or ``"removed"``.
        settings: Timing.
        camera: The camera's name (logs).
        privacy: The camera's privacy masks: what lies under them never counts (filled
            black in both the empty step and the current view); until they can be
            placed in the frames, the zone is not compared.
    """

    def __init__(
        self,
        zone: Polygon,
        on_change: Callable[[PackageChange], None],
        settings: PackageSettings | None = None,
        *,
        camera: str = "",
        privacy: PrivacyMasks | None = None,
    ) -> None:
        self._settings = settings or PackageSettings()
        self._privacy = privacy
        self._camera = camera
        self._on_change = on_change
        points = np.array(zone, dtype=np.int32)
        x1, y1 = points.min(axis=0)
        x2, y2 = points.max(axis=0)
        self._box = (max(0, int(x1)), max(0, int(y1)), int(x2) + 1, int(y2) + 1)
        self._polygon = points
        self._shape: tuple[int, int] | None = None
        self._mask: npt.NDArray[np.bool_] | None = None
        self._empty: npt.NDArray[np.float32] | None = None
        self._new_since: float | None = None
        self._last_step: float | None = None
        self._last_motion: float | None = None
        self._visit = False
        #: The frame size (width, height) the zone was last found outside of.
        self._outside: tuple[int, int] | None = None
        self.present = False

    def feed(self, luma: npt.NDArray[np.uint8], moving: bool, now: float) -> None:
        """One analysed frame and whether the motion core saw movement in it."""
        if moving:
            self._last_motion = now
            self._visit = True
            self._new_since = None
            return
        interval = 1.0 / self._settings.checks_per_second
        if self._last_step is not None and now - self._last_step < interval * 0.9:
            return
        if self._last_motion is not None and now - self._last_motion < self._settings.settle:
            return
        self._last_step = now
        zone = self._zone(luma)
        if zone is None:
            return
        if self._empty is None or self._empty.shape != zone.shape:
            # The first settled view (or the first at a new frame size): the empty step.
            self._empty = zone
            return
        differs = self._differs(zone, self._empty)
        if not self.present:
            self._while_empty(zone, differs=differs, now=now)
        elif self._visit:
            self._visit = False
            if not differs:
                self.present = False
                self._empty = zone
                self._on_change("removed")

    def _while_empty(self, zone: npt.NDArray[np.float32], *, differs: bool, now: float) -> None:
        if not differs:
            self._visit = False
            self._new_since = None
            self._empty = zone  # follow the light while nothing is there
            return
        if not self._visit:
            return  # changed without anyone coming: light, not a parcel
        if self._new_since is None:
            self._new_since = now
        if now - self._new_since >= self._settings.confirm:
            self.present = True
            self._visit = False
            self._new_since = None
            self._on_change("delivered")

    def _zone(self, luma: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32] | None:
        """The zone, scaled and smoothed; None when it lies outside the frame."""
        x1, y1, x2, y2 = self._box
        crop = luma[y1:y2, x1:x2]
        height, width = crop.shape[:2]
        if self._privacy and width and height:
            masked = self._privacy.at(luma.shape[1], luma.shape[0])
            if masked is None:
                return None
            crop = filled(crop, masked[y1:y2, x1:x2])
        if width == 0 or height == 0:
            size = (luma.shape[1], luma.shape[0])
            if self._outside != size:
                self._outside = size
                _LOGGER.warning(
                    "Camera %s: the doorstep zone (x %d-%d, y %d-%d) lies outside the %dx%d"
                    " detect frame (zones are in detect-stream pixels); parcels are not followed",
                    self._camera,
                    x1,
                    x2 - 1,
                    y1,
                    y2 - 1,
                    *size,
                )
            return None
        scale = min(1.0, WORK_WIDTH / max(1, width))
        size = (max(CELL, round(width * scale)), max(CELL, round(height * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._shape != small.shape:
            self._shape = small.shape
            mask = np.zeros(small.shape, np.uint8)
            poly = ((self._polygon - [x1, y1]) * [size[0] / width, size[1] / height]).astype(
                np.int32
            )
            cv2.fillPoly(mask, [poly], 1)
            self._mask = mask.astype(bool)
        return np.asarray(cv2.GaussianBlur(small, (3, 3), 0), dtype=np.float32)

    def _differs(self, zone: npt.NDArray[np.float32], empty: npt.NDArray[np.float32]) -> bool:
        assert self._mask is not None
        h, w = zone.shape
        rows, cols = h // CELL, w // CELL
        if rows == 0 or cols == 0:
            return False
        inside = self._mask[: rows * CELL, : cols * CELL]
        cur = zone[: rows * CELL, : cols * CELL]
        ref = empty[: rows * CELL, : cols * CELL]
        gain = max(1.0, float(np.median(cur[inside]))) / max(1.0, float(np.median(ref[inside])))

        def cells(a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return a.reshape(rows, CELL, cols, CELL).transpose(0, 2, 1, 3).reshape(rows, cols, -1)

        c, r = cells(cur), cells(ref)
        in_cell = cells(inside.astype(np.float32)).mean(axis=2) >= 0.5
        cm, rm = c.mean(axis=2), r.mean(axis=2)
        cs, rs = c.std(axis=2), r.std(axis=2)
        cov = ((c - cm[..., None]) * (r - rm[..., None])).mean(axis=2)
        textured = (cs >= TEXTURE) | (rs >= TEXTURE * gain)
        correlation = cov / np.maximum(cs * rs, 1e-6)
        texture_changed = textured & (correlation < MIN_CORRELATION)
        level_changed = ~textured & (np.abs(cm - rm * gain) > MAX_LEVEL_CHANGE)
        changed = (texture_changed | level_changed) & in_cell
        total = int(in_cell.sum())
        return total > 0 and int(changed.sum()) >= max(2, MIN_CHANGED * total)
