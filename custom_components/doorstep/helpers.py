"""Small lookups shared by services, views and the media source."""

from __future__ import annotations

import re

from homeassistant.core import HomeAssistant

from .const import DOMAIN
from .data import DoorstepConfigEntry

#: Ids the bridge accepts in paths (docs/http-api.md); anything else never reaches it.
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def clip_in_media_browser(
    hass: HomeAssistant, identifier: str
) -> tuple[DoorstepConfigEntry, str] | None:
    """The bridge and clip id of a clip's media browser identifier, or None.

    The identifier is ``<bridge_id>/<camera>/<day>/<clip_id>`` (the media source's clip
    level), with or without ``media-source://doorstep/`` in front.
    """
    parts = identifier.removeprefix(f"media-source://{DOMAIN}/").split("/")
    if len(parts) != 4 or not SAFE_ID.match(parts[3]):
        return None
    entry = entry_for_bridge(hass, parts[0])
    return (entry, parts[3]) if entry is not None else None


def loaded_entries(hass: HomeAssistant) -> list[DoorstepConfigEntry]:
    """Config entries that are set up now."""
    return hass.config_entries.async_loaded_entries(DOMAIN)


def entry_for_bridge(hass: HomeAssistant, bridge_id: str) -> DoorstepConfigEntry | None:
    """The loaded entry of one bridge."""
    return next(
        (e for e in loaded_entries(hass) if e.runtime_data.coordinator.bridge_id == bridge_id),
        None,
    )
