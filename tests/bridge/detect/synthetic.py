"""Synthetic scenes for the person detector: a standing figure, a box, an empty porch."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.uint8]


def porch(width: int = 640, height: int = 360, seed: int = 1) -> Gray:
    """An even grey background with a little sensor noise."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 6.0, (height, width))
    return np.clip(170.0 + noise, 0, 255).astype(np.uint8)


def draw_person(img: Gray, x: float, y: float, height: float, shade: int = 40) -> tuple[int, ...]:
    """A standing silhouette (head, torso, arms, legs) whose top is at (x, y); its box."""
    u = height / 8
    cv2.ellipse(
        img, (int(x), int(y + u * 0.6)), (int(u * 0.4), int(u * 0.55)), 0, 0, 360, shade, -1
    )
    torso = np.array(
        [[x - u * 0.9, y + u * 1.3], [x + u * 0.9, y + u * 1.3], [x + u * 0.75, y + u * 4.2],
         [x - u * 0.75, y + u * 4.2]],
        np.int32,
    )  # fmt: skip
    cv2.fillPoly(img, [torso], shade)
    for side in (-1, 1):
        leg_top = (int(x + side * u * 0.4), int(y + u * 4))
        cv2.line(img, leg_top, (int(x + side * u * 0.6), int(y + height)), shade, int(u * 0.55))
        arm_top = (int(x + side * u * 0.9), int(y + u * 1.5))
        cv2.line(img, arm_top, (int(x + side * u * 1.1), int(y + u * 4.3)), shade, int(u * 0.4))
    return (int(x - u * 1.2), int(y), int(x + u * 1.2), int(y + height))


def draw_box(img: Gray, x: int, y: int, w: int, h: int, *, shade: int = 90) -> tuple[int, ...]:
    """A parcel: a plain rectangle with a tape line; its box."""
    cv2.rectangle(img, (x, y), (x + w, y + h), shade, -1)
    cv2.line(img, (x, y + h // 2), (x + w, y + h // 2), shade + 60, 3)
    return (x, y, x + w, y + h)
