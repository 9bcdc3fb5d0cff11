"""The panel's websocket commands: shares, decisions (as the services take them), clips."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
import json
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.doorstep.const import CONF_APPROVERS, CONF_OFFER_UNREDACTED, DOMAIN

from .conftest import BRIDGE_ID, T0, TOPICS, FakeBridge, clip_info, share_state
from .test_legal import LEGAL, legal_state
from .test_sharing import publish_share

type Call = Callable[..., Awaitable[dict[str, Any]]]
ADMIN = "admin"
USER = "user"


@pytest.fixture
async def call(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator,
    hass_access_token: str, hass_read_only_access_token: str, setup_entry: MockConfigEntry,
) -> Call:  # fmt: skip
    """Send one command as ``ADMIN`` or ``USER`` (not an admin) to the set-up bridge."""
    assert setup_entry.state is ConfigEntryState.LOADED
    tokens = {ADMIN: hass_access_token, USER: hass_read_only_access_token}
    # Before the websocket client starts HA's HTTP server: resolving clips needs it.
    assert await async_setup_component(hass, "media_source", {})

    async def send(who: str, **message: Any) -> dict[str, Any]:
        client = await hass_ws_client(hass, tokens[who])
        await client.send_json_auto_id(message)
        answer: dict[str, Any] = await client.receive_json()
        return answer

    return send


async def test_an_open_panel_is_told_of_new_clips_and_share_changes(
    hass: HomeAssistant, bridge: FakeBridge, hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str, setup_entry: MockConfigEntry,
) -> None:  # fmt: skip
    """A panel left open (a wall tablet) learns what changed without asking every few seconds."""
    client = await hass_ws_client(hass, hass_read_only_access_token)  # not an administrator
    await client.send_json_auto_id({"type": "doorstep/subscribe"})
    assert (await client.receive_json())["success"]
    # At once: each camera's newest clip, known so far.
    first = await client.receive_json()
    assert first["type"] == "event"
    assert first["event"]["last_clips"][BRIDGE_ID]["front_door"] is None

    # Motion alone changes nothing the panel shows: no event for it; a new clip is one.
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "ON")
    clip = clip_info("front_door", T0, 12.0, bridge.video)
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(clip.payload()))
    await hass.async_block_till_done()
    event = await client.receive_json()
    assert event["event"]["last_clips"][BRIDGE_ID]["front_door"] == clip.id

    # An older clip deleted (by retention, or forgotten from another page): the newest is
    # the same, the number of clips is not. Space used alone changes nothing shown.
    async_fire_mqtt_message(hass, TOPICS.bridge_stats, '{"clips": 7, "storage_used_bytes": 9}')
    await hass.async_block_till_done()
    event = await client.receive_json()
    assert event["event"]["clip_counts"] == {BRIDGE_ID: 7}
    async_fire_mqtt_message(hass, TOPICS.bridge_stats, '{"storage_used_bytes": 10}')
    async_fire_mqtt_message(hass, TOPICS.bridge_stats, '{"clips": 6}')
    await hass.async_block_till_done()
    event = await client.receive_json()
    assert event["event"]["clip_counts"] == {BRIDGE_ID: 6}
    assert event["event"]["last_clips"][BRIDGE_ID]["front_door"] == clip.id

    # A share request: an event (the panel asks for the share requests again).
    publish_share(hass, bridge, share_state("s_9"))
    await hass.async_block_till_done()
    event = await client.receive_json()
    assert event["event"]["last_clips"][BRIDGE_ID]["front_door"] == clip.id

    # The bridge's entry unloaded: the panel is told, the bridge is out of the list.
    await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    event = await client.receive_json()
    assert event["event"]["last_clips"] == {}


def _options(entry: MockConfigEntry, hass: HomeAssistant, **options: Any) -> None:
    hass.config_entries.async_update_entry(entry, options={**entry.options, **options})


async def test_the_link_to_send_is_on_home_assistants_address_for_the_internet(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    # The browser's own address is a LAN one at home: a recipient outside cannot open it.
    await async_process_ha_core_config(
        hass,
        {"internal_url": "http://192.168.1.5:8123", "external_url": "https://home.example.org"},
    )
    publish_share(hass, bridge, share_state("s_2", "ready", link="/share/tok123"))
    await hass.async_block_till_done()
    answer = await call(ADMIN, type="doorstep/shares")
    (shown,) = answer["result"]["shares"]
    assert shown["link_url"] == f"https://home.example.org/api/doorstep/share/{BRIDGE_ID}/tok123"


async def test_shares_listed_with_links_for_deciders_only(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1", created="2026-11-23T10:00:00+00:00"))
    ready = share_state(
        "s_2", "ready", link="/share/tok123", link_expires="2026-11-24T10:00:00+00:00",
        created="2026-11-23T11:00:00+00:00",
        decision={"decision": "approve", "by": "Alice", "via": "phone", "redact": True},
    )  # fmt: skip
    publish_share(hass, bridge, ready)
    publish_share(hass, bridge, share_state("s_3", "denied"))
    await hass.async_block_till_done()

    answer = await call(ADMIN, type="doorstep/shares")
    assert answer["success"]
    result = answer["result"]
    assert result["bridges"] == [
        {"bridge_id": BRIDGE_ID, "title": "Doorstep", "can_decide": True, "reachable": True,
         "offer_unredacted": False, "cameras": [{"key": "front_door", "name": "Front door"}]},
    ]  # fmt: skip
    # Waiting for a decision first, then the newest.
    assert [s["share_id"] for s in result["shares"]] == ["s_1", "s_2", "s_3"]
    pending, shown_ready = result["shares"][0], result["shares"][1]
    assert pending["requester"] == "Neighbour Alice"
    assert pending["reason"] == "Parcel went missing"
    assert pending["cameras"] == ["Front door"]
    assert pending["deadline"] == "2099-01-01T00:00:00+00:00"
    assert pending["link"] is None
    assert shown_ready["link"] == f"/api/doorstep/share/{BRIDGE_ID}/tok123"
    assert shown_ready["link_url"] is None  # Home Assistant has no address for the internet
    assert shown_ready["link_expires"] == "2026-11-24T10:00:00+00:00"
    assert shown_ready["decided_by"] == "Alice"

    # A user whose decisions do not count sees the requests, never a link.
    answer = await call(USER, type="doorstep/shares")
    assert answer["result"]["bridges"][0]["can_decide"] is False
    assert all(s["link"] is None for s in answer["result"]["shares"])

    # The bridge gone (its last will): the panel learns it, and asks its audit box again.
    async_fire_mqtt_message(hass, TOPICS.available, "offline")
    await hass.async_block_till_done()
    answer = await call(ADMIN, type="doorstep/shares")
    assert answer["result"]["bridges"][0]["reachable"] is False


async def test_approver_decides_like_the_service(
    hass: HomeAssistant, bridge: FakeBridge, setup_entry: MockConfigEntry,
    call: Call, hass_read_only_user: MockUser,
) -> None:  # fmt: skip
    _options(setup_entry, hass, **{CONF_APPROVERS: [hass_read_only_user.id]})
    await hass.async_block_till_done()
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()

    # The admin is not an approver once the owner named some: as for the services.
    refused = await call(
        ADMIN,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="approve",
    )  # fmt: skip
    assert not refused["success"]
    assert refused["error"]["translation_key"] == "not_an_approver"
    assert bridge.bodies == []

    answer = await call(
        USER,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="approve",
    )  # fmt: skip
    assert answer["success"], answer
    assert answer["result"]["state"] == "approved"
    panel_body = bridge.bodies[-1]
    assert panel_body == {
        "decision": "approve", "by": hass_read_only_user.name, "via": "ui", "redact": True,
        "link_ttl_hours": 24.0, "by_id": hass_read_only_user.id,
    }  # fmt: skip

    # The service, by the same user, sends the bridge the very same decision.
    publish_share(hass, bridge, share_state("s_2"))
    await hass.async_block_till_done()
    await hass.services.async_call(
        DOMAIN, "approve_share", {"share_id": "s_2"}, blocking=True,
        context=Context(user_id=hass_read_only_user.id),
    )  # fmt: skip
    assert bridge.bodies[-1] == panel_body


async def test_without_approvers_admins_decide(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    refused = await call(
        USER,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="deny",
    )  # fmt: skip
    assert refused["error"]["translation_key"] == "not_an_approver"
    answer = await call(
        ADMIN,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="deny",
    )  # fmt: skip
    assert answer["result"]["state"] == "denied"
    assert bridge.shares["s_1"]["state"] == "denied"
    assert bridge.bodies[-1]["via"] == "ui"


async def test_revoke(
    hass: HomeAssistant, bridge: FakeBridge, call: Call, hass_admin_user: MockUser
) -> None:
    publish_share(hass, bridge, share_state("s_1", "ready", link="/share/tok"))
    await hass.async_block_till_done()
    answer = await call(
        ADMIN,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="revoke",
    )  # fmt: skip
    assert answer["result"]["state"] == "revoked"
    assert answer["result"]["link"] is None
    assert answer["result"]["revoked_by"] == hass_admin_user.name
    assert bridge.shares["s_1"]["state"] == "revoked"


async def test_legal_request_shows_its_authority_and_first_approval(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
    hass_admin_user: MockUser, hass_read_only_user: MockUser,
) -> None:  # fmt: skip
    """The panel learns a request is legal, and that its first approver cannot be its second."""
    bridge.two_approvers = True
    hass_read_only_user.name = "Bob Second"  # the audit log tells people apart by name
    publish_share(hass, bridge, legal_state("s_1"))
    await hass.async_block_till_done()
    (listed,) = (await call(ADMIN, type="doorstep/shares"))["result"]["shares"]
    assert listed["kind"] == "legal"
    assert listed["legal"] == {
        "authority": LEGAL["authority"], "reference": LEGAL["reference"],
        "legal_basis": LEGAL["legal_basis"],
    }  # fmt: skip
    assert listed["approved_by"] == []
    assert listed["you_approved"] is False

    answer = await call(
        ADMIN,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="approve",
    )  # fmt: skip
    assert answer["result"]["state"] == "pending"
    assert answer["result"]["approved_by"] == [hass_admin_user.name]
    assert answer["result"]["you_approved"] is True
    # Another user sees who approved, and that they may still be the second approver.
    (listed,) = (await call(USER, type="doorstep/shares"))["result"]["shares"]
    assert listed["approved_by"] == [hass_admin_user.name]
    assert listed["you_approved"] is False
    (listed,) = (await call(ADMIN, type="doorstep/shares"))["result"]["shares"]
    assert listed["you_approved"] is True


async def test_the_first_approver_is_known_by_user_not_by_name(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
    hass_admin_user: MockUser, hass_read_only_user: MockUser,
) -> None:  # fmt: skip
    """A rename does not make a second approver, and a namesake is not the first one."""
    bridge.two_approvers = True
    first_name = hass_admin_user.name
    publish_share(hass, bridge, legal_state("s_1"))
    await hass.async_block_till_done()
    await call(
        ADMIN,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="approve",
    )  # fmt: skip
    assert bridge.shares["s_1"]["approvals"][0]["by_id"] == hass_admin_user.id
    hass_admin_user.name = "Alice Renamed"
    (listed,) = (await call(ADMIN, type="doorstep/shares"))["result"]["shares"]
    assert listed["you_approved"] is True
    again = await call(
        ADMIN,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="s_1", decision="approve",
    )  # fmt: skip
    assert not again["success"]
    assert bridge.shares["s_1"]["state"] == "pending"
    hass_read_only_user.name = first_name  # a namesake may still be the second approver
    (listed,) = (await call(USER, type="doorstep/shares"))["result"]["shares"]
    assert listed["you_approved"] is False


async def test_unredacted_only_when_offered(
    hass: HomeAssistant, bridge: FakeBridge, setup_entry: MockConfigEntry, call: Call
) -> None:
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    message = {"type": "doorstep/decide", "bridge_id": BRIDGE_ID, "share_id": "s_1",
               "decision": "approve", "redact": False}  # fmt: skip
    refused = await call(ADMIN, **message)
    assert refused["error"]["code"] == "not_allowed"
    assert bridge.bodies == []

    _options(setup_entry, hass, **{CONF_OFFER_UNREDACTED: True})
    await hass.async_block_till_done()
    publish_share(hass, bridge, share_state("s_1"))  # HA 2025.4 reloaded the entry
    await hass.async_block_till_done()
    answer = await call(ADMIN, **message)
    assert answer["success"], answer
    assert bridge.bodies[-1]["redact"] is False


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ({"bridge_id": "nope", "share_id": "s_1", "decision": "deny"}, "not_loaded"),
        ({"bridge_id": BRIDGE_ID, "share_id": "s_9", "decision": "deny"}, "unknown_share"),
        ({"bridge_id": BRIDGE_ID, "share_id": "s_1", "decision": "revoke"}, "share_refused"),
    ],
)
async def test_decision_errors(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
    message: dict[str, str], key: str,
) -> None:  # fmt: skip
    publish_share(hass, bridge, share_state("s_1"))
    await hass.async_block_till_done()
    answer = await call(ADMIN, type="doorstep/decide", **message)
    assert answer["error"]["translation_key"] == key


async def test_bad_decision_is_refused_before_anything(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    answer = await call(
        ADMIN,
        type="doorstep/decide", bridge_id=BRIDGE_ID, share_id="../x", decision="approve",
    )  # fmt: skip
    assert answer["error"]["code"] == "invalid_format"
    assert bridge.bodies == []


async def test_clips_filtered_by_reason(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    bridge.clips[1] = replace(bridge.clips[1], reason="ring")
    answer = await call(
        USER,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door",
    )  # fmt: skip
    assert [c["reason"] for c in answer["result"]["clips"]] == ["motion", "ring", "motion"]

    answer = await call(
        USER,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door", reason="ring",
    )  # fmt: skip
    assert answer["result"]["total"] == 1
    (clip,) = answer["result"]["clips"]
    assert clip["clip_id"] == bridge.clips[1].id
    assert ("reason", "ring") in [
        tuple(p.split("=")) for p in bridge.requests[-1][1].split("?")[1].split("&")
    ]
    # Played through the media source, as the media browser plays it.
    day = clip["start"][:10]
    assert clip["media_content_id"] == (
        f"media-source://{DOMAIN}/{BRIDGE_ID}/front_door/{day}/{clip['clip_id']}"
    )
    resolved = await call(
        USER,
        type="media_source/resolve_media", media_content_id=clip["media_content_id"],
    )  # fmt: skip
    assert resolved["success"], resolved
    assert resolved["result"]["url"].startswith(
        f"/api/doorstep/clips/{BRIDGE_ID}/{clip['clip_id']}/video?authSig="
    )


async def test_clips_page_by_page(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    """The panel reaches clips older than its first page."""
    newest = await call(
        USER,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door", limit=2,
    )  # fmt: skip
    older = await call(
        USER,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door", limit=2, offset=2,
    )  # fmt: skip
    assert newest["result"]["total"] == older["result"]["total"] == 3
    ids = [c["clip_id"] for c in newest["result"]["clips"] + older["result"]["clips"]]
    assert ids == [c.id for c in sorted(bridge.clips, key=lambda c: c.start, reverse=True)]
    refused = await call(
        USER,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door", offset=-1,
    )  # fmt: skip
    assert refused["error"]["code"] == "invalid_format"
    # Anchored on the oldest clip shown: the clips that started by then, and their total.
    oldest = newest["result"]["clips"][-1]
    anchored = await call(
        USER,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door", until=oldest["start"],
    )  # fmt: skip
    assert [c["clip_id"] for c in anchored["result"]["clips"]] == ids[1:]
    assert anchored["result"]["total"] == 2


async def test_clip_errors(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    answer = await call(
        ADMIN,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="back_door",
    )  # fmt: skip
    assert answer["error"]["translation_key"] == "unknown_camera"
    bridge.broken = True
    answer = await call(
        ADMIN,
        type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door",
    )  # fmt: skip
    assert answer["error"]["translation_key"] == "clips_unavailable"


async def test_clip_and_audit_errors_an_owner_acts_on(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    """A rejected token and a bridge that is down, said as such (the panel shows the message)."""
    bridge.token = "a-token-the-integration-does-not-have"
    clips = await call(ADMIN, type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door")
    assert clips["error"]["translation_key"] == "auth"
    assert clips["error"]["message"] == "The Doorstep bridge rejected the API token"
    audit = await call(ADMIN, type="doorstep/audit", bridge_id=BRIDGE_ID)
    assert audit["error"]["translation_key"] == "auth"

    await bridge.stop()
    clips = await call(ADMIN, type="doorstep/clips", bridge_id=BRIDGE_ID, camera="front_door")
    assert clips["error"]["translation_key"] == "bridge_error"
    # Not the connection's exception (ClientConnectorError(ConnectionKey(host=...))).
    assert clips["error"]["message"] == "The Doorstep bridge did not answer; try again later"


def _audit_answer(*, ok: bool = True) -> str:
    check: dict[str, Any] = {
        "ok": ok, "count": 5, "last_seq": 5, "bad_record": None, "file": None, "problem": None,
        "past_head": 0, "message": "audit log intact: 5 record(s)",
    }  # fmt: skip
    if not ok:
        check.update(bad_record=3, file="audit.jsonl",
                     problem="contents changed: its hash does not match")  # fmt: skip
    records = [
        {"seq": 5, "time": "2026-11-23T10:05:00+00:00", "kind": "download", "share_id": "s_1",
         "client": "192.0.2.7", "agent": "curl/8"},
        {"seq": 4, "time": "2026-11-23T10:04:00+00:00", "kind": "render", "share_id": "s_1",
         "result": "ready", "frames": 30},
        {"seq": 3, "time": "2026-11-23T10:03:00+00:00", "kind": "decision", "share_id": "s_1",
         "decision": "approve", "by": "Owner", "via": "ui"},
        {"seq": 2, "time": "2026-11-23T10:02:00+00:00", "kind": "notification",
         "share_id": "s_1", "to": ["notify.mobile_app_pixel"], "failed": []},
        {"seq": 1, "time": "2026-11-23T10:01:00+00:00", "kind": "clip_erased",
         "clip": "c_1", "camera": "front_door", "by": "Owner"},
    ]  # fmt: skip
    return json.dumps({"verification": check, "records": records})


async def test_audit_for_administrators(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    bridge.canned["/api/audit"] = (200, _audit_answer())
    answer = await call(ADMIN, type="doorstep/audit", bridge_id=BRIDGE_ID, limit=5)
    assert answer["success"], answer
    result = answer["result"]
    assert bridge.requests[-1][1] == "/api/audit?limit=5"
    assert result["bridge_id"] == BRIDGE_ID
    assert result["verification"] == {
        "ok": True, "count": 5, "last_seq": 5, "bad_record": None, "file": None,
        "problem": None, "past_head": 0,
    }  # fmt: skip
    assert result["records"] == [
        {"seq": 5, "time": "2026-11-23T10:05:00+00:00", "kind": "download", "share_id": "s_1",
         "who": "192.0.2.7", "outcome": None, "camera": None},
        {"seq": 4, "time": "2026-11-23T10:04:00+00:00", "kind": "render", "share_id": "s_1",
         "who": None, "outcome": "ready", "camera": None},
        {"seq": 3, "time": "2026-11-23T10:03:00+00:00", "kind": "decision", "share_id": "s_1",
         "who": "Owner", "outcome": "approve", "camera": None},
        {"seq": 2, "time": "2026-11-23T10:02:00+00:00", "kind": "notification",
         "share_id": "s_1", "who": "notify.mobile_app_pixel", "outcome": None, "camera": None},
        {"seq": 1, "time": "2026-11-23T10:01:00+00:00", "kind": "clip_erased",
         "share_id": None, "who": "Owner", "outcome": None, "camera": "front_door"},
    ]  # fmt: skip

    # Who asked, decided and downloaded what: not for every user.
    asked = len(bridge.requests)
    refused = await call(USER, type="doorstep/audit", bridge_id=BRIDGE_ID)
    assert refused["error"]["code"] == "unauthorized"
    assert len(bridge.requests) == asked


async def test_audit_broken_log(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    bridge.canned["/api/audit"] = (200, _audit_answer(ok=False))
    answer = await call(ADMIN, type="doorstep/audit", bridge_id=BRIDGE_ID)
    assert bridge.requests[-1][1] == "/api/audit?limit=20"
    verification = answer["result"]["verification"]
    assert verification["ok"] is False
    assert verification["bad_record"] == 3
    assert verification["file"] == "audit.jsonl"
    assert verification["problem"] == "contents changed: its hash does not match"


@pytest.mark.parametrize(
    ("canned", "error"),
    [
        ((404, '{"error": "not found"}'), {"code": "not_supported"}),
        (None, {"translation_key": "bridge_error"}),  # the bridge fails: 500
        ((200, '{"verification": {"ok": "yes"}, "records": []}'),
         {"translation_key": "bridge_error"}),
        ((200, '{"verification": {"ok": true, "count": 1, "last_seq": 1}, "records": [{}]}'),
         {"translation_key": "bridge_error"}),
        ((200, '{"verification": {"ok": true, "count": "1", "last_seq": 1}, "records": []}'),
         {"translation_key": "bridge_error"}),
        ((200, '{"verification": {"ok": false, "count": 1, "last_seq": 1, "problem": 3}}'),
         {"translation_key": "bridge_error"}),
        ((200, json.dumps({"verification": {"ok": False, "count": 1, "last_seq": 1, "problem": 3},
                           "records": []})), {"translation_key": "bridge_error"}),
    ],
)  # fmt: skip
async def test_audit_errors(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
    canned: tuple[int, str] | None, error: dict[str, str],
) -> None:  # fmt: skip
    if canned is None:
        bridge.broken = True
    else:
        bridge.canned["/api/audit"] = canned
    answer = await call(ADMIN, type="doorstep/audit", bridge_id=BRIDGE_ID)
    assert not answer["success"]
    assert error.items() <= answer["error"].items()


async def test_audit_bad_commands(
    hass: HomeAssistant, bridge: FakeBridge, call: Call,
) -> None:  # fmt: skip
    answer = await call(ADMIN, type="doorstep/audit", bridge_id="nope")
    assert answer["error"]["translation_key"] == "not_loaded"
    for limit in (0, 201):
        answer = await call(ADMIN, type="doorstep/audit", bridge_id=BRIDGE_ID, limit=limit)
        assert answer["error"]["code"] == "invalid_format"
    assert not [r for r in bridge.requests if r[1].startswith("/api/audit")]
