"""The Doorstep panel: in the sidebar once per HA, served behind the login, gone with the last bridge.

The doorbell card: its module loaded on every page of HA's frontend while a bridge is set up.
"""

from __future__ import annotations

from unittest.mock import MagicMock, patch

from homeassistant.components import frontend
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.panel import CARD_MODULE, CARD_URL, PANEL_MODULE, PANEL_URL_PATH

from . import test_multi_bridge
from .conftest import FakeBridge

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


async def test_card_loaded_on_every_page(
    hass: HomeAssistant, setup_entry: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    # Set up without HA's frontend: there is no page to load the card on.
    assert CARD_URL not in hass.data
    assert await async_setup_component(hass, "frontend", {})
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    card_url = hass.data[CARD_URL]
    assert card_url.startswith("/doorstep_static/doorstep-doorbell-card.js?v=")
    assert card_url in hass.data[frontend.DATA_EXTRA_MODULE_URL].urls

    client = await hass_client()
    with patch("homeassistant.components.onboarding.async_is_onboarded", return_value=True):
        page = await client.get("/", allow_redirects=False)
    assert page.status == 200
    # Every page of the frontend imports it: no dashboard resource to add by hand.
    assert card_url in await page.text()
    response = await client.get(card_url)
    assert response.status == 200
    code = await response.text()
    assert code == CARD_MODULE.read_text()
    # In the "Add card" list, ready to use with the first Doorstep camera.
    assert "customElements.define(CARD_TYPE, DoorstepDoorbellCard)" in code
    assert "window.customCards.push" in code
    assert "static getStubConfig(hass)" in code
    assert "http://" not in code
    assert "https://" not in code

    # Gone with the last bridge, back with it.
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert CARD_URL not in hass.data
    assert card_url not in hass.data[frontend.DATA_EXTRA_MODULE_URL].urls
    assert await hass.config_entries.async_setup(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.data[CARD_URL] in hass.data[frontend.DATA_EXTRA_MODULE_URL].urls


async def test_panel_and_card_while_the_bridge_cannot_be_reached_at_start(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge,
    hass_ws_client: WebSocketGenerator,
) -> None:  # fmt: skip
    """Home Assistant up before its bridge (a power cut): the panel and the card are there."""
    assert await async_setup_component(hass, "frontend", {})
    bridge.broken = True
    config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert _panel(hass) is not None
    assert hass.data[CARD_URL] in hass.data[frontend.DATA_EXTRA_MODULE_URL].urls
    # The panel says which bridge is not connected.
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "doorstep/shares"})
    answer = await client.receive_json()
    assert answer["result"] == {"bridges": [], "shares": [], "not_connected": ["Doorstep"]}

    # Removed before it ever connected: nothing is left behind.
    await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert _panel(hass) is None
    assert hass.data.get(CARD_URL) not in hass.data[frontend.DATA_EXTRA_MODULE_URL].urls
