"""MotionGate: per-frame motion becomes ON/OFF transitions with hysteresis."""

from __future__ import annotations

import pytest

from doorstep_bridge.motion import MotionGate


def feed(gate: MotionGate, frames: list[tuple[bool, float]]) -> list[bool | None]:
    return [gate.update(moving, now) for moving, now in frames]


def state(gate: MotionGate) -> bool:
    return gate.on


def test_turns_on_after_consecutive_moving_frames_only() -> None:
    gate = MotionGate(frames_to_start=3, off_delay=5.0)
    assert (
        feed(gate, [(True, 0.0), (True, 0.2), (False, 0.4), (True, 0.6), (True, 0.8)]) == [None] * 5
    )
    assert gate.update(True, 1.0) is True
    assert gate.on
    assert gate.update(True, 1.2) is None  # reported once, not on every frame


def test_turns_off_after_off_delay_without_movement() -> None:
    gate = MotionGate(frames_to_start=1, off_delay=5.0)
    assert gate.update(True, 10.0) is True
    assert feed(gate, [(False, 11.0), (False, 14.9)]) == [None, None]
    assert gate.update(True, 14.95) is None  # movement restarts the delay
    assert gate.update(False, 19.9) is None
    assert gate.update(False, 19.95) is False
    assert not gate.on
    assert gate.update(False, 30.0) is None


def test_zero_off_delay_turns_off_on_the_first_still_frame() -> None:
    gate = MotionGate(frames_to_start=1, off_delay=0.0)
    assert feed(gate, [(True, 0.0), (False, 0.2)]) == [True, False]


def test_reset_returns_to_off_and_forgets_the_streak() -> None:
    gate = MotionGate(frames_to_start=2, off_delay=5.0)
    feed(gate, [(True, 0.0), (True, 0.2)])
    assert state(gate)
    gate.reset()
    assert not state(gate)
    assert gate.update(True, 1.0) is None
    assert gate.update(True, 1.2) is True


@pytest.mark.parametrize(("frames", "delay"), [(0, 1.0), (1, -0.1)])
def test_nonsense_settings_are_refused(frames: int, delay: float) -> None:
    with pytest.raises(ValueError):
        MotionGate(frames, delay)
