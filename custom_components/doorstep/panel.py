"""The Doorstep panel in HA's sidebar: shares and clips, behind HA's login.

The panel is one plain JavaScript module served from ``frontend/`` (no build step,
nothing fetched from outside the home). It is registered with the first bridge and
removed with the last one; HA cannot unregister a static path, so that is kept.
"""

from __future__ import annotations

from pathlib import Path

from homeassistant.components import frontend, panel_custom
from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN

PANEL_URL_PATH: str = DOMAIN
PANEL_ELEMENT = "doorstep-panel"
PANEL_ICON = "mdi:doorbell-video"
PANEL_TITLE = "Doorstep"
STATIC_URL = f"/{DOMAIN}_static"
FRONTEND_DIR = Path(__file__).parent / "frontend"
PANEL_MODULE = FRONTEND_DIR / "doorstep-panel.js"
#: Set once the static path is served (for the life of the HA process).
STATIC_SERVED: HassKey[bool] = HassKey(f"{DOMAIN}_static_served")


async def async_register_panel(hass: HomeAssistant) -> None:
    """Show the panel in the sidebar (again); nothing when it is there already."""
    if not hass.data.get(STATIC_SERVED):
        await hass.http.async_register_static_paths(
            [StaticPathConfig(STATIC_URL, str(FRONTEND_DIR), cache_headers=False)]
        )
        hass.data[STATIC_SERVED] = True
    if PANEL_URL_PATH in hass.data.get(frontend.DATA_PANELS, {}):
        return
    # The file's time busts the browsers' cache after an update of the integration.
    modified = (await hass.async_add_executor_job(PANEL_MODULE.stat)).st_mtime_ns
    await panel_custom.async_register_panel(
        hass,
        frontend_url_path=PANEL_URL_PATH,
        webcomponent_name=PANEL_ELEMENT,
        sidebar_title=PANEL_TITLE,
        sidebar_icon=PANEL_ICON,
        module_url=f"{STATIC_URL}/{PANEL_MODULE.name}?v={modified}",
        require_admin=False,
    )


def async_remove_panel(hass: HomeAssistant) -> None:
    """Take the panel out of the sidebar."""
    frontend.async_remove_panel(hass, PANEL_URL_PATH, warn_if_unknown=False)
