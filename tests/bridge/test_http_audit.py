"""GET /api/audit: the newest records and the verification, behind the API token.

A real audit log in a temporary folder, served by the bridge's route with its
error and token middlewares, as the bridge serves it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path
import shutil
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
import pytest

from doorstep_bridge.app import create_app
from doorstep_bridge.config import parse_config
from doorstep_bridge.http import audit as audit_http
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.errors import error_middleware
from doorstep_bridge.keys import API_TOKEN, AUDIT
from doorstep_bridge.sharing import audit as audit_log
from doorstep_bridge.sharing.audit import (
    LOG_NAME,
    AuditLog,
    closed_segments,
    newest_records,
    segment_name,
)

TOKEN = "audit-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _share_story(log: AuditLog, share_id: str = "s_1") -> None:
    log.append(
        "request", share_id=share_id, requester="Neighbour Alice", cameras=["front_door"],
        reason="Parcel went missing", source="ha",
    )  # fmt: skip
    log.append("decision", share_id=share_id, decision="approve", by="Owner", via="ui")
    log.append("download", share_id=share_id, client="192.0.2.7", agent="curl/8")


async def _serve(app: web.Application) -> TestClient[Any, Any]:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


def _app(log: AuditLog | None) -> web.Application:
    app = web.Application(middlewares=[error_middleware, token_middleware])
    app[API_TOKEN] = TOKEN
    if log is not None:
        app[AUDIT] = log
    app.add_routes(audit_http.routes)
    return app


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit")


@pytest.fixture
async def client(log: AuditLog) -> AsyncIterator[TestClient[Any, Any]]:
    client = await _serve(_app(log))
    yield client
    await client.close()


async def _get(client: TestClient[Any, Any], query: str = "") -> tuple[int, dict[str, Any]]:
    async with client.get(f"/api/audit{query}", headers=AUTH) as response:
        return response.status, await response.json()


async def test_needs_the_token(client: TestClient[Any, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        async with client.get("/api/audit", headers=headers) as response:
            assert response.status == 401
            assert await response.json() == {"error": "missing or invalid API token"}


async def test_verified_log_newest_first(log: AuditLog, client: TestClient[Any, Any]) -> None:
    _share_story(log)
    async with client.get("/api/audit", headers=AUTH) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
    assert body["verification"] == {
        "ok": True, "count": 4, "last_seq": 4, "bad_record": None, "file": None,
        "problem": None, "past_head": 0, "message": "audit log intact: 4 record(s)",
    }  # fmt: skip
    records = body["records"]
    assert [r["kind"] for r in records] == ["download", "decision", "request", "log_created"]
    assert [r["seq"] for r in records] == [4, 3, 2, 1]
    written = {r["seq"]: r for r in log.records()}
    for record in records:
        # As written, without the chain's plumbing.
        assert record == {
            k: v for k, v in written[record["seq"]].items() if k not in ("prev", "hash")
        }
    assert records[2]["requester"] == "Neighbour Alice"
    assert records[1]["by"] == "Owner"


@pytest.mark.parametrize("limit", ["0", "201", "-1", "x", "1.5", "1e2", "٣", " 3", "9" * 5000])
async def test_limit_out_of_bounds(client: TestClient[Any, Any], limit: str) -> None:
    status, body = await _get(client, f"?limit={limit}")
    assert (status, body) == (400, {"error": "limit: expected a whole number from 1 to 200"})


async def test_limit_bounds(log: AuditLog, client: TestClient[Any, Any]) -> None:
    for number in range(250):
        log.append("clip_deleted", clip=f"c_{number}", camera="front_door", why="retention")
    status, body = await _get(client)
    assert status == 200
    assert [r["seq"] for r in body["records"]] == list(range(251, 201, -1))  # 50 by default
    _status, body = await _get(client, "?limit=1")
    assert [r["seq"] for r in body["records"]] == [251]
    _status, body = await _get(client, "?limit=200")
    assert [r["seq"] for r in body["records"]] == list(range(251, 51, -1))
    assert body["verification"]["count"] == 251


async def test_records_across_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small segments, and small reads from their ends: lines cross read boundaries.
    monkeypatch.setattr(audit_log, "TAIL_BLOCK", 100)
    log = AuditLog(tmp_path / "audit", segment_bytes=600)
    for number in range(40):
        log.append("clip_deleted", clip=f"c_{number}", camera="front_door", why="retention")
    assert len(closed_segments(log.path)) >= 3
    client = await _serve(_app(log))
    try:
        status, body = await _get(client, "?limit=200")
    finally:
        await client.close()
    assert status == 200
    assert body["verification"]["ok"] is True
    assert [r["seq"] for r in body["records"]] == list(range(41, 0, -1))
    assert body["records"][0]["clip"] == "c_39"
    # A few newest ones: the older segments are not read.
    assert [r["seq"] for r in newest_records(log.path, 3)] == [41, 40, 39]


def test_a_segment_closed_while_reading_is_not_listed_twice(log: AuditLog) -> None:
    _share_story(log)
    # As if the live segment was closed between reading it and listing the closed ones.
    shutil.copy(log.path / LOG_NAME, log.path / segment_name(1))
    records = newest_records(log.path, 10)
    assert [r["seq"] for r in records] == [4, 3, 2, 1]


def test_a_line_being_written_is_skipped(log: AuditLog) -> None:
    _share_story(log)
    with (log.path / LOG_NAME).open("ab") as file:
        file.write(b'{"seq": 5, "kind": "rev')  # no newline yet
    assert [r["seq"] for r in newest_records(log.path, 10)] == [4, 3, 2, 1]
    assert newest_records(log.path / "nowhere", 10) == []


async def test_broken_log_says_why(log: AuditLog, client: TestClient[Any, Any]) -> None:
    _share_story(log)
    path = log.path / LOG_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[2])
    record["by"] = "Somebody else"  # the decision rewritten after the fact
    lines[2] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    lines.insert(1, b"not json\n")
    path.write_bytes(b"".join(lines))

    status, body = await _get(client)
    assert status == 200
    verification = body["verification"]
    assert verification["ok"] is False
    assert verification["bad_record"] == 2
    assert verification["file"] == LOG_NAME
    assert verification["problem"] == "not valid JSON"
    assert verification["message"].startswith("audit log NOT intact: record 2")
    assert verification["last_seq"] == 4  # what the running bridge wrote
    # The records that can be read are still shown, the damage among them.
    assert [r["seq"] for r in body["records"]] == [4, 3, 2, 1]
    assert body["records"][1]["by"] == "Somebody else"


async def test_non_finite_numbers_are_not_passed_on(log: AuditLog) -> None:
    _share_story(log)
    with (log.path / LOG_NAME).open("ab") as file:
        file.write(b'{"seq":5,"kind":"x","n":NaN}\n')
    assert [r["seq"] for r in newest_records(log.path, 10)] == [4, 3, 2, 1]


async def test_without_an_audit_log(tmp_path: Path) -> None:
    del tmp_path
    client = await _serve(_app(None))
    try:
        status, body = await _get(client)
    finally:
        await client.close()
    assert (status, body) == (503, {"error": "the audit log is not open"})


def test_the_bridge_serves_it(tmp_path: Path) -> None:
    config = parse_config(
        {"storage": {"path": str(tmp_path)}, "cameras": {"front_door": {"source": "demo://"}}}
    )
    app = create_app(config)
    assert "/api/audit" in {
        route.resource.canonical for route in app.router.routes() if route.resource
    }
