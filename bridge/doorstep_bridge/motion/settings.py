"""Per-camera motion settings: the `cameras.<cam>.motion` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import voluptuous as vol

from doorstep_bridge.validation import Polygon, boolean, integer, number, polygon, polygons, text

Zone: TypeAlias = tuple[str, Polygon]


@dataclass(frozen=True, slots=True)
class MotionSettings:
    """How eagerly a camera reports motion (see docs/motion.md for each knob).

    Attributes:
        sensitivity: 0..1, higher reports fainter changes (0.5 suits most cameras;
            each step of 0.25 halves or doubles the contrast needed).
        min_area: Smallest moving area worth reporting, as a fraction of the frame.
        frames_to_start: Consecutive moving frames before motion turns ON.
        off_delay: Seconds without movement before motion turns OFF.
        still_hold: Seconds an object that stopped moving (a parked car, a person
            waiting) keeps counting as motion before it becomes part of the scene.
        lighting_compensation: Ignore whole-scene brightness changes (auto exposure,
            IR switching at dusk, lightning, a sweep of headlights).
        masks: Polygons (frame pixels of the detect stream) where movement is ignored.
        zones: Named polygons (detect-stream pixels); when there are any, only movement
            inside one of them counts (masks still apply within them).
    """

    sensitivity: float = 0.5
    min_area: float = 0.002
    frames_to_start: int = 2
    off_delay: float = 5.0
    still_hold: float = 10.0
    lighting_compensation: bool = True
    masks: tuple[Polygon, ...] = ()
    zones: tuple[Zone, ...] = ()


def zones(value: Any) -> tuple[Zone, ...]:
    """A mapping of zone names to polygons, in the order written."""
    if not isinstance(value, dict):
        raise vol.Invalid("expected a mapping of zone names to polygons")
    result = []
    for name, item in value.items():
        try:
            result.append((text(name), polygon(item)))
        except vol.Invalid as err:
            raise vol.Invalid(err.msg, path=[name]) from None
    return tuple(result)


MOTION_SCHEMA = vol.Schema(
    {
        vol.Optional("sensitivity"): number(0.0, 1.0),
        vol.Optional("min_area"): number(0.0, 1.0),
        vol.Optional("frames_to_start"): integer(1, 100),
        vol.Optional("off_delay"): number(0.0, 3600.0),
        vol.Optional("still_hold"): number(0.0, 600.0),
        vol.Optional("lighting_compensation"): boolean,
        vol.Optional("masks"): polygons,
        vol.Optional("zones"): zones,
    }
)


def motion_settings(data: dict[str, Any]) -> MotionSettings:
    """Build settings from a validated `motion` section."""
    return MotionSettings(**data)
