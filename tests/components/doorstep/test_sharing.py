"""Share services, phone approvals with one-time nonces, bus events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import floor_registry as fr
from homeassistant.helpers import label_registry as lr
from homeassistant.helpers.selector import TargetSelector
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_capture_events,
    async_fire_mqtt_message,
    async_mock_service,
)

from custom_components.doorstep.const import (
    CONF_APPROVERS,
    CONF_LINK_TTL_HOURS,
    CONF_NOTIFICATION_DETAIL,
    CONF_NOTIFICATION_TITLE,
    CONF_NOTIFY_SERVICES,
    CONF_OFFER_UNREDACTED,
    DOMAIN,
)

from ..conftest import LogRecords
from .conftest import BRIDGE_ID, TOPICS, FakeBridge, get_device, share_state

ACTION_EVENT = "mobile_app_notification_action"
SERVICES_YAML = Path(__file__).parents[3] / "custom_components" / "doorstep" / "services.yaml"


@pytest.fixture
def phone(hass: HomeAssistant) -> list[ServiceCall]:
    """The approver's companion-app notify service."""
    calls: list[ServiceCall] = async_mock_service(hass, "notify", "mobile_app_alice_phone")
    return calls


@pytest.fixture
async def approvers(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    hass_admin_user: MockUser,
    phone: list[ServiceCall],
) -> MockConfigEntry:
    """The admin approves, on one phone."""
    hass.config_entries.async_update_entry(
        setup_entry,
        options={
            CONF_APPROVERS: [hass_admin_user.id],
            CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone"],
            CONF_NOTIFICATION_DETAIL: "minimal",
            CONF_OFFER_UNREDACTED: False,
            CONF_LINK_TTL_HOURS: 12,
        },
    )
    await hass.async_block_till_done()
    return setup_entry


def publish_share(hass: HomeAssistant, bridge: FakeBridge, share: dict[str, Any]) -> None:
    bridge.shares[share["id"]] = share
    async_fire_mqtt_message(hass, TOPICS.share(share["id"]), json.dumps(share), qos=1)


def tap(hass: HomeAssistant, action: str, user: MockUser | None) -> None:
    hass.bus.async_fire(
        ACTION_EVENT,
        {"action": action, "tag": "whatever"},
        context=Context(user_id=user.id if user else None),
    )


def action_of(call: ServiceCall, verb: str) -> str:
    return next(  # type: ignore[no-any-return]
        a["action"] for a in call.data["data"]["actions"] if a["action"].split("_")[1] == verb
    )


async def _add_bob_phone(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    push: Callable[[ServiceCall], Awaitable[None]],
    *,
    first: bool = False,
) -> None:
    """Bob's phone beside Alice's (after it, or before it with `first`), its push by `push`."""
    hass.services.async_register("notify", "mobile_app_bob_phone", push)
    phones = ["notify.mobile_app_alice_phone", "notify.mobile_app_bob_phone"]
    hass.config_entries.async_update_entry(
        entry,
        options={**entry.options, CONF_NOTIFY_SERVICES: phones[::-1] if first else phones},
    )
    await hass.async_block_till_done()


async def _add_bob_as_approver(
    hass: HomeAssistant, entry: MockConfigEntry, alice: MockUser, bob: MockUser
) -> list[ServiceCall]:
    """Bob approves too, on a phone of his own beside Alice's; what his phone gets."""
    calls = async_mock_service(hass, "notify", "mobile_app_bob_phone")
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_APPROVERS: [alice.id, bob.id],
            CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone", "notify.mobile_app_bob_phone"],
        },
    )
    await hass.async_block_till_done()
    return calls


# request_share -------------------------------------------------------------------


@pytest.mark.usefixtures("setup_entry")
async def test_request_share_last_minutes(
    hass: HomeAssistant, bridge: FakeBridge, hass_admin_user: MockUser
) -> None:
    requested = async_capture_events(hass, "doorstep_share_requested")
    result = await hass.services.async_call(
        DOMAIN, "request_share",
        {"entity_id": "event.front_door_doorbell", "last_minutes": 30, "reason": "Parcel"},
        blocking=True, return_response=True, context=Context(user_id=hass_admin_user.id),
    )  # fmt: skip
    assert result == {"share_id": "s_00000001", "state": "pending"}
    body = bridge.bodies[-1]
    assert body["cameras"] == ["front_door"]
    assert body["requester"] == hass_admin_user.name
    assert body["reason"] == "Parcel"
    assert body["start"] < body["end"]
    await hass.async_block_till_done()
    assert len(requested) == 1
    assert requested[0].data["share_id"] == "s_00000001"
    assert requested[0].data["bridge_id"] == BRIDGE_ID
    # Requests made in HA name the HA user (an MQTT request could claim any name).
    assert requested[0].data["user_id"] == hass_admin_user.id
    assert requested[0].context.user_id == hass_admin_user.id


@pytest.mark.usefixtures("setup_entry")
async def test_request_share_by_device_and_window(hass: HomeAssistant, bridge: FakeBridge) -> None:
    device = get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door"))
    result = await hass.services.async_call(
        DOMAIN, "request_share",
        {"device_id": device.id, "start": "2026-11-23 09:00:00", "end": "2026-11-23 09:30:00",
         "requester": "Neighbour Alice", "reason": "Parcel"},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert result is not None
    assert result["state"] == "pending"
    body = bridge.bodies[-1]
    assert body["requester"] == "Neighbour Alice"
    assert body["start"] == "2026-11-23T09:00:00.000-08:00"  # HA's zone (US/Pacific in tests)


@pytest.mark.usefixtures("setup_entry")
async def test_request_share_by_area(
    hass: HomeAssistant, bridge: FakeBridge, device_registry: dr.DeviceRegistry
) -> None:
    from homeassistant.helpers import area_registry as ar

    porch = ar.async_get(hass).async_create("Porch")
    device = get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door"))
    device_registry.async_update_device(device.id, area_id=porch.id)
    result = await hass.services.async_call(
        DOMAIN, "request_share", {"area_id": porch.id, "last_minutes": 5, "reason": "r"},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert result is not None
    assert result["state"] == "pending"
    assert bridge.bodies[-1]["cameras"] == ["front_door"]


@pytest.mark.usefixtures("setup_entry")
@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"last_minutes": 5, "reason": "r"}, "no_camera"),
        ({"entity_id": "sun.sun", "last_minutes": 5, "reason": "r"}, "not_a_camera"),
        ({"device_id": "nope", "last_minutes": 5, "reason": "r"}, "not_a_camera"),
        ({"area_id": "garage", "last_minutes": 5, "reason": "r"}, "not_a_camera"),
        ({"label_id": "x", "last_minutes": 5, "reason": "r"}, "not_a_camera"),
        ({"entity_id": "event.front_door_doorbell", "reason": "r"}, "window_missing"),
        ({"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": "r",
          "start": "2026-11-23 09:00:00"}, "window_ambiguous"),
        ({"entity_id": "event.front_door_doorbell", "start": "2026-11-23 09:30:00",
          "end": "2026-11-23 09:00:00", "reason": "r"}, "window_reversed"),
        ({"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": "reject me"},
         "share_refused"),
    ],
)  # fmt: skip
async def test_request_share_bad_input(hass: HomeAssistant, data: dict[str, Any], key: str) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "request_share", data, blocking=True)
    assert err.value.translation_key == key


@pytest.mark.usefixtures("setup_entry")
async def test_request_share_picker_offers_the_cameras(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    """The action's entity picker lists camera entities only, and each of them works."""
    services = load_yaml_dict(str(SERVICES_YAML))
    target = services["request_share"]["target"]
    TargetSelector(target)  # a filter Home Assistant accepts
    assert target["entity"] == {"integration": DOMAIN, "domain": "camera"}
    # Camera devices only: the bridge's own device is no camera (it was offered, then refused).
    assert target["device"] == {"integration": DOMAIN, "model": "Doorbell camera"}
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    offered_devices = [
        device.name
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if device.model == target["device"]["model"]
    ]
    assert offered_devices == ["Front door"]
    offered = [
        entry.entity_id
        for entry in er.async_entries_for_config_entry(
            er.async_get(hass), hass.config_entries.async_entries(DOMAIN)[0].entry_id
        )
        if entry.domain == "camera"
    ]
    assert offered == ["camera.front_door"]
    result = await hass.services.async_call(
        DOMAIN, "request_share", {"entity_id": offered, "last_minutes": 5, "reason": "r"},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert result is not None
    assert bridge.bodies[-1]["cameras"] == ["front_door"]


@pytest.mark.usefixtures("setup_entry")
@pytest.mark.parametrize(
    ("pick", "named"),
    [
        (lambda hass: {"entity_id": "sensor.doorstep_pending_share_requests"},
         "sensor.doorstep_pending_share_requests"),
        (lambda hass: {"device_id": get_device(hass, (DOMAIN, BRIDGE_ID)).id}, "Doorstep"),
        (lambda hass: {"device_id": _renamed_bridge(hass)}, "Garage shelf"),
        (lambda hass: {"area_id": ar.async_get(hass).async_create("Garage").id}, "Garage"),
        (lambda hass: {"floor_id": fr.async_get(hass).async_create("Ground floor").floor_id},
         "Ground floor"),
        (lambda hass: {"label_id": lr.async_get(hass).async_create("Outside").label_id},
         "Outside"),
    ],
    ids=["bridge entity", "bridge device", "renamed device", "area without camera", "floor",
         "label"],
)  # fmt: skip
async def test_request_share_names_what_was_picked(
    hass: HomeAssistant,
    pick: Callable[[HomeAssistant], dict[str, str]],
    named: str,
) -> None:
    """Not a camera: the error names the entity id or the device, not a registry id."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "request_share", {**pick(hass), "last_minutes": 5, "reason": "r"},
            blocking=True,
        )  # fmt: skip
    assert err.value.translation_key == "not_a_camera"
    assert err.value.translation_placeholders == {"target": named}
    assert str(err.value).startswith(f"{named} is not a Doorstep camera")


def _renamed_bridge(hass: HomeAssistant) -> str:
    """The bridge's device, renamed by its owner; its id."""
    device = get_device(hass, (DOMAIN, BRIDGE_ID))
    dr.async_get(hass).async_update_device(device.id, name_by_user="Garage shelf")
    return device.id


@pytest.mark.usefixtures("setup_entry")
async def test_request_share_bridge_down(hass: HomeAssistant, bridge: FakeBridge) -> None:
    bridge.broken = True
    with pytest.raises(HomeAssistantError) as err:  # 500 with an error body: not the call's
        await hass.services.async_call(
            DOMAIN, "request_share",
            {"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": "r"},
            blocking=True,
        )  # fmt: skip
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "request_failed"
    await bridge.stop()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "request_share",
            {"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": "r"},
            blocking=True,
        )  # fmt: skip
    assert err.value.translation_key == "bridge_error"


async def test_services_without_bridge(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    await hass.config_entries.async_unload(setup_entry.entry_id)
    for service, data in (
        ("request_share", {"last_minutes": 5, "reason": "r"}),
        ("approve_share", {"share_id": "s_1"}),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(DOMAIN, service, data, blocking=True)
        assert err.value.translation_key == "not_loaded"


# Decisions through services ------------------------------------------------------


async def test_automation_approves(
    hass: HomeAssistant, bridge: FakeBridge, setup_entry: MockConfigEntry
) -> None:
    updated = async_capture_events(hass, "doorstep_share_updated")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    result = await hass.services.async_call(
        DOMAIN, "approve_share", {"share_id": "s_1"}, blocking=True, return_response=True
    )
    assert result == {"share_id": "s_1", "state": "approved"}
    assert bridge.bodies[-1] == {
        "decision": "approve", "by": "automation", "via": "automation", "redact": True,
        "link_ttl_hours": 24.0,
    }  # fmt: skip
    await hass.async_block_till_done()
    assert [e.data["state"] for e in updated] == ["approved"]
    assert updated[0].data["decided_via"] == "automation"


async def test_approver_decides_in_ui(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    hass_admin_user: MockUser, hass_read_only_user: MockUser,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "deny_share", {"share_id": "s_1"}, blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )  # fmt: skip
    assert err.value.translation_key == "not_an_approver"
    await hass.services.async_call(
        DOMAIN, "deny_share", {"share_id": "s_1"}, blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )  # fmt: skip
    assert bridge.bodies[-1]["via"] == "ui"
    assert bridge.bodies[-1]["by"] == hass_admin_user.name
    assert bridge.shares["s_1"]["state"] == "denied"


async def test_without_approvers_only_admins_decide(
    hass: HomeAssistant, bridge: FakeBridge, setup_entry: MockConfigEntry,
    hass_read_only_user: MockUser, hass_admin_user: MockUser,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1", "ready", link="/share/tok"))
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "revoke_share", {"share_id": "s_1"}, blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )  # fmt: skip
    await hass.services.async_call(
        DOMAIN, "revoke_share", {"share_id": "s_1"}, blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )  # fmt: skip
    assert bridge.shares["s_1"]["state"] == "revoked"


@pytest.mark.usefixtures("setup_entry")
@pytest.mark.parametrize(
    ("service", "share_id", "key"),
    [
        ("approve_share", "s_missing", "unknown_share"),
        ("approve_share", "../etc", "unknown_share"),
        ("revoke_share", "s_1", "share_refused"),  # pending: nothing to revoke
    ],
)
async def test_decision_errors(
    hass: HomeAssistant, bridge: FakeBridge, service: str, share_id: str, key: str
) -> None:
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, service, {"share_id": share_id}, blocking=True)
    assert err.value.translation_key == key


@pytest.mark.usefixtures("setup_entry")
async def test_a_decision_the_bridge_failed_on_is_not_called_refused(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    # A 503 (the bridge cannot write its audit log) is the bridge's failure: the call was
    # right, and it read "The bridge refused share request s_1" as if it were not.
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    error = '{"error": "the audit log cannot be written"}'
    bridge.canned["/api/shares/s_1/decision"] = (503, error)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "approve_share", {"share_id": "s_1"}, blocking=True)
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "share_failed"
    assert str(err.value).startswith(
        "The Doorstep bridge could not act on share request s_1 (the audit log cannot be"
        " written). Try again once the bridge is back in order"
    )


@pytest.mark.usefixtures("setup_entry")
async def test_decision_bridge_down(hass: HomeAssistant, bridge: FakeBridge) -> None:
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    await bridge.stop()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "approve_share", {"share_id": "s_1"}, blocking=True)
    assert err.value.translation_key == "bridge_error"


@pytest.mark.usefixtures("setup_entry")
@pytest.mark.parametrize(
    ("service", "data"),
    [
        ("request_share",
         {"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": "r"}),
        ("approve_share", {"share_id": "s_1"}),
        ("deny_share", {"share_id": "s_1"}),
    ],
)  # fmt: skip
async def test_rejected_token_is_named(
    hass: HomeAssistant, bridge: FakeBridge, service: str, data: dict[str, Any]
) -> None:
    """A 401 is not "try again later": the user must renew the token."""
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    bridge.token = "rotated"
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, service, data, blocking=True)
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "auth"
    assert "bridge rejected the API token" in str(err.value)


# Phone notifications and taps ----------------------------------------------------


async def test_notification_payload_has_no_footage(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry, phone: list[ServiceCall]
) -> None:
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert len(phone) == 1
    data = phone[0].data
    assert data["message"] == "A request to share doorbell footage is waiting for your decision."
    assert data["data"]["tag"] == "doorstep_s_1"
    actions = [a["action"] for a in data["data"]["actions"]]
    assert [a.split("_")[1] for a in actions] == ["APPROVE", "DENY"]
    nonce = actions[0].split("_", 2)[2]
    assert len(nonce) >= 20
    assert actions[1].endswith(nonce)
    text = json.dumps(data)
    for secret in ("Neighbour Alice", "Parcel", "/share/", "image", "video", "http"):
        assert secret not in text


@pytest.mark.parametrize(
    ("detail", "offer", "message", "verbs"),
    [
        ("cameras", False, "A request to share footage of Front door is waiting for your decision.",
         ["APPROVE", "DENY"]),
        ("full", True, ("Neighbour Alice asks for footage of Front door, 23/11 01:00 to 23/11 "
         "01:30: Parcel went missing"), ["APPROVE", "APPROVEFULL", "DENY"]),
    ],
)  # fmt: skip
async def test_notification_detail_is_the_owners_choice(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], detail: str, offer: bool, message: str, verbs: list[str],
) -> None:  # fmt: skip
    hass.config_entries.async_update_entry(
        approvers,
        options={
            **approvers.options,
            CONF_NOTIFICATION_DETAIL: detail,
            CONF_OFFER_UNREDACTED: offer,
        },
    )
    await hass.async_block_till_done()
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert phone[-1].data["message"] == message
    assert [a["action"].split("_")[1] for a in phone[-1].data["data"]["actions"]] == verbs


async def test_french_notification(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry, phone: list[ServiceCall]
) -> None:
    hass.config.language = "fr"
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert phone[-1].data["title"] == "Demande de partage d'images"
    assert phone[-1].data["data"]["actions"][-1]["title"] == "Refuser"


async def test_approver_taps_approve_once(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    approve = action_of(phone[0], "APPROVE")
    tap(hass, approve, hass_admin_user)
    await hass.async_block_till_done()
    assert bridge.shares["s_1"]["state"] == "approved"
    assert bridge.bodies[-1] == {
        "decision": "approve", "by": hass_admin_user.name, "via": "phone", "redact": True,
        "link_ttl_hours": 12.0, "by_id": hass_admin_user.id,
    }  # fmt: skip
    # The other phones' notifications are cleared.
    assert phone[-1].data == {"message": "clear_notification", "data": {"tag": "doorstep_s_1"}}
    decisions = len(bridge.bodies)
    tap(hass, approve, hass_admin_user)  # replay
    await hass.async_block_till_done()
    assert len(bridge.bodies) == decisions
    assert [e.data["reason"] for e in rejected] == ["already_used"]
    assert rejected[0].data["share_id"] == "s_1"


async def test_deny_from_phone(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    tap(hass, action_of(phone[0], "DENY"), hass_admin_user)
    await hass.async_block_till_done()
    assert bridge.shares["s_1"]["state"] == "denied"


async def test_unredacted_only_when_offered(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    nonce = action_of(phone[0], "APPROVE").split("_", 2)[2]
    tap(hass, f"DOORSTEP_APPROVEFULL_{nonce}", hass_admin_user)  # forged third button
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in rejected] == ["unredacted_not_offered"]
    assert bridge.shares["s_1"]["state"] == "pending"

    hass.config_entries.async_update_entry(
        approvers, options={**approvers.options, CONF_OFFER_UNREDACTED: True}
    )
    await hass.async_block_till_done()
    publish_share(hass, bridge, share_state("s_2"))
    await hass.async_block_till_done()
    tap(hass, action_of(phone[-1], "APPROVEFULL"), hass_admin_user)
    await hass.async_block_till_done()
    assert bridge.shares["s_2"]["state"] == "approved"
    assert bridge.bodies[-1]["redact"] is False


async def test_unredacted_by_action_only_when_offered_to_people(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    hass_admin_user: MockUser,
) -> None:  # fmt: skip
    """The owner did not offer it: an approver gets no unredacted footage through the
    action either (Developer Tools, the REST API); the owner's automations still do."""
    publish_share(hass, bridge, share_state("s_1"))
    publish_share(hass, bridge, share_state("s_2"))
    await hass.async_block_till_done()
    data = {"share_id": "s_1", "redact": False}
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "approve_share", data, blocking=True,
            context=Context(user_id=hass_admin_user.id),
        )  # fmt: skip
    assert err.value.translation_key == "unredacted_not_offered"
    assert bridge.shares["s_1"]["state"] == "pending"
    assert bridge.bodies == []

    await hass.services.async_call(
        DOMAIN, "approve_share", {**data, "share_id": "s_2"}, blocking=True
    )
    assert bridge.bodies[-1]["redact"] is False
    assert bridge.bodies[-1]["via"] == "automation"

    hass.config_entries.async_update_entry(
        approvers, options={**approvers.options, CONF_OFFER_UNREDACTED: True}
    )
    await hass.async_block_till_done()
    await hass.services.async_call(
        DOMAIN, "approve_share", data, blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )  # fmt: skip
    assert (bridge.bodies[-1]["redact"], bridge.bodies[-1]["via"]) == (False, "ui")


async def test_taps_from_others_are_rejected(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, hass_read_only_user: MockUser,
    doorstep_log: LogRecords,
) -> None:  # fmt: skip
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    approve = action_of(phone[0], "APPROVE")
    tap(hass, approve, hass_read_only_user)  # a household member who is no approver
    tap(hass, approve, None)  # an automation firing the event
    tap(hass, "DOORSTEP_APPROVE_guessed-nonce", hass_admin_user)
    tap(hass, "DOORSTEP_EXPLODE_x", hass_admin_user)
    tap(hass, "SOMETHING_ELSE", hass_admin_user)  # not ours: ignored silently
    hass.bus.async_fire(ACTION_EVENT, {"action": 42})
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in rejected] == [
        "not_an_approver", "not_an_approver", "unknown_nonce", "unknown_nonce",
    ]  # fmt: skip
    assert rejected[0].data["user_id"] == hass_read_only_user.id
    assert "Rejected a share decision" in doorstep_log.text
    assert bridge.shares["s_1"]["state"] == "pending"
    tap(hass, approve, hass_admin_user)  # the nonce still works for the approver
    await hass.async_block_till_done()
    assert bridge.shares["s_1"]["state"] == "approved"


def skewed_share(bridge: FakeBridge, share_id: str, minutes: float = 10) -> dict[str, Any]:
    """A pending request as a bridge whose clock is off by ``bridge.clock_offset`` makes it."""
    created = bridge.now()
    return share_state(
        share_id,
        created=created.isoformat(),
        deadline=(created + timedelta(minutes=minutes)).isoformat(),
    )


async def test_late_tap_is_rejected(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    approve = action_of(phone[0], "APPROVE")
    # The deadline passes but the bridge has not published "expired" yet.
    publish_share(hass, bridge, share_state("s_1", deadline="2020-01-01T00:00:00.000+00:00"))
    await hass.async_block_till_done()
    tap(hass, approve, hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["reason"] for e in rejected] == ["too_late"]
    assert bridge.shares["s_1"]["state"] == "expired"
    # The bridge's state settles the request here too, and the other phones' prompts.
    assert phone[-1].data["message"] == "clear_notification"
    assert [r["reason"] for _s, r in bridge.audit if r["kind"] == "decision_refused"] == [
        "too_late"
    ]


@pytest.mark.parametrize("hours", [-3, 3])
async def test_a_bridge_clock_off_by_hours_still_asks_and_takes_the_tap(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, hours: int,
) -> None:  # fmt: skip
    """The bridge on another host, its clock hours off: its pending request is pending.

    Behind, the deadline it sets looks past on Home Assistant's clock; ahead, far off.
    The approver is asked either way, and the bridge takes the tap.
    """
    bridge.clock_offset = timedelta(hours=hours)
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, skewed_share(bridge, "s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(phone) == 1
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert rejected == []
    assert bridge.shares["s_1"]["state"] == "approved"


async def test_a_tap_in_time_on_a_bridge_clock_behind_is_taken(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, freezer: FrozenDateTimeFactory,
) -> None:  # fmt: skip
    """Four hours to decide, on a bridge clock three hours behind: two hours on is in time."""
    bridge.clock_offset = timedelta(hours=-3)
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, skewed_share(bridge, "s_1", minutes=4 * 60))
    await hass.async_block_till_done(wait_background_tasks=True)
    freezer.tick(timedelta(hours=2))  # past the deadline as read on this clock
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert rejected == []
    assert bridge.shares["s_1"]["state"] == "approved"


async def test_a_tap_the_bridge_finds_late_is_too_late_whatever_this_clock_says(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    """The bridge's clock is ahead: its deadline passed there, not yet on this clock."""
    bridge.clock_offset = timedelta(hours=3)
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, skewed_share(bridge, "s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    bridge.clock_offset += timedelta(minutes=11)  # the bridge's timer has not fired yet
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["reason"] for e in rejected] == ["too_late"]
    assert bridge.shares["s_1"]["state"] == "expired"
    assert len(phone) == 2  # no new prompt: the request is over; the other phones cleared
    assert phone[-1].data["message"] == "clear_notification"


async def test_tap_after_expiry_is_rejected(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    updated = async_capture_events(hass, "doorstep_share_updated")
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    approve = action_of(phone[0], "APPROVE")
    publish_share(hass, bridge, share_state("s_1", "expired"))
    await hass.async_block_till_done(wait_background_tasks=True)  # the clear follows the round
    assert [e.data["state"] for e in updated] == ["expired"]
    assert phone[-1].data["message"] == "clear_notification"
    tap(hass, approve, hass_admin_user)
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in rejected] == ["already_used"]


async def test_pending_share_seen_without_nonce_state(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    """A tap whose share the coordinator forgot (retained state cleared) is refused."""
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    approve = action_of(phone[0], "APPROVE")
    del bridge.shares["s_1"]  # forgotten: the bridge clears its retained state
    async_fire_mqtt_message(hass, TOPICS.share("s_1"), "", retain=True)
    async_fire_mqtt_message(hass, TOPICS.share("s_9"), "", retain=True)
    async_fire_mqtt_message(hass, TOPICS.share("s_8"), "{not json")
    async_fire_mqtt_message(hass, TOPICS.share_request, json.dumps({"requester": "x"}))
    await hass.async_block_till_done()
    tap(hass, approve, hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["reason"] for e in rejected] == ["not_pending"]


@pytest.mark.parametrize(
    ("with_approvers", "with_phones", "missing"),
    [
        (False, False, "no approvers and no approver phones set"),
        (True, False, "no approver phones set"),
        (False, True, "no approvers set"),
    ],
)
async def test_log_says_what_is_missing(
    *, hass: HomeAssistant, bridge: FakeBridge, setup_entry: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, doorstep_log: LogRecords,
    with_approvers: bool, with_phones: bool, missing: str,
) -> None:  # fmt: skip
    options: dict[str, Any] = {}
    if with_approvers:
        options[CONF_APPROVERS] = [hass_admin_user.id]
    if with_phones:
        options[CONF_NOTIFY_SERVICES] = ["notify.mobile_app_alice_phone"]
    hass.config_entries.async_update_entry(setup_entry, options=options)
    await hass.async_block_till_done()
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert phone == []
    assert f"Share request s_1 waits for a decision; {missing}" in doorstep_log.messages


async def test_broken_phone_does_not_stop_others(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], doorstep_log: LogRecords,
) -> None:  # fmt: skip
    async def broken(call: ServiceCall) -> None:
        raise HomeAssistantError("Device not connected to local push notifications")

    await _add_bob_phone(hass, approvers, broken, first=True)
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert len(phone) == 1
    assert "Could not notify notify.mobile_app_bob_phone" in doorstep_log.text


async def test_ready_event_carries_the_ha_link(
    hass: HomeAssistant, bridge: FakeBridge, setup_entry: MockConfigEntry
) -> None:
    updated = async_capture_events(hass, "doorstep_share_updated")
    for state in (
        share_state("s_1", "approved"),
        share_state("s_1", "approved", progress=0.5),
        share_state("s_1", "ready", link="/share/tok_abc"),
    ):
        publish_share(hass, bridge, state)
        await hass.async_block_till_done()
    assert [e.data["state"] for e in updated] == ["ready"]
    assert updated[0].data["link"] == f"/api/doorstep/share/{BRIDGE_ID}/tok_abc"


async def test_audit_of_notifications_and_refusals(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_read_only_user: MockUser,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    tap(hass, action_of(phone[0], "APPROVE"), hass_read_only_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.audit == [
        ("s_1", {"kind": "notification", "to": ["notify.mobile_app_alice_phone"], "failed": [],
                 "detail": "minimal", "actions": ["APPROVE", "DENY"]}),
        ("s_1", {"kind": "decision_refused", "reason": "not_an_approver",
                 "user_id": hass_read_only_user.id, "user": hass_read_only_user.name,
                 "action": "APPROVE"}),
    ]  # fmt: skip


async def test_taps_before_the_last_phone_is_notified_are_audited_after_the_notification(
    *,
    hass: HomeAssistant,
    bridge: FakeBridge,
    approvers: MockConfigEntry,
    phone: list[ServiceCall],
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
) -> None:
    # The second phone's push takes a while: the first phone answers meanwhile.
    pushed = asyncio.Event()

    async def slow_push(_call: ServiceCall) -> None:
        await pushed.wait()

    await _add_bob_phone(hass, approvers, slow_push)
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert len(phone) == 1
    tap(hass, action_of(phone[0], "APPROVE"), hass_read_only_user)  # not an approver
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await asyncio.sleep(0.05)
    assert bridge.shares["s_1"]["state"] == "pending"  # waits for the round's audit
    assert bridge.audit == []
    pushed.set()
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.shares["s_1"]["state"] == "approved"
    kinds = [record["kind"] for _share, record in bridge.audit]
    assert kinds[0] == "notification"
    assert sorted(kinds[1:]) == ["decision", "decision_refused"]


async def test_a_hanging_push_holds_a_tap_back_for_a_bounded_time(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    never = asyncio.Event()

    async def hanging_push(_call: ServiceCall) -> None:
        await never.wait()

    await _add_bob_phone(hass, approvers, hanging_push)
    with patch("custom_components.doorstep.approvals.NOTIFIED_WAIT", 0.1):
        publish_share(hass, bridge, share_state("s_1"))
        await hass.async_block_till_done()
        tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
        for _ in range(50):
            if bridge.shares["s_1"]["state"] == "approved":
                break
            await asyncio.sleep(0.05)
    assert bridge.shares["s_1"]["state"] == "approved"
    never.set()
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_a_share_state_someone_else_publishes_shows_what_the_bridge_has(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall],
) -> None:  # fmt: skip
    # Anyone who can write to the broker can publish a share state: the approver must
    # see, and be asked about, what the bridge would release if they approve.
    requested = async_capture_events(hass, "doorstep_share_requested")
    asked = share_state(
        "s_1", requester="Unknown van driver", reason="I want all of it",
        start="2026-11-22T09:00:00.000+00:00", end="2026-11-23T09:00:00.000+00:00",
    )  # fmt: skip
    publish_share(hass, bridge, asked)
    await hass.async_block_till_done()
    forged = share_state(
        "s_1", requester="Police (case 123)", reason="Parcel theft, 5 min",
        start="2026-11-23T09:00:00.000+00:00", end="2026-11-23T09:05:00.000+00:00",
    )  # fmt: skip
    async_fire_mqtt_message(hass, TOPICS.share("s_1"), json.dumps(forged), retain=True)
    ghost = share_state("s_ghost", requester="Ghost")
    async_fire_mqtt_message(hass, TOPICS.share("s_ghost"), json.dumps(ghost), retain=True)
    await hass.async_block_till_done()
    shares = approvers.runtime_data.coordinator.data.shares
    assert list(shares) == ["s_1"]  # no share the bridge does not have
    assert (shares["s_1"].requester, shares["s_1"].reason) == (
        "Unknown van driver",
        "I want all of it",
    )
    assert [e.data["share_id"] for e in requested] == ["s_1"]
    assert len(phone) == 1  # one prompt, for the real request


@pytest.mark.parametrize("bound", [30.0, 0.1], ids=["slow push", "push past the bound"])
async def test_a_decision_during_a_round_clears_the_phones_after_it(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    hass_admin_user: MockUser, bound: float,
) -> None:  # fmt: skip
    """Alice's push is slow and the owner denies in the panel meanwhile: no phone is left
    showing the request, not even one the round had not reached yet (Bob's)."""
    pushed = asyncio.Event()
    alice: list[ServiceCall] = []
    bob: list[ServiceCall] = []

    async def slow_alice(call: ServiceCall) -> None:
        if call.data["message"] != "clear_notification":
            await pushed.wait()
        alice.append(call)  # as the phone shows them: once delivered

    async def bob_push(call: ServiceCall) -> None:
        bob.append(call)

    hass.services.async_register("notify", "mobile_app_alice_phone", slow_alice)
    await _add_bob_phone(hass, approvers, bob_push)
    with patch("custom_components.doorstep.approvals.NOTIFIED_WAIT", bound):
        publish_share(hass, bridge, share_state("s_1"))
        await hass.async_block_till_done()
        await hass.services.async_call(
            DOMAIN, "deny_share", {"share_id": "s_1"}, blocking=True,
            context=Context(user_id=hass_admin_user.id),
        )  # fmt: skip
        await asyncio.sleep(0.2)
        pushed.set()
        await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.shares["s_1"]["state"] == "denied"
    assert alice[-1].data["message"] == "clear_notification"
    assert [c.data["message"] for c in bob][-1:] in ([], ["clear_notification"])


async def test_audit_failure_is_logged(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], doorstep_log: LogRecords,
) -> None:  # fmt: skip
    bridge.canned["/api/shares/s_1/audit"] = (500, '{"error": "internal error"}')
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(phone) == 1
    assert "Could not audit notification for share s_1" in doorstep_log.text


async def test_old_bridge_without_link_lifetime(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry
) -> None:
    bridge.accepts_link_ttl = False
    for share_id in ("s_1", "s_2"):
        publish_share(hass, bridge, share_state(share_id))
        await hass.async_block_till_done(wait_background_tasks=True)
        await hass.services.async_call(
            DOMAIN, "approve_share", {"share_id": share_id}, blocking=True
        )
        assert bridge.shares[share_id]["state"] == "approved"
    # One refused attempt, then the lifetime is no longer sent.
    assert [("link_ttl_hours" in b) for b in bridge.bodies] == [True, False, False]


async def test_old_bridge_without_decider_ids(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry, hass_admin_user: MockUser
) -> None:
    bridge.accepts_link_ttl = False
    bridge.accepts_by_id = False
    for share_id in ("s_1", "s_2"):
        publish_share(hass, bridge, share_state(share_id))
        await hass.async_block_till_done(wait_background_tasks=True)
        await hass.services.async_call(
            DOMAIN, "approve_share", {"share_id": share_id}, blocking=True,
            context=Context(user_id=hass_admin_user.id),
        )  # fmt: skip
        assert bridge.shares[share_id]["state"] == "approved"
    # Refused once, then no longer sent; the decision is made.
    assert [sorted(b) for b in bridge.bodies] == [
        ["by", "by_id", "decision", "link_ttl_hours", "redact", "via"],
        ["by", "decision", "redact", "via"],
        ["by", "decision", "redact", "via"],
    ]


@pytest.mark.usefixtures("setup_entry")
async def test_request_needs_a_reason(hass: HomeAssistant) -> None:
    import voluptuous as vol

    for reason in ("", "   "):
        with pytest.raises(vol.Invalid):
            await hass.services.async_call(
                DOMAIN, "request_share",
                {"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": reason},
                blocking=True,
            )  # fmt: skip


@pytest.mark.usefixtures("setup_entry")
async def test_mqtt_request_event_names_no_user(hass: HomeAssistant, bridge: FakeBridge) -> None:
    requested = async_capture_events(hass, "doorstep_share_requested")
    publish_share(hass, bridge, share_state("s_1", requester="Alice"))
    await hass.async_block_till_done()
    assert requested[0].data["requester"] == "Alice"
    assert requested[0].data["user_id"] is None


async def test_tap_while_bridge_is_down(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, doorstep_log: LogRecords,
) -> None:  # fmt: skip
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    await bridge.stop()
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "The bridge did not take the decision on s_1" in doorstep_log.text
    assert [(e.data["reason"], e.data["user_id"]) for e in rejected] == [
        ("bridge_unavailable", hass_admin_user.id)
    ]
    # Nothing cleared: the phone that tapped gets the same buttons back, saying why.
    assert len(phone) == 2
    assert phone[1].data["data"] == phone[0].data["data"]
    assert phone[1].data["message"].startswith("The last answer did not reach the bridge")
    assert "Could not audit decision_refused for share s_1" in doorstep_log.text


async def test_a_failed_tap_leaves_every_phone_able_to_decide(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, hass_owner_user: MockUser,
) -> None:  # fmt: skip
    """The bridge fails one tap (a restart, a 500): another approver's tap is taken after."""
    bob = await _add_bob_as_approver(hass, approvers, hass_admin_user, hass_owner_user)
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    updated = async_capture_events(hass, "doorstep_share_updated")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    approve = action_of(phone[0], "APPROVE")
    assert action_of(bob[0], "APPROVE") == approve

    bridge.broken = True  # every call answers 500, the audit log's too
    tap(hass, action_of(phone[0], "DENY"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["reason"] for e in rejected] == ["bridge_unavailable"]
    assert bridge.shares["s_1"]["state"] == "pending"
    assert updated == []
    # Both phones show the request again, with the same buttons.
    for calls in (phone, bob):
        assert len(calls) == 2
        assert calls[1].data["data"]["actions"] == calls[0].data["data"]["actions"]
        assert calls[1].data["message"].startswith("The last answer did not reach the bridge")

    bridge.broken = False
    tap(hass, approve, hass_owner_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.shares["s_1"]["state"] == "approved"
    assert bridge.bodies[-1]["by_id"] == hass_owner_user.id
    assert [(e.data["state"], e.data["decided_by"]) for e in updated] == [
        ("approved", hass_owner_user.name)
    ]
    assert [e.data["reason"] for e in rejected] == ["bridge_unavailable"]
    assert phone[-1].data["message"] == bob[-1].data["message"] == "clear_notification"
    # What the log could not take while the bridge failed is written before the decision.
    assert [(record["kind"], record.get("reason") or record.get("again")) for _s, record in
            bridge.audit] == [
        ("notification", None), ("decision_refused", "bridge_unavailable"),
        ("notification", "bridge_unavailable"), ("decision", None),
    ]  # fmt: skip
    refused = bridge.audit[1][1]
    assert refused["user_id"] == hass_admin_user.id
    assert refused["action"] == "DENY"
    assert refused["error"] == "boom"
    assert "at" in refused

    tap(hass, action_of(phone[0], "DENY"), hass_admin_user)  # a replay once decided
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in rejected] == ["bridge_unavailable", "already_used"]
    assert bridge.shares["s_1"]["state"] == "approved"


async def test_the_same_approver_taps_again_once_the_bridge_is_back(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    bridge.canned["/api/shares/s_1/decision"] = (503, '{"error": "cannot write the audit log"}')
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    del bridge.canned["/api/shares/s_1/decision"]
    assert bridge.shares["s_1"]["state"] == "pending"
    tap(hass, action_of(phone[-1], "APPROVE"), hass_admin_user)  # the notification sent again
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.shares["s_1"]["state"] == "approved"
    assert [record["kind"] for _s, record in bridge.audit] == [
        "notification", "decision_refused", "notification", "decision",
    ]  # fmt: skip
    assert "at" not in bridge.audit[1][1]  # written when it happened


async def test_a_decision_the_bridge_refuses_is_not_sent_again(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    """Decided meanwhile (the panel): the bridge says 409, the state then settles the prompt."""
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    approve = action_of(phone[0], "APPROVE")
    bridge.shares["s_1"]["state"] = "denied"  # not published yet
    tap(hass, approve, hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["reason"] for e in rejected] == ["bridge_refused"]
    assert len(phone) == 1  # no buttons sent again
    publish_share(hass, bridge, share_state("s_1", "denied"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert phone[-1].data["message"] == "clear_notification"
    tap(hass, approve, hass_admin_user)
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in rejected] == ["bridge_refused", "already_used"]


async def test_a_refusal_the_bridge_missed_is_audited_once_decided_elsewhere(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    bridge.broken = True
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    bridge.broken = False
    await hass.services.async_call(  # the owner decides in the panel instead
        DOMAIN, "deny_share", {"share_id": "s_1"}, blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )  # fmt: skip
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [(record["kind"], "at" in record) for _s, record in bridge.audit] == [
        ("notification", False), ("decision", False),
        ("decision_refused", True), ("notification", True),
    ]  # fmt: skip


async def test_a_tap_that_loses_to_the_panel_still_clears_every_phone(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, hass_owner_user: MockUser,
) -> None:  # fmt: skip
    """Alice taps while Bob denies in the panel: his decision wins, her tap is refused."""
    bob = await _add_bob_as_approver(hass, approvers, hass_admin_user, hass_owner_user)
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    deny = hass.services.async_call(
        DOMAIN, "deny_share", {"share_id": "s_1"}, blocking=True,
        context=Context(user_id=hass_owner_user.id),
    )  # fmt: skip
    hass.async_create_task(deny)
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.shares["s_1"]["state"] == "denied"
    assert [e.data["reason"] for e in rejected] == ["bridge_refused"]
    assert phone[-1].data["message"] == bob[-1].data["message"] == "clear_notification"


async def test_two_taps_at_once_make_one_decision(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, hass_owner_user: MockUser,
) -> None:  # fmt: skip
    hass.config_entries.async_update_entry(
        approvers,
        options={**approvers.options, CONF_APPROVERS: [hass_admin_user.id, hass_owner_user.id]},
    )
    await hass.async_block_till_done()
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    tap(hass, action_of(phone[0], "APPROVE"), hass_admin_user)
    tap(hass, action_of(phone[0], "DENY"), hass_owner_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [b["decision"] for b in bridge.bodies] == ["approve"]
    assert [e.data["reason"] for e in rejected] == ["already_used"]
    assert bridge.shares["s_1"]["state"] == "approved"


@pytest.mark.usefixtures("setup_entry")
async def test_request_state_on_mqtt_before_the_http_answer(
    hass: HomeAssistant, bridge: FakeBridge, hass_admin_user: MockUser
) -> None:
    """The bridge publishes the pending state before answering: the user is still known."""
    requested = async_capture_events(hass, "doorstep_share_requested")
    bridge.on_create = lambda share: async_fire_mqtt_message(
        hass, TOPICS.share(share["id"]), json.dumps(share)
    )
    await hass.services.async_call(
        DOMAIN, "request_share",
        {"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": "r"},
        blocking=True, context=Context(user_id=hass_admin_user.id),
    )  # fmt: skip
    await hass.async_block_till_done()
    assert [e.data["user_id"] for e in requested] == [hass_admin_user.id]


@pytest.mark.usefixtures("setup_entry")
async def test_rotated_token_at_runtime_starts_reauth(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    bridge.token = "rotated"
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(DOMAIN, "approve_share", {"share_id": "s_1"}, blocking=True)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress()
    assert [f["context"]["source"] for f in flows] == ["reauth"]


async def test_reload_keeps_the_phones_buttons_working(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser,
) -> None:  # fmt: skip
    requested = async_capture_events(hass, "doorstep_share_requested")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    approve = action_of(phone[0], "APPROVE")
    assert await hass.config_entries.async_reload(approvers.entry_id)
    await hass.async_block_till_done()
    publish_share(hass, bridge, share_state("s_1"))  # the retained state, heard again
    await hass.async_block_till_done()
    assert len(phone) == 1  # not notified twice
    assert len(requested) == 1  # not announced twice
    tap(hass, approve, hass_admin_user)
    await hass.async_block_till_done()
    assert bridge.shares["s_1"]["state"] == "approved"


async def test_prompts_survive_a_restart(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_storage: dict[str, Any],
    hass_admin_user: MockUser,
    phone: list[ServiceCall],
) -> None:
    """What the previous run stored: a prompt on Alice's phone for s_1."""
    hass_storage[f"doorstep.{config_entry.entry_id}.approvals"] = {
        "version": 1,
        "key": f"doorstep.{config_entry.entry_id}.approvals",
        "data": {
            "prompts": {"n0nce-from-before": {"share_id": "s_1", "services": [
                "notify.mobile_app_alice_phone"]}},
            "used": {"spent-nonce": "s_0"},
            "announced": ["s_1"],
        },
    }  # fmt: skip
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry,
        options={CONF_APPROVERS: [hass_admin_user.id],
                 CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone"]},
    )  # fmt: skip
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert phone == []  # already on the phone
    tap(hass, "DOORSTEP_APPROVE_spent-nonce", hass_admin_user)
    tap(hass, "DOORSTEP_APPROVE_n0nce-from-before", hass_admin_user)
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in rejected] == ["already_used"]
    assert bridge.shares["s_1"]["state"] == "approved"


async def _restarted_with_a_prompt(
    hass: HomeAssistant, entry: MockConfigEntry, hass_storage: dict[str, Any], approver: MockUser
) -> None:
    """Home Assistant starts again; the previous run left a prompt for s_1 on Alice's phone."""
    hass_storage[f"doorstep.{entry.entry_id}.approvals"] = {
        "version": 1,
        "key": f"doorstep.{entry.entry_id}.approvals",
        "data": {
            "prompts": {"n0nce-from-before": {"share_id": "s_1", "services": [
                "notify.mobile_app_alice_phone"]}},
            "used": {},
            "announced": ["s_1"],
        },
    }  # fmt: skip
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry,
        options={CONF_APPROVERS: [approver.id],
                 CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone"]},
    )  # fmt: skip
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_tap_before_the_retained_states_after_a_restart_counts(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_storage: dict[str, Any],
    hass_admin_user: MockUser,
    phone: list[ServiceCall],
) -> None:
    """Alice denies before the bridge's retained share states arrive: the bridge is asked."""
    bridge.shares["s_1"] = share_state("s_1")
    await _restarted_with_a_prompt(hass, config_entry, hass_storage, hass_admin_user)
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    tap(hass, "DOORSTEP_DENY_n0nce-from-before", hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert rejected == []
    assert bridge.shares["s_1"]["state"] == "denied"
    assert phone[-1].data["message"] == "clear_notification"


async def test_a_tap_while_doorstep_is_not_set_up_yet_counts_once_it_is(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_storage: dict[str, Any],
    hass_admin_user: MockUser,
    phone: list[ServiceCall],
    doorstep_log: LogRecords,
) -> None:
    """The host rebooted: the bridge answers after Home Assistant started, and Alice
    denied from her phone meanwhile."""
    bridge.shares["s_1"] = share_state("s_1")
    bridge.broken = True
    await _restarted_with_a_prompt(hass, config_entry, hass_storage, hass_admin_user)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    tap(hass, "DOORSTEP_DENY_n0nce-from-before", hass_admin_user)
    tap(hass, "DOORSTEP_DENY_forged", hass_admin_user)
    await hass.async_block_till_done()
    assert rejected == []
    assert "unknown nonce" not in doorstep_log.text

    bridge.broken = False
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.shares["s_1"]["state"] == "denied"
    assert bridge.bodies[-1]["via"] == "phone"
    # Once every bridge is set up, a tap no bridge sent is what it looked like.
    assert [(e.data["reason"], e.data["share_id"]) for e in rejected] == [("unknown_nonce", None)]


async def test_a_tap_kept_too_long_decides_nothing(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_storage: dict[str, Any],
    hass_admin_user: MockUser,
    phone: list[ServiceCall],
    freezer: FrozenDateTimeFactory,
) -> None:
    bridge.shares["s_1"] = share_state("s_1")
    bridge.broken = True
    await _restarted_with_a_prompt(hass, config_entry, hass_storage, hass_admin_user)
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    tap(hass, "DOORSTEP_DENY_n0nce-from-before", hass_admin_user)
    await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=11))
    bridge.broken = False
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bridge.shares["s_1"]["state"] == "pending"
    assert [(e.data["reason"], e.data["share_id"]) for e in rejected] == [
        ("bridge_unavailable", "s_1")
    ]


async def test_owner_wording_for_the_title(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry, phone: list[ServiceCall]
) -> None:
    hass.config_entries.async_update_entry(
        approvers, options={**approvers.options, CONF_NOTIFICATION_TITLE: "Front gate"}
    )
    await hass.async_block_till_done()
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    assert phone[-1].data["title"] == "Front gate"
