"""Motion detection: a small typed interface and its implementation.

The pipeline feeds each detect frame's luma plane (uint8, H x W) to a
:class:`MotionDetector` made by :func:`create_detector`; the detector answers
with a :class:`MotionResult`. Hysteresis (frames to start, off delay) is
applied by :class:`MotionGate`. :func:`create_for_scoring` adapts the same
detector to the scoring tool in ``../shared/data/motion``. See docs/motion.md.
"""

from __future__ import annotations

from doorstep_bridge.motion.detector import (
    DEFAULT_FPS,
    LumaMotionDetector,
    create_detector,
)
from doorstep_bridge.motion.gate import MotionGate
from doorstep_bridge.motion.scoring import ScoringDetector, create_for_scoring
from doorstep_bridge.motion.types import Box, Luma, MotionDetector, MotionResult

__all__ = [
    "DEFAULT_FPS",
    "Box",
    "Luma",
    "LumaMotionDetector",
    "MotionDetector",
    "MotionGate",
    "MotionResult",
    "ScoringDetector",
    "create_detector",
    "create_for_scoring",
]
