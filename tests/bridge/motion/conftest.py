"""Synthetic scenes for the motion tests: a textured porch, sensor noise, a walker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from doorstep_bridge.motion import MotionGate, MotionResult, create_detector
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


def turned_on(moving: list[bool], fps: float) -> list[int]:
    """The frames on which motion turns ON (the default `frames_to_start` and `off_delay`)."""
    settings = MotionSettings()
    gate = MotionGate(settings.frames_to_start, settings.off_delay)
    return [i for i, m in enumerate(moving) if gate.update(m, i / fps) is True]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def still(img: Frame, rng: np.random.Generator, count: int) -> list[Frame]:
    return [with_noise(img, rng) for _ in range(count)]


def walk(img: Frame, rng: np.random.Generator, xs: list[int], y: int, figure: Frame) -> list[Frame]:
    return [with_noise(paste(img, figure, x, y), rng) for x in xs]


# Situations the labelled views lack: the clips of test_unseen_situations.py, which
# bench/motion_situations.py runs with more variants and noise seeds.


def faint_figure() -> Frame:
    """A visitor in mid-grey clothes: a faint outline against the porch."""
    return u8(np.clip(person(90, 35, seed=5).astype(np.int16) + 80, 0, 255))


def arrive_and_wait(run: Run, img: Frame, rng: np.random.Generator, figure: Frame) -> list[bool]:
    """A visitor walks in and waits at (90, 110) for 14 s, past still_hold; what `run` saw then."""
    run.feed(still(img, rng, 10))
    run.feed(walk(img, rng, [0, 30, 60], 110, figure))
    return run.feed(still(paste(img, figure, 90, 110), rng, 70))


def road(width: int = 320, height: int = 240, seed: int = 3) -> Frame:
    """Asphalt and paving: blocks of 4 px at grey levels 90..170."""
    blocks = np.random.default_rng(seed).integers(90, 170, (height // 4, width // 4))
    big = cv2.resize(blocks.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return u8(cv2.GaussianBlur(big, (3, 3), 0))


def car_shadow(img: Frame, x: int, darker: float) -> Frame:
    """The road under a car's shadow (soft-edged ellipse 140x60 px) whose left end is at x."""
    shade = np.zeros(img.shape, np.float64)
    cv2.ellipse(shade, (x + 70, 150), (70, 30), 0, 0, 360, 1.0, -1)
    soft = cv2.GaussianBlur(shade, (7, 7), 0)
    return u8(np.clip(img * (1.0 - darker * soft), 0, 255))


SHADOW_XS = list(range(-150, 330, 15))
"""Where a car's shadow sweeps across the road: 15 px a frame (a car at walking pace)."""


def shadow_sweep(img: Frame, rng: np.random.Generator, darker: float) -> list[Frame]:
    """A car's shadow (the car out of view) sweeping across the road, one frame a step."""
    return [with_noise(car_shadow(img, x, darker), rng) for x in SHADOW_XS]


def swept_by_shadow(rng: np.random.Generator, darker: float) -> tuple[Run, list[bool]]:
    """A detector that learnt the road, and its verdicts while a car's shadow sweeps it."""
    img = road()
    run = Run()
    run.feed(still(img, rng, 10))
    return run, run.feed(shadow_sweep(img, rng, darker))


def dark_object_sweep(img: Frame, rng: np.random.Generator, level: int) -> list[Frame]:
    """A dark flat object of the shadow's shape (grey `level`) on the shadow's path."""
    frames = []
    for x in range(-100, 320, 15):
        frame = img.copy()
        cv2.ellipse(frame, (x + 70, 150), (70, 30), 0, 0, 360, level, -1)
        frames.append(with_noise(frame, rng))
    return frames


def hd_porch() -> Frame:
    """The porch as a 1280x720 frame."""
    return u8(cv2.resize(porch(seed=0), (1280, 720), interpolation=cv2.INTER_CUBIC))


def ramp(img: Frame, fps: int, factor: float) -> list[Frame]:
    """Light changing by `factor` over 2 s, smoothly (as exposure or dusk does)."""
    steps = 2 * fps
    return [u8(np.clip(img * factor ** (i / steps), 0, 255)) for i in range(1, steps + 1)]


def dusk_clip(img: Frame, rng: np.random.Generator, fps: int, factor: float) -> list[Frame]:
    """3 s still, light changing by `factor` over 2 s, 3 s still in the new light."""
    frames = still(img, rng, 3 * fps)
    frames += [with_noise(f, rng) for f in ramp(img, fps, factor)]
    frames += still(u8(np.clip(img * factor, 0, 255)), rng, 3 * fps)
    return frames


def entering_during_ramp(
    img: Frame, figure: Frame, rng: np.random.Generator, fps: int, factor: float
) -> list[Frame]:
    """The second half of `ramp(img, fps, factor)` with a visitor stepping in, 120 px a second."""
    steps = 2 * fps
    half = steps // 2
    return [
        with_noise(
            u8(
                np.clip(
                    paste(img, figure, -80 + 120 * i // fps, 360) * factor ** ((half + i) / steps),
                    0,
                    255,
                )
            ),
            rng,
        )
        for i in range(steps - half)
    ]
