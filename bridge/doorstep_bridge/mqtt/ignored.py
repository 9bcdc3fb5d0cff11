"""Warnings about ignored MQTT input that a flood of garbage cannot turn into a log flood.

Anyone who can write to the broker can send messages to the bridge. The first
message ignored for one reason on one subscription is logged in full; the
following ones are counted, and one summary line per interval says how many
there were. The number of keys is bounded by the subscriptions times the kinds
of problem (never by topics or payloads, which the sender chooses), and every
logged text is truncated and has its control characters escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import logging
import threading
import time

#: Seconds between two summary lines for one subscription and kind of problem.
SUMMARY_INTERVAL = 60.0

#: Characters of a topic or reason shown in a log line.
_SHOWN_CHARS = 200


def printable(text: str, limit: int = _SHOWN_CHARS) -> str:
    """`text` fit for one log line: truncated, line breaks and control characters escaped."""
    shown = text[:limit]
    if not shown.isprintable():
        # repr() escapes exactly what is not printable, lone surrogates included
        # (which would otherwise make the log handler itself fail).
        shown = "".join(char if char.isprintable() else repr(char)[1:-1] for char in shown)
    return shown + ("…" if len(text) > limit else "")


@dataclass(slots=True)
class _Window:
    started: float
    suppressed: int = 0
    last_topic: str = ""
    last_reason: str = ""


class IgnoredInputLog:
    """Rate-limited, deduplicated warnings about ignored messages; thread-safe."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = SUMMARY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    @property
    def interval(self) -> float:
        """Seconds between two summary lines for one key."""
        return self._interval

    def report(
        self, subscription: str, kind: str, topic: str, reason: str, *, exc_info: bool = False
    ) -> None:
        """One ignored message on `topic`, received through `subscription`.

        Args:
            subscription: The topic filter it arrived through (part of the key).
            kind: The kind of problem, free of message details (part of the key).
            topic: The message's topic.
            reason: Why it was ignored, shown to the user.
            exc_info: Log the current exception's traceback with the first line.
        """
        key = (subscription, kind)
        with self._lock:
            now = self._clock()
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = _Window(started=now)
                self._logger.warning(
                    "Ignoring message on %s: %s (more like it are counted, summary every %g s)",
                    printable(topic),
                    printable(reason),
                    self._interval,
                    exc_info=exc_info,
                )
                return
            window.suppressed += 1
            window.last_topic = topic
            window.last_reason = reason
            if now - window.started >= self._interval:
                self._summarise(key, window, now)

    def flush(self, *, final: bool = False) -> None:
        """Write the summaries that are due (all of them when `final`)."""
        with self._lock:
            now = self._clock()
            for key, window in list(self._windows.items()):
                if final or now - window.started >= self._interval:
                    self._summarise(key, window, now)

    def _summarise(self, key: tuple[str, str], window: _Window, now: float) -> None:
        """Log the count of one window and start the next (caller holds the lock)."""
        if window.suppressed == 0:
            # A quiet window: the next message of this kind is news again.
            del self._windows[key]
            return
        subscription, kind = key
        self._logger.warning(
            "Ignored %d more messages on %s in the last %.0f s (%s); the last on %s: %s",
            window.suppressed,
            printable(subscription),
            now - window.started,
            printable(kind),
            printable(window.last_topic),
            printable(window.last_reason),
        )
        self._windows[key] = _Window(started=now)
