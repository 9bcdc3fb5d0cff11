"""Forget a visit through a real Home Assistant and bridge: erased, audited, refused when held."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.e2e.ha_client import HaClient, HaError, HaWebSocket, request_share
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow


async def _bridge(session: aiohttp.ClientSession, stack: Stack, path: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {stack.bridge.token}"}
    async with session.get(f"{stack.bridge.url}{path}", headers=headers) as response:
        return response.status, await response.json()


def _audit(stack: Stack) -> list[dict[str, Any]]:
    audit = stack.work / "bridge-data/audit/audit.jsonl"
    return [json.loads(line) for line in audit.read_text().splitlines()]


async def _browsed_clip(ws: HaWebSocket, clip_id: str) -> str | None:
    """The media browser id of a clip, found by browsing as the frontend does (or None)."""
    folders = ["media-source://doorstep"]
    while folders:
        item = await ws.call(type="media_source/browse_media", media_content_id=folders.pop())
        for child in item.get("children") or []:
            if child["media_content_id"].endswith(f"/{clip_id}"):
                return str(child["media_content_id"])
            if child.get("can_expand"):
                folders.append(child["media_content_id"])
    return None


async def test_forget_a_clip_from_home_assistant(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        state = await owner.wait_state(
            f"sensor.{CAMERA}_last_clip",
            lambda s: bool(s["attributes"].get("clip_id")),
            timeout=120,
        )
        clip_id = state["attributes"]["clip_id"]
        status, _ = await _bridge(session, stack, f"/api/clips/{clip_id}")
        assert status == 200
        files = list((stack.work / "bridge-data" / CAMERA).rglob(f"{clip_id}.*"))
        assert {f.name.removeprefix(clip_id) for f in files} >= {".mp4", ".jpg", ".thumb.jpg"}

        # Found in the media browser, forgotten by the browser's id, gone from it after.
        async with owner.websocket() as ws:
            media_id = await _browsed_clip(ws, clip_id)
            assert media_id is not None
            answer = await owner.call_service(
                "doorstep", "forget_clip", {"clip_id": media_id}, response=True
            )
            assert await _browsed_clip(ws, clip_id) is None

        assert answer["service_response"] == {"clip_id": clip_id, "erased": True}
        status, _ = await _bridge(session, stack, f"/api/clips/{clip_id}")
        assert status == 404
        assert not any(f.exists() for f in files)
        erased = [r for r in _audit(stack) if r["kind"] == "clip_erased"]
        assert [(r["clip"], r["camera"], r["by"]) for r in erased] == [(clip_id, CAMERA, "Owner")]

        # A clip a pending share request holds is refused, naming the share.
        await owner.wait_state(
            f"sensor.{CAMERA}_last_clip",
            lambda s: s["attributes"].get("clip_id") not in (None, clip_id),
            timeout=120,
        )
        request = await request_share(owner, "Neighbour Alice", "Parcel went missing")
        share_id = request["share_id"]
        assert request["state"] == "pending"
        try:
            _, listed = await _bridge(session, stack, f"/api/clips?camera={CAMERA}&limit=500")
            held = next(c["id"] for c in listed["clips"] if c["held"])
            async with owner.websocket() as ws:
                with pytest.raises(HaError) as refused:
                    await ws.call(
                        type="call_service", domain="doorstep", service="forget_clip",
                        service_data={"clip_id": held},
                    )  # fmt: skip
            message = str(refused.value)
            assert "service_validation_error" in message
            assert share_id in message
            assert "Deny or revoke the share first" in message
            status, _ = await _bridge(session, stack, f"/api/clips/{held}")
            assert status == 200
        finally:
            await owner.call_service("doorstep", "deny_share", {"share_id": share_id})

    assert [r["clip"] for r in _audit(stack) if r["kind"] == "clip_erased"] == [clip_id]
    verify = stack.bridge.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr
