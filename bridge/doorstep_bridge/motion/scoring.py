"""Adapter for ``../shared/data/motion/score.py``: BGR frames in, boxes out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.motion.detector import create_detector
from doorstep_bridge.motion.settings import MotionSettings
from doorstep_bridge.motion.types import Box

ScoringDetector: TypeAlias = Callable[[npt.NDArray[np.uint8]], list[Box]]


def create_for_scoring(width: int, height: int) -> ScoringDetector:
    """A detector with the default settings, called once per BGR frame.

    The frame is reduced to its luma (BT.601 weights, as the decoder's Y plane)
    and fed to the same detector the bridge runs.
    """
    detector = create_detector(width, height, MotionSettings())

    def score(frame_bgr: npt.NDArray[np.uint8]) -> list[Box]:
        luma: npt.NDArray[np.uint8] = np.asarray(
            cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8
        )
        return list(detector.detect(luma).boxes)

    return score
