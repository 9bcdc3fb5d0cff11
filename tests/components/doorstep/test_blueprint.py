"""The ask-on-phone blueprint is valid and only acts on its approver's tap."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components.blueprint import models, schemas
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

BLUEPRINT = (
    Path(__file__).resolve().parents[3]
    / "blueprints"
    / "automation"
    / "doorstep"
    / "ask_on_phone.yaml"
)


def _load() -> dict[str, Any]:
    return load_yaml_dict(str(BLUEPRINT))


def test_blueprint_is_valid() -> None:
    blueprint = models.Blueprint(
        _load(), expected_domain="automation", schema=schemas.BLUEPRINT_SCHEMA
    )
    assert set(blueprint.inputs) == {"approver", "phone", "include_requester", "redact", "timeout"}
    assert blueprint.domain == "automation"


def test_blueprint_decides_only_on_the_approvers_fresh_tap() -> None:
    data = _load()
    assert data["triggers"][0]["event_type"] == "doorstep_share_requested"
    variables = data["variables"]
    # Per-run action ids, never the integration's DOORSTEP_ prefix.
    assert "trigger.event.context.id" in variables["approve_action"]
    assert "trigger.event.context.id" in variables["deny_action"]
    assert not variables["approve_action"].startswith("DOORSTEP_")
    wait, condition, decision = data["actions"][1:]
    assert wait["continue_on_timeout"] is False
    assert "wait.trigger.event.context.user_id == approver_user" in condition["value_template"]
    assert decision["then"][0]["action"] == "doorstep.approve_share"
    assert decision["else"][0]["action"] == "doorstep.deny_share"
    # Nothing but text goes to the phone.
    notify = data["actions"][0]
    assert set(notify["data"]) == {"tag", "actions"}


# The blueprint run by Home Assistant: an automation made from it, a phone whose notify
# service is mocked, and the integration's approve and deny actions mocked.

PHONE_SERVICE = "mobile_app_alice_phone"
APPROVER = "alice-user-id"


@pytest.fixture
def phone(hass: HomeAssistant) -> Iterator[str]:
    """A phone registered by the companion app; its device id."""
    entry = MockConfigEntry(domain="mobile_app", data={})
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("mobile_app", "alice-phone")}
    )
    actions = "homeassistant.components.mobile_app.device_action"
    with (
        patch(f"{actions}.webhook_id_from_device_id", return_value="webhook-of-alice"),
        patch(f"{actions}.get_notify_service", return_value=PHONE_SERVICE),
    ):
        yield device.id


async def _settle() -> None:
    # Not hass.async_block_till_done(): the run waits for a tap, which it would wait for.
    for _ in range(50):
        await asyncio.sleep(0.01)


async def _automation(
    hass: HomeAssistant, phone: str, approver: str | None = APPROVER, **inputs: Any
) -> None:
    hass.states.async_set("person.alice", "home", {"user_id": approver} if approver else {})
    blueprint = models.Blueprint(
        _load(), expected_domain="automation", schema=schemas.BLUEPRINT_SCHEMA
    )
    with patch(
        "homeassistant.components.blueprint.models.DomainBlueprints._load_blueprint",
        return_value=blueprint,
    ):
        config = {
            "path": "doorstep/ask_on_phone.yaml",
            "input": {"approver": "person.alice", "phone": phone, **inputs},
        }
        assert await async_setup_component(
            hass, "automation", {"automation": {"use_blueprint": config}}
        )
        await hass.async_block_till_done()


def _request(hass: HomeAssistant, share_id: str, deadline: datetime | None = None) -> None:
    data = {"bridge_id": "3f9c2a7be1d04c55", "share_id": share_id, "requester": "Bob",
            "cameras": ["front_door"], "reason": "parcel", "state": "pending",
            "deadline": deadline.isoformat() if deadline else None}  # fmt: skip
    hass.bus.async_fire("doorstep_share_requested", data)


def _tap(hass: HomeAssistant, action: str, user_id: str | None) -> None:
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": action}, context=Context(user_id=user_id)
    )


async def test_the_approver_s_tap_approves_the_request_it_was_asked_about(
    hass: HomeAssistant, phone: str
) -> None:
    notify = async_mock_service(hass, "notify", PHONE_SERVICE)
    approve = async_mock_service(hass, "doorstep", "approve_share")
    deny = async_mock_service(hass, "doorstep", "deny_share")
    await _automation(hass, phone)
    _request(hass, "s_first")
    _request(hass, "s_second")
    await _settle()
    assert [call.data["data"]["tag"] for call in notify] == [
        "doorstep_bp_s_first",
        "doorstep_bp_s_second",
    ]
    first, second = ([a["action"] for a in call.data["data"]["actions"]] for call in notify)
    assert len({*first, *second}) == 4  # each request its own actions
    assert all(action.startswith("DSBP_") for action in (*first, *second))
    _tap(hass, second[0], "someone-else")  # not the approver: nothing is decided
    await _settle()
    assert approve == []
    _tap(hass, first[0], APPROVER)
    await _settle()
    assert [call.data for call in approve] == [{"share_id": "s_first", "redact": True}]
    _request(hass, "s_third")
    await _settle()
    third = [a["action"] for a in notify[2].data["data"]["actions"]]
    _tap(hass, first[1], APPROVER)  # an answered notification's other button: too late
    _tap(hass, third[1], APPROVER)
    await _settle()
    assert [call.data for call in deny] == [{"share_id": "s_third"}]
    assert len(approve) == 1


async def test_a_stranger_s_tap_leaves_the_approver_able_to_answer(
    hass: HomeAssistant, phone: str
) -> None:
    """Another user's phone shows the notification too: their tap is ignored, not final."""
    notify = async_mock_service(hass, "notify", PHONE_SERVICE)
    approve = async_mock_service(hass, "doorstep", "approve_share")
    deny = async_mock_service(hass, "doorstep", "deny_share")
    await _automation(hass, phone)
    _request(hass, "s_1", dt_util.utcnow() + timedelta(minutes=60))
    await _settle()
    approve_action, deny_action = (a["action"] for a in notify[0].data["data"]["actions"])
    _tap(hass, deny_action, "someone-else")
    await _settle()
    assert deny == []
    _tap(hass, approve_action, APPROVER)
    await _settle()
    assert [call.data for call in approve] == [{"share_id": "s_1", "redact": True}]
    assert deny == []


# The duration selector's mapping (the default), or a time typed in YAML.
@pytest.mark.parametrize("answer_within", [None, "00:30:00"])
async def test_the_wait_ends_at_the_request_s_deadline(
    hass: HomeAssistant, phone: str, answer_within: str | None
) -> None:
    """Past the deadline the bridge has expired the request: a tap then decides nothing."""
    notify = async_mock_service(hass, "notify", PHONE_SERVICE)
    approve = async_mock_service(hass, "doorstep", "approve_share")
    inputs = {"timeout": answer_within} if answer_within else {}
    await _automation(hass, phone, **inputs)  # answer within 30 minutes
    _request(hass, "s_soon", dt_util.utcnow() + timedelta(minutes=5))
    _request(hass, "s_later", dt_util.utcnow() + timedelta(minutes=60))
    await _settle()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await _settle()
    for call in notify:
        _tap(hass, call.data["data"]["actions"][0]["action"], APPROVER)
    await _settle()
    assert [call.data["share_id"] for call in approve] == ["s_later"]


async def test_a_person_without_a_user_cannot_be_impersonated(
    hass: HomeAssistant, phone: str
) -> None:
    """No user to match: an action event that names no user (an automation) decides nothing."""
    notify = async_mock_service(hass, "notify", PHONE_SERVICE)
    approve = async_mock_service(hass, "doorstep", "approve_share")
    await _automation(hass, phone, approver=None)
    _request(hass, "s_1")
    await _settle()
    _tap(hass, notify[0].data["data"]["actions"][0]["action"], None)
    await _settle()
    assert approve == []
