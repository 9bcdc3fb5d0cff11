"""Fixtures for the camera tests: footage, a real RTSP server and a stand-in motion core.

The stand-in (a plain frame difference and a counting gate) keeps these tests
about the pipeline, not about detection quality; the motion core has its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from doorstep_bridge.events import EventBus
from doorstep_bridge.motion import Luma, MotionResult
from doorstep_bridge.motion.settings import MotionSettings
from tests.support.media import Footage, write_h264
from tests.support.servers import rtsp_available


class FrameDifference:
    """Stand-in detector: something moved when enough pixels changed since the last frame."""

    def __init__(self, width: int, height: int, settings: MotionSettings) -> None:
        self.previous: Luma | None = None
        self.size = (width, height)

    def detect(self, luma: Luma) -> MotionResult:
        small = luma[::4, ::4].astype(np.int16)
        previous, self.previous = self.previous, small
        if previous is None or previous.shape != small.shape:
            return MotionResult()
        changed = np.abs(small - previous) > 25
        area = float(changed.mean())
        if area < 0.002:
            return MotionResult()
        ys, xs = np.nonzero(changed)
        box = (int(xs.min()) * 4, int(ys.min()) * 4, int(xs.max()) * 4, int(ys.max()) * 4)
        return MotionResult((box,), area)


class CountingGate:
    """Stand-in hysteresis: on after N moving frames, off after ``off_delay`` still seconds."""

    def __init__(self, frames_to_start: int, off_delay: float) -> None:
        self.frames_to_start = frames_to_start
        self.off_delay = off_delay
        self.run = 0
        self.last_moving: float | None = None
        self.on = False

    def update(self, moving: bool, now: float) -> bool | None:
        if moving:
            self.run += 1
            self.last_moving = now
            if not self.on and self.run >= self.frames_to_start:
                self.on = True
                return True
            return None
        self.run = 0
        if self.on and self.last_moving is not None and now - self.last_moving >= self.off_delay:
            self.on = False
            return False
        return None


def stand_in_detector(fps: float) -> Callable[[int, int, MotionSettings], FrameDifference]:
    return FrameDifference


@dataclass
class Recorded:
    """Every event published on a bus, with a way to wait for one."""

    bus: EventBus
    events: list[Any] = field(default_factory=list)

    def watch(self, *types: type) -> None:
        for kind in types:
            self.bus.subscribe(kind, self.events.append)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(
        self, kind: type, predicate: Callable[[Any], bool] = lambda _: True, timeout: float = 30
    ) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.of(kind):
                    if predicate(event):
                        return event
                await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
def porch(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    """A 6 s looping scene, 640x360 at 15 fps, 1 s GOP; a walker crosses at 3.0-4.5 s."""
    path = tmp_path_factory.mktemp("camera") / "porch.mp4"
    return write_h264(path, width=640, height=360, fps=15, seconds=6, gop=15, motion=(3.0, 4.5))


@pytest.fixture(scope="session")
def porch_b_frames(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    """The porch from a camera that sends B-frames (pictures out of showing order)."""
    path = tmp_path_factory.mktemp("camera") / "porch_b.mp4"
    return write_h264(
        path, width=640, height=360, fps=15, seconds=6, gop=15, motion=(3.0, 4.5), b_frames=2
    )


@pytest.fixture(scope="session")
def rtsp_ok() -> None:
    why = rtsp_available()
    if why is not None:
        pytest.skip(why)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"
