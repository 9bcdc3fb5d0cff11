"""The integration's audit client against the bridge's real ``GET /api/audit`` and log."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from doorstep_bridge.http import audit as audit_routes
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.keys import API_TOKEN, AUDIT
from doorstep_bridge.sharing.audit import LOG_NAME, AuditLog

TOKEN = "contract-token-0123456789abcdef"


@pytest.fixture
async def audit_server(tmp_path: Path) -> AsyncIterator[tuple[str, AuditLog]]:
    log = AuditLog(tmp_path / "audit")
    app = web.Application(middlewares=[token_middleware])
    app[API_TOKEN] = TOKEN
    app[AUDIT] = log
    app.add_routes(audit_routes.routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")), log
    await server.close()


async def test_audit_log(api: Any, audit_server: tuple[str, AuditLog]) -> None:
    url, log = audit_server
    log.append("request", share_id="s_1", requester="Neighbour Alice", cameras=["front_door"])
    log.append("decision", share_id="s_1", decision="approve", by="Owner", via="ui")
    async with aiohttp.ClientSession() as session:
        client = api.DoorstepApiClient(session, url, TOKEN)
        page = await client.audit_log(limit=2)
        assert page.check == api.AuditCheck(
            ok=True, count=3, last_seq=3, bad_record=None, file=None, problem=None, past_head=0
        )
        assert [(r["seq"], r["kind"]) for r in page.records] == [(3, "decision"), (2, "request")]
        assert page.records[0]["by"] == "Owner"

        # Tampered with after the fact: the client sees where and why.
        path = log.path / LOG_NAME
        lines = path.read_bytes().splitlines(keepends=True)
        record = json.loads(lines[1])
        record["requester"] = "Somebody else"
        lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        path.write_bytes(b"".join(lines))
        page = await client.audit_log()
        assert page.check.ok is False
        assert page.check.bad_record == 2
        assert page.check.problem == "contents changed: its hash does not match"

        with pytest.raises(api.DoorstepRequestError, match="limit"):
            await client.audit_log(limit=500)
        with pytest.raises(api.DoorstepAuthError):
            await api.DoorstepApiClient(session, url, "wrong").audit_log()
