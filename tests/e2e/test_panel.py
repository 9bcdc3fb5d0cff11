"""The Doorstep panel in a real browser: a request approved with a click, its link, revoked;
the audit log verified, with the share's records; clips found by reason and played; the
same page at a phone's width.

Screenshots go to ``test-artifacts/ha-<version>/browser/05-panel*.png``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import log_in, shot, wait_playable
from tests.e2e.ha_client import HaClient, request_share
from tests.e2e.servers import CAMERA, Mqtt
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

TIMEOUT = 60_000  # ms: a loaded 2-core machine renders slowly
RENDER_TIMEOUT = 180_000  # ms: the bridge renders the redacted MP4 before the link exists
PHONE = {"width": 390, "height": 844}


async def _ring_clip(owner: HaClient) -> str:
    """Wait until the bridge lists a clip that a doorbell press started; the bridge's id."""
    async with owner.websocket() as ws:
        bridge_id = (await ws.call(type="doorstep/shares"))["bridges"][0]["bridge_id"]
        for _ in range(120):
            clips = await ws.call(
                type="doorstep/clips", bridge_id=bridge_id, camera=CAMERA, reason="ring"
            )
            if clips["clips"]:
                return str(bridge_id)
            await asyncio.sleep(1)
    raise AssertionError("no ring clip after a press")


async def test_panel_approve_link_revoke_and_clips_by_reason(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_for_a_clip(CAMERA)
        # A press records a clip whose reason is "ring".
        mqtt = Mqtt(stack.mqtt_port)
        try:
            mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
        finally:
            mqtt.close()
        answer = await request_share(owner, "Neighbour Alice", "Parcel went missing")
        share_id = answer["share_id"]

        await log_in(page, stack)
        # The sidebar has the panel; it opens at /doorstep.
        await expect(page.locator('a[href="/doorstep"]').first).to_be_attached()
        await page.goto(f"{stack.ha.url}/doorstep")
        card = page.locator(f'doorstep-panel .share[data-share="{share_id}"]')
        await expect(card).to_have_attribute("data-state", "pending")
        await expect(card).to_contain_text("Neighbour Alice")
        await expect(card).to_contain_text("Parcel went missing")
        await expect(card).to_contain_text("Front door")
        await shot(page, "05-panel-pending.png")

        await card.get_by_role("button", name="Approve", exact=True).click()
        await expect(card).to_have_attribute("data-state", "ready", timeout=RENDER_TIMEOUT)
        link = await card.locator(".link input").input_value()
        assert "/api/doorstep/share/" in link
        # This Home Assistant has no address for the internet: the panel says the link is local.
        await expect(card.locator(".link-note")).to_contain_text("no address for the internet")
        await shot(page, "05-panel.png")
        # The link works for a recipient with no login: HA relays the redacted MP4.
        async with session.get(link) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp4"

        await card.get_by_role("button", name="Revoke", exact=True).click()
        await expect(card).to_have_attribute("data-state", "revoked")
        await expect(card.locator(".link")).to_have_count(0)
        await expect(card).to_contain_text("Revoked by")
        async with session.get(link) as response:
            assert response.status in (404, 410)

        # The audit log (administrators): verified, and the share's story in it, newest first.
        audit = page.locator("doorstep-panel .audit-section")
        await expect(audit.locator('.check[data-ok="true"]')).to_contain_text("Verified")
        records = audit.locator(f'tr.record[data-share="{share_id}"]')
        await expect(records.filter(has_text="Revoked")).to_have_count(1)
        await expect(records.filter(has_text="Approved")).to_have_count(1)
        await expect(records.filter(has_text="Revoked")).to_contain_text(share_id)
        kinds = await records.evaluate_all("items => items.map(i => i.dataset.kind)")
        # request → decision → render → download (the link fetched above) → revoke → purge
        order = [kinds.index(k) for k in ("purge", "revoke", "download", "decision", "request")]
        assert order == sorted(order), kinds
        seqs = await audit.locator("tr.record").evaluate_all(
            "items => items.map(i => Number(i.dataset.seq))"
        )
        assert seqs == sorted(seqs, reverse=True)
        await audit.scroll_into_view_if_needed()
        await shot(page, "05-panel-audit.png")
        await page.evaluate("window.scrollTo(0, 0)")

        # Clips by reason: only the press's clips, one played through the media source.
        bridge_id = await _ring_clip(owner)
        await page.locator("doorstep-panel .chip", has_text="Ring").click()
        await expect(page.locator("doorstep-panel ul.clips")).to_have_attribute(
            "data-shown", f"{bridge_id}/{CAMERA}|ring"
        )
        clips = page.locator("doorstep-panel li.clip")
        await expect(clips.first).to_have_attribute("data-reason", "ring")
        reasons = await clips.evaluate_all("items => items.map(i => i.dataset.reason)")
        assert set(reasons) == {"ring"}
        await clips.first.get_by_role("button", name="Play").click()
        video = page.locator("doorstep-panel .player video")
        await wait_playable(page, video)
        await shot(page, "05-panel-clip.png")

        # A phone: one column, the sidebar behind the menu button.
        await page.set_viewport_size(PHONE)
        await page.wait_for_timeout(500)
        shares_box = await page.locator("doorstep-panel .shares-section").bounding_box()
        clips_box = await page.locator("doorstep-panel .clips-section").bounding_box()
        assert shares_box is not None
        assert clips_box is not None
        assert clips_box["y"] > shares_box["y"] + shares_box["height"] - 1  # stacked
        assert shares_box["width"] <= PHONE["width"]
        audit_box = await page.locator("doorstep-panel .audit-section").bounding_box()
        assert audit_box is not None
        assert audit_box["width"] <= PHONE["width"]
        await page.evaluate("window.scrollTo(0, 0)")
        await shot(page, "05-panel-phone.png")


async def test_panel_says_when_the_audit_log_is_not_intact(stack: Stack, page: Any) -> None:
    """A record changed on disk: the panel says so, prominently, naming it; then put back."""
    from playwright.async_api import expect

    log = stack.work / "bridge-data" / "audit" / "audit.jsonl"
    original = b'"kind":"log_created"'
    changed = b'"kind":"log_cr3ated"'  # the same length: records appended meanwhile stay put
    offset = log.read_bytes().index(original)

    def write_at(data: bytes) -> None:
        with log.open("r+b") as file:
            file.seek(offset)
            file.write(data)

    await log_in(page, stack)
    write_at(changed)
    try:
        await page.goto(f"{stack.ha.url}/doorstep")
        check = page.locator("doorstep-panel .audit-section .check")
        await expect(check).to_have_attribute("data-ok", "false")
        await expect(check).to_contain_text("NOT intact")
        await expect(check).to_contain_text(
            "Record 1 (audit.jsonl): contents changed: its hash does not match"
        )
        await page.locator("doorstep-panel .audit-section").scroll_into_view_if_needed()
        await shot(page, "05-panel-audit-broken.png")
    finally:
        write_at(original)
    await page.reload()
    await expect(page.locator("doorstep-panel .audit-section .check")).to_have_attribute(
        "data-ok", "true"
    )
