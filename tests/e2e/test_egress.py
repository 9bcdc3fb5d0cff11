"""The egress guard seen from Home Assistant: a plug-in in the bridge phones home.

The stack's bridge is restarted with a misbehaving plug-in on its ``PYTHONPATH``
(tests/support/phone_home): its attempts are refused, audited, counted on MQTT, and
Home Assistant shows the count and a repair naming what tried to connect where. The
bridge is then restarted without the plug-in: the count starts over and the repair goes.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.ha_client import HaClient
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).resolve().parents[1] / "support" / "phone_home"
SENSOR = "sensor.doorstep_blocked_connections"


async def _egress_issues(owner: HaClient) -> list[dict[str, Any]]:
    async with owner.websocket() as ws:
        result = await ws.call(type="repairs/list_issues")
    return [
        issue
        for issue in result["issues"]
        if issue["domain"] == "doorstep" and issue["issue_id"].startswith("egress_blocked_")
    ]


async def test_a_plugin_that_phones_home_shows_in_home_assistant(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = stack.work / "phone-home.json"
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_state(SENSOR, lambda s: s["state"] == "0", timeout=120)
        assert await _egress_issues(owner) == []

        stack.bridge.stop()
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")])
        )
        monkeypatch.setenv("PLUGIN_BRIDGE_PORT", str(stack.bridge.http_port))
        monkeypatch.setenv("PLUGIN_OUT", str(out))
        try:
            stack.bridge.start()
            state = await owner.wait_state(SENSOR, lambda s: s["state"] == "2", timeout=120)
            assert state["attributes"]["last_destination"] == "192.0.2.1:443"
            assert state["attributes"]["last_caller"].startswith("sitecustomize:")
            issues = await _egress_issues(owner)
            assert len(issues) == 1
            placeholders = issues[0]["translation_placeholders"]
            assert placeholders["destination"] == "192.0.2.1:443"
            assert placeholders["caller"].startswith("sitecustomize:")
            assert placeholders["count"] == "2"
            for _ in range(600):  # the plug-in writes its file right after its last try
                if out.exists():
                    break
                await asyncio.sleep(0.05)
            tried = json.loads(out.read_text())
            assert all(v.startswith("EgressRefusedError") for v in tried.values()), tried
        finally:
            stack.bridge.stop()
            monkeypatch.undo()
            stack.bridge.start()

        await owner.wait_state(SENSOR, lambda s: s["state"] == "0", timeout=120)
        assert await _egress_issues(owner) == []

    audit = stack.work / "bridge-data/audit/audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    blocked = [r for r in records if r["kind"] == "connection_blocked"]
    assert [(r["action"], r["destination"]) for r in blocked] == [
        ("resolve", "telemetry.example.com"),
        ("connect", "192.0.2.1:443"),
    ]
    verify = stack.bridge.audit_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr
