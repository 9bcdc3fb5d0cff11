"""A release you can prove, the way it happens: a legal request with a scope, two approvers
on their phones, a signed export checked offline, the recipient's page in Chromium.

Through a real Home Assistant and bridge (``sharing.legal_two_approvers`` is on in the
stack). The phones are companion-app registrations, as in test_sharing.py: nothing here
calls the bridge's decision API.

The page's screenshot goes to ``test-artifacts/ha-<version>/browser/07-share-page.png``
(docs/images/share-page.png is one of them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import subprocess
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import PRIVACY_MASK
from tests.e2e.ha_client import OWNER, HaClient, set_approvers, tap_action, wait_entry_loaded
from tests.e2e.servers import CAMERA, VENV_BIN, artifacts, masked_area_is_black
from tests.e2e.stack import Stack
from tests.e2e.test_sharing import (
    WATERMARK_ROWS,
    _notification_for,
    _share_event,
    phone_channel,
)

pytestmark = pytest.mark.slow

AUTHORITY = "Gendarmerie nationale, brigade de Villeurbanne"


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "doorstep-bridge"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _second_prompt(share_id: str) -> Any:
    match_first = _notification_for(share_id)

    def match(event: dict[str, Any]) -> bool:
        return bool(match_first(event) and "second approver" in event.get("message", ""))

    return match


async def _both_approve(stack: Stack, session: aiohttp.ClientSession) -> None:
    owner = HaClient(session, stack.ha.url, stack.owner_token)
    await set_approvers(
        owner,
        stack.entry_id,
        [stack.owner_id, stack.users["guest"]],
        [phone.notify_service for phone in stack.phones.values()],
    )
    await wait_entry_loaded(owner, stack.entry_id)


async def _owner_alone_approves(stack: Stack, session: aiohttp.ClientSession) -> None:
    owner = HaClient(session, stack.ha.url, stack.owner_token)
    await set_approvers(
        owner,
        stack.entry_id,
        [stack.owner_id],
        [phone.notify_service for phone in stack.phones.values()],
    )
    await wait_entry_loaded(owner, stack.entry_id)


async def test_legal_request_two_phones_signed_export_and_recipient_page(
    stack: Stack, page: Any, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_for_a_clip(CAMERA)
        now = datetime.now(UTC)
        scope = {
            "scope_start": (now - timedelta(minutes=20)).isoformat(),
            "scope_end": (now + timedelta(minutes=5)).isoformat(),
        }
        legal = {
            "entity_id": f"event.{CAMERA}_doorbell",
            "requester": "Gendarmerie de Villeurbanne",
            "reason": "Burglary at number 12",
            "authority": AUTHORITY,
            "reference": "PV 2026/004512",
            "legal_basis": "Code de procédure pénale, art. 60-1",
        }

        # Outside its scope: refused, and the bridge says what was outside.
        async with session.post(
            f"{stack.ha.url}/api/services/doorstep/request_share",
            headers=owner.headers,
            json={
                **legal,
                **scope,
                "start": (now - timedelta(minutes=40)).isoformat(),
                "end": (now - timedelta(minutes=30)).isoformat(),
            },
        ) as response:
            assert response.status >= 400
        audit = stack.work / "bridge-data/audit/audit.jsonl"
        refusals = [
            json.loads(line)
            for line in audit.read_text().splitlines()
            if '"request_rejected"' in line
        ]
        assert any("outside the stated scope" in r["error"] for r in refusals), refusals

        await _both_approve(stack, session)
        try:
            async with (
                owner.websocket() as bus,
                phone_channel(session, stack.ha.url, stack.phones[OWNER]) as (owner_ws, owner_sub),
                phone_channel(session, stack.ha.url, stack.phones["guest"]) as (
                    guest_ws,
                    guest_sub,
                ),
            ):
                updates = await bus.subscribe(
                    type="subscribe_events", event_type="doorstep_share_updated"
                )
                answer = await owner.call_service(
                    "doorstep",
                    "request_share",
                    {**legal, **scope, "last_minutes": 10},
                    response=True,
                )
                share_id = answer["service_response"]["share_id"]
                note = await owner_ws.next_event(owner_sub, _notification_for(share_id))
                assert note["message"].startswith("LEGAL REQUEST:")
                approve = next(
                    a["action"] for a in note["data"]["actions"] if "_APPROVE_" in a["action"]
                )
                tag = note["data"]["tag"]
                assert (
                    await tap_action(session, stack.ha.url, stack.phones[OWNER], approve, tag)
                    == 200
                )

                # The first approval waits: both phones are asked again, for a second person
                # (at minimal detail without naming the first through the push relay).
                second = await guest_ws.next_event(guest_sub, _second_prompt(share_id), 60)
                assert second["message"].startswith("Approved once: a second approver")
                assert "Owner" not in second["message"]
                guest_approve = next(
                    a["action"] for a in second["data"]["actions"] if "_APPROVE_" in a["action"]
                )
                guest = stack.phones["guest"]
                assert await tap_action(session, stack.ha.url, guest, guest_approve, tag) == 200
                approved = await bus.next_event(updates, _share_event(share_id, "approved"), 60)
                assert approved["data"]["decided_by"] == "Guest"
                assert approved["data"]["approved_by"] == ["Owner"]
                assert approved["data"]["kind"] == "legal"
                # The bridge told the two apart by their Home Assistant user ids, not names.
                decisions = [
                    record
                    for record in map(json.loads, audit.read_text().splitlines())
                    if record["kind"] == "decision" and record.get("share_id") == share_id
                ]
                assert [r["by"] for r in decisions] == ["Owner", "Guest"]
                ids = [r.get("by_id") for r in decisions]
                assert all(ids), decisions
                assert ids[0] != ids[1]
                ready = await bus.next_event(updates, _share_event(share_id, "ready"), 240)
        finally:
            await _owner_alone_approves(stack, session)

        # The recipient outside the home: the video and its signature through Home Assistant.
        link = f"{stack.ha.url}{ready['data']['link']}"
        async with aiohttp.ClientSession() as recipient:
            async with recipient.get(link) as response:
                assert response.status == 200
                video = await response.read()
            async with recipient.get(f"{link}/signature") as response:
                assert response.status == 200
                signature = await response.read()
        export = tmp_path / f"doorstep-{share_id}.mp4"
        export.write_bytes(video)
        (tmp_path / f"{export.name}.doorstep-sig.json").write_bytes(signature)

        checked = _verify("verify-export", str(export))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert (
            "VALID: this file is, byte for byte, the file the key below signed." in checked.stdout
        )
        assert "PV 2026/004512" in checked.stdout
        assert "Owner, Guest" in checked.stdout
        below_watermark = [[x, max(y, WATERMARK_ROWS)] for x, y in PRIVACY_MASK]
        assert masked_area_is_black(video, below_watermark)
        manifest = json.loads(signature)["manifest"]
        assert manifest["legal"]["authority"] == AUTHORITY
        assert manifest["redactions"]["privacy_masks"] == {CAMERA: 1}

        changed = tmp_path / "changed.mp4"
        data = bytearray(video)
        data[len(data) // 2] ^= 0x01
        changed.write_bytes(bytes(data))
        refused = _verify("verify-export", str(changed), f"{export}.doorstep-sig.json")
        assert refused.returncode == 1
        assert "NOT VALID" in refused.stdout

        # The page a recipient's browser gets on the link, through Home Assistant: no
        # script, the player, and a signature link that downloads the signature.
        await page.goto(link)
        await page.wait_for_selector("video")
        await page.wait_for_function(
            "document.querySelector('video').readyState >= 2", timeout=30_000
        )
        text = await page.inner_text("main")
        assert "Released under legal authority" in text
        assert AUTHORITY in text
        assert "front_door: 1 area(s) blacked out" in text
        assert await page.locator("script").count() == 0
        async with page.expect_download() as downloading:
            await page.get_by_role("link", name="Signature").click()
        downloaded = await downloading.value
        assert downloaded.suggested_filename == f"{export.name}.doorstep-sig.json"
        saved = tmp_path / "downloaded-signature.json"
        await downloaded.save_as(saved)
        assert saved.read_bytes() == signature
        await page.set_viewport_size({"width": 900, "height": 1000})
        shot = artifacts() / "browser" / "07-share-page.png"
        await page.screenshot(path=str(shot), full_page=True)

        await owner.call_service("doorstep", "revoke_share", {"share_id": share_id})
        response = await page.goto(link)
        assert response is not None
        assert response.status == 410
        assert "This link no longer works" in await page.inner_text("main")

    report = _verify("report", "--config", str(stack.bridge.config_path))
    assert report.returncode == 0, report.stdout + report.stderr
    assert "reference:   PV 2026/004512" in report.stdout
    assert "approved by: Owner, Guest" in report.stdout
    assert "Gendarmerie de Villeurbanne (legal):" in report.stdout
    verify = stack.bridge.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr
