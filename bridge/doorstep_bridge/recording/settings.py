"""Recording settings: the `storage` section and each camera's `cameras.<cam>.record`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol

from doorstep_bridge.validation import boolean, number


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where clips, the index, shares and the audit log live, and for how long."""

    path: Path = Path("./doorstep-data")
    retention_days: float = 14.0
    max_size_gb: float | None = None


@dataclass(frozen=True, slots=True)
class RecordSettings:
    """When and how much a camera records.

    Attributes:
        enabled: Record clips at all (motion, ring and manual triggers).
        pre_roll: Seconds kept before the trigger.
        post_roll: Seconds kept after motion ends or after a ring.
        max_length: Longest clip in seconds; longer events are split.
    """

    enabled: bool = True
    pre_roll: float = 5.0
    post_roll: float = 10.0
    max_length: float = 300.0


RECORD_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled"): boolean,
        vol.Optional("pre_roll"): number(0.0, 60.0),
        vol.Optional("post_roll"): number(0.0, 600.0),
        vol.Optional("max_length"): number(5.0, 3600.0),
    }
)


def record_settings(data: dict[str, Any]) -> RecordSettings:
    """Build settings from a validated `record` section."""
    return RecordSettings(**data)
