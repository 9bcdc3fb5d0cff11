"""The audit log's place in the application: opened at start, damage refused."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
import pytest

from doorstep_bridge.events import EventBus
from doorstep_bridge.exceptions import AuditError
from doorstep_bridge.keys import AUDIT, BUS, CONFIG
from doorstep_bridge.lifecycle import audit_ctx
from doorstep_bridge.sharing.audit import AuditLog, audit_dir, verify

from .conftest import make_config


def _app(tmp_path: Path) -> web.Application:
    app = web.Application()
    app[CONFIG] = make_config(tmp_path)
    app[BUS] = EventBus()
    return app


async def test_the_log_is_opened_for_the_application(tmp_path: Path) -> None:
    app = _app(tmp_path)
    context = audit_ctx(app)
    await anext(context)
    app[AUDIT].append("clip_deleted", clip="c_1", camera="front_door", why="retention")
    with pytest.raises(StopAsyncIteration):
        await anext(context)
    assert verify(audit_dir(app[CONFIG].storage.path)).count == 2  # log_created, clip_deleted


async def test_a_damaged_log_stops_the_bridge_from_starting(tmp_path: Path) -> None:
    app = _app(tmp_path)
    log = AuditLog(audit_dir(app[CONFIG].storage.path))
    for index in range(3):
        log.append("download", n=index)
    lines = (log.path / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (log.path / "audit.jsonl").write_bytes(lines[0] + lines[2])
    with pytest.raises(AuditError, match="record 2"):
        await anext(audit_ctx(app))
