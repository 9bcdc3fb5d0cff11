"""Rate-limited, deduplicated log lines for input the bridge refuses.

Garbage from the network must not become garbage in the log: each kind of
refusal is logged at most once per interval, and the next line says how many
like it were held back meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import logging
import time

#: Kinds remembered at once; a flood of distinct kinds cannot grow memory.
MAX_KINDS = 256


@dataclass(slots=True)
class _Seen:
    last: float
    held_back: int = 0


class LogThrottle:
    """Log one line per kind per `interval` seconds, counting the ones held back."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def log(
        self, level: int, kind: str, message: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log `message % args` unless a line of this `kind` went out within the interval.

        Returns:
            True when the line was written, False when it was held back.
        """
        now = self._clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen.last < self._interval:
            seen.held_back += 1
            return False
        held_back = seen.held_back if seen is not None else 0
        self._seen.pop(kind, None)
        if len(self._seen) >= MAX_KINDS:
            del self._seen[next(iter(self._seen))]
        self._seen[kind] = _Seen(now)
        if held_back:
            message += " (%d more like it held back in the last %d s)"
            args = (*args, held_back, round(self._interval))
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True
