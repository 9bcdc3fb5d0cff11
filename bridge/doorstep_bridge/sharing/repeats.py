"""Repeated audit records, counted instead of written one by one.

Each request on a share link and each refused share request is audited, and a
client can send thousands. So per *group* (a share link, or the source of a
request) and per *entry* in it (a client: address, user agent; or an error),
the first few records of each interval (a minute) are written as usual; the
rest are counted, and one ``repeated`` record per group and interval says how
many there were, of which kind, from whom, between when and when. Nothing is
dropped: it is summed. A group that stays quiet for an interval is forgotten.

Where what is recorded is footage leaving (a download), a client whose first
request the group's cap would push into the counts is refused instead: every
client that gets a byte is named in the log by a record of its own. A client
named once in a burst goes on being served (a player seeking) when a later
interval's records are spent, and a refused one is taken in the next interval,
however busy the group stays.

The counts live in memory until their summary is written (at the latest one
interval after the first counted event, and when the bridge stops; a summary
that cannot be written keeps its counts for the next try): a crash loses at most
that interval's counts, never an individual record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
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
        per_entry: Records per entry (one client, one error) written one by one
            in an interval.
        per_group: Records per group (one link, one source) written one by one
            in an interval.
        interval: How often the records written one by one renew, and the longest
            time counted events wait for their summary; also the quiet time after
            which a group is forgotten.
        max_entries: Entries named in one summary; the rest are summed as ``other``.
    """

    per_entry: int = 3
    per_group: int = 10
    interval: timedelta = timedelta(minutes=1)
    max_entries: int = 20


class Admission(Enum):
    """What becomes of one record of a burst."""

    WRITE = "write"  # written now, one by one
    COUNT = "count"  # counted for the group's summary
    REFUSE = "refuse"  # a new client over the group's cap: the request is refused


@dataclass(frozen=True, slots=True)
class Summary:
    """A ``repeated`` record due, with the counts it sums (put back if it is not written)."""

    key: tuple[str, Group]
    fields: dict[str, Any]
    counted: Counter[Entry]
    other: int
    first: datetime


@dataclass(slots=True)
class _Window:
    opened: datetime  # when this interval's records began (see `written`)
    last: datetime
    written: int = 0
    written_per_entry: Counter[Entry] = field(default_factory=Counter)
    named: set[Entry] = field(default_factory=set)  # written at least once in the burst
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

    def admit(
        self, kind: str, group: Group, entry: Entry, now: datetime, *, refuse_new: bool = False
    ) -> Admission:
        """Whether this record of `kind` is written, counted, or its request refused.

        Args:
            kind: The record's kind.
            group: What the record is about (a link, a source).
            entry: Who or what it is (a client, an error).
            now: The current time.
            refuse_new: Refuse an entry none of whose records was written in this
                window rather than count it (nobody is served without a record naming them).
        """
        limits = self._limits
        window = self._windows.setdefault((kind, group), _Window(opened=now, last=now))
        window.last = now
        if now - window.opened >= limits.interval:
            # A new interval: records are written one by one again. Renewed on a fixed
            # beat, not after a quiet interval: a player seeking on a link must not keep
            # it shut to everyone else for as long as it plays.
            window.opened = now
            window.written = 0
            window.written_per_entry.clear()
        seen = window.written_per_entry[entry]
        if window.written < limits.per_group and seen < limits.per_entry:
            window.written += 1
            window.written_per_entry[entry] += 1
            window.named.add(entry)
            return Admission.WRITE
        if refuse_new and entry not in window.named:
            return Admission.REFUSE
        if entry in window.counted or len(window.counted) < limits.max_entries:
            window.counted[entry] += 1
        else:
            window.other += 1
        if window.first_counted is None:
            window.first_counted = now
        return Admission.COUNT

    def unwrite(self, kind: str, group: Group, entry: Entry) -> None:
        """Take back a `Admission.WRITE` whose record could not be written."""
        window = self._windows.get((kind, group))
        if window is not None and window.written_per_entry[entry]:
            window.written -= 1
            window.written_per_entry[entry] -= 1
            if not window.written_per_entry[entry]:
                window.named.discard(entry)

    def due(self, now: datetime, *, everything: bool = False) -> list[Summary]:
        """The ``repeated`` records to write now (their counts are then cleared).

        A summary that cannot be written is handed back with :meth:`restore`.

        Args:
            now: The current time.
            everything: Sum up every count now (the bridge is stopping).
        """
        interval = self._limits.interval
        summaries: list[Summary] = []
        for key, window in list(self._windows.items()):
            kind, (group_name, group_value) = key
            first = window.first_counted
            if first is not None and (everything or now - first >= interval):
                summaries.append(
                    Summary(
                        key=key,
                        fields={
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
                        },
                        counted=window.counted.copy(),
                        other=window.other,
                        first=first,
                    )
                )
                window.counted.clear()
                window.other = 0
                window.first_counted = None
            if window.first_counted is None and (everything or now - window.last >= interval):
                del self._windows[key]
        return summaries

    def shift(self, step: timedelta) -> None:
        """The wall clock stepped by ``step``: move every window with it.

        Otherwise a step back would keep counts unsummed, and a busy link's window open,
        for as long as the step.
        """
        for window in self._windows.values():
            window.opened += step
            window.last += step
            if window.first_counted is not None:
                window.first_counted += step

    def restore(self, summary: Summary) -> None:
        """Put back the counts of a summary that could not be written (summed again later)."""
        window = self._windows.setdefault(
            summary.key, _Window(opened=summary.first, last=summary.first)
        )
        window.counted.update(summary.counted)
        window.other += summary.other
        if window.first_counted is None or summary.first < window.first_counted:
            window.first_counted = summary.first
