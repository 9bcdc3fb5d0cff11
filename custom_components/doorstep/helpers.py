"""Small lookups shared by services, views and the media source."""

from __future__ import annotations

import re

from homeassistant.core import HomeAssistant

from .const import DOMAIN
from .data import DoorstepConfigEntry

#: Ids the bridge accepts in paths (docs/http-api.md); anything else never reaches it.
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def loaded_entries(hass: HomeAssistant) -> list[DoorstepConfigEntry]:
    """Config entries that are set up now."""
    return hass.config_entries.async_loaded_entries(DOMAIN)


def entry_for_bridge(hass: HomeAssistant, bridge_id: str) -> DoorstepConfigEntry | None:
    """The loaded entry of one bridge."""
    return next(
        (e for e in loaded_entries(hass) if e.runtime_data.coordinator.bridge_id == bridge_id),
        None,
    )
