"""The motion interface: what a detector takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

Box: TypeAlias = tuple[int, int, int, int]
Luma: TypeAlias = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What moved in one frame.

    Attributes:
        boxes: Moving regions as (x1, y1, x2, y2) in input-frame pixels.
        area: Fraction of the frame (0..1) that moved.
    """

    boxes: tuple[Box, ...] = ()
    area: float = 0.0

    @property
    def moving(self) -> bool:
        """True when anything moved in this frame."""
        return bool(self.boxes)


class MotionDetector(Protocol):
    """Turns a stream of luma frames into per-frame motion."""

    def detect(self, luma: Luma) -> MotionResult:
        """Analyse the next frame (uint8, H x W; frames arrive in order)."""
        ...
