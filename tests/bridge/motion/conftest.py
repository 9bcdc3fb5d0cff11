"""Synthetic scenes for the motion tests: a textured porch, sensor noise, a walker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from doorstep_bridge.motion import MotionResult, create_detector
from doorstep_bridge.motion.settings import MotionSettings

Frame = npt.NDArray[np.uint8]


def u8(array: object) -> Frame:
    """An OpenCV result as the uint8 frame it is."""
    return np.asarray(array, dtype=np.uint8)


def porch(width: int = 320, height: int = 240, seed: int = 0) -> Frame:
    """A still scene with texture and edges (door, step, wall), grey levels 40..210."""
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (max(2, height // 16), max(2, width // 16)), dtype=np.uint8)
    base = u8(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC))
    grain = rng.normal(0, 6, (height, width))
    img = np.clip(base.astype(np.float64) + grain, 0, 255).astype(np.uint8)
    cv2.rectangle(img, (width // 3, height // 6), (width // 2, height - 20), 150, -1)  # door
    cv2.rectangle(img, (0, height - 20), (width, height), 90, -1)  # step
    return img


def person(height: int, width: int, seed: int = 1) -> Frame:
    """A dark, textured upright figure (clothes are not flat)."""
    rng = np.random.default_rng(seed)
    body = rng.integers(25, 70, (height, width)).astype(np.uint8)
    return u8(cv2.GaussianBlur(body, (3, 3), 0))


def with_noise(img: Frame, rng: np.random.Generator, sigma: float = 2.0) -> Frame:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def paste(img: Frame, patch: Frame, x: int, y: int) -> Frame:
    out = img.copy()
    h, w = patch.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(img.shape[1], x + w), min(img.shape[0], y + h)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
    return out


@dataclass
class Run:
    """Feeds frames to a detector and keeps every result."""

    width: int = 320
    height: int = 240
    settings: MotionSettings = field(default_factory=MotionSettings)
    fps: float = 5.0

    def __post_init__(self) -> None:
        self.detector = create_detector(self.width, self.height, self.settings, fps=self.fps)
        self.results: list[MotionResult] = []

    def feed(self, frames: Iterator[Frame] | list[Frame]) -> list[bool]:
        out = []
        for frame in frames:
            result = self.detector.detect(frame)
            self.results.append(result)
            out.append(result.moving)
        return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def still(img: Frame, rng: np.random.Generator, count: int) -> list[Frame]:
    return [with_noise(img, rng) for _ in range(count)]


def walk(img: Frame, rng: np.random.Generator, xs: list[int], y: int, figure: Frame) -> list[Frame]:
    return [with_noise(paste(img, figure, x, y), rng) for x in xs]
