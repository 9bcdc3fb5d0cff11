"""A share, the way it happens: request → phones notified → approved by a tap → link → revoke.

The phones are companion-app registrations: notifications reach them over the
app's local push websocket channel, and a tap is the app's ``fire_event``
webhook. Nothing here calls the bridge's decision API directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
import json
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import PRIVACY_MASK
from tests.e2e.ha_client import OWNER, HaClient, HaWebSocket, Phone, tap_action
from tests.e2e.servers import CAMERA, h264_frames, masked_area_is_black
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

#: Rows of a 360p export the watermark's two lines take (sharing/redact.py, ``watermark``).
WATERMARK_ROWS = 40


@contextlib.asynccontextmanager
async def phone_channel(
    session: aiohttp.ClientSession, url: str, phone: Phone
) -> AsyncIterator[tuple[HaWebSocket, int]]:
    """The app's open local-push channel (as the phone's own user)."""
    client = HaClient(session, url, phone.user_token)
    async with client.websocket() as ws:
        sub = await ws.subscribe(
            type="mobile_app/push_notification_channel", webhook_id=phone.webhook_id
        )
        yield ws, sub


def _share_event(share_id: str, state: str) -> Any:
    def match(event: dict[str, Any]) -> bool:
        data = event["data"]
        return bool(data.get("share_id") == share_id and data.get("state") == state)

    return match


def _notification_for(share_id: str) -> Any:
    def match(event: dict[str, Any]) -> bool:
        return bool(event.get("data", {}).get("tag") == f"doorstep_{share_id}" and "actions" in
                    event.get("data", {}))  # fmt: skip

    return match


async def test_request_phone_approval_link_revoke_and_audit(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        # Footage to share: at least one clip in the last minutes.
        await owner.wait_for_a_clip(CAMERA)
        async with (
            owner.websocket() as bus,
            phone_channel(session, stack.ha.url, stack.phones[OWNER]) as (owner_phone, owner_sub),
            phone_channel(session, stack.ha.url, stack.phones["guest"]) as (guest_phone, guest_sub),
        ):
            updates = await bus.subscribe(
                type="subscribe_events", event_type="doorstep_share_updated"
            )
            rejected = await bus.subscribe(
                type="subscribe_events", event_type="doorstep_share_decision_rejected"
            )
            answer = await owner.call_service(
                "doorstep",
                "request_share",
                {
                    "entity_id": f"event.{CAMERA}_doorbell",
                    "last_minutes": 10,
                    "requester": "Neighbour Alice",
                    "reason": "Parcel went missing",
                },
                response=True,
            )
            share_id = answer["service_response"]["share_id"]
            assert answer["service_response"]["state"] == "pending"

            # Both configured phones get the actionable notification over local push.
            note = await owner_phone.next_event(owner_sub, _notification_for(share_id))
            guest_note = await guest_phone.next_event(guest_sub, _notification_for(share_id))
            actions = {a["action"].split("_")[1]: a["action"] for a in note["data"]["actions"]}
            assert set(actions) == {"APPROVE", "DENY"}
            # Minimal detail: no requester, no reason, no link leaves through the push relay.
            assert "Alice" not in note["message"]
            assert "Parcel" not in note["message"]
            assert "http" not in str(note)

            # The guest is notified but is no approver: the tap is refused.
            guest_approve = next(
                a["action"] for a in guest_note["data"]["actions"] if "_APPROVE_" in a["action"]
            )
            guest = stack.phones["guest"]
            assert (
                await tap_action(session, stack.ha.url, guest, guest_approve, note["data"]["tag"])
                == 200
            )
            refusal = await bus.next_event(rejected, lambda _e: True)
            assert refusal["data"]["reason"] == "not_an_approver"
            assert refusal["data"]["share_id"] == share_id
            assert refusal["data"]["user_id"] == stack.users["guest"]

            # The owner taps Approve on their phone.
            owner_phone_reg = stack.phones[OWNER]
            status = await tap_action(
                session, stack.ha.url, owner_phone_reg, actions["APPROVE"], note["data"]["tag"]
            )
            assert status == 200
            approved = await bus.next_event(updates, _share_event(share_id, "approved"), 60)
            assert approved["data"]["decided_by"] == "Owner"
            assert approved["data"]["decided_via"] == "phone"
            assert approved["data"]["redact"] is True
            ready = await bus.next_event(updates, _share_event(share_id, "ready"), 180)
            link = ready["data"]["link"]
            assert link.startswith("/api/doorstep/share/")

            # The recipient needs no login, only the link, and gets a redacted MP4.
            async with aiohttp.ClientSession() as recipient:
                async with recipient.get(f"{stack.ha.url}{link}") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"] == "video/mp4"
                    video = await response.read()
                assert h264_frames(video) >= 1
                # The privacy mask is filled in every frame of the release. The watermark's
                # two lines are written over everything at the top, masks included (text
                # that covers footage, never shows any): the mask is checked below them.
                below_watermark = [[x, max(y, WATERMARK_ROWS)] for x, y in PRIVACY_MASK]
                assert masked_area_is_black(video, below_watermark)

                # The same tap again is spent: a nonce works once.
                assert await tap_action(
                    session, stack.ha.url, owner_phone_reg, actions["APPROVE"], note["data"]["tag"]
                ) == 200  # fmt: skip
                again = await bus.next_event(rejected, lambda _e: True)
                assert again["data"]["reason"] == "already_used"

                await owner.call_service("doorstep", "revoke_share", {"share_id": share_id})
                await bus.next_event(updates, _share_event(share_id, "revoked"), 60)
                async with recipient.get(f"{stack.ha.url}{link}") as response:
                    assert response.status in (404, 410)

    verify = stack.bridge.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # Every step of this share is in the chain: the main steps in order, and both
    # refused taps (audited in the background, so their place may vary).
    audit = stack.work / "bridge-data/audit/audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    kinds = [r["kind"] for r in records if r.get("share_id") == share_id]
    steps = ["request", "notification", "decision", "render", "download", "revoke"]
    assert [k for k in kinds if k in steps] == steps
    refusals = [r["reason"] for r in records
                if r.get("share_id") == share_id and r["kind"] == "decision_refused"]  # fmt: skip
    assert sorted(refusals) == ["already_used", "not_an_approver"]
    decision = next(r for r in records if r.get("share_id") == share_id and r["kind"] == "decision")
    assert decision["by"] == "Owner"
    # The MP4 behind the link was rendered with redaction on (masks filled, faces blurred).
    render = next(
        r for r in records if r.get("share_id") == share_id and r["kind"] == "render_start"
    )
    assert render["redact"] is True
