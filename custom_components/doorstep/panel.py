"""The Doorstep panel in HA's sidebar, and the doorbell card for dashboards.

Each is one plain JavaScript module served from ``frontend/`` (no build step,
nothing fetched from outside the home). The panel is registered with the first
bridge (as its setup starts, reached or not) and removed with the last one; the
card's module is loaded on every page (an extra module of HA's frontend) while a
bridge is set up, so the card is in the dashboard's "Add card" list with no
resource to add. HA cannot unregister a static path, so that is kept.
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
CARD_MODULE = FRONTEND_DIR / "doorstep-doorbell-card.js"
#: Set once the static path is served (for the life of the HA process).
STATIC_SERVED: HassKey[bool] = HassKey(f"{DOMAIN}_static_served")
#: The card module's URL while it is loaded on every page.
CARD_URL: HassKey[str] = HassKey(f"{DOMAIN}_card_url")


async def _module_url(hass: HomeAssistant, module: Path) -> str:
    # The file's time busts the browsers' cache after an update of the integration.
    modified = (await hass.async_add_executor_job(module.stat)).st_mtime_ns
    return f"{STATIC_URL}/{module.name}?v={modified}"


async def async_register_panel(hass: HomeAssistant) -> None:
    """Show the panel in the sidebar (again); nothing when it is there already."""
    if not hass.data.get(STATIC_SERVED):
        await hass.http.async_register_static_paths(
            [StaticPathConfig(STATIC_URL, str(FRONTEND_DIR), cache_headers=False)]
        )
        hass.data[STATIC_SERVED] = True
    # Without HA's frontend (a headless HA) there are no pages to load the card on.
    if CARD_URL not in hass.data and frontend.DATA_EXTRA_MODULE_URL in hass.data:
        hass.data[CARD_URL] = await _module_url(hass, CARD_MODULE)
        frontend.add_extra_js_url(hass, hass.data[CARD_URL])
    if PANEL_URL_PATH in hass.data.get(frontend.DATA_PANELS, {}):
        return
    await panel_custom.async_register_panel(
        hass,
        frontend_url_path=PANEL_URL_PATH,
        webcomponent_name=PANEL_ELEMENT,
        sidebar_title=PANEL_TITLE,
        sidebar_icon=PANEL_ICON,
        module_url=await _module_url(hass, PANEL_MODULE),
        require_admin=False,
    )


def async_remove_panel(hass: HomeAssistant) -> None:
    """Take the panel out of the sidebar and the card off the pages."""
    frontend.async_remove_panel(hass, PANEL_URL_PATH, warn_if_unknown=False)
    if (card_url := hass.data.pop(CARD_URL, None)) is not None:
        frontend.remove_extra_js_url(hass, card_url)
