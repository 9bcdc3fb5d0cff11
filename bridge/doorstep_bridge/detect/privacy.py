"""A camera's privacy masks as the detectors see them: nothing in a masked area counts.

Masks are drawn in main-stream pixels (``cameras.<cam>.privacy_masks``); the detectors
(motion, people, parcels) look at the detect stream, which may be smaller. Until the
main stream has delivered, its size and so the masks' place in a detect frame are
unknown: a masked camera's detectors then look at nothing rather than at what may be
masked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from doorstep_bridge.recording.masks import FILL_Y, MaskSet, scaled
from doorstep_bridge.validation import Polygon


class PrivacyMasks:
    """One camera's privacy masks, at the size of the frames the detectors are given.

    Args:
        polygons: The privacy polygons, in main-stream pixels.
        main_size: The main stream's (width, height) once known.
    """

    def __init__(
        self, polygons: Sequence[Polygon], main_size: Callable[[], tuple[int, int] | None]
    ) -> None:
        self._polygons = tuple(polygons)
        self._main_size = main_size
        self._masks: MaskSet | None = None
        self._placed: tuple[tuple[int, int, tuple[int, int]], tuple[Polygon, ...]] | None = None

    def __bool__(self) -> bool:
        return bool(self._polygons)

    def at(self, width: int, height: int) -> npt.NDArray[np.bool_] | None:
        """True where a ``width`` x ``height`` frame is masked; None while that is unknown."""
        reference = self._main_size()
        if reference is None:
            return None
        if self._masks is None or self._masks.reference != reference:
            self._masks = MaskSet(self._polygons, reference)
        return self._masks.masks(width, height)[0]

    def polygons_at(self, width: int, height: int) -> tuple[Polygon, ...] | None:
        """The polygons in a ``width`` x ``height`` frame's pixels; None while that is unknown.

        No polygons (an unmasked camera) are known at once.
        """
        if not self._polygons:
            return ()
        reference = self._main_size()
        if reference is None:
            return None
        key = (width, height, reference)
        placed = self._placed
        if placed is None or placed[0] != key:
            placed = self._placed = (key, scaled(self._polygons, reference, width, height))
        return placed[1]


def filled(luma: npt.NDArray[np.uint8], masked: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """A copy of ``luma`` with the masked pixels black, as recordings have them."""
    return np.where(masked, np.uint8(FILL_Y), luma)
