"""Privacy masks: polygons filled before any pixel reaches the disk.

Masks are given in main-stream frame pixels (``cameras.<cam>.privacy_masks``).
They are rasterised once per frame size and scaled when applied to another
size (a detect-stream snapshot). Filling happens on the decoded YUV 4:2:0
planes, so recording with masks costs a decode and an encode but no colour
conversion; a chroma sample is filled when any of its four luma pixels is.
Only the rectangle around the polygons is touched: a mask over a corner of a
1080p picture costs a fraction of a millisecond per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.validation import Polygon

#: Fill colour: black. Y=16 and U=V=128 are black in the limited range H.264 uses.
FILL_BGR = (0, 0, 0)
FILL_Y = 16
FILL_UV = 128

Mask: TypeAlias = npt.NDArray[np.bool_]
Box: TypeAlias = tuple[slice, slice]


@dataclass(frozen=True, slots=True)
class _Raster:
    """The masks for one frame size, with the rectangles that hold them."""

    luma: Mask
    chroma: Mask
    luma_box: Box
    chroma_box: Box


def _bounding_box(mask: Mask) -> Box:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return slice(0, 0), slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _fill(plane: npt.NDArray[np.uint8], mask: Mask, box: Box, value: int) -> None:
    np.copyto(plane[box], np.uint8(value), where=mask[box])


def _plane_view(plane: Any, rows: int) -> npt.NDArray[np.uint8]:
    """A writable numpy view of a PyAV plane (rows x line size, padding included)."""
    data = np.frombuffer(plane, np.uint8, count=rows * plane.line_size)
    return data.reshape(rows, plane.line_size)


def scaled(
    polygons: Sequence[Polygon], reference: tuple[int, int] | None, width: int, height: int
) -> tuple[Polygon, ...]:
    """Polygons drawn on a ``reference`` (width, height) frame, in a ``width`` x ``height`` one.

    Without a reference size (or with an empty one), the polygons are used as they are.
    """
    sx = sy = 1.0
    if reference is not None and reference[0] and reference[1]:
        sx, sy = width / reference[0], height / reference[1]
    return tuple(tuple((round(x * sx), round(y * sy)) for x, y in polygon) for polygon in polygons)


class MaskSet:
    """A camera's privacy polygons, rasterised lazily per frame size.

    Args:
        polygons: Polygons in the reference frame's pixels.
        reference: (width, height) of the frame the polygons were drawn on; when
            None, the polygons are used as-is at any size.
    """

    def __init__(
        self, polygons: Sequence[Polygon], reference: tuple[int, int] | None = None
    ) -> None:
        self.polygons = tuple(polygons)
        self.reference = reference
        self._cache: dict[tuple[int, int], _Raster] = {}

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def masks(self, width: int, height: int) -> tuple[Mask, Mask]:
        """(luma mask H x W, chroma mask H/2 x W/2) for a frame of this size."""
        raster = self._raster(width, height)
        return raster.luma, raster.chroma

    def _raster(self, width: int, height: int) -> _Raster:
        key = (width, height)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        raster = np.zeros((height, width), dtype=np.uint8)
        for polygon in scaled(self.polygons, self.reference, width, height):
            cv2.fillPoly(raster, [np.array(polygon, np.int32)], 255)
        luma = raster > 0
        ch, cw = (height + 1) // 2, (width + 1) // 2
        padded = np.zeros((ch * 2, cw * 2), dtype=bool)
        padded[:height, :width] = luma
        chroma: Mask = np.asarray(padded.reshape(ch, 2, cw, 2).any(axis=(1, 3)), dtype=bool)
        result = _Raster(luma, chroma, _bounding_box(luma), _bounding_box(chroma))
        self._cache[key] = result
        return result

    def fill_yuv420(self, planes: npt.NDArray[np.uint8], width: int, height: int) -> None:
        """Fill the masks in place in a packed yuv420p array (H*3/2 x W, as PyAV gives)."""
        raster = self._raster(width, height)
        _fill(planes[:height], raster.luma, raster.luma_box, FILL_Y)
        ch, cw = raster.chroma.shape
        rest = planes[height:].reshape(-1)
        for offset in (0, ch * cw):  # U, then V
            plane = rest[offset : offset + ch * cw].reshape(ch, cw)
            _fill(plane, raster.chroma, raster.chroma_box, FILL_UV)

    def fill_frame(self, frame: Any) -> None:
        """Fill the masks in place in a PyAV ``yuv420p`` frame, without copying it.

        The frame must be writable (``frame.make_writable()``): a decoder's output
        shares its buffers with the pictures later frames are predicted from.
        """
        if frame.format.name != "yuv420p":
            raise ValueError(f"expected a yuv420p frame, not {frame.format.name}")
        raster = self._raster(frame.width, frame.height)
        y, u, v = frame.planes
        _fill(_plane_view(y, frame.height), raster.luma, raster.luma_box, FILL_Y)
        rows = raster.chroma.shape[0]
        for plane in (u, v):
            _fill(_plane_view(plane, rows), raster.chroma, raster.chroma_box, FILL_UV)

    def fill_bgr(self, image: npt.NDArray[np.uint8]) -> None:
        """Fill the masks in place in a BGR image."""
        height, width = image.shape[:2]
        raster = self._raster(width, height)
        image[raster.luma_box][raster.luma[raster.luma_box]] = FILL_BGR
