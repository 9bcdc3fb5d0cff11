"""Snapshots: the most telling frame of a clip as a JPEG, plus a small thumbnail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.convert import to_ndarray
from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.recording.masks import MaskSet

JPEG_QUALITY = 85
THUMBNAIL_WIDTH = 320


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A JPEG and its thumbnail, privacy masks already filled."""

    jpeg: bytes
    thumbnail: bytes


def to_bgr(frame: Any) -> npt.NDArray[np.uint8]:
    """A decoded PyAV video frame as a BGR array."""
    image: npt.NDArray[np.uint8] = to_ndarray(frame, "bgr24")
    return image


def make_snapshot(image: npt.NDArray[np.uint8], masks: MaskSet) -> Snapshot:
    """Fill the masks, then encode the JPEG and the thumbnail.

    Raises:
        StorageError: OpenCV could not encode the image.
    """
    image = np.ascontiguousarray(image)
    if masks:
        image = image.copy()
        masks.fill_bgr(image)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    height, width = image.shape[:2]
    scale = min(1.0, THUMBNAIL_WIDTH / max(width, 1))
    small = cv2.resize(
        image,
        (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA,
    )
    ok_small, thumb = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok or not ok_small:
        raise StorageError("cannot encode snapshot")
    return Snapshot(jpeg.tobytes(), thumb.tobytes())
