"""Audit records the bridge could not take: kept across restarts, written once it is back."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant, ServiceCall
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_mqtt_message,
)

from custom_components.doorstep.const import DOMAIN

from ..conftest import LogRecords
from .conftest import T0, TOPICS, FakeBridge, publish_retained, share_state
from .test_sharing import action_of, approvers, phone, publish_share, tap

__all__ = ["approvers", "phone"]  # fixtures

UNAVAILABLE = (503, '{"error": "cannot write the audit log"}')


def audited(bridge: FakeBridge) -> list[tuple[str, str, str | None, str | None]]:
    """Share, kind, reason (or why sent again) and when it happened, as the log has them."""
    return [
        (share, record["kind"], record.get("reason") or record.get("again"), record.get("at"))
        for share, record in bridge.audit
    ]


async def restart(hass: HomeAssistant, entry: MockConfigEntry, bridge: FakeBridge) -> None:
    """Home Assistant stops and starts again: every object of the entry is made anew."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    # What the broker hands the new subscriptions: the bridge's retained topics.
    publish_retained(hass, bridge)
    for share in bridge.shares.values():
        async_fire_mqtt_message(hass, TOPICS.share(share["id"]), json.dumps(share), retain=True)
    await hass.async_block_till_done(wait_background_tasks=True)


async def bridge_restarts(hass: HomeAssistant) -> None:
    """The bridge goes offline and comes back, as its availability topic says.

    Retained on the broker, but not flagged so to a subscriber already listening.
    """
    async_fire_mqtt_message(hass, TOPICS.available, "offline")
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TOPICS.available, "online")
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_taps_the_bridge_missed_are_audited_after_a_restart(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, hass_read_only_user: MockUser,
    freezer: FrozenDateTimeFactory,
) -> None:  # fmt: skip
    freezer.move_to(T0)
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    # The bridge stops answering: a stranger's tap, then the approver's, reach nothing.
    bridge.canned["/api/shares/s_1/audit"] = UNAVAILABLE
    bridge.canned["/api/shares/s_1/decision"] = UNAVAILABLE
    freezer.tick(10)
    tap(hass, action_of(phone[0], "APPROVE"), hass_read_only_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    freezer.tick(10)
    tap(hass, action_of(phone[0], "DENY"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(phone) == 2  # the buttons sent again
    assert [kind for _s, kind, _r, _at in audited(bridge)] == ["notification"]

    # Home Assistant restarts; the bridge answers again by the time it is set up.
    freezer.tick(600)
    bridge.canned.clear()
    await restart(hass, approvers, bridge)

    at_stranger = (T0 + timedelta(seconds=10)).isoformat()
    at_approver = (T0 + timedelta(seconds=20)).isoformat()
    assert audited(bridge) == [
        ("s_1", "notification", None, None),
        ("s_1", "decision_refused", "not_an_approver", at_stranger),
        ("s_1", "decision_refused", "bridge_unavailable", at_approver),
        ("s_1", "notification", "bridge_unavailable", at_approver),
    ]
    refused = bridge.audit[1][1]
    assert (refused["user_id"], refused["action"]) == (hass_read_only_user.id, "APPROVE")

    # Written once: neither the next tap nor the next restart writes them again.
    tap(hass, action_of(phone[-1], "APPROVE"), hass_admin_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    await restart(hass, approvers, bridge)
    assert bridge.shares["s_1"]["state"] == "approved"
    assert [kind for _s, kind, _r, _at in audited(bridge)] == [
        "notification", "decision_refused", "decision_refused", "notification", "decision",
    ]  # fmt: skip


async def test_records_wait_through_a_restart_until_the_bridge_is_back(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_admin_user: MockUser, hass_read_only_user: MockUser,
    freezer: FrozenDateTimeFactory,
) -> None:  # fmt: skip
    """Its log still fails after Home Assistant's restart: the records wait, in order."""
    freezer.move_to(T0)
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    await hass.services.async_call(  # decided in the panel
        DOMAIN, "approve_share", {"share_id": "s_1"}, blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )  # fmt: skip
    publish_share(hass, bridge, share_state("s_1", "approved"))
    await hass.async_block_till_done(wait_background_tasks=True)
    bridge.canned["/api/shares/s_1/audit"] = UNAVAILABLE
    freezer.tick(5)
    tap(hass, action_of(phone[0], "DENY"), hass_admin_user)  # late: already used
    await hass.async_block_till_done(wait_background_tasks=True)

    await restart(hass, approvers, bridge)
    freezer.tick(5)
    tap(hass, action_of(phone[0], "APPROVE"), hass_read_only_user)  # after the restart
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [kind for _s, kind, _r, _at in audited(bridge)] == ["notification", "decision"]

    bridge.canned.clear()
    await bridge_restarts(hass)
    assert audited(bridge)[2:] == [
        ("s_1", "decision_refused", "already_used", (T0 + timedelta(seconds=5)).isoformat()),
        ("s_1", "decision_refused", "already_used", (T0 + timedelta(seconds=10)).isoformat()),
    ]


async def test_records_go_once_the_bridge_is_back_online(
    hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_read_only_user: MockUser,
) -> None:  # fmt: skip
    """No later record or decision on the request: the bridge coming back is enough."""
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done(wait_background_tasks=True)
    bridge.canned["/api/shares/s_1/audit"] = UNAVAILABLE
    tap(hass, action_of(phone[0], "APPROVE"), hass_read_only_user)
    await hass.async_block_till_done(wait_background_tasks=True)
    bridge.canned.clear()
    await bridge_restarts(hass)
    assert [(kind, reason) for _s, kind, reason, _at in audited(bridge)] == [
        ("notification", None), ("decision_refused", "not_an_approver"),
    ]  # fmt: skip


async def test_the_stored_records_are_bounded(
    *, hass: HomeAssistant, bridge: FakeBridge, approvers: MockConfigEntry,
    phone: list[ServiceCall], hass_read_only_user: MockUser, hass_storage: dict[str, Any],
    doorstep_log: LogRecords,
) -> None:  # fmt: skip
    for share_id in ("s_1", "s_2"):
        publish_share(hass, bridge, share_state(share_id))
        await hass.async_block_till_done(wait_background_tasks=True)
        bridge.canned[f"/api/shares/{share_id}/audit"] = UNAVAILABLE
    with (
        patch("custom_components.doorstep.backlog.MAX_PER_SHARE", 3),
        patch("custom_components.doorstep.backlog.MAX_RECORDS", 5),
    ):
        for n, (share_id, prompt) in enumerate([("s_1", phone[0])] * 4 + [("s_2", phone[1])] * 3):
            tap(hass, action_of(prompt, "APPROVE"), hass_read_only_user)
            await hass.async_block_till_done(wait_background_tasks=True)
            assert share_id in prompt.data["data"]["tag"], n
    stored = hass_storage[f"doorstep.{approvers.entry_id}.audit_backlog"]["data"]["records"]
    # s_1 kept its 3 latest, then lost its oldest one more for s_2's third.
    assert [(r["share_id"], r["kind"]) for r in stored] == [("s_1", "decision_refused")] * 2 + [
        ("s_2", "decision_refused")
    ] * 3
    assert "Dropped 1 audit record(s) of share s_1" in doorstep_log.text

    assert await hass.config_entries.async_remove(approvers.entry_id)
    await hass.async_block_till_done()
    assert f"doorstep.{approvers.entry_id}.audit_backlog" not in hass_storage
