"""The Doorstep panel with a keyboard and a screen reader, in Chromium against the real bridge
and Home Assistant: share requests decided with Tab and Enter, each button saying whose
request it decides, the focus kept on the request decided and its new state said; clips
filtered, paged, played and forgotten the same way, the focus never dropped to the page.

Screenshots go to ``test-artifacts/ha-<version>/browser/08-panel-keyboard*.png``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import log_in, shot, wait_playable
from tests.e2e.ha_client import HaClient, request_share
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

TIMEOUT = 60_000  # ms: a loaded 2-core machine renders slowly

#: What has the keyboard focus, through the shadow roots: in the panel, or None.
FOCUSED = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  const host = el && el.getRootNode().host;
  if (!host || host.localName !== "doorstep-panel") return null;
  return { tag: el.localName, action: el.dataset.action || null, reason: el.dataset.reason ?? null,
    share: el.dataset.share || null, clip: el.dataset.clip || null,
    isShare: el.classList.contains("share") };
}"""


async def focused(page: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await page.evaluate(FOCUSED)
    return result


async def tab_to(page: Any, **wanted: Any) -> None:
    """Press Tab until the focus is on the panel's control with these data attributes."""
    for _ in range(80):
        await page.keyboard.press("Tab")
        now = await focused(page)
        if now and all(now.get(key) == value for key, value in wanted.items()):
            return
    raise AssertionError(f"Tab never reached {wanted}")


async def focus_becomes(page: Any, **wanted: Any) -> dict[str, Any]:
    """Wait (up to a minute) until the focus is on what ``wanted`` names; fail if it never is."""
    now = None
    for _ in range(120):
        now = await focused(page)
        if now and all(now.get(key) == value for key, value in wanted.items()):
            return now
        await page.wait_for_timeout(500)
    raise AssertionError(f"the focus is on {now}, not {wanted}")


async def test_share_requests_decided_with_the_keyboard(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_for_a_clip(CAMERA)
        kim = (await request_share(owner, "Neighbour Kim", "Scooter gone"))["share_id"]
        lou = (await request_share(owner, "Neighbour Lou", "Broken window"))["share_id"]
        try:
            await log_in(page, stack)
            await page.goto(f"{stack.ha.url}/doorstep")
            panel = page.locator("doorstep-panel")
            # Each request is a group named after its requester; its buttons say whose it is.
            for name, share_id in (("Kim", kim), ("Lou", lou)):
                group = panel.get_by_role("group", name=f"Requested by Neighbour {name}")
                await expect(group).to_have_attribute("data-share", share_id, timeout=TIMEOUT)
                for button in ("Approve", "Deny"):
                    await expect(
                        group.get_by_role("button", name=button, exact=True)
                    ).to_have_accessible_description(f"Requested by Neighbour {name}")
            status = panel.locator(".status")
            await expect(status).to_have_attribute("role", "status")

            # Kim's request denied with the keyboard: the focus stays on it, its state is said.
            await tab_to(page, action="deny", share=kim)
            await page.keyboard.press("Enter")
            await expect(panel.locator(f'.share[data-share="{kim}"]')).to_have_attribute(
                "data-state", "denied", timeout=TIMEOUT
            )
            await focus_becomes(page, isShare=True, share=kim)
            await expect(status).to_have_text("Requested by Neighbour Kim: Denied")

            # Lou's approved, then revoked, the same way.
            await tab_to(page, action="approve", share=lou)
            await page.keyboard.press("Enter")
            await focus_becomes(page, isShare=True, share=lou)
            await expect(status).to_contain_text(
                re.compile(r"Requested by Neighbour Lou: (Approved|Preparing|Ready)")
            )
            await shot(page, "08-panel-keyboard-approved.png")
            # The next Tab stays with Lou's request: its Revoke (after its link, once ready).
            await tab_to(page, action="revoke", share=lou)
            await page.keyboard.press("Enter")
            await focus_becomes(page, isShare=True, share=lou)
            await expect(status).to_have_text("Requested by Neighbour Lou: Revoked")
        finally:
            # Their clips are held while they wait: let the later tests have them.
            async with owner.websocket() as ws:
                shares = (await ws.call(type="doorstep/shares"))["shares"]
            for share in shares:
                if share["share_id"] in (kim, lou) and share["state"] == "pending":
                    await owner.call_service(
                        "doorstep", "deny_share", {"share_id": share["share_id"]}
                    )


async def test_clips_with_the_keyboard(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        async with owner.websocket() as ws:
            bridge_id = (await ws.call(type="doorstep/shares"))["bridges"][0]["bridge_id"]
            for _ in range(180):
                answer = await ws.call(
                    type="doorstep/clips", bridge_id=bridge_id, camera=CAMERA, reason="motion"
                )
                if len(answer["clips"]) >= 3:
                    break
                await asyncio.sleep(1)
            else:
                raise AssertionError("fewer than 3 motion clips after three minutes")
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await log_in(page, stack)
    await page.goto(f"{stack.ha.url}/doorstep")
    panel = page.locator("doorstep-panel")
    clips = panel.locator("li.clip")
    await expect(clips.first).to_be_attached(timeout=TIMEOUT)
    await panel.evaluate("panel => { panel.clipPage = 1; }")  # "Older clips" at once

    # A reason chosen with Enter: the chip keeps the focus (the chips are drawn again).
    await tab_to(page, action="reason", reason="motion")
    await page.keyboard.press("Enter")
    await expect(panel.locator("ul.clips")).to_have_attribute(
        "data-shown", re.compile(r"\|motion$"), timeout=TIMEOUT
    )
    now = await focus_becomes(page, action="reason", reason="motion")
    assert now["tag"] == "button"
    await expect(panel.locator('.chip[data-reason="motion"]')).to_have_attribute(
        "aria-pressed", "true"
    )

    # Older clips: the first of them has the focus, where "Older clips" was. (The camera
    # records a clip every 12 s, which comes on top: the list is read, not counted.)
    first = await clips.last.get_attribute("data-clip")
    await tab_to(page, action="more")
    await page.keyboard.press("Enter")
    await expect(clips.last).not_to_have_attribute("data-clip", first, timeout=TIMEOUT)
    ids = await clips.evaluate_all("items => items.map(i => i.dataset.clip)")
    second = ids[ids.index(first) + 1]
    await focus_becomes(page, action="play", clip=second)
    # "Play" says which clip: the clip's time, reason and length.
    older = panel.locator(f'li.clip[data-clip="{second}"]')
    play = older.get_by_role("button", name="Play", exact=True)
    await expect(play).to_have_accessible_description(re.compile(r" · Motion · \d+ s$"))
    await expect(
        older.get_by_role("button", name="Forget", exact=True)
    ).to_have_accessible_description(re.compile(r" · Motion · \d+ s$"))

    # Played: the video has the focus; Close gives it back to the clip's Play button.
    await page.keyboard.press("Enter")
    video = panel.locator(".player video")
    await wait_playable(page, video)
    await focus_becomes(page, tag="video")
    await tab_to(page, action="close")
    await page.keyboard.press("Enter")
    await expect(panel.locator(".player")).to_be_hidden()
    await focus_becomes(page, action="play", clip=second)

    # Forgotten: the focus goes to the clip before it (the last one shown), and it is said.
    await tab_to(page, action="forget", clip=second)
    await page.keyboard.press("Enter")
    await expect(panel.locator(f'li.clip[data-clip="{second}"]')).to_have_count(0, timeout=TIMEOUT)
    await focus_becomes(page, action="play", clip=first)
    await expect(panel.locator(".status")).to_have_text("Clip forgotten.")
    await shot(page, "08-panel-keyboard-clips.png")


#: The contrast of a button's text on its fill (WCAG's formula), in the page.
CONTRAST = """(el) => {
  const rgb = (css) => css.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => { const [r, g, b] = c.map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const style = getComputedStyle(el);
  const canvas = document.createElement("canvas").getContext("2d");
  const solid = (css) => { canvas.fillStyle = "#fff"; canvas.fillRect(0, 0, 1, 1);
    canvas.fillStyle = css; canvas.fillRect(0, 0, 1, 1); return [...canvas.getImageData(0, 0, 1, 1).data]; };
  const [a, b] = [lum(solid(style.color)), lum(solid(style.backgroundColor))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_buttons_readable_in_home_assistants_themes(
    stack: Stack, page: Any, scheme: str
) -> None:
    """Approve, Deny and the reason chosen: 4.5:1 at least, in the default light and dark
    themes (white on Home Assistant's light blue was 2.6:1)."""
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        share_id = (await request_share(owner, "Neighbour Max", "Contrast"))["share_id"]
        try:
            await page.emulate_media(color_scheme=scheme)
            await log_in(page, stack)
            await page.goto(f"{stack.ha.url}/doorstep")
            share = page.locator(f'doorstep-panel .share[data-share="{share_id}"]')
            await expect(share).to_be_attached(timeout=TIMEOUT)
            for button in (
                share.locator('[data-action="approve"]'),
                share.locator('[data-action="deny"]'),
                page.locator('doorstep-panel .chip[aria-pressed="true"]'),
            ):
                ratio = await button.evaluate(CONTRAST)
                assert ratio >= 4.5, (await button.inner_text(), round(ratio, 2))
        finally:
            await owner.call_service("doorstep", "deny_share", {"share_id": share_id})


#: The audit log's column headers, in order.
AUDIT_HEADERS = ["When", "What", "Share or camera", "Who"]

#: For each cell of a row, the text of its column's header, by the table's own model (the
#: one a screen reader follows from a cell to the header it reads out).
HEADER_OF = """(cells) => cells.map((cell) => {
  const head = cell.closest('table')?.tHead?.rows?.[0]?.cells?.[cell.cellIndex];
  return head?.scope === 'col' ? head.textContent : null;
})"""


async def _ax_names(page: Any, role: str) -> list[str]:
    """The names of the nodes of this role in Chromium's own accessibility tree (what a
    screen reader gets, whatever the page's styles), in order."""
    cdp = await page.context.new_cdp_session(page)
    try:
        nodes = (await cdp.send("Accessibility.getFullAXTree"))["nodes"]
    finally:
        await cdp.detach()
    return [
        str(node.get("name", {}).get("value", ""))
        for node in nodes
        if not node.get("ignored") and node.get("role", {}).get("value") == role
    ]


async def test_audit_log_is_a_table_with_named_columns(stack: Stack, page: Any) -> None:
    """The audit log's records are read as a table whose columns are named (When, What,
    Share or camera, Who), each value under its header, on a phone too: a screen reader
    heard four unlabelled values a record."""
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        share_id = (await request_share(owner, "Neighbour Ada", "Audit table"))["share_id"]
        try:
            await log_in(page, stack)
            await page.goto(f"{stack.ha.url}/doorstep")
            table = page.locator("doorstep-panel").get_by_role("table", name="Audit log")
            request = (
                table.get_by_role("row")
                .filter(has_text=f"Share {share_id}")
                .filter(has_text="Share requested")
            )
            await expect(request).to_have_count(1, timeout=TIMEOUT)
            await expect(table.get_by_role("columnheader")).to_have_text(AUDIT_HEADERS)
            cells = request.get_by_role("cell")
            await expect(cells).to_have_text(
                [re.compile(r"\d"), "Share requested", f"Share {share_id}", "Neighbour Ada"]
            )
            assert await cells.evaluate_all(HEADER_OF) == AUDIT_HEADERS
            # Chromium's tree has them too, at a desk's width and at a phone's (where the
            # headers are not shown and a record takes two lines).
            for width in (1280, 390):
                await page.set_viewport_size({"width": width, "height": 800})
                await expect(request).to_be_visible()
                headers = await _ax_names(page, "columnheader")
                assert headers == AUDIT_HEADERS, (width, headers)
                assert "Neighbour Ada" in await _ax_names(page, "cell"), width
            await shot(page, "08-panel-audit-table.png")
        finally:
            await owner.call_service("doorstep", "deny_share", {"share_id": share_id})
