"""The share database locked by another program: a revoke or an expiry holds all the same.

A backup tool or the ``sqlite3`` command line holding the share database's write lock
for longer than SQLite waits (5 s) makes every save fail with "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
import sqlite3
from typing import Any

from aiohttp.test_utils import TestClient
import pytest

from doorstep_bridge.lifecycle import share_service
from doorstep_bridge.sharing.audit import verify
from doorstep_bridge.sharing.state import ShareGoneError

from .conftest import Harness, share_routes_client
from .test_http import API, REQUESTER, _ready


def _database(harness: Harness) -> Path:
    return harness.config.storage.path / "shares" / "shares.sqlite3"


@contextmanager
def _database_locked(harness: Harness) -> Iterator[None]:
    """Another program holds the share database's write lock meanwhile."""
    other = sqlite3.connect(_database(harness), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def _stored_state(harness: Harness, share_id: str) -> str:
    """The share's state as the database has it (what a restart would load)."""
    with sqlite3.connect(_database(harness)) as db:
        row = db.execute("SELECT state FROM shares WHERE id = ?", (share_id,)).fetchone()
    return str(row[0])


def _count(harness: Harness, kind: str) -> int:
    return sum(1 for record in harness.audit.records() if record["kind"] == kind)


async def _revoke(client: TestClient[Any, Any], share_id: str) -> Any:
    return await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "revoke", "by": "owner", "via": "phone"},
        headers=API,
    )


async def test_a_revoke_holds_while_the_share_database_is_locked(tmp_path: Path) -> None:
    async with share_routes_client(tmp_path) as (harness, client):
        share_id, link = await _ready(harness, client)
        with _database_locked(harness):
            response = await _revoke(client, share_id)
            assert response.status == 200, await response.text()
            assert (await response.json())["state"] == "revoked"
            assert (await client.get(link)).status == 410
            assert share_id not in harness.store.holds  # its clips are back in retention
            assert not (harness.config.storage.path / "shares" / f"{share_id}.mp4").exists()
            # Asked again: it is revoked already, and the log says so once.
            assert (await _revoke(client, share_id)).status == 409
            assert _count(harness, "revoke") == 1
            assert _stored_state(harness, share_id) == "ready"  # not yet on disk
        await harness.service.tick()  # the timers write it once the lock is gone
        assert _stored_state(harness, share_id) == "revoked"
        assert (await client.get(link)).status == 410
        assert _count(harness, "revoke") == 1
        assert verify(harness.audit.path).ok


async def test_a_link_past_its_lifetime_expires_once_while_the_share_database_is_locked(
    tmp_path: Path,
) -> None:
    async with share_routes_client(tmp_path) as (harness, client):
        share_id, link = await _ready(harness, client)
        with _database_locked(harness):
            harness.clock.advance(hours=25)
            assert (await client.get(link)).status == 410  # the link checks itself
            await harness.service.tick()  # does not fail, nor expire it again
            assert (await client.get(link)).status == 410
            assert _count(harness, "expiry") == 1
            assert share_id not in harness.store.holds
        await harness.service.tick()
        assert _stored_state(harness, share_id) == "expired"
        assert _count(harness, "expiry") == 1


async def test_a_restart_before_the_database_took_a_revoke_does_not_bring_the_link_back(
    tmp_path: Path,
) -> None:
    async with share_routes_client(tmp_path) as (harness, client):
        share_id, link = await _ready(harness, client)
        with _database_locked(harness):
            assert (await _revoke(client, share_id)).status == 200
            await harness.service.stop()  # still locked: the database keeps it ready
        assert _stored_state(harness, share_id) == "ready"
        harness.service = share_service(
            harness.config,
            harness.bus,
            harness.store,
            harness.audit,
            clock=harness.clock,
            steady=harness.clock.steady,
        )
        await harness.service.start()  # the audit log has the revoke: it ends the share
        view = harness.service.get(share_id)
        assert view is not None
        assert view.payload()["state"] == "revoked"
        assert _stored_state(harness, share_id) == "revoked"
        with pytest.raises(ShareGoneError):  # the link answers 410
            await harness.service.download(link.rsplit("/", 1)[-1], "192.0.2.7", "curl/8")
        assert share_id not in harness.store.holds
        assert _count(harness, "revoke") == 1
        assert verify(harness.audit.path).ok


async def test_an_approval_the_share_database_cannot_take_is_a_503_saying_so(
    tmp_path: Path,
) -> None:
    async with share_routes_client(tmp_path) as (harness, client):
        response = await client.post(
            "/api/share-requests", json=harness.request(), headers=REQUESTER
        )
        share_id = (await response.json())["id"]
        with _database_locked(harness):
            response = await client.post(
                f"/api/shares/{share_id}/decision",
                json={"decision": "approve", "by": "owner", "via": "phone"},
                headers=API,
            )
            assert response.status == 503
            error = (await response.json())["error"]
            assert "share database cannot be written" in error
            assert "database is locked" in error
            assert "not applied" in error
        view = harness.service.get(share_id)
        assert view is not None
        assert view.payload()["state"] == "pending"
        assert _stored_state(harness, share_id) == "pending"
