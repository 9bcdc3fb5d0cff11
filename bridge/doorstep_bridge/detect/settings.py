"""Per-camera person detection settings: the `cameras.<cam>.person` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from doorstep_bridge.validation import boolean, number

#: The default threshold on the HOG detector's score: a hit counts when its score is at
#: least this (tuned on labelled video, bench/person.py).
DEFAULT_THRESHOLD = 1.2


@dataclass(frozen=True, slots=True)
class PersonSettings:
    """Whether and how often a camera looks for people (docs/detection.md).

    Attributes:
        enabled: Look for people in the regions that move (off by default).
        checks_per_second: At most this many frames are checked per second while
            something moves; nothing is checked while the scene is still.
        threshold: How sure the detector must be (its score); higher means fewer
            false alarms and more missed people.
        off_delay: Seconds without a person seen before the person state turns OFF.
    """

    enabled: bool = False
    checks_per_second: float = 2.0
    threshold: float = DEFAULT_THRESHOLD
    off_delay: float = 5.0


PERSON_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled"): boolean,
        vol.Optional("checks_per_second"): number(0.1, 10.0),
        vol.Optional("threshold"): number(-1.0, 5.0),
        vol.Optional("off_delay"): number(0.0, 3600.0),
    }
)


def person_settings(data: dict[str, Any]) -> PersonSettings:
    """Build settings from a validated `person` section."""
    return PersonSettings(**data)
