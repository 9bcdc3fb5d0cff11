"""The ring-notification blueprint: valid, picture through HA, opens the live view, one per camera."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components.blueprint import models, schemas
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

BLUEPRINT = Path(__file__).resolve().parents[3] / "blueprints/automation/doorstep/ring_notify.yaml"


def _load() -> dict[str, Any]:
    return load_yaml_dict(str(BLUEPRINT))


def test_blueprint_is_valid() -> None:
    blueprint = models.Blueprint(
        _load(), expected_domain="automation", schema=schemas.BLUEPRINT_SCHEMA
    )
    assert set(blueprint.inputs) == {
        "doorbell",
        "camera",
        "phone",
        "title",
        "message",
        "person",
        "person_message",
    }
    assert blueprint.inputs["person"]["default"] == []  # off unless chosen


def test_the_notification_points_at_home_assistant_never_carries_footage() -> None:
    data = _load()
    assert data["conditions"][0]["value_template"].count("'ring'") == 1
    person = data["triggers"][1]
    assert (person["from"], person["to"], person["id"]) == ("off", "on", "person")
    (notify,) = data["actions"]
    assert (notify["domain"], notify["type"]) == ("mobile_app", "notify")
    push = notify["data"]
    assert push["image"] == "/api/camera_proxy/{{ camera }}"  # a path: the app logs in
    # The second ring replaces the first; a person has a tag of its own per camera.
    assert push["tag"] == "doorstep-{{ trigger.id }}-{{ camera }}"
    assert push["clickAction"] == push["url"] == "entityId:{{ camera }}"  # the live view
    assert push["actions"][0]["uri"] == "entityId:{{ camera }}"


# The blueprint run by Home Assistant: an automation made from it, a phone whose notify
# service is mocked, and the states the Doorstep entities would take.

PHONE_SERVICE = "mobile_app_my_phone"
CAMERA = "camera.front_door"
DOORBELL = "event.front_door_doorbell"
PERSON = "binary_sensor.front_door_person"


@pytest.fixture
def phone(hass: HomeAssistant) -> Iterator[str]:
    """A companion-app phone's device, its notify service resolved as mobile_app would."""
    entry = MockConfigEntry(domain="mobile_app", data={})
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("mobile_app", "my-phone")}
    )
    actions = "homeassistant.components.mobile_app.device_action"
    with (
        patch(f"{actions}.webhook_id_from_device_id", return_value="webhook-of-my-phone"),
        patch(f"{actions}.get_notify_service", return_value=PHONE_SERVICE),
    ):
        yield device.id


async def _automation(hass: HomeAssistant, phone: str, **inputs: Any) -> list[ServiceCall]:
    """Set up an automation from the blueprint; the phone's notify calls it makes."""
    calls = async_mock_service(hass, "notify", PHONE_SERVICE)
    blueprint = models.Blueprint(
        _load(), expected_domain="automation", schema=schemas.BLUEPRINT_SCHEMA
    )
    with patch(
        "homeassistant.components.blueprint.models.DomainBlueprints._load_blueprint",
        return_value=blueprint,
    ):
        assert await async_setup_component(
            hass,
            "automation",
            {
                "automation": {
                    "use_blueprint": {
                        "path": "doorstep/ring_notify.yaml",
                        "input": {"doorbell": DOORBELL, "camera": CAMERA, "phone": phone, **inputs},
                    }
                }
            },
        )
        await hass.async_block_till_done()
    assert hass.states.get("automation.automation_0") is not None
    return calls


async def _ring(
    hass: HomeAssistant, when: str, event_type: str = "ring", pressed: str | None = None
) -> None:
    attributes = {"event_type": event_type}
    if pressed is not None:
        attributes["time"] = pressed
    hass.states.async_set(DOORBELL, when, attributes)
    await hass.async_block_till_done()


async def _person(hass: HomeAssistant, state: str) -> None:
    hass.states.async_set(PERSON, state)
    await hass.async_block_till_done()


def _push(call: ServiceCall, tag: str, message: str) -> None:
    assert call.data["target"] == "webhook-of-my-phone"
    assert call.data["title"] == "Doorbell"
    assert call.data["message"] == message
    push = call.data["data"]
    assert push["image"] == f"/api/camera_proxy/{CAMERA}"  # a path: no footage in the push
    assert push["tag"] == tag
    assert push["clickAction"] == push["url"] == f"entityId:{CAMERA}"
    assert push["entity_id"] == CAMERA
    assert push["actions"] == [{"action": "URI", "title": "Live view", "uri": f"entityId:{CAMERA}"}]
    # Nothing but text and Home Assistant paths: no bytes of a picture.
    assert all(isinstance(value, str) for key, value in push.items() if key != "actions")


async def test_a_ring_notifies_the_phone(hass: HomeAssistant, phone: str) -> None:
    calls = await _automation(hass, phone)
    await _ring(hass, "2026-12-03T10:00:00.000+00:00")
    await _ring(hass, "2026-12-03T10:00:05.000+00:00", event_type="something_else")
    (call,) = calls
    _push(call, "doorstep-ring-camera.front_door", "Someone is at the door")


async def test_a_person_notifies_nothing_by_default(hass: HomeAssistant, phone: str) -> None:
    calls = await _automation(hass, phone)
    await _person(hass, "off")
    await _person(hass, "on")
    assert calls == []
    await _ring(hass, "2026-12-03T10:00:00.000+00:00")
    assert len(calls) == 1  # the ring path still works


async def test_a_person_at_the_door_notifies_when_asked(hass: HomeAssistant, phone: str) -> None:
    calls = await _automation(hass, phone, person=PERSON)
    await _person(hass, "unavailable")
    await _person(hass, "on")  # the bridge came back with a person: not a new arrival
    await _person(hass, "off")
    assert calls == []
    await _person(hass, "on")
    (call,) = calls
    _push(call, "doorstep-person-camera.front_door", "A person is at the door")
    await _person(hass, "off")
    assert len(calls) == 1  # leaving says nothing
    await _ring(hass, "2026-12-03T10:00:00.000+00:00")
    assert len(calls) == 2
    _push(calls[1], "doorstep-ring-camera.front_door", "Someone is at the door")


async def test_the_person_message_is_its_own(hass: HomeAssistant, phone: str) -> None:
    calls = await _automation(hass, phone, person=PERSON, person_message="Visitor", message="Ding")
    await _person(hass, "off")
    await _person(hass, "on")
    await _ring(hass, "2026-12-03T10:00:00.000+00:00")
    assert [call.data["message"] for call in calls] == ["Visitor", "Ding"]


async def test_the_doorbell_coming_back_is_no_ring(hass: HomeAssistant, phone: str) -> None:
    """A reload of the integration (it reloads itself when the bridge's cameras change) or
    a restart takes the doorbell entity away and brings back its last ring: no one rang."""
    calls = await _automation(hass, phone)
    await _ring(hass, "2026-12-03T10:00:00.000+00:00")
    assert len(calls) == 1
    hass.states.async_set(DOORBELL, "unavailable", {"restored": True})
    await hass.async_block_till_done()
    await _ring(hass, "2026-12-03T10:00:00.000+00:00")  # the same ring, restored
    assert len(calls) == 1
    await _ring(hass, "2026-12-03T10:05:00.000+00:00")  # the next press still notifies
    assert len(calls) == 2


async def test_a_press_rung_late_says_when_it_was_made(hass: HomeAssistant, phone: str) -> None:
    """A press made while Home Assistant restarted rings once it is back, minutes late: the
    notification says when (in Home Assistant's time zone); a press rung at once does not."""
    await hass.config.async_set_time_zone("Europe/Paris")
    calls = await _automation(hass, phone)
    now = dt_util.utcnow()
    await _ring(hass, now.isoformat(), pressed=(now - timedelta(seconds=2)).isoformat())
    late = datetime(2026, 12, 3, 9, 58, 30, tzinfo=UTC)
    await _ring(hass, (now + timedelta(seconds=1)).isoformat(), pressed=late.isoformat())
    assert [call.data["message"] for call in calls] == [
        "Someone is at the door",
        "Someone is at the door (10:58)",
    ]
