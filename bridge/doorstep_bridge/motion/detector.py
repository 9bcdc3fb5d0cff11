"""Background-subtraction motion detector on the luma plane.

The frame is shrunk to a small working grid (at most ``work_pixels`` pixels, and
at most ``read_bytes`` of the frame read: see :func:`grid_factor`), blurred, and
compared with a running background model:

* **Noise-adaptive threshold.** Each grid pixel keeps a running estimate of how
  much it normally deviates from the background (sensor and encoder noise,
  ripples, swaying leaves); a pixel is foreground only when it differs by more
  than ``k`` times that and by at least ``t_min`` grey levels.
* **Neighbourhood tolerance.** A pixel is compared with the darkest and the
  brightest background pixel around it, so texture that shifts by one grid
  pixel (camera shake, leaves) does not count as change.
* **Lighting compensation.** When a tenth of the frame or more changes at once,
  each small cell is checked for "same texture, other light" (see
  :mod:`.lighting`); if re-lighting the background cell by cell explains most
  of the change, it was the light (auto exposure, IR switching, lightning,
  headlights) and only what it cannot explain remains. Light can also arrive
  small (a beam entering at the edge): when motion begins, a region that is the
  background under new light is dropped. For a second after light changed or
  arrived, smaller changes are checked for light too (a beam sweeping across),
  and leftover regions are dropped as well if, judged against the background
  from before the light changed, their texture still lines up, they have no
  texture on either side, or the light has clipped them mostly to white with
  nothing new beside. A slow change of light (dusk, exposure settling) is checked
  the same way once the unchanged pixels of every quarter of the frame have
  drifted together.
* **Shadows.** A moving region that is the background times a smooth gain (same
  texture, contrast scaled with brightness) is a shadow, not motion (tested every
  fourth frame, and when new or grown; see :func:`.lighting.shadow`).
* **Zones and masks.** Only changes inside a zone (when zones are set) and
  outside every mask count.
* **Activity.** A foreground region counts as motion only while something in it
  differed from the average of the last frames (time constant 0.7 s, so slow
  movement counts too) within ``still_hold`` seconds. A region
  that stays still longer (a parked car, a moved chair) is absorbed into the
  background.
* **Ghosts.** A still region whose outline is sharper in the background than in
  the frame is what an object left behind when it moved away: it is absorbed at
  once instead of waiting for ``still_hold``.
* **Uncovered background.** Where something is absorbed, what the background
  showed before is remembered; a region that shows it again is the background
  uncovered (a visitor who waited, then left) and is absorbed at once.
* **Size and persistence.** Regions smaller than ``min_area`` are dropped;
  regions smaller than a few times ``min_area`` must also overlap the previous
  frame's foreground (one-frame flickers of rain, snow and leaves).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Final, TypeAlias, cast

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.motion.lighting import (
    cell_size,
    clipped_by_light,
    light_arrived,
    light_change,
    same_structure,
    shadow,
)
from doorstep_bridge.motion.settings import MotionSettings
from doorstep_bridge.motion.types import Box, Luma, MotionResult
from doorstep_bridge.validation import Polygon

FloatGrid: TypeAlias = npt.NDArray[np.float32]
Mask: TypeAlias = npt.NDArray[np.uint8]

DEFAULT_FPS: Final = 5.0
"""Detect rate the time constants are expressed for when none is given."""
FULL_RES_PIXELS: Final = 320 * 240
"""Frames up to this size are analysed as they are (small objects stay visible)."""
WORK_PIXELS: Final = 160 * 90
"""Larger frames are shrunk by a whole factor to at most this many pixels (speed)."""
READ_BYTES: Final = 90 * 1280
"""Bytes of frame rows the grid may read: what a 1280x720 frame's 160x90 grid reads."""
MIN_GRID_PIXELS: Final = 80 * 45
"""The reading budget never makes the grid smaller than this (small objects)."""

# Thresholds at sensitivity 0.5; each 0.25 of sensitivity halves or doubles them.
_T_MIN: Final = 20.0  # grey levels (after a 5x5 blur on the working grid)
_K_NOISE: Final = 5.0  # times the pixel's usual deviation
_NOISE_START: Final = 3.0  # initial deviation estimate, grey levels
_NOISE_FLOOR: Final = 0.5
_NOISE_CLAMP: Final = 7.5  # one frame moves the estimate by at most this many deviations
_BG_SECONDS: Final = 3.9  # background time constant (5% per frame at 5 fps)
_NOISE_SECONDS: Final = 9.9  # deviation time constant (2% per frame at 5 fps)
_PERSIST_FACTOR: Final = 4  # regions below this many min_area must persist one frame
_GHOST_AFTER: Final = 2  # frames a region must be still before the ghost test
_LIGHT_TRIGGER: Final = 0.10  # share of the frame changing at once that may be light
_LIGHT_EXPLAINED: Final = 0.5  # light must explain at least half of what changed
_LIGHT_SECONDS: Final = 1.0  # after a change of light, leftovers are checked this long
_RECENT_SECONDS: Final = 0.7  # "recent" frame average (25% per frame at 5 fps)
_DRIFT: Final = 3.0  # grey levels the unchanged pixels may drift together before light is checked
# How far the drift estimated on the 8-bit background may be from the exact one: half
# a grey level of rounding, and far more than float sums over a grid can be off by.
_DRIFT_MARGIN: Final = 0.5 + 1e-4
_SHADOW_EVERY: Final = 4  # frames between tests for shadows (in between, their verdicts hold)
_DRIFT_EVERY: Final = 2  # frames between checks for light drifting (slow: dusk, exposure)
_UNCOVERED: Final = 0.8  # share of a region that must show what was behind to be uncovered
_BEHIND_SECONDS: Final = 600.0  # how long what was behind absorbed things is remembered
_RANGE_EVERY: Final = 4  # frames between refreshes of the background's range and bounds
_NOISE_EVERY: Final = 8  # frames between refreshes of the noise estimate (and thresholds)
_MOVED: Final = 255  # activity of a pixel that moved in this frame (counts down per frame)
_MAX_HOLD_STEPS: Final = 240  # longer holds count down once every few frames
_NO_MOTION: Final = MotionResult()


@dataclass(frozen=True, slots=True)
class _Tuning:
    """Per-detector constants derived from the settings and the frame rate."""

    t_min: float
    k_noise: float
    min_pixels: float
    hold_frames: int
    bg_rate: float
    noise_rate: float
    lighting: bool


def _f32(array: Any) -> FloatGrid:
    """Narrow an OpenCV result (typed as Mat | NDArray) to a float32 grid."""
    return cast("FloatGrid", array)


def _u8(array: Any) -> Mask:
    """Narrow an OpenCV result to a uint8 mask."""
    return cast("Mask", array)


class _Region:
    """One changed region of a frame: its outline and box, its mask drawn when first needed.

    Most regions of a busy frame are judged without their mask; drawing one costs
    more than the tests that need none. Every test reads the one mask; none changes it.
    """

    __slots__ = ("_grid_size", "_padded", "contour", "rect")

    def __init__(self, contour: Any, rect: Box, grid_size: tuple[int, int]) -> None:
        self.contour = contour
        self.rect = rect
        self._grid_size = grid_size
        self._padded: tuple[Mask, Box] | None = None

    def padded(self) -> tuple[Mask, Box]:
        """The region's mask with a margin of two pixels, and that box as (x0, y0, x1, y1).

        The margin holds the region's outline and the ring around it; the box is cut at
        the grid's edges.
        """
        if self._padded is None:
            x, y, w, h = self.rect
            gw, gh = self._grid_size
            x0, y0 = max(0, x - 2), max(0, y - 2)
            x1, y1 = min(gw, x + w + 2), min(gh, y + h + 2)
            region = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.drawContours(region, [self.contour], -1, 255, thickness=-1, offset=(-x0, -y0))
            self._padded = region, (x0, y0, x1, y1)
        return self._padded

    def mask(self) -> Mask:
        """The region's mask in its own box (a view into the padded one)."""
        padded, (x0, y0, _, _) = self.padded()
        x, y, w, h = self.rect
        return padded[y - y0 : y - y0 + h, x - x0 : x - x0 + w]


def _tuning(settings: MotionSettings, fps: float, grid_pixels: int) -> _Tuning:
    scale = 2.0 ** ((0.5 - settings.sensitivity) * 4.0)
    return _Tuning(
        t_min=_T_MIN * scale,
        k_noise=_K_NOISE * scale,
        min_pixels=max(2.0, settings.min_area * grid_pixels),
        hold_frames=max(1, round(settings.still_hold * fps)),
        bg_rate=1.0 - math.exp(-1.0 / (fps * _BG_SECONDS)),
        noise_rate=1.0 - math.exp(-_NOISE_EVERY / (fps * _NOISE_SECONDS)),
        lighting=settings.lighting_compensation,
    )


def grid_factor(
    width: int, height: int, work_pixels: int = WORK_PIXELS, read_bytes: int = READ_BYTES
) -> int:
    """Whole shrink factor from the frame to the working grid.

    Frames of at most ``FULL_RES_PIXELS`` are kept as they are. Larger ones are
    sampled one pixel per ``factor`` x ``factor`` block, with the factor chosen so
    that the grid has at most ``work_pixels`` pixels and so that at most
    ``read_bytes`` of the frame are read. The samples of a grid row are a few bytes
    apart, so every cache line of the frame row they lie in is read: reading costs
    the rows sampled times the row's length, and a wider frame needs fewer rows for
    the same cost. 1280x720 and 640x360 become 160x90; 1920x1080 becomes 106x60
    (60 rows of 1920 bytes, as many as 90 rows of 1280). The reading budget never
    shrinks the grid below ``MIN_GRID_PIXELS``.
    """
    pixels = width * height
    if pixels <= max(FULL_RES_PIXELS, work_pixels):
        return 1
    by_pixels = math.ceil(math.sqrt(pixels / work_pixels))
    # height // factor rows of width bytes each.
    by_reading = math.ceil(pixels / read_bytes)
    coarsest = math.floor(math.sqrt(pixels / MIN_GRID_PIXELS))
    return max(1, by_pixels, min(by_reading, coarsest))


def _mask_grid(
    masks: tuple[Polygon, ...], zones: tuple[Polygon, ...], size: tuple[int, int], factor: int
) -> Mask | None:
    """255 where motion counts (inside a zone if any, outside the masks); working grid."""
    if not masks and not zones:
        return None

    def grid_polys(polys: tuple[Polygon, ...]) -> list[npt.NDArray[np.int32]]:
        return [
            np.array([(x / factor, y / factor) for x, y in p], np.float32).round().astype(np.int32)
            for p in polys
        ]

    allowed = np.full((size[1], size[0]), 0 if zones else 255, np.uint8)
    if zones:
        cv2.fillPoly(allowed, grid_polys(zones), 255)
    if masks:
        cv2.fillPoly(allowed, grid_polys(masks), 0)
    return allowed


class LumaMotionDetector:
    """Motion in a stream of luma frames of one fixed size (see module docs).

    The per-frame work runs on 8-bit grids (a quarter of the memory traffic of
    floats); only the slowly learnt background and noise level are floats.
    Not thread-safe: one instance per camera, fed from one worker thread.
    """

    def __init__(
        self,
        width: int,
        height: int,
        settings: MotionSettings | None = None,
        *,
        fps: float = DEFAULT_FPS,
        work_pixels: int = WORK_PIXELS,
        read_bytes: int = READ_BYTES,
    ) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"bad frame size {width}x{height}")
        if fps <= 0:
            raise ValueError("fps must be positive")
        settings = settings or MotionSettings()
        self.width, self.height = width, height
        self._factor = grid_factor(width, height, work_pixels, read_bytes)
        self._size = (max(1, width // self._factor), max(1, height // self._factor))
        grid_pixels = self._size[0] * self._size[1]
        self._grid_pixels = grid_pixels
        self._tune = _tuning(settings, fps, grid_pixels)
        self._recent_rate = 1.0 - math.exp(-1.0 / (fps * _RECENT_SECONDS))
        self._allowed = _mask_grid(
            settings.masks, tuple(p for _, p in settings.zones), self._size, self._factor
        )
        self._allowed_pixels = (
            grid_pixels if self._allowed is None else cv2.countNonZero(self._allowed)
        )
        self._cell = cell_size(*self._size)
        self._light_window = max(1, round(fps * _LIGHT_SECONDS))
        self._lit_until = -1
        # The background as it was before the light began to change: its texture is
        # what leftovers are judged by (re-lighting cell by cell blurs it a little).
        self._unlit: FloatGrid = np.empty(0, np.float32)
        self._reported_at = -1  # last frame with motion
        self._kernel3 = np.ones((3, 3), np.uint8)
        self._kernel5 = np.ones((5, 5), np.uint8)
        shape = (self._size[1], self._size[0])
        # Per-frame results go to buffers allocated once: right after the decoder ran,
        # fresh allocations and scattered memory cost more than the arithmetic.
        self._small: Mask = np.empty(shape, np.uint8)
        self._grid: Mask = np.empty(shape, np.uint8)
        self._unchanged: Mask = np.empty(shape, np.uint8)
        # Two buffers in turn: the previous frame's changes stay readable (persistence).
        self._fgs: tuple[Mask, Mask] = (np.empty(shape, np.uint8), np.empty(shape, np.uint8))
        self._moved: Mask = np.empty(shape, np.uint8)
        self._dilated: Mask = np.empty(shape, np.uint8)
        self._bg8: Mask = np.empty(shape, np.uint8)
        self._frame = 0
        empty8: Mask = np.empty(0, np.uint8)
        self._bg: FloatGrid | None = None
        self._noise: FloatGrid = np.empty(0, np.float32)
        self._high: Mask = empty8  # brightest background pixel around each pixel
        self._low: Mask = empty8  # darkest
        self._threshold: Mask = empty8
        self._clamp: Mask = empty8  # largest residual the noise estimate takes in
        self._recent: Mask = empty8  # average of the last frames (0.7 s)
        self._activity: Mask = empty8
        self._bounds: tuple[Mask, Mask] = (empty8, empty8)
        self._pending_steps = 0
        # The 8-bit activity countdown covers still_hold in at most 240 steps.
        self._activity_step = max(1, math.ceil(self._tune.hold_frames / _MAX_HOLD_STEPS))
        self._hold_steps = math.ceil(self._tune.hold_frames / self._activity_step)
        self._prev_fg: Mask | None = None
        # What the background showed where something was absorbed (a visitor who waited
        # for `still_hold`, a ghost): when it shows again, that is the background uncovered.
        self._behind: Mask = empty8
        self._behind_known: Mask = empty8
        self._behind_until = -1  # frame after which the memory is forgotten
        self._behind_frames = max(1, round(fps * _BEHIND_SECONDS))
        # Where the last tests for shadows found them, and where they found something
        # that moves by itself (see `_shadow`); whether either holds a verdict.
        self._verdicts: tuple[Mask, Mask] = (empty8, empty8)
        self._judged = False

    @property
    def grid_size(self) -> tuple[int, int]:
        """(width, height) of the working grid."""
        return self._size

    def reset(self) -> None:
        """Forget the background (after a stream restart or a camera move)."""
        self._bg = None
        self._prev_fg = None
        self._lit_until = -1
        self._behind_until = -1

    def _prepare(self, luma: Luma) -> Mask:
        if luma.shape != (self.height, self.width):
            raise ValueError(
                f"expected a {self.width}x{self.height} luma plane, got shape {luma.shape}"
            )
        small = luma
        f = self._factor
        if f > 1:
            # Reading the frame is most of the cost: take one pixel per grid pixel, from
            # the middle of its block, into a small buffer. The blur below is the
            # anti-aliasing filter. OpenCV's exact nearest-neighbour resize of the blocks
            # the grid covers (gw * f by gh * f) reads pixel f * i + f // 2 for grid
            # pixel i, and costs fewer instructions than NumPy's strided copy.
            gw, gh = self._size
            cv2.resize(
                luma[: gh * f, : gw * f],
                self._size,
                dst=self._small,
                interpolation=cv2.INTER_NEAREST_EXACT,
            )
            small = self._small
        # 5x5 Gaussian (the fixed-point 8-bit path).
        return _u8(cv2.GaussianBlur(small, (5, 5), 0, dst=self._grid))

    def _range(self, bg: FloatGrid, out: tuple[Mask, Mask] | None = None) -> tuple[Mask, Mask]:
        """Darkest and brightest background pixel around each pixel (8 bits)."""
        bg8 = cv2.convertScaleAbs(bg)
        if out is None:
            return _u8(cv2.erode(bg8, self._kernel3)), _u8(cv2.dilate(bg8, self._kernel3))
        cv2.erode(bg8, self._kernel3, dst=out[0])
        cv2.dilate(bg8, self._kernel3, dst=out[1])
        return out

    def _set_background(self, bg: FloatGrid) -> None:
        """Refresh the range around each background pixel and the bounds of "no change"."""
        self._low, self._high = self._range(bg, (self._low, self._high))
        self._bounds = self._bounds_for(self._low, self._high, self._bounds)

    def _bounds_for(
        self, low: Mask, high: Mask, out: tuple[Mask, Mask] | None = None
    ) -> tuple[Mask, Mask]:
        # Saturating: a bound past black or white can never be crossed.
        if out is None:
            return _u8(cv2.subtract(low, self._threshold)), _u8(cv2.add(high, self._threshold))
        cv2.subtract(low, self._threshold, dst=out[0])
        cv2.add(high, self._threshold, dst=out[1])
        return out

    def _changes(
        self, grid: Mask, bounds: tuple[Mask, Mask], *, scratch: bool = False
    ) -> tuple[Mask, Mask | None, int]:
        """(unchanged, changed, count): inside or outside the bounds around the background.

        The changed mask is None when nothing changed. The masks are the detector's
        buffers, or new arrays with ``scratch``.
        """
        unchanged = _u8(
            cv2.inRange(grid, bounds[0], bounds[1], None if scratch else self._unchanged)
        )
        dst = None if scratch else self._fgs[self._frame % 2]
        if self._allowed is None:
            # Count first: a frame where nothing changed needs no mask of changes.
            count = self._grid_pixels - cv2.countNonZero(unchanged)
            return unchanged, _u8(cv2.bitwise_not(unchanged, dst)) if count else None, count
        fg = _u8(cv2.bitwise_not(unchanged, dst))
        cv2.bitwise_and(fg, self._allowed, dst=fg)
        cv2.bitwise_not(fg, dst=unchanged)
        count = cv2.countNonZero(fg)
        return unchanged, fg if count else None, count

    def _relight(self, grid: Mask, bg: FloatGrid, count: int) -> bool:
        """Re-light the background where the change looks like light, not a new scene."""
        change = light_change(grid.astype(np.float32), bg, self._cell)
        if change is None:
            return False
        gain, offset = change
        # Brighter than white is kept (the frame only shows white there, but the texture
        # is back when the light goes down); the 8-bit range around it saturates.
        relit = _f32(np.maximum(cv2.multiply(bg, gain) + offset, 0.0))
        low, high = self._range(relit)
        bounds = self._bounds_for(low, high)
        changed = self._changes(grid, bounds, scratch=True)[2]
        if changed > _LIGHT_EXPLAINED * count:
            return False  # most of the change is not light: leave it to the regions
        self._light_changing(bg)
        np.copyto(bg, relit)
        # Learning and absorbing only bring it back towards the frame (0..255): once
        # above white, the background is taken to stay there.
        self._bg_above_white |= float(cv2.minMaxLoc(relit)[1]) > 255.5
        self._low, self._high, self._bounds = low, high, bounds
        # Recent frames were lit the old way too: re-light them so light is not activity.
        recent = cv2.multiply(self._recent.astype(np.float32), gain) + offset
        self._recent = _u8(cv2.convertScaleAbs(recent))
        if self._frame <= self._behind_until:
            # So was what is behind absorbed things: it must still match when uncovered.
            behind = cv2.multiply(self._behind.astype(np.float32), gain) + offset
            cv2.convertScaleAbs(behind, dst=self._behind)
        return True

    def _drifting(self, grid: Mask, bg: FloatGrid, unchanged: Mask, changed: int) -> bool:
        """True when the pixels that did not change all drifted the same way.

        A slow change of light (dusk, auto exposure settling) first pushes only the
        brightest pixels past the thresholds: too few to be checked as a change of
        light, yet the rest of the picture has moved with them, a few grey levels
        each. Something new leaves the rest of the picture where it was, and so does
        a shadow passing over part of it: the drift must be there in each quarter of
        the picture, the same way.

        ``changed`` is the number of pixels outside ``unchanged`` (see `_changes`).
        """
        kept = self._grid_pixels - changed  # pixels in `unchanged`
        if kept and not self._bg_above_white:
            # Masked means cost far more than whole-grid sums. The 8-bit background is
            # within half a grey level of the float one (it lies in 0..255.5), so this
            # estimate of the drift is too: only near the limit do the exact figures
            # below decide, and the verdict is the same either way.
            bg8, masked = self._bg8, self._dilated  # `_dilated` is free until `_regions`
            cv2.convertScaleAbs(bg, dst=bg8)
            seen = float(cv2.sumElems(cv2.bitwise_and(grid, unchanged, dst=masked))[0])
            learnt = float(cv2.sumElems(cv2.bitwise_and(bg8, unchanged, dst=masked))[0])
            if abs(seen - learnt) / kept <= _DRIFT - _DRIFT_MARGIN:
                return False

        def drift(part: tuple[slice, slice]) -> float:
            mask = unchanged[part]
            return float(cv2.mean(grid[part], mask)[0]) - float(cv2.mean(bg[part], mask)[0])

        whole = drift((slice(None), slice(None)))
        if abs(whole) <= _DRIFT:
            return False
        h, w = grid.shape
        rows = (slice(0, h // 2), slice(h // 2, h))
        cols = (slice(0, w // 2), slice(w // 2, w))
        # Each quarter drifts the same way, by at least half of _DRIFT.
        return all(drift((r, c)) * whole > _DRIFT * abs(whole) / 2 for r in rows for c in cols)

    def _remember(self, bg: FloatGrid, absorb: Mask, restored: Mask | None) -> None:
        """Keep what the background showed where something is absorbed (see `_uncovered`).

        Where uncovered background is absorbed, the memory has served and is dropped.
        """
        known = self._behind_known
        if self._frame > self._behind_until:
            known.fill(0)  # forgotten: light and scene have moved on since
        new = absorb if restored is None else _u8(cv2.subtract(absorb, restored))
        if cv2.countNonZero(new):
            np.copyto(self._behind, cv2.convertScaleAbs(bg), where=new > 0)
            cv2.bitwise_or(known, new, dst=known)
            self._behind_until = self._frame + self._behind_frames
        if restored is not None:
            cv2.subtract(known, restored, dst=known)

    def _uncovered(self, grid: Mask, changed: Mask, area: int, rect: Box) -> bool:
        """True when a region shows what the background showed before something was absorbed.

        A visitor who waited for `still_hold` became background; when they leave, the
        patch they uncover differs from the background but is what was there before.
        The ghost test (outlines) misses it when the visitor's outline was faint, or
        when only part of them was absorbed; comparing with the memory does not.
        """
        x, y, w, h = rect
        known = self._behind_known[y : y + h, x : x + w]
        # What matches lies where the memory is: too little memory, no match to count.
        if cv2.countNonZero(known) < _UNCOVERED * area:
            return False
        match = _u8(cv2.absdiff(grid[y : y + h, x : x + w], self._behind[y : y + h, x : x + w]))
        cv2.compare(match, self._threshold[y : y + h, x : x + w], cv2.CMP_LE, dst=match)
        cv2.bitwise_and(match, known, dst=match)
        cv2.bitwise_and(match, changed, dst=match)
        return cv2.countNonZero(match) >= _UNCOVERED * area

    def _shadow(self, grid: Mask, bg: FloatGrid, part: _Region, area: int) -> bool:
        """True when a region is the background, darker: a shadow passing over it.

        A shadow takes light away: what the surface reflects is multiplied down, so its
        texture stays where it was and its contrast falls with its brightness (see
        :func:`shadow`). A dark object brings its own texture, or none. Judged on the
        core of the changed pixels: the shadow's soft edge is a step the background
        does not have.

        The test is the dearest part of a busy frame, and a region's verdict rarely
        changes from one frame to the next (a shadow and what casts it move little in a
        frame): every region is tested once every few frames, and in between a region
        lying mostly where the last tests found a shadow is one, a region covered by
        where they found none (as many pixels as it has) is none, and any other region
        (new, or grown: a shadow entering) is tested.
        """
        x, y, w, h = part.rect
        if self._frame % _SHADOW_EVERY and self._judged:
            shadows, objects = self._verdicts
            if 2 * cv2.countNonZero(shadows[y : y + h, x : x + w]) >= area:
                return True
            # Stricter: a region that grew (a shadow entering) is tested again.
            if cv2.countNonZero(objects[y : y + h, x : x + w]) >= area:
                return False
        region = part.mask()
        core = _u8(cv2.erode(region, self._kernel5))
        found = shadow(grid[y : y + h, x : x + w], bg[y : y + h, x : x + w], core, self._cell)
        if found is None:
            return False  # too little to tell by: tested again while it grows
        self._verdicts[0 if found else 1][y : y + h, x : x + w] |= region
        self._judged = True
        return found

    def _light_changing(self, bg: FloatGrid) -> None:
        """Check changes for light for the next second (see `detect`)."""
        if self._frame > self._lit_until:
            self._unlit = bg.copy()
        self._lit_until = self._frame + self._light_window

    def _light_arrived(self, grid: Mask, bg: FloatGrid, part: _Region, changed: int) -> bool:
        """True when a region that appeared as motion began is light arriving.

        A beam entering at the edge is too small to be checked as a change of light;
        if the region is the background under new light (see :func:`light_arrived`),
        changes are checked for light from now on (see `detect`). Called only at the
        onset of motion: while motion goes on, this costs nothing.
        """
        if self._frame <= self._lit_until:
            return False  # light is already known to be changing
        if changed < self._cell * self._cell:
            return False  # too little to tell light by (see light_arrived); saves its cost
        x, y, w, h = part.rect
        now = grid[y : y + h, x : x + w].astype(np.float32)
        if not light_arrived(now, bg[y : y + h, x : x + w], part.mask(), self._cell):
            return False
        self._light_changing(bg)
        return True

    def _same_as_unlit(self, grid: Mask, part: _Region) -> bool:
        """True when a region's texture lines up with the background from before the light.

        Judged with the ring of two pixels around the region (as for ghosts): a small
        leftover has too little texture of its own, and its ring is where the light
        model's error fades into what it explained. A region with no texture on
        either side counts as the same: it shows nothing new while light changes.
        """
        padded, (x0, y0, x1, y1) = part.padded()
        around = _u8(cv2.dilate(padded, self._kernel3, iterations=2))
        now = grid[y0:y1, x0:x1].astype(np.float32)
        return same_structure(now, self._unlit[y0:y1, x0:x1], around)

    def _is_ghost(self, grid: Mask, bg: FloatGrid, region: Mask, box: Box) -> bool:
        """True when the region's outline is in the background, not in the frame."""
        x0, y0, x1, y1 = box
        k = self._kernel3
        # The ring around the outline, and the edges (local max - min) on both sides.
        ring = cv2.morphologyEx(region, cv2.MORPH_GRADIENT, k)
        edge_now = cv2.morphologyEx(grid[y0:y1, x0:x1], cv2.MORPH_GRADIENT, k)
        edge_bg = cv2.morphologyEx(bg[y0:y1, x0:x1], cv2.MORPH_GRADIENT, k)
        # Same pixels on both sides: comparing means compares sums.
        return float(cv2.mean(edge_bg, ring)[0]) > float(cv2.mean(edge_now, ring)[0])

    def detect(self, luma: Luma) -> MotionResult:
        """Analyse the next frame (uint8, H x W, frames in order)."""
        grid = self._prepare(luma)
        self._frame += 1
        bg = self._bg
        if bg is None:
            self._start(grid)
            return _NO_MOTION
        unchanged, fg, changed = self._changes(grid, self._bounds)
        # Light that has just changed often goes on changing (a beam sweeping across,
        # exposure settling): for a second after a change of light, smaller changes
        # are checked for light too.
        lit = self._frame <= self._lit_until
        trigger = self._tune.min_pixels if lit else _LIGHT_TRIGGER * self._allowed_pixels
        if (
            self._tune.lighting
            and changed > self._tune.min_pixels
            and (
                changed > trigger
                or (
                    self._frame % _DRIFT_EVERY == 1 and self._drifting(grid, bg, unchanged, changed)
                )
            )
            and self._relight(grid, bg, changed)
        ):
            unchanged, fg, changed = self._changes(grid, self._bounds)
        # Activity: which pixels differ from the average of the last frames. The map
        # holds 255 where a pixel moved and counts down by one per step. It is only read
        # for changed regions, so frames without changes just count the steps.
        if self._frame % self._activity_step == 0:
            self._pending_steps += 1
        if fg is not None:
            steps = min(self._pending_steps, _MOVED)
            self._pending_steps = 0
            moved = self._moved
            cv2.absdiff(grid, self._recent, dst=moved)
            cv2.compare(moved, self._threshold, cv2.CMP_GT, dst=moved)
            # activity = max(activity - steps, moved) in one saturating pass: where moved
            # (255) it adds at least 255, elsewhere it subtracts the steps.
            cv2.addWeighted(
                self._activity, 1.0, moved, (_MOVED + steps) / _MOVED, -steps, dst=self._activity
            )
        rate = self._recent_rate
        cv2.addWeighted(grid, rate, self._recent, 1.0 - rate, 0.0, dst=self._recent)
        self._prev_fg, prev = fg, self._prev_fg
        # Fewer changed pixels than min_area cannot make a region that counts.
        if fg is None or changed < self._tune.min_pixels:
            self._update(grid, bg, None if fg is None else unchanged)
            return _NO_MOTION
        dilated = _u8(cv2.dilate(fg, self._kernel3, dst=self._dilated))
        boxes, moving_pixels, marks = self._regions(grid, bg, fg, dilated, prev)
        absorb, held = marks.get("absorb"), marks.get("held")
        if absorb is not None:
            self._remember(bg, absorb, marks.get("restored"))
            np.copyto(bg, grid, where=absorb > 0)
            self._set_background(bg)
        learn = unchanged
        if held is not None:
            # Not around still objects being held either: learning their blurred rim
            # would eat them from the edges (the range test reaches a pixel further
            # each time) long before `still_hold` is up.
            learn = _u8(cv2.subtract(learn, cv2.dilate(held, self._kernel3), dst=learn))
        self._update(grid, bg, learn)
        if not boxes:
            return _NO_MOTION
        self._reported_at = self._frame
        return MotionResult(boxes=tuple(boxes), area=moving_pixels / self._grid_pixels)

    def _start(self, grid: Mask) -> None:
        bg: FloatGrid = grid.astype(np.float32)
        self._bg = bg
        self._noise = np.full_like(bg, _NOISE_START)
        shape = grid.shape
        self._threshold = np.empty(shape, np.uint8)
        self._clamp = np.empty(shape, np.uint8)
        self._low, self._high = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
        self._bounds = (np.empty(shape, np.uint8), np.empty(shape, np.uint8))
        self._noise_changed()
        self._set_background(bg)
        self._recent = grid.copy()
        # Everything counts as just moved at start, so an object already in view is
        # reported until it proves still for `still_hold`.
        self._activity = np.full(grid.shape, _MOVED, np.uint8)
        self._pending_steps = 0
        self._prev_fg = None
        self._behind = np.zeros(shape, np.uint8)
        self._behind_known = np.zeros(shape, np.uint8)
        self._behind_until = -1
        self._verdicts = (np.zeros(shape, np.uint8), np.zeros(shape, np.uint8))
        self._judged = False
        # The re-lit background may be brighter than white (see `_relight`); then the
        # 8-bit background does not bound the float one (see `_drifting`).
        self._bg_above_white = False

    def _noise_changed(self) -> None:
        """Refresh what follows from the noise level: threshold and clamp (8 bits)."""
        # round(max(k * noise, t_min)) == max(round(k * noise), round(t_min)).
        t_min: Any = (float(round(self._tune.t_min)),)
        cv2.convertScaleAbs(self._noise, dst=self._threshold, alpha=self._tune.k_noise)
        cv2.max(self._threshold, t_min, dst=self._threshold)
        cv2.convertScaleAbs(self._noise, dst=self._clamp, alpha=_NOISE_CLAMP)

    def _regions(
        self, grid: Mask, bg: FloatGrid, fg: Mask, dilated: Mask, prev: Mask | None
    ) -> tuple[list[Box], int, dict[str, Mask]]:
        """Boxes of the regions that count, their pixels, and masks of what becomes of them.

        The masks (each only when some region has it): ``absorb``, regions learnt into
        the background at once; ``restored``, those of them that are uncovered
        background; ``held``, regions that are still (not moved for a few frames) but
        still reported.
        """
        tune = self._tune
        contours, _ = cv2.findContours(dilated, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[Box] = []
        pixels = 0
        marks: dict[str, Mask] = {}
        remembering = self._frame <= self._behind_until
        if self._judged and self._frame % _SHADOW_EVERY == 0:
            # A new test of shadows: the last ones' verdicts go.
            for verdicts in self._verdicts:
                verdicts.fill(0)
            self._judged = False
        f = self._factor
        ghost_from = _MOVED - _GHOST_AFTER  # activity left after two still steps
        onset = tune.lighting and self._reported_at < self._frame - 1  # nothing reported
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            rect = (x, y, w, h)
            if w * h < tune.min_pixels:
                continue
            # Size counts the changed pixels themselves, not the dilation around them
            # (those in the region's box: regions rarely share a box, and when they do
            # the bigger one decides anyway).
            changed = fg[y : y + h, x : x + w]
            area = cv2.countNonZero(changed)
            if area < tune.min_pixels:
                continue
            part = _Region(contour, rect, self._size)
            if remembering and self._uncovered(grid, changed, area, rect):
                # What was behind something absorbed: the background again, at once.
                self._mark(marks, "absorb", rect, part.mask())
                self._mark(marks, "restored", rect, part.mask())
                continue
            activity = cv2.minMaxLoc(self._activity[y : y + h, x : x + w], changed)[1]
            still = self._still(grid, bg, part, activity)
            if still is None:
                continue
            if still:
                self._mark(marks, "absorb", rect, part.mask())
                continue
            if self._not_motion(grid, bg, part, area, prev=prev, onset=onset):
                continue
            boxes.append(
                (x * f, y * f, min(self.width, (x + w) * f), min(self.height, (y + h) * f))
            )
            pixels += area
            if activity <= ghost_from:
                self._mark(marks, "held", rect, part.mask())
        return boxes, pixels, marks

    def _mark(self, marks: dict[str, Mask], which: str, rect: Box, region: Mask) -> None:
        """Add a region to one of the masks of `_regions` (allocated when first needed)."""
        mask = marks.get(which)
        if mask is None:
            mask = marks[which] = np.zeros((self._size[1], self._size[0]), np.uint8)
        x, y, w, h = rect
        mask[y : y + h, x : x + w] |= region

    def _still(self, grid: Mask, bg: FloatGrid, part: _Region, activity: float) -> bool | None:
        """Whether a region is to be absorbed (True), judged moving (False), or dropped (None).

        Absorbed: still for `still_hold`, a ghost, or (just after a change of light)
        nothing new. Dropped: neither reported nor learnt (clipped by light).
        """
        if activity < _MOVED - self._hold_steps:  # not moved for still_hold
            return True
        if activity <= _MOVED - _GHOST_AFTER and self._is_ghost(grid, bg, *part.padded()):
            return True
        if self._frame > self._lit_until:
            return False
        # Just after a change of light, what the light model left over is dropped if
        # its texture still lines up with the background from before the light
        # changed, or if it has no texture on either side (nothing new, and light is
        # known to be changing), or if the light has clipped most of it to white and
        # the rest shows nothing new (then it is not learnt either).
        x, y, w, h = part.rect
        region = part.mask()
        now = grid[y : y + h, x : x + w].astype(np.float32)
        before = self._unlit[y : y + h, x : x + w]
        if clipped_by_light(now, bg[y : y + h, x : x + w], before, region, self._tune.t_min):
            return None
        return self._same_as_unlit(grid, part)

    def _not_motion(
        self,
        grid: Mask,
        bg: FloatGrid,
        part: _Region,
        area: int,
        *,
        prev: Mask | None,
        onset: bool,
    ) -> bool:
        """True for a moving region that is not reported: a flicker, light arriving, a shadow."""
        x, y, w, h = part.rect
        if area < _PERSIST_FACTOR * self._tune.min_pixels and (
            # Not changed in the previous frame within a pixel of the region's box.
            prev is None
            or not cv2.countNonZero(prev[max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1])
        ):
            return True
        if onset and self._light_arrived(grid, bg, part, area):
            return True
        return (
            self._tune.lighting
            and w * h >= self._cell * self._cell
            and self._shadow(grid, bg, part, area)
        )

    def _update(self, grid: Mask, bg: FloatGrid, unchanged: Mask | None) -> None:
        """Learn the background where nothing changed; now and then, the noise too.

        Args:
            grid: The frame.
            bg: The background model (updated in place).
            unchanged: Where to learn; None for everywhere (nothing changed).
        """
        cv2.accumulateWeighted(grid, bg, self._tune.bg_rate, unchanged)
        # The background moves a few percent per frame: refreshing the range around each
        # pixel every few frames is enough. The noise level is a slower statistic still
        # (9.9 s), refreshed half as often.
        if self._frame % _RANGE_EVERY:
            return
        if self._frame % _NOISE_EVERY:
            self._set_background(bg)
            return
        above, below = self._moved, self._small
        cv2.subtract(grid, self._high, dst=above)
        cv2.subtract(self._low, grid, dst=below)
        cv2.max(above, below, dst=above)
        cv2.min(above, self._clamp, dst=above)
        cv2.accumulateWeighted(above, self._noise, self._tune.noise_rate, unchanged)
        floor: Any = (_NOISE_FLOOR,)
        cv2.max(self._noise, floor, dst=self._noise)
        self._noise_changed()
        self._set_background(bg)


def create_detector(
    width: int, height: int, settings: MotionSettings, *, fps: float = DEFAULT_FPS
) -> LumaMotionDetector:
    """The motion detector for one camera's detect stream.

    Args:
        width: Width of the luma planes that will be fed.
        height: Height of the luma planes.
        settings: The camera's motion settings (masks in detect-stream pixels).
        fps: The detect rate; time settings (still_hold) and learning rates are
            converted to frames with it.
    """
    return LumaMotionDetector(width, height, settings, fps=fps)
