"""Forget a clip from the Doorstep panel in a real browser: confirmed, erased on the bridge,
gone from the list; a clip a pending share holds is refused, the refusal by the clip; a user
whose decisions do not count (the guest) gets no Forget.

Screenshots go to ``test-artifacts/ha-<version>/browser/05-panel-forget*.png``.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import GUEST_PASSWORD, log_in, shot
from tests.e2e.ha_client import HaClient, request_share
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack, bridge_clips

pytestmark = pytest.mark.slow


async def _bridge_status(session: aiohttp.ClientSession, stack: Stack, clip_id: str) -> int:
    headers = {"Authorization": f"Bearer {stack.bridge.token}"}
    async with session.get(f"{stack.bridge.url}/api/clips/{clip_id}", headers=headers) as response:
        return response.status


async def test_panel_forgets_a_clip_and_shows_a_refusal(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        state = await owner.wait_state(
            f"sensor.{CAMERA}_last_clip",
            lambda s: bool(s["attributes"].get("clip_id")),
            timeout=120,
        )
        clip_id = state["attributes"]["clip_id"]
        assert await _bridge_status(session, stack, clip_id) == 200

        dialogs: list[str] = []

        async def accept(dialog: Any) -> None:
            dialogs.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await log_in(page, stack)
        await page.goto(f"{stack.ha.url}/doorstep")
        row = page.locator(f'doorstep-panel li.clip[data-clip="{clip_id}"]')
        await expect(row).to_have_count(1)
        await row.get_by_role("button", name="Forget", exact=True).click()

        # Confirmed, then gone: from the list and from the bridge.
        await expect(row).to_have_count(0)
        assert len(dialogs) == 1
        assert "erased for good" in dialogs[0]
        assert "snapshot" in dialogs[0]
        assert "thumbnail" in dialogs[0]
        assert "audit record" in dialogs[0]
        assert await _bridge_status(session, stack, clip_id) == 404
        assert clip_id not in {c["id"] for c in await bridge_clips(session, stack)}

        # A pending share request holds the last minutes' clips: forgetting one is refused,
        # and Home Assistant's message, naming the share, stands by the clip.
        await owner.wait_state(
            f"sensor.{CAMERA}_last_clip",
            lambda s: s["attributes"].get("clip_id") not in (None, clip_id),
            timeout=120,
        )  # a clip for the share to hold: the only one may just have been forgotten
        request = await request_share(owner, "Neighbour Alice", "Parcel went missing")
        share_id = request["share_id"]
        assert request["state"] == "pending"
        try:
            held = next(c["id"] for c in await bridge_clips(session, stack) if c["held"])
            await page.reload()
            held_row = page.locator(f'doorstep-panel li.clip[data-clip="{held}"]')
            await expect(held_row).to_have_count(1)
            await held_row.get_by_role("button", name="Forget", exact=True).click()
            error = held_row.locator(".clip-error")
            await expect(error).to_contain_text(share_id)
            await expect(error).to_contain_text("Deny or revoke the share first")
            await expect(held_row).to_have_count(1)  # still listed
            assert len(dialogs) == 2
            assert await _bridge_status(session, stack, held) == 200
            await held_row.scroll_into_view_if_needed()
            await shot(page, "05-panel-forget-refused.png")
        finally:
            await owner.call_service("doorstep", "deny_share", {"share_id": share_id})


async def test_panel_offers_forget_only_to_deciders(stack: Stack, page: Any) -> None:
    """The guest, neither approver nor administrator, sees the clips but no Forget."""
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_state(
            f"sensor.{CAMERA}_last_clip",
            lambda s: bool(s["attributes"].get("clip_id")),
            timeout=120,
        )
    await log_in(page, stack, "guest", GUEST_PASSWORD)
    await page.goto(f"{stack.ha.url}/doorstep")
    clips = page.locator("doorstep-panel li.clip")
    await expect(clips.first.get_by_role("button", name="Play")).to_be_visible()
    await expect(page.locator('doorstep-panel [data-action="forget"]')).to_have_count(0)
