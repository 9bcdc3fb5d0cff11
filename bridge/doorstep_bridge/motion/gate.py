"""Hysteresis between per-frame motion and the camera's motion ON/OFF state."""

from __future__ import annotations


class MotionGate:
    """Turns per-frame motion into ON/OFF transitions.

    Motion turns ON after ``frames_to_start`` consecutive moving frames and OFF
    once no frame has moved for ``off_delay`` seconds. Not thread-safe.

    Args:
        frames_to_start: Consecutive moving frames needed to turn ON (>= 1).
        off_delay: Seconds without a moving frame before turning OFF (>= 0).
    """

    def __init__(self, frames_to_start: int, off_delay: float) -> None:
        if frames_to_start < 1:
            raise ValueError("frames_to_start must be at least 1")
        if off_delay < 0:
            raise ValueError("off_delay must not be negative")
        self._frames_to_start = frames_to_start
        self._off_delay = off_delay
        self._on = False
        self._streak = 0
        self._last_moving = 0.0

    @property
    def on(self) -> bool:
        """The current state."""
        return self._on

    def update(self, moving: bool, now: float) -> bool | None:
        """Feed one frame's verdict.

        Args:
            moving: Whether this frame moved.
            now: A monotonic clock in seconds (the frame's time).

        Returns:
            The new state when it changes on this frame, otherwise None.
        """
        if moving:
            self._streak += 1
            self._last_moving = now
            if not self._on and self._streak >= self._frames_to_start:
                self._on = True
                return True
            return None
        self._streak = 0
        if self._on and now - self._last_moving >= self._off_delay:
            self._on = False
            return False
        return None

    def reset(self) -> None:
        """Back to OFF with no history (the caller publishes OFF if it was ON)."""
        self._on = False
        self._streak = 0
        self._last_moving = 0.0
