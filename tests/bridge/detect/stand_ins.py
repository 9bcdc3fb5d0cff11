"""Stand-ins around the camera pipeline's ``Detection``, to see what it hands on per frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from doorstep_bridge.camera.pipeline import Detection
from doorstep_bridge.config import CameraSettings
from doorstep_bridge.motion import MotionResult


class Recorder:
    """A recorder that wants no frame and ignores motion."""

    def wants_frame(self) -> bool:
        return False

    def motion(self, active: bool) -> None:
        pass


class Scripted:
    """A motion detector that replays ``results``."""

    def __init__(self, results: list[MotionResult]) -> None:
        self.results = results

    def detect(self, luma: Any) -> MotionResult:
        return self.results.pop(0)


class Gate:
    """A gate that never changes the motion state."""

    def update(self, moving: bool, now: float) -> bool | None:
        return None


class Frame:
    """A decoded frame's size (its luma plane is patched to a flat 64x48)."""

    width, height = 64, 48


def scripted_detection(
    monkeypatch: pytest.MonkeyPatch,
    camera: CameraSettings,
    results: list[MotionResult],
    **feeds: Any,
) -> Detection:
    """A ``Detection`` whose motion detector replays ``results``; ``feeds``: person, packages."""
    monkeypatch.setattr(
        "doorstep_bridge.camera.pipeline.luma_plane", lambda f: np.zeros((48, 64), np.uint8)
    )
    return Detection(
        camera,
        Recorder(),  # type: ignore[arg-type]
        lambda w, h, s: Scripted(results),
        lambda n, d: Gate(),
        on_motion=lambda _a: None,
        **feeds,
    )
