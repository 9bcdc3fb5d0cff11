"""Recording settings: the `storage` section and each camera's `cameras.<cam>.record`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol

from doorstep_bridge.validation import boolean, number

#: What started a clip (its ``reason``); ``person``: motion while person detection saw
#: someone (a motion clip during which someone came into view becomes one).
CLIP_REASONS = ("ring", "person", "motion", "manual")
#: The kinds of clip retention tells apart: the reasons (for retention, a ``motion``
#: clip during which person detection saw someone is a ``person`` clip too).
CLIP_KINDS = CLIP_REASONS
#: Days each kind is kept when neither ``storage.retention`` nor ``retention_days`` says.
DEFAULT_RETENTION_DAYS = {"ring": 30.0, "person": 30.0, "motion": 7.0, "manual": 30.0}
#: What motion records (``record.motion``): every motion event, or only those in which
#: person detection sees someone.
MOTION_RECORDING = ("all", "people")
#: Bounds of a retention period in days.
MAX_RETENTION_DAYS = 3650.0


@dataclass(frozen=True, slots=True)
class RetentionPeriods:
    """How many days the clips of each kind are kept after they end.

    Attributes:
        ring: Clips a doorbell press started (a visit).
        person: Motion clips during which person detection saw someone.
        motion: Clips motion alone started, no person seen (passers-by, cars, cats).
        manual: Clips a record-now command started.
    """

    ring: float = DEFAULT_RETENTION_DAYS["ring"]
    person: float = DEFAULT_RETENTION_DAYS["person"]
    motion: float = DEFAULT_RETENTION_DAYS["motion"]
    manual: float = DEFAULT_RETENTION_DAYS["manual"]

    def days(self, kind: str) -> float:
        """The period of one kind of clip (a clip reason); the longest for an unknown kind."""
        if kind in CLIP_KINDS:
            days: float = getattr(self, kind)
            return days
        return max(self.ring, self.person, self.motion, self.manual)

    def payload(self) -> dict[str, float]:
        """``{kind: days}``, as the bridge info publishes it."""
        return {kind: self.days(kind) for kind in CLIP_KINDS}


RETENTION_SCHEMA = vol.Schema(
    {vol.Optional(kind): number(0.0, MAX_RETENTION_DAYS) for kind in CLIP_KINDS}
)


def retention_periods(default_days: float | None, per_kind: dict[str, float]) -> RetentionPeriods:
    """The period of each kind: its own, else ``retention_days``, else the built-in default.

    Args:
        default_days: ``storage.retention_days`` if the file sets it.
        per_kind: The validated ``storage.retention`` section.
    """
    return RetentionPeriods(
        **{
            kind: per_kind.get(
                kind, DEFAULT_RETENTION_DAYS[kind] if default_days is None else default_days
            )
            for kind in CLIP_KINDS
        }
    )


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where clips, the index, shares and the audit log live, and for how long.

    Attributes:
        path: The storage folder.
        retention: Days each kind of clip is kept.
        retention_days: ``storage.retention_days`` as the file set it (the period of
            every kind ``storage.retention`` leaves out), or None.
        max_size_gb: Cap on the clips' total size, oldest deleted first.
    """

    path: Path = Path("./doorstep-data")
    retention: RetentionPeriods = RetentionPeriods()
    retention_days: float | None = None
    max_size_gb: float | None = None


@dataclass(frozen=True, slots=True)
class RecordSettings:
    """When and how much a camera records.

    Attributes:
        enabled: Record clips at all (motion, ring and manual triggers).
        pre_roll: Seconds kept before the trigger.
        post_roll: Seconds kept after motion ends or after a ring.
        max_length: Longest clip in seconds; longer events are split.
        motion: ``all``: motion starts a clip; ``people``: motion starts one only once
            person detection sees someone (the pre-roll still shows their approach).
            Rings and record-now record either way.
    """

    enabled: bool = True
    pre_roll: float = 5.0
    post_roll: float = 10.0
    max_length: float = 300.0
    motion: str = "all"


RECORD_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled"): boolean,
        vol.Optional("pre_roll"): number(0.0, 60.0),
        vol.Optional("post_roll"): number(0.0, 600.0),
        vol.Optional("max_length"): number(5.0, 3600.0),
        vol.Optional("motion"): vol.In(MOTION_RECORDING, msg="expected all or people"),
    }
)


def record_settings(data: dict[str, Any]) -> RecordSettings:
    """Build settings from a validated `record` section."""
    return RecordSettings(**data)
