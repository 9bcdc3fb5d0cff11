"""image.<cam>_snapshot: the bridge's retained picture, the placeholder once it is cleared."""

from __future__ import annotations

from http import HTTPStatus

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.image import PLACEHOLDER

from .conftest import TOPICS, get_state

pytestmark = pytest.mark.usefixtures("setup_entry")

ENTITY = "image.front_door_snapshot"
VISIT = b"\xff\xd8\xff\xe0the-visit\xff\xd9"
EARLIER = b"\xff\xd8\xff\xe0an-earlier-visit\xff\xd9"
LATER = b"\xff\xd8\xff\xe0a-later-visit\xff\xd9"


async def _picture(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> bytes:
    client = await hass_client()
    response = await client.get(f"/api/image_proxy/{ENTITY}")
    assert response.status == HTTPStatus.OK
    return await response.read()


async def _send(hass: HomeAssistant, freezer: FrozenDateTimeFactory, payload: bytes) -> str:
    """A message on the camera's snapshot topic, live; the entity's new state.

    The bridge retains it, but the broker forwards a live message with the retain flag
    off (it is set only on what a new subscription receives).
    """
    freezer.tick(1)  # each picture arrives at its own time
    async_fire_mqtt_message(hass, TOPICS.snapshot("front_door"), payload)
    await hass.async_block_till_done()
    return get_state(hass, ENTITY).state


async def test_a_cleared_snapshot_shows_the_placeholder_until_a_new_picture(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, freezer: FrozenDateTimeFactory
) -> None:
    placeholder = PLACEHOLDER.read_bytes()
    shown = await _send(hass, freezer, VISIT)
    assert await _picture(hass, hass_client) == VISIT

    # The visit was forgotten and an earlier clip's picture takes its place.
    replaced = await _send(hass, freezer, EARLIER)
    assert replaced != shown
    assert await _picture(hass, hass_client) == EARLIER

    # Its clip forgotten too, none left: the bridge clears the topic.
    cleared = await _send(hass, freezer, b"")
    assert cleared != replaced  # the frontend fetches the picture again
    assert await _picture(hass, hass_client) == placeholder
    # A clear delivered again changes nothing.
    assert await _send(hass, freezer, b"") == cleared
    assert await _picture(hass, hass_client) == placeholder

    # The next visit's picture is shown again.
    assert await _send(hass, freezer, LATER) != cleared
    assert await _picture(hass, hass_client) == LATER


async def test_a_clear_before_any_picture_changes_nothing(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, freezer: FrozenDateTimeFactory
) -> None:
    assert await _send(hass, freezer, b"") == STATE_UNKNOWN
    assert await _picture(hass, hass_client) == PLACEHOLDER.read_bytes()


async def test_the_same_picture_again_is_not_a_new_picture(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, freezer: FrozenDateTimeFactory
) -> None:
    # The broker hands the retained picture over again at each resubscription (Home
    # Assistant or the broker restarted): automations on the image must not fire for it.
    shown = await _send(hass, freezer, VISIT)
    freezer.tick(1)
    async_fire_mqtt_message(hass, TOPICS.snapshot("front_door"), VISIT, retain=True)
    await hass.async_block_till_done()
    assert get_state(hass, ENTITY).state == shown
    assert await _picture(hass, hass_client) == VISIT
    assert await _send(hass, freezer, LATER) != shown
