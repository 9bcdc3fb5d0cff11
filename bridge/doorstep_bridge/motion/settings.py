"""Per-camera motion settings: the `cameras.<cam>.motion` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from doorstep_bridge.validation import Polygon, integer, number, polygons


@dataclass(frozen=True, slots=True)
class MotionSettings:
    """How eagerly a camera reports motion.

    Attributes:
        sensitivity: 0..1, higher reports smaller or fainter changes.
        min_area: Smallest moving area worth reporting, as a fraction of the frame.
        frames_to_start: Consecutive moving frames before motion turns ON.
        off_delay: Seconds without movement before motion turns OFF.
        masks: Polygons (frame pixels) where movement is ignored.
    """

    sensitivity: float = 0.5
    min_area: float = 0.001
    frames_to_start: int = 2
    off_delay: float = 5.0
    masks: tuple[Polygon, ...] = ()


MOTION_SCHEMA = vol.Schema(
    {
        vol.Optional("sensitivity"): number(0.0, 1.0),
        vol.Optional("min_area"): number(0.0, 1.0),
        vol.Optional("frames_to_start"): integer(1, 100),
        vol.Optional("off_delay"): number(0.0, 3600.0),
        vol.Optional("masks"): polygons,
    }
)


def motion_settings(data: dict[str, Any]) -> MotionSettings:
    """Build settings from a validated `motion` section."""
    return MotionSettings(**data)
