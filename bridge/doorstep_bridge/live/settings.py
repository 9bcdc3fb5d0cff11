"""Per-camera live view settings: the `cameras.<cam>.live` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import voluptuous as vol

from doorstep_bridge.validation import integer, number

LiveSourceRole: TypeAlias = Literal["detect", "main"]

LIVE_SOURCES: tuple[LiveSourceRole, ...] = ("detect", "main")


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """How the bridge serves a camera's live view.

    Attributes:
        source: ``detect`` streams the detect stream when the camera has one (the main
            stream otherwise): decoding a sub stream costs a tenth of a 1080p one.
            ``main`` always streams the main stream, at full resolution.
        fps: Most frames per second sent to viewers (JPEG encoding is the main cost).
        max_viewers: Most viewers at once for this camera; more are refused (503).
        quality: JPEG quality, 1 to 100.
        linger: Seconds the source stays open after the last viewer leaves, so a
            dashboard that reconnects (a card, then the more-info dialog) does not
            reopen the camera each time. 0 closes it at once.
    """

    source: LiveSourceRole = "detect"
    fps: float = 10.0
    max_viewers: int = 4
    quality: int = 80
    linger: float = 5.0


def _source_role(value: Any) -> LiveSourceRole:
    if value == "detect":
        return "detect"
    if value == "main":
        return "main"
    raise vol.Invalid("expected detect or main")


LIVE_SCHEMA = vol.Schema(
    {
        vol.Optional("source"): _source_role,
        vol.Optional("fps"): number(0.5, 30.0),
        vol.Optional("max_viewers"): integer(1, 32),
        vol.Optional("quality"): integer(1, 100),
        vol.Optional("linger"): number(0.0, 300.0),
    }
)


def live_settings(data: dict[str, Any]) -> LiveSettings:
    """Build settings from a validated `live` section."""
    return LiveSettings(**data)
