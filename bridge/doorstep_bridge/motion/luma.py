"""The luma plane of a decoded frame, without copying it when possible."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from doorstep_bridge.convert import to_ndarray
from doorstep_bridge.motion.types import Luma

if TYPE_CHECKING:
    import av

# Pixel formats whose first plane is full-resolution 8-bit luma (Y).
_Y_FIRST = frozenset(
    {
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "yuv440p",
        "yuvj440p",
        "yuv411p",
        "yuv410p",
        "nv12",
        "nv21",
        "gray",
    }
)


def luma_plane(frame: av.VideoFrame) -> Luma:
    """The frame's Y plane as an H x W uint8 array.

    For the usual decoder outputs (yuv420p, yuvj420p from MJPEG, nv12, ...) this
    is a zero-copy view of the decoder's buffer: keep the frame alive while the
    array is used, and do not write to it. Other formats are converted (a copy).
    """
    if frame.format.name in _Y_FIRST:
        plane = frame.planes[0]
        # One view over the padded rows (line_size bytes each), width pixels wide.
        view: Luma = np.ndarray(
            (plane.height, plane.width), np.uint8, memoryview(plane), 0, (plane.line_size, 1)
        )
        return view
    gray: Luma = np.asarray(to_ndarray(frame, "gray"), dtype=np.uint8)
    return gray
