"""Repeated audit records, counted instead of written one by one.

Each request on a share link and each refused share request is audited, and a
client can send thousands. So per *group* (a share link, or the source of a
request) and per *entry* in it (a client: address, user agent; or an error),
the first few records of a burst are written as usual; the rest are counted, and
one ``repeated`` record per group and `RepeatLimits.interval` says how many
there were, of which kind, from whom, between when and when. Nothing is dropped:
it is summed. A group that stays quiet for an interval starts afresh.

The counts live in memory until their summary is written (at the latest one
interval after the first counted event, and when the bridge stops): a crash
loses at most that interval's counts, never an individual record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from doorstep_bridge.models import iso

#: (name, value) of what a group is: ``("share_id", "s_...")`` or ``("source", "mqtt")``.
Group: TypeAlias = tuple[str, str]
#: Labels of one entry: ``(("client", "192.0.2.7"), ("agent", "curl/8"))``.
Entry: TypeAlias = tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RepeatLimits:
    """How many records a burst may write one by one.

    Attributes:
        per_entry: Records per entry (one client, one error) written one by one.
        per_group: Records per group (one link, one source) written one by one.
        interval: Longest time counted events wait for their summary; also the
            quiet time after which a group starts afresh.
        max_entries: Entries named in one summary; the rest are summed as ``other``.
    """

    per_entry: int = 3
    per_group: int = 10
    interval: timedelta = timedelta(minutes=1)
    max_entries: int = 20


@dataclass(slots=True)
class _Window:
    last: datetime
    written: int = 0
    written_per_entry: Counter[Entry] = field(default_factory=Counter)
    counted: Counter[Entry] = field(default_factory=Counter)
    other: int = 0
    first_counted: datetime | None = None


class RepeatedRecords:
    """Decides which records of a burst are written and sums up the rest.

    Not thread-safe: the share service calls it from the event loop.
    """

    def __init__(self, limits: RepeatLimits | None = None) -> None:
        self._limits = limits or RepeatLimits()
        self._windows: dict[tuple[str, Group], _Window] = {}

    def admit(self, kind: str, group: Group, entry: Entry, now: datetime) -> bool:
        """True when this record of `kind` is to be written; False when it was counted."""
        limits = self._limits
        window = self._windows.setdefault((kind, group), _Window(last=now))
        window.last = now
        if window.written < limits.per_group and window.written_per_entry[entry] < limits.per_entry:
            window.written += 1
            window.written_per_entry[entry] += 1
            return True
        if entry in window.counted or len(window.counted) < limits.max_entries:
            window.counted[entry] += 1
        else:
            window.other += 1
        if window.first_counted is None:
            window.first_counted = now
        return False

    def due(self, now: datetime, *, everything: bool = False) -> list[dict[str, Any]]:
        """Fields of the ``repeated`` records to write now (their counts are then cleared).

        Args:
            now: The current time.
            everything: Sum up every count now (the bridge is stopping).
        """
        interval = self._limits.interval
        summaries: list[dict[str, Any]] = []
        for key, window in list(self._windows.items()):
            kind, (group_name, group_value) = key
            first = window.first_counted
            if first is not None and (everything or now - first >= interval):
                summaries.append(
                    {
                        group_name: group_value,
                        "of": kind,
                        "since": iso(first),
                        "until": iso(now),
                        "count": window.counted.total() + window.other,
                        "entries": [
                            {**dict(entry), "count": count}
                            for entry, count in window.counted.most_common()
                        ],
                        "other": window.other,
                    }
                )
                window.counted.clear()
                window.other = 0
                window.first_counted = None
            if window.first_counted is None and (everything or now - window.last >= interval):
                del self._windows[key]
        return summaries
