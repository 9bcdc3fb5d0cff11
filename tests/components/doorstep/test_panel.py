"""The Doorstep panel: in the sidebar once per HA, served behind the login, gone with the last bridge."""

from __future__ import annotations

from homeassistant.components import frontend
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.panel import PANEL_MODULE, PANEL_URL_PATH

from . import test_multi_bridge

# Two bridges, as the multi-bridge tests set them up.
second = test_multi_bridge.second
both = test_multi_bridge.both


def _panel(hass: HomeAssistant) -> frontend.Panel | None:
    return hass.data.get(frontend.DATA_PANELS, {}).get(PANEL_URL_PATH)


async def test_panel_registered_and_served(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    panel = _panel(hass)
    assert panel is not None
    assert panel.sidebar_title == "Doorstep"
    assert panel.sidebar_icon == "mdi:doorbell-video"
    assert panel.require_admin is False  # decisions are checked per command
    custom = (panel.config or {})["_panel_custom"]
    assert custom["name"] == "doorstep-panel"
    module_url: str = custom["module_url"]
    assert module_url.startswith("/doorstep_static/doorstep-panel.js?v=")

    client = await hass_client()
    response = await client.get(module_url)
    assert response.status == 200
    assert await response.text() == PANEL_MODULE.read_text()
    # The panel's code holds no address outside the home.
    assert "http://" not in PANEL_MODULE.read_text()
    assert "https://" not in PANEL_MODULE.read_text()

    # Reloading the entry takes the panel away and brings it back.
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert _panel(hass) is not None
    anonymous = await hass_client_no_auth()
    # The module is code, not data: HA serves static files as it serves its own frontend.
    assert (await anonymous.get(module_url)).status == 200


async def test_panel_removed_with_the_last_bridge(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    assert _panel(hass) is None
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert _panel(hass) is not None


@pytest.mark.usefixtures("both")
async def test_one_panel_for_several_bridges(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    (garden,) = [e for e in hass.config_entries.async_entries(DOMAIN) if e is not setup_entry]
    assert _panel(hass) is not None
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert _panel(hass) is not None  # the garden bridge is still there
    assert await hass.config_entries.async_unload(garden.entry_id)
    await hass.async_block_till_done()
    assert _panel(hass) is None
