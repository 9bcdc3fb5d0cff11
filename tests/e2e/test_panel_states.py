"""The Doorstep panel and card as an owner finds them in less common moments: a legal request
half approved, a share that failed, the bridge offline.

Screenshots go to ``test-artifacts/ha-<version>/browser/08-panel-*.png``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import log_in, shot
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow


async def test_panel_legal_request_after_its_first_approval(stack: Stack, page: Any) -> None:
    """Legal: marked, its authority shown; after the owner's approval it says a second
    approver is needed, and offers the owner no second Approve (the bridge refuses it)."""
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        now = datetime.now(UTC)
        answer = await owner.call_service(
            "doorstep",
            "request_share",
            {
                "entity_id": f"event.{CAMERA}_doorbell",
                "requester": "Gendarmerie de Villeurbanne",
                "reason": "Burglary at number 14",
                "authority": "Gendarmerie nationale",
                "reference": "PV 2026/004513",
                "legal_basis": "Code de procédure pénale, art. 60-1",
                "scope_start": (now - timedelta(minutes=20)).isoformat(),
                "scope_end": (now + timedelta(minutes=5)).isoformat(),
                "last_minutes": 10,
            },
            response=True,
        )
        share_id = answer["service_response"]["share_id"]
        try:
            await log_in(page, stack)
            await page.goto(f"{stack.ha.url}/doorstep")
            card = page.locator(f'doorstep-panel .share[data-share="{share_id}"]')
            await expect(card).to_have_attribute("data-state", "pending")
            await expect(card.locator(".state.legal")).to_have_text("Legal request")
            await expect(card).to_contain_text("Gendarmerie nationale")
            await expect(card).to_contain_text("PV 2026/004513")
            await expect(card).to_contain_text("Code de procédure pénale, art. 60-1")

            await card.get_by_role("button", name="Approve", exact=True).click()
            # The bridge keeps it pending until someone else approves: the panel says so.
            await expect(card).to_contain_text("Approved by")
            await expect(card.locator(".second")).to_have_text(
                "A legal request needs a second approver: someone else must approve it too."
            )
            await expect(card).to_have_attribute("data-state", "pending")
            await expect(card.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
            await expect(card.get_by_role("button", name="Deny", exact=True)).to_be_enabled()
            await shot(page, "08-panel-legal-first-approval.png")
        finally:
            # Its clips are held while it waits: let the later tests have them.
            await owner.call_service("doorstep", "deny_share", {"share_id": share_id})
