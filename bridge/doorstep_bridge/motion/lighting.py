"""Telling a change of light from a change of scene.

Light (auto exposure, IR switching, lightning, headlights) changes how bright
things are, not where their edges and texture are. In each small cell of the
frame, the frame is compared with the background by zero-mean normalised
cross-correlation (ZNCC), which ignores gain and offset: a cell whose texture
still lines up (ZNCC high) only changed its light; a cell whose texture does not
(ZNCC low) holds something new, such as a visitor. Light cells get a gain and
offset fitted to them; flat cells (no texture to judge by) follow the majority
of the textured cells; cells with something new keep the old background.

Regions are judged the same way as a whole, with a smooth gradient of light across
them taken out first (a beam's edge). A region that has just appeared is light
arriving only if, besides its texture lining up, its contrast changed by the factor
its brightness did: light multiplies what a surface reflects, while a faint figure
in front only shifts the level.

A shadow is light too, taken away: the frame is the background times a gain that
changes slowly across it; what that leaves of the frame is little of the background's
texture, where an object leaves its own (see :func:`shadow`).

The sensor clips: a pixel at white (or black) only says the light there is at least
(at most) that much, and its texture is lost. Such pixels are left out of every
statistic here; the re-lit background may be brighter than white, which keeps its
texture for when the light goes down again.
"""

from __future__ import annotations

import math
from typing import Any, Final, TypeAlias, cast

import cv2
import numpy as np
import numpy.typing as npt

FloatGrid: TypeAlias = npt.NDArray[np.float32]


_CELLS_PER_FRAME: Final = 150  # about this many cells, whatever the grid size
_MIN_CELL: Final = 8  # grid pixels
_TEXTURE: Final = 3.0  # grey-level spread below which a cell has no texture to judge by
_SAME_STRUCTURE: Final = 0.7  # ZNCC above which a cell only changed its light
_REGION_SAME_STRUCTURE: Final = 0.8  # stricter for a whole region than for a cell
_GAIN_TOLERANCE: Final = 0.5  # contrast factor within half the brightness factor (logs)
_SHADOW_BLUR: Final = 2.0  # grid pixels: what is smoother than this is light, not texture
_SHADOW_TEXTURE: Final = 1.5  # background texture (grey levels) below which light is not told
_SHADOW_GAIN: Final = 0.05  # a shadow changes the light by at least this factor
# Mean deviation of frame / background under a shadow, at most: synthetic shadows
# (tests) stay under 0.07 with their soft rim, pedestrians (vtest.avi) are 0.13 or more.
_SHADOW_SPREAD: Final = 0.1
_SHADOW_LEFT: Final = 0.5  # what a shadow leaves of a pixel, at most, against its texture
_SHADOW_NOISE: Final = 1.0  # grey levels it may leave besides (noise, where texture is nil)
_SHADOW_SHARE: Final = 0.6  # share of the pixels where it must leave that little
_GAIN_RANGE: Final = (0.25, 4.0)
# Far more than float32 means of a region (a few hundred values near 1) can be off by.
_ROUNDING: Final = 1e-4
CLIP_LOW: Final = 6.0  # grey levels at or below which a pixel is taken as clipped black
CLIP_HIGH: Final = 249.0  # at or above: clipped white
# The whole grey levels above CLIP_LOW and below CLIP_HIGH (both ends included).
_UNCLIPPED: Final = (float(math.floor(CLIP_LOW) + 1), float(math.ceil(CLIP_HIGH) - 1))
_MIN_VALID: Final = 0.5  # share of a cell's pixels that must be unclipped to judge it


def cell_size(width: int, height: int) -> int:
    """Side of the square cells the light is judged in."""
    return max(_MIN_CELL, round(math.sqrt(width * height / _CELLS_PER_FRAME)))


def _cell_means(
    x: npt.NDArray[np.floating[Any]], cells: tuple[int, int]
) -> npt.NDArray[np.float64]:
    """Mean of each cell (``x`` is cut to a whole number of cells)."""
    return np.asarray(cv2.resize(x, cells, interpolation=cv2.INTER_AREA), np.float64)


def _median(values: npt.NDArray[np.float64]) -> float:
    """Median of a few values (np.median's overhead is large for ~100 of them)."""
    ordered = np.sort(values, axis=None)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float(ordered[middle - 1] + ordered[middle]) / 2.0


def light_change(grid: FloatGrid, bg: FloatGrid, cell: int) -> tuple[FloatGrid, FloatGrid] | None:
    """Gain and offset maps that re-light ``bg`` like ``grid``, or None if no cell looks lit.

    Apply as ``bg * gain + offset``; cells where something new appeared get gain 1
    and offset 0, so they still show up against the re-lit background.

    Args:
        grid: The current frame on the working grid.
        bg: The background model on the same grid.
        cell: Cell side in grid pixels (see :func:`cell_size`).
    """
    h, w = grid.shape
    if h < cell or w < cell:
        return None
    cells = (w // cell, h // cell)
    # Centred near zero so that float32 moments stay precise.
    a = grid[: cells[1] * cell, : cells[0] * cell] - np.float32(128.0)
    b = bg[: cells[1] * cell, : cells[0] * cell] - np.float32(128.0)
    seen = grid[: cells[1] * cell, : cells[0] * cell]
    # Statistics over the pixels the frame did not clip (weights 0 or 1), as cell means.
    unclipped = ((seen > CLIP_LOW) & (seen < CLIP_HIGH)).astype(np.float32)
    au, bu = a * unclipped, b * unclipped
    share = _cell_means(unclipped, cells)
    valid = share >= _MIN_VALID
    n = np.maximum(share, 1.0 / (cell * cell))
    ma, mb = _cell_means(au, cells) / n, _cell_means(bu, cells) / n
    va = np.maximum(_cell_means(au * a, cells) / n - ma * ma, 0.0)
    vb = np.maximum(_cell_means(bu * b, cells) / n - mb * mb, 0.0)
    sa, sb = np.sqrt(va), np.sqrt(vb)
    zncc = (_cell_means(au * b, cells) / n - ma * mb) / np.maximum(sa * sb, 1e-6)
    textured = valid & (sa > _TEXTURE) & (sb > _TEXTURE)
    # Mostly clipped cells cannot be judged; their level is all there is to go by.
    ma = np.where(valid, ma, _cell_means(a, cells)) + 128.0
    mb = np.where(valid, mb, _cell_means(b, cells)) + 128.0
    light = textured & (zncc >= _SAME_STRUCTURE)
    judged = int(np.count_nonzero(textured))
    if not light.any():
        return None
    # Flat cells cannot tell light from a flat object: they follow the majority.
    flat_is_light = judged == 0 or np.count_nonzero(light) * 2 > judged
    use = light | (~textured & flat_is_light)
    gain = np.where(textured, sa / np.maximum(sb, 1e-6), 1.0)
    if flat_is_light and not textured.all():
        # Flat cells take the typical gain of the light cells (a flat wall brightens
        # by the same factor as the textured porch next to it).
        gain = np.where(textured, gain, _median(gain[light]))
    gain = np.clip(gain, *_GAIN_RANGE)
    offset = ma - gain * mb
    # Clipping only hides light: a cell mostly at white is at least as bright as the
    # light measured in the cells around it says.
    white = _cell_means((seen >= CLIP_HIGH).astype(np.float32), cells) > 1.0 - _MIN_VALID
    if white.any():
        offset = np.where(white, np.maximum(offset, _median(offset[light])), offset)
    gain = np.where(use, gain, 1.0)
    offset = np.where(use, offset, 0.0)
    size = (w, h)
    # Cell values belong to cell centres: a bilinear field between them is smooth.
    gain_map: FloatGrid = np.asarray(
        cv2.resize(gain.astype(np.float32), size, interpolation=cv2.INTER_LINEAR), np.float32
    )
    offset_map: FloatGrid = np.asarray(
        cv2.resize(offset.astype(np.float32), size, interpolation=cv2.INTER_LINEAR), np.float32
    )
    return gain_map, offset_map


def _texture_stats(
    frame: FloatGrid, bg: FloatGrid, region: npt.NDArray[np.uint8], at_least: int = 16
) -> tuple[float, float, float, float, float] | None:
    """Mean, texture spread and texture ZNCC of a region in the frame and background.

    Light is not uniform over a region (a beam's edge, a lamp's fall-off): a smooth
    gradient of brightness is taken out of both sides first (a least-squares plane),
    so that texture is what is compared. Judged on the pixels the frame did not clip;
    None when fewer than ``at_least`` are left. Returns (frame mean, background mean, frame spread,
    background spread, ZNCC), the ZNCC 0 when either side has no spread.
    """
    inside = (region > 0) & (frame > CLIP_LOW) & (frame < CLIP_HIGH)
    ys, xs = np.nonzero(inside)
    if ys.size < at_least:
        return None
    # Residuals of frame and background after the best plane a + b*x + c*y on each.
    plane = np.column_stack((np.ones(ys.size), xs, ys)).astype(np.float64)
    sides = np.column_stack((frame[inside], bg[inside])).astype(np.float64)
    texture = sides - plane @ np.linalg.lstsq(plane, sides, rcond=None)[0]
    da, db = texture[:, 0], texture[:, 1]
    sa, sb = math.sqrt(float((da * da).mean())), math.sqrt(float((db * db).mean()))
    zncc = float((da * db).mean()) / (sa * sb) if sa > 0 and sb > 0 else 0.0
    means = sides.mean(axis=0)
    return float(means[0]), float(means[1]), sa, sb, zncc


def same_structure(frame: FloatGrid, bg: FloatGrid, region: npt.NDArray[np.uint8]) -> bool:
    """True when a region shows nothing new against the background: only its light changed.

    Its texture lines up with the background's, or it has no texture on either side.
    A flat region shows nothing new (no edge, no outline), but also nothing to tell
    light by: use this only where light is already known to be changing.

    Args:
        frame: The frame in the region's box.
        bg: The background to compare with, same box.
        region: The region's pixels (non-zero) in the box.
    """
    stats = _texture_stats(frame, bg, region)
    return stats is not None and _lines_up(stats)


def _lines_up(stats: tuple[float, float, float, float, float]) -> bool:
    """The verdict of :func:`same_structure` from :func:`_texture_stats`."""
    _, _, sa, sb, zncc = stats
    if sa <= _TEXTURE and sb <= _TEXTURE:
        return True  # flat on both sides: nothing new
    if sa <= _TEXTURE or sb <= _TEXTURE:
        return False  # texture on one side only: something covers it, or is new
    return zncc >= _REGION_SAME_STRUCTURE


def light_arrived(
    frame: FloatGrid, bg: FloatGrid, region: npt.NDArray[np.uint8], cell: int
) -> bool:
    """True when a region that just appeared is the background under new light.

    Its texture must line up with the background's (see :func:`same_structure`), and
    its contrast must have changed by the factor its brightness did: light falling
    on a surface multiplies what the surface reflects. A change of level alone (a
    faint figure passing in front, haze) is not light arriving. The region must
    hold at least a cell's worth of unclipped pixels (``cell`` as for
    :func:`light_change`): fewer have too little texture to tell light by.
    """
    stats = _texture_stats(frame, bg, region, cell * cell)
    if stats is None:
        return False
    ma, mb, sa, sb, zncc = stats
    if sa <= _TEXTURE or sb <= _TEXTURE or zncc < _REGION_SAME_STRUCTURE:
        return False
    brightness, contrast = math.log(ma / mb), math.log(sa / sb)
    return abs(contrast - brightness) <= _GAIN_TOLERANCE * abs(brightness)


def _surely_not_shadow(ratio: FloatGrid, inside: npt.NDArray[np.uint8]) -> bool:
    """The cheap tests of :func:`shadow` in OpenCV's masked means, with a margin.

    A few OpenCV calls (sums in double) cost far less than NumPy's float32 means;
    only a region within ``_ROUNDING`` of a limit goes on to the float32 figures of
    :func:`shadow`, which decide: the verdict is the same either way.
    """
    typical = float(cv2.mean(ratio, inside)[0])
    if abs(typical - 1.0) < _SHADOW_GAIN - _ROUNDING:
        return True
    level: Any = (typical, 0.0, 0.0, 0.0)
    return float(cv2.mean(cv2.absdiff(ratio, level), inside)[0]) > _SHADOW_SPREAD + _ROUNDING


def shadow(
    frame: npt.NDArray[np.uint8], bg: FloatGrid, core: npt.NDArray[np.uint8], cell: int
) -> bool | None:
    """True when the core of a changed region is the background under less (or more) light.

    Light multiplies what a surface reflects by a factor that changes slowly across
    it (a shadow's soft edge, darker under the car): the frame is the background
    times a smooth gain. That gain is estimated as the ratio of the two, blurred;
    what the background times it leaves of the frame is what is new. A shadow
    leaves little of the background's texture; a dark object leaves its own
    texture, or, flat, the background's texture it covers. ``core`` is the region
    without its rim (where the blurred ratio mixes in light from outside the
    shadow) and must hold a quarter of a cell's worth of unclipped pixels; the
    background must have texture there (light on a flat surface looks like a flat
    object). This runs for moving regions, frame after frame: a cheap test of the
    ratio's spread rules out most objects first. ``frame`` is the 8-bit frame: whole grey
    levels, so the unclipped ones are a range of integers, picked in one OpenCV call.

    None when the region cannot tell: too few pixels, or no texture behind it.
    """
    unclipped: Any = (_UNCLIPPED[0], 0.0, 0.0, 0.0), (_UNCLIPPED[1], 0.0, 0.0, 0.0)
    picked = cast("npt.NDArray[np.uint8]", cv2.bitwise_and(cv2.inRange(frame, *unclipped), core))
    if cv2.countNonZero(picked) < max(16, cell * cell // 4):
        return None
    now = frame.astype(np.float32)
    ratios = now / np.maximum(bg, 1.0)
    if _surely_not_shadow(ratios, picked):
        return False
    inside = picked > 0
    seen, behind = now[inside], bg[inside]
    # Under a shadow the ratio of frame to background hardly varies, under an object
    # it follows the object's texture and the background's (these float32 figures
    # decide; `_surely_not_shadow` has ruled out the clear cases).
    ratio = ratios[inside]
    typical = float(ratio.mean())
    if abs(typical - 1.0) < _SHADOW_GAIN:
        return False
    if float(np.abs(ratio - typical).mean()) > _SHADOW_SPREAD:
        return False
    smooth_bg = cv2.GaussianBlur(bg, (7, 7), _SHADOW_BLUR)
    gain = (cv2.GaussianBlur(now, (7, 7), _SHADOW_BLUR) / np.maximum(smooth_bg, 1.0))[inside]
    # The background's texture, re-lit; and what the re-lit background leaves of the frame.
    expected = np.abs(gain * (behind - smooth_bg[inside]))
    if float(expected.mean()) <= _SHADOW_TEXTURE:
        return None
    left = np.abs(seen - gain * behind)
    # Most pixels, not the mean: the rim leaves more than the rest and must not decide.
    small = np.count_nonzero(left <= _SHADOW_LEFT * expected + _SHADOW_NOISE)
    return small >= _SHADOW_SHARE * seen.size


def clipped_by_light(
    frame: FloatGrid,
    bg: FloatGrid,
    unlit: FloatGrid,
    region: npt.NDArray[np.uint8],
    margin: float,
) -> bool:
    """True when the frame shows a region mostly at white, brighter than the background.

    "At white" is within ``margin`` grey levels (the detector's smallest change) of
    the clip level: texture there is too compressed to judge. Just after the light
    went up, that is what more light does to a bright surface: clipping has taken
    away the evidence of anything else. The frame says nothing about the texture
    there either, so it must not be learnt as the background. What is not at white
    must show nothing new against ``unlit`` (the background before the light
    changed; see :func:`same_structure`): a visitor standing in the beam is not
    clipped, though the porch around them is.
    """
    seen = frame[region > 0]
    white = np.count_nonzero(seen >= CLIP_HIGH - margin)
    if white * 2 <= seen.size or float(seen.mean()) <= float(bg[region > 0].mean()):
        return False
    rest = np.where(frame < CLIP_HIGH - margin, region, 0).astype(np.uint8)
    stats = _texture_stats(frame, unlit, rest)
    return stats is None or _lines_up(stats)
