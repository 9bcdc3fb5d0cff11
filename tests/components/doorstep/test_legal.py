"""Legal requests in Home Assistant: asked through the service, shown on the phone, two approvers."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_capture_events,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import (
    CONF_APPROVERS,
    CONF_NOTIFICATION_DETAIL,
    CONF_NOTIFY_SERVICES,
    DOMAIN,
)
from custom_components.doorstep.protocol import parse_share

from .conftest import FakeBridge, share_state
from .test_sharing import action_of, approvers, phone, publish_share, tap

__all__ = ["approvers", "phone"]  # fixtures

LEGAL = {
    "authority": "Gendarmerie nationale, brigade de Villeurbanne",
    "reference": "PV 2026/004512",
    "legal_basis": "Code de procédure pénale, art. 60-1",
    "scope": {
        "cameras": ["front_door"],
        "start": "2026-11-23T08:30:00.000+00:00",
        "end": "2026-11-23T10:00:00.000+00:00",
    },
}


def legal_state(share_id: str, **changes: Any) -> dict[str, Any]:
    return share_state(share_id, **{"kind": "legal", "legal": LEGAL, "approvals": [], **changes})


@pytest.mark.usefixtures("setup_entry")
async def test_request_share_carries_the_authority_and_scope(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    result = await hass.services.async_call(
        DOMAIN,
        "request_share",
        {
            "entity_id": "event.front_door_doorbell",
            "start": "2026-11-23 09:00:00",
            "end": "2026-11-23 09:30:00",
            "reason": "Burglary at number 12",
            "requester": "Gendarmerie de Villeurbanne",
            "authority": LEGAL["authority"],
            "reference": LEGAL["reference"],
            "legal_basis": LEGAL["legal_basis"],
            "scope_start": "2026-11-23 08:30:00",
            "scope_end": "2026-11-23 10:00:00",
        },
        blocking=True,
        return_response=True,
    )
    assert result is not None
    body = bridge.bodies[-1]
    assert body["kind"] == "legal"
    assert body["authority"] == LEGAL["authority"]
    assert body["reference"] == "PV 2026/004512"
    assert body["legal_basis"] == LEGAL["legal_basis"]
    # Scope cameras default to the requested ones; times in HA's time zone.
    assert body["scope"]["cameras"] == ["front_door"]
    assert body["scope"]["start"].startswith("2026-11-23T08:30:00.000")
    assert body["scope"]["end"].startswith("2026-11-23T10:00:00.000")
    share = bridge.shares[str(result["share_id"])]
    assert share["kind"] == "legal"


@pytest.mark.usefixtures("setup_entry")
async def test_request_share_legal_defaults_and_missing_fields(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    data = {
        "entity_id": "event.front_door_doorbell",
        "start": "2026-11-23 09:00:00",
        "end": "2026-11-23 09:30:00",
        "reason": "Burglary",
    }
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "request_share", {**data, "reference": "PV 1"}, blocking=True
        )
    assert err.value.translation_key == "legal_incomplete"
    assert err.value.translation_placeholders == {"missing": "authority, legal_basis"}
    await hass.services.async_call(
        DOMAIN,
        "request_share",
        {**data, "authority": "Court", "reference": "PV 1", "legal_basis": "Order 7",
         "scope_cameras": ["front_door", "back_yard"]},
        blocking=True,
    )  # fmt: skip
    body = bridge.bodies[-1]
    assert body["scope"]["cameras"] == ["front_door", "back_yard"]
    # The window defaults to the requested one.
    assert body["scope"]["start"] == body["start"]
    assert body["scope"]["end"] == body["end"]


async def test_the_phone_shows_the_authority_and_scope(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry, phone: list[ServiceCall]
) -> None:
    publish_share(hass, bridge, legal_state("s_1"))
    await hass.async_block_till_done()
    # Minimal wording: that it is a legal request, nothing more.
    assert phone[-1].data["message"] == (
        "LEGAL REQUEST: A request to share doorbell footage is waiting for your decision."
    )
    hass.config_entries.async_update_entry(
        approvers, options={**approvers.options, CONF_NOTIFICATION_DETAIL: "full"}
    )
    await hass.async_block_till_done()
    publish_share(hass, bridge, legal_state("s_2"))
    await hass.async_block_till_done()
    message = phone[-1].data["message"]
    assert message.startswith(
        "LEGAL REQUEST from Gendarmerie nationale, brigade de Villeurbanne, reference "
        "PV 2026/004512, under Code de procédure pénale, art. 60-1; scope: front_door, "
        "23/11 00:30 to 23/11 02:00. Neighbour Alice asks for footage of Front door"
    )
    hass.config.language = "fr"
    publish_share(hass, bridge, legal_state("s_3"))
    await hass.async_block_till_done()
    assert phone[-1].data["message"].startswith("RÉQUISITION de Gendarmerie nationale")


async def test_two_approvers_on_their_phones(
    *,
    hass: HomeAssistant,
    bridge: FakeBridge,
    approvers: MockConfigEntry,
    phone: list[ServiceCall],
    hass_admin_user: MockUser,
) -> None:
    bridge.two_approvers = True
    second = MockUser(name="Bob Second").add_to_hass(hass)
    hass.config_entries.async_update_entry(
        approvers,
        options={
            **approvers.options,
            CONF_APPROVERS: [hass_admin_user.id, second.id],
            CONF_NOTIFY_SERVICES: ["notify.mobile_app_alice_phone"],
        },
    )
    await hass.async_block_till_done()
    rejected = async_capture_events(hass, "doorstep_share_decision_rejected")
    publish_share(hass, bridge, legal_state("s_1"))
    await hass.async_block_till_done()
    first_prompt = phone[-1]
    tap(hass, action_of(first_prompt, "APPROVE"), hass_admin_user)
    await hass.async_block_till_done()
    assert bridge.shares["s_1"]["state"] == "pending"
    assert [a["by"] for a in bridge.shares["s_1"]["approvals"]] == [hass_admin_user.name]
    # The phones are asked again, saying that one approved (same tag: it replaces the first);
    # at the default (minimal) detail, without naming them.
    second_prompt = phone[-1]
    assert second_prompt is not first_prompt
    assert second_prompt.data["message"].startswith("Approved once: a second approver is needed.")
    assert hass_admin_user.name not in second_prompt.data["message"]
    assert second_prompt.data["data"]["tag"] == "doorstep_s_1"
    # The first approver cannot be the second, even renamed in the meantime.
    hass_admin_user.name = "Alice Renamed"
    tap(hass, action_of(second_prompt, "APPROVE"), hass_admin_user)
    await hass.async_block_till_done()
    assert [e.data["reason"] for e in rejected] == ["already_approved"]
    assert bridge.shares["s_1"]["state"] == "pending"
    # Someone else can.
    tap(hass, action_of(second_prompt, "APPROVE"), second)
    await hass.async_block_till_done()
    assert bridge.shares["s_1"]["state"] == "approved"
    assert bridge.shares["s_1"]["decision"]["by"] == "Bob Second"
    assert phone[-1].data == {"message": "clear_notification", "data": {"tag": "doorstep_s_1"}}


async def test_the_first_approver_may_still_deny(
    *,
    hass: HomeAssistant,
    bridge: FakeBridge,
    approvers: MockConfigEntry,
    phone: list[ServiceCall],
    hass_admin_user: MockUser,
) -> None:
    bridge.two_approvers = True
    publish_share(hass, bridge, legal_state("s_1"))
    await hass.async_block_till_done()
    tap(hass, action_of(phone[-1], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done()
    tap(hass, action_of(phone[-1], "DENY"), hass_admin_user)
    await hass.async_block_till_done()
    assert bridge.shares["s_1"]["state"] == "denied"


def test_an_older_bridge_sends_no_kind() -> None:
    share = parse_share(share_state("s_1"))
    assert share.kind == "ordinary"
    assert share.legal is None
    assert share.approvals == ()
    assert share.event_data()["kind"] == "ordinary"
    legal = parse_share(legal_state("s_2", approvals=[{"decision": "approve", "by": "Ann"}]))
    assert legal.legal is not None
    assert legal.legal.scope_cameras == ("front_door",)
    assert legal.event_data()["reference"] == "PV 2026/004512"
    assert legal.event_data()["approved_by"] == ["Ann"]
    odd = parse_share(legal_state("s_3", legal={"authority": "X", "scope": None}, approvals=None))
    assert odd.legal is not None
    assert odd.legal.scope_cameras == ()
    assert odd.approvals == ()
    with pytest.raises(Exception, match="legal: expected an object"):
        parse_share(legal_state("s_4", legal="police"))


async def test_diagnostics_redact_who_asks_under_what(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
) -> None:
    # A person's decision carries their Home Assistant user id: as personal as their name.
    user_id = "018cd1c6a3b94f7e8d2a5c0b9e7f6a11"
    approved = {
        "decision": "approve", "by": "Owner", "via": "phone", "at": None, "redact": True,
        "by_id": user_id,
    }  # fmt: skip
    publish_share(hass, bridge, legal_state("s_1", approvals=[approved]))
    await hass.async_block_till_done()
    diag: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    assert user_id not in json.dumps(diag)
    assert diag["shares"]["s_1"]["approvals"][0]["by_id"] == "**REDACTED**"
    legal = diag["shares"]["s_1"]["legal"]
    assert legal["authority"] == legal["reference"] == legal["legal_basis"] == "**REDACTED**"
    assert legal["scope_cameras"] == ["front_door"]
    assert diag["shares"]["s_1"]["approvals"][0]["by"] == "**REDACTED**"
    assert diag["shares"]["s_1"]["kind"] == "legal"
    text = json.dumps(diag)
    assert "Villeurbanne" not in text
    assert "004512" not in text
