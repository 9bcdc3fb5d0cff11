"""Motion detection: a small typed interface and its implementation.

The pipeline feeds each detect frame's luma plane (uint8, H x W) to a
:class:`MotionDetector`; the detector answers with a :class:`MotionResult`.
Hysteresis (frames to start, off delay) is applied by :class:`MotionGate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

type Box = tuple[int, int, int, int]
type Luma = npt.NDArray[np.uint8]


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


# The implementation (detector, gate, factories) is filled in by the motion core;
# see detector.py and gate.py.
__all__ = ["Box", "Luma", "MotionDetector", "MotionResult"]

ScoringDetector = Callable[[npt.NDArray[np.uint8]], list[Box]]
