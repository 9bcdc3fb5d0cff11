"""Steps of the wall clock, told against a clock nobody sets.

A board without a real-time clock (a Raspberry Pi) starts with a stale clock, 1970 or
the time fake-hwclock saved at the last shutdown, until NTP sets it minutes later; a
clock found ahead is set back. What the bridge reckoned from the wall clock before such
a step (a share's deadline, a clip's start) is off by the step. :class:`StepWatch` tells
the step, so each part can move what it reckoned by as much.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
import threading
import time
from typing import NamedTuple, TypeAlias

from doorstep_bridge.models import utcnow

#: Current time (tests pass a controllable clock).
Clock: TypeAlias = Callable[[], datetime]
#: Seconds on a clock nobody sets, to measure how much time really passed.
SteadyClock: TypeAlias = Callable[[], float]
#: The wall clock moving this much more or less than the steady clock is a step (NTP setting
#: the stale clock of a board without a real-time clock, a correction back, a resume from
#: suspend). Smaller errors the kernel slews, which moves both clocks alike.
CLOCK_STEP = timedelta(seconds=2)


def steady_seconds() -> float:
    """Seconds since boot, suspend included (a link's lifetime goes on while a host sleeps)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.monotonic() if boottime is None else time.clock_gettime(boottime)


class Reading(NamedTuple):
    """The two clocks read together, and how far the wall clock stepped before it."""

    wall: datetime
    steady: float
    #: Zero, or at least :data:`CLOCK_STEP` either way (negative: the clock was set back).
    step: timedelta


class StepWatch:
    """Tells how far the wall clock stepped since the last step its owner followed.

    The first reading is the anchor. A step stays visible in every reading until the
    owner has moved what it reckoned and calls :meth:`follow`: an owner that could not
    (the audit log or the index could not be written) is told again at its next reading.
    Thread-safe.

    Args:
        clock: The wall clock.
        steady: Seconds on a clock nobody sets.
    """

    def __init__(self, clock: Clock = utcnow, steady: SteadyClock = steady_seconds) -> None:
        self.clock = clock
        self.steady = steady
        self._anchor: tuple[datetime, float] | None = None
        self._lock = threading.Lock()

    def read(self) -> Reading:
        """Both clocks now, and the step not followed yet (zero when there is none)."""
        with self._lock:
            wall, steady = self.clock(), self.steady()
            if self._anchor is None:
                self._anchor = (wall, steady)
                return Reading(wall, steady, timedelta(0))
            step = wall - self._anchor[0] - timedelta(seconds=steady - self._anchor[1])
            return Reading(wall, steady, step if abs(step) >= CLOCK_STEP else timedelta(0))

    def follow(self, reading: Reading) -> None:
        """The owner moved what it reckoned by ``reading.step``: measure from ``reading`` on."""
        with self._lock:
            self._anchor = (reading.wall, reading.steady)
