"""Two bridges on one broker and one Home Assistant, each with its own base topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path
from unittest.mock import MagicMock

from homeassistant.components import media_source
from homeassistant.const import CONF_API_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)

from custom_components.doorstep.const import CONF_BASE_TOPIC, DOMAIN
from custom_components.doorstep.protocol import Topics

from .conftest import TOKEN, FakeBridge, children, get_state, publish_retained, ring, share_state

OTHER_ID = "0a1b2c3d4e5f6a7b"


@pytest.fixture
async def second(socket_enabled: None, video_file: Path) -> AsyncIterator[FakeBridge]:
    """A second bridge: base topic ``garden``, one camera ``back_yard``."""
    fake = FakeBridge(
        video=video_file, bridge_id=OTHER_ID, base_topic="garden",
        cameras={"back_yard": {"name": "Back yard"}},
    )  # fmt: skip
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def both(
    hass: HomeAssistant, setup_entry: MockConfigEntry, second: FakeBridge, mqtt: MagicMock
) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=OTHER_ID, title="Garden",
        data={CONF_BASE_TOPIC: "garden", CONF_URL: second.url, CONF_API_TOKEN: TOKEN},
    )  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    topics = Topics("garden")
    async_fire_mqtt_message(hass, topics.available, "online", retain=True)
    async_fire_mqtt_message(hass, topics.bridge_info, json.dumps(second.info()), retain=True)
    await hass.async_block_till_done()
    return entry


@pytest.mark.usefixtures("both")
async def test_each_bridge_has_its_cameras(hass: HomeAssistant, bridge: FakeBridge) -> None:
    publish_retained(hass, bridge)
    ring(hass, "front_door")
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").attributes["event_type"] == "ring"
    assert get_state(hass, "event.back_yard_doorbell").state == "unknown"
    async_fire_mqtt_message(hass, Topics("garden").motion("back_yard"), "ON")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.back_yard_motion").state == "on"
    assert get_state(hass, "binary_sensor.front_door_motion").state == "off"


@pytest.mark.usefixtures("both")
async def test_media_root_lists_bridges(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    root = await media_source.async_browse_media(hass, "media-source://doorstep")
    assert sorted(c.title for c in children(root)) == ["Doorstep", "Garden"]


@pytest.mark.usefixtures("both")
async def test_one_request_one_bridge(hass: HomeAssistant) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "request_share",
            {"entity_id": ["event.front_door_doorbell", "event.back_yard_doorbell"],
             "last_minutes": 5, "reason": "r"},
            blocking=True,
        )  # fmt: skip
    assert err.value.translation_key == "several_bridges"


@pytest.mark.usefixtures("both")
async def test_decisions_go_to_the_bridge_that_has_the_share(
    hass: HomeAssistant, bridge: FakeBridge, second: FakeBridge
) -> None:
    second.shares["s_9"] = share_state("s_9", cameras=["back_yard"])
    async_fire_mqtt_message(hass, "garden/share/s_9", json.dumps(second.shares["s_9"]))
    await hass.async_block_till_done()
    await hass.services.async_call(DOMAIN, "deny_share", {"share_id": "s_9"}, blocking=True)
    assert second.shares["s_9"]["state"] == "denied"
    assert bridge.bodies == []
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "deny_share", {"share_id": "s_1"}, blocking=True)
    assert err.value.translation_key == "unknown_share"
