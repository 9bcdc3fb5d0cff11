"""Privacy masks: polygons filled before any pixel reaches the disk.

Masks are given in main-stream frame pixels (``cameras.<cam>.privacy_masks``).
They are rasterised once per frame size and scaled when applied to another
size (a detect-stream snapshot). Filling happens on the decoded YUV 4:2:0
planes, so recording with masks costs a decode and an encode but no colour
conversion; a chroma sample is filled when any of its four luma pixels is.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.validation import Polygon

#: Fill colour: black. Y=16 and U=V=128 are black in the limited range H.264 uses.
FILL_BGR = (0, 0, 0)
FILL_Y = 16
FILL_UV = 128

type Mask = npt.NDArray[np.bool_]


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
        self._cache: dict[tuple[int, int], tuple[Mask, Mask]] = {}

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def masks(self, width: int, height: int) -> tuple[Mask, Mask]:
        """(luma mask H x W, chroma mask H/2 x W/2) for a frame of this size."""
        key = (width, height)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        sx = sy = 1.0
        if self.reference is not None and self.reference[0] and self.reference[1]:
            sx, sy = width / self.reference[0], height / self.reference[1]
        raster = np.zeros((height, width), dtype=np.uint8)
        for polygon in self.polygons:
            points = np.array([[round(x * sx), round(y * sy)] for x, y in polygon], np.int32)
            cv2.fillPoly(raster, [points], 255)
        luma = raster > 0
        ch, cw = (height + 1) // 2, (width + 1) // 2
        padded = np.zeros((ch * 2, cw * 2), dtype=bool)
        padded[:height, :width] = luma
        chroma: Mask = np.asarray(padded.reshape(ch, 2, cw, 2).any(axis=(1, 3)), dtype=bool)
        self._cache[key] = (luma, chroma)
        return luma, chroma

    def fill_yuv420(self, planes: npt.NDArray[np.uint8], width: int, height: int) -> None:
        """Fill the masks in place in a packed yuv420p array (H*3/2 x W, as PyAV gives)."""
        luma, chroma = self.masks(width, height)
        y = planes[:height]
        y[luma] = FILL_Y
        ch, cw = chroma.shape
        rest = planes[height:].reshape(-1)
        u = rest[: ch * cw].reshape(ch, cw)
        v = rest[ch * cw : 2 * ch * cw].reshape(ch, cw)
        u[chroma] = FILL_UV
        v[chroma] = FILL_UV

    def fill_bgr(self, image: npt.NDArray[np.uint8]) -> None:
        """Fill the masks in place in a BGR image."""
        height, width = image.shape[:2]
        luma, _ = self.masks(width, height)
        image[luma] = FILL_BGR
