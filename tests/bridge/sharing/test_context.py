"""The audit log's place in the application: retention deletions audited, damage refused."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
import pytest

from doorstep_bridge.events import ClipDeleted, EventBus
from doorstep_bridge.exceptions import AuditError
from doorstep_bridge.keys import AUDIT, BUS, CONFIG
from doorstep_bridge.sharing.audit import AuditLog, audit_dir, verify
from doorstep_bridge.sharing.context import audit_ctx

from .conftest import make_config


def _app(tmp_path: Path) -> web.Application:
    app = web.Application()
    app[CONFIG] = make_config(tmp_path)
    app[BUS] = EventBus()
    return app


async def test_retention_deletions_are_audited(tmp_path: Path) -> None:
    app = _app(tmp_path)
    context = audit_ctx(app)
    await anext(context)
    app[BUS].publish(ClipDeleted("c_front_door_1", "front_door", "retention"))
    app[BUS].publish(ClipDeleted("c_front_door_2", "front_door", "disk full"))
    with pytest.raises(StopAsyncIteration):
        await anext(context)  # teardown waits for the records being written
    records = app[AUDIT].records()
    assert [(r["kind"], r["clip_id"], r["reason"]) for r in records] == [
        ("retention_delete", "c_front_door_1", "retention"),
        ("retention_delete", "c_front_door_2", "disk full"),
    ]
    assert records[0]["camera"] == "front_door"
    assert verify(audit_dir(app[CONFIG].storage.path)).ok


async def test_a_damaged_log_stops_the_bridge_from_starting(tmp_path: Path) -> None:
    app = _app(tmp_path)
    log = AuditLog(audit_dir(app[CONFIG].storage.path))
    for index in range(3):
        log.append("download", n=index)
    lines = (log.path / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (log.path / "audit.jsonl").write_bytes(lines[0] + lines[2])
    with pytest.raises(AuditError, match="record 2"):
        await anext(audit_ctx(app))
