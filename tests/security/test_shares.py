"""Attacks on share requests, share links and the audit hook, re-run with counts.

Bad text and numbers in every field get a clear 400 (or a ``rejected`` answer over
MQTT), never a 500 or silence; floods of requests on a link or of refused requests
write a bounded number of audit records whose counts still add up; one source of
requests cannot use up the pending quota of another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
import pytest

from doorstep_bridge.events import ShareStateChanged
from doorstep_bridge.exceptions import ShareError
from doorstep_bridge.sharing.audit import verify
from doorstep_bridge.sharing.repeats import RepeatLimits

from ..bridge.sharing.conftest import (
    API_TOKEN,
    REQUESTER_TOKEN,
    Harness,
    make_harness,
    share_routes_client,
)

API = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
REQUESTER = {"Authorization": f"Bearer {REQUESTER_TOKEN}", "Content-Type": "application/json"}
#: A flood is answered with at most this many audit records (before its summary).
MAX_RECORDS_PER_FLOOD = 20
LONE_SURROGATE = "\\ud800"  # as JSON text: an escape that decodes to no valid character

type Client = TestClient[Any, Any]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """The share service with a test clock, its bus and audit log observable."""
    h = await make_harness(tmp_path)
    yield h
    await h.service.stop()


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[tuple[Harness, Client]]:
    async with share_routes_client(tmp_path) as served:
        yield served


def _raw_request(harness: Harness, field: str, json_value: str) -> bytes:
    """A share request body whose `field` is the JSON text `json_value`."""
    fields = harness.request()
    fields.pop(field, None)
    return (json.dumps(fields)[:-1] + f', "{field}": {json_value}}}').encode()


def _audit_is_rfc_8259(harness: Harness) -> None:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in the audit log")

    for line in (harness.audit.path / "audit.jsonl").read_bytes().splitlines():
        json.loads(line.decode("utf-8"), parse_constant=refuse)
    assert verify(harness.audit.path).ok


async def _ready(harness: Harness) -> tuple[str, str]:
    """A ready share: its id and its link token."""
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    ready = await harness.wait_state(share["id"], "ready")
    return share["id"], ready["link"].rsplit("/", 1)[1]


def _records(harness: Harness, kind: str) -> list[dict[str, Any]]:
    return [record for record in harness.audit.records() if record["kind"] == kind]


def _summed(harness: Harness, of: str) -> int:
    """Events of kind `of` counted in ``repeated`` records."""
    return sum(r["count"] for r in _records(harness, "repeated") if r.get("of") == of)


async def _sum_up(harness: Harness) -> None:
    """Let the summing interval pass (the test clock) and run the timers."""
    harness.clock.advance(seconds=61)
    await harness.service.tick()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requester", f'"{LONE_SURROGATE}"'),
        ("requester", f'"Alice {LONE_SURROGATE}"'),
        ("reason", f'"{LONE_SURROGATE}"'),
        ("request_id", f'"{LONE_SURROGATE}"'),
        ("start", f'"{LONE_SURROGATE}"'),
        ("end", f'"2026-11-23T10:00:01{LONE_SURROGATE}"'),
        ("cameras", f'["{LONE_SURROGATE}"]'),
        ("requester", "NaN"),
    ],
)
async def test_bad_text_in_a_share_request_is_a_400_naming_the_field(
    bridge: tuple[Harness, Client], field: str, value: str
) -> None:
    harness, client = bridge
    body = _raw_request(harness, field, value)
    for headers in (API, REQUESTER):
        response = await client.post("/api/share-requests", data=body, headers=headers)
        assert response.status == 400, await response.text()
        assert (await response.json())["error"].startswith(field)
    assert harness.service.list() == []
    _audit_is_rfc_8259(harness)


async def test_bad_text_in_a_decision_is_a_400(bridge: tuple[Harness, Client]) -> None:
    harness, client = bridge
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    url = f"/api/shares/{share['id']}/decision"
    body = f'{{"decision": "approve", "by": "{LONE_SURROGATE}", "via": "ui"}}'
    response = await client.post(url, data=body, headers=API)
    assert response.status == 400
    assert (await response.json())["error"].startswith("by")
    for hours in ("Infinity", "NaN", "-Infinity"):
        body = f'{{"decision": "approve", "by": "owner", "via": "ui", "link_ttl_hours": {hours}}}'
        response = await client.post(url, data=body, headers=API)
        assert response.status == 400, hours
        assert "link_ttl_hours" in (await response.json())["error"]
    assert harness.service.get(share["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]
    _audit_is_rfc_8259(harness)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ('"count": NaN', "count"),
        ('"count": Infinity', "count"),
        ('"count": -Infinity', "count"),
        (f'"why": "{LONE_SURROGATE}"', "why"),
        (f'"{LONE_SURROGATE}": "x"', "field"),
    ],
)
async def test_bad_audit_fields_from_the_integration_are_a_400(
    bridge: tuple[Harness, Client], fields: str, named: str
) -> None:
    harness, client = bridge
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    body = f'{{"kind": "notification", {fields}}}'
    response = await client.post(f"/api/shares/{share['id']}/audit", data=body, headers=API)
    assert response.status == 400, await response.text()
    assert named in (await response.json())["error"]
    assert _records(harness, "notification") == []
    _audit_is_rfc_8259(harness)


async def test_any_audit_field_name_is_a_field(bridge: tuple[Harness, Client]) -> None:
    harness, client = bridge
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    body = {"kind": "notification", "self": "x", "fields": "y", "source": "z"}
    response = await client.post(f"/api/shares/{share['id']}/audit", json=body, headers=API)
    assert response.status == 204, await response.text()
    [record] = _records(harness, "notification")
    assert (record["self"], record["fields"], record["source"]) == ("x", "y", "z")


async def _answer(harness: Harness, payload: bytes) -> dict[str, Any]:
    """The state published for one MQTT share request."""
    events: list[ShareStateChanged] = []
    harness.bus.subscribe(ShareStateChanged, events.append)
    harness.service.handle_mqtt_request(payload)
    async with asyncio.timeout(10):
        while not events:
            harness.changed.clear()
            await harness.changed.wait()
    assert events[0].view is not None
    return events[0].view.payload()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (f'{{"requester": "{LONE_SURROGATE}"}}'.encode(), "requester: not valid text"),
        (b'{"requester": "\xff\xfe", "cameras": ["front_door"]}', "not UTF-8"),
        (b'{"requester": NaN}', "NaN is not a number JSON allows"),
    ],
)
async def test_bad_mqtt_requests_are_answered_rejected(
    harness: Harness, payload: bytes, message: str
) -> None:
    state = await _answer(harness, payload)
    assert state["state"] == "rejected"
    assert message in state["error"]
    assert harness.service.list() == []
    _audit_is_rfc_8259(harness)


async def test_a_flood_on_a_revoked_link_writes_a_bounded_sum(harness: Harness) -> None:
    share_id, token = await _ready(harness)
    await harness.service.decide(share_id, "revoke", "owner", "ui")
    size = (harness.audit.path / "audit.jsonl").stat().st_size
    flood = 1000
    for index in range(flood):
        with pytest.raises(ShareError, match="revoked"):
            await harness.service.download(token, "192.0.2.66", f"bot/{index % 3}", via="direct")
    written = len(_records(harness, "download_refused"))
    assert 0 < written <= MAX_RECORDS_PER_FLOOD
    await _sum_up(harness)
    assert written + _summed(harness, "download_refused") == flood
    # 1,000 refusals used to cost 724 kB of fsynced records.
    assert (harness.audit.path / "audit.jsonl").stat().st_size - size < 20_000
    _audit_is_rfc_8259(harness)


async def test_range_requests_and_416s_on_a_link_are_summed(
    bridge: tuple[Harness, Client],
) -> None:
    harness, client = bridge
    _share_id, token = await _ready(harness)
    statuses: list[int] = []
    for index in range(100):
        ranges = "bytes=0-99" if index % 2 else "bytes=999999999-"
        async with client.get(f"/share/{token}", headers={"Range": ranges}) as response:
            statuses.append(response.status)
            await response.read()
    assert set(statuses) == {206, 416}
    written = len(_records(harness, "download"))
    assert 0 < written <= MAX_RECORDS_PER_FLOOD
    await _sum_up(harness)
    assert written + _summed(harness, "download") == len(statuses)


async def test_clients_changing_their_agent_are_refused_and_summed(harness: Harness) -> None:
    # Each new agent is a new client: after the link's cap of records written one by
    # one, a new client is refused (it would be served unnamed), and the refusals of a
    # flood are summed, so the log stays bounded either way.
    _share_id, token = await _ready(harness)
    flood = 300
    served = RepeatLimits().per_group
    for index in range(served):
        await harness.service.download(token, "192.0.2.66", f"agent {index}", via="direct")
    for index in range(served, flood):
        with pytest.raises(ShareError, match="too many different clients"):
            await harness.service.download(token, "192.0.2.66", f"agent {index}", via="direct")
    downloads = _records(harness, "download")
    assert [r["agent"] for r in downloads] == [f"agent {index}" for index in range(served)]
    refusals = len(_records(harness, "download_refused"))
    assert 0 < served + refusals <= MAX_RECORDS_PER_FLOOD
    await _sum_up(harness)
    assert _summed(harness, "download") == 0  # nobody was served without a record
    [summary] = [r for r in _records(harness, "repeated") if r["of"] == "download_refused"]
    assert served + refusals + summary["count"] == flood
    assert len(summary["entries"]) <= MAX_RECORDS_PER_FLOOD  # the summary is bounded too
    named = sum(entry["count"] for entry in summary["entries"])
    assert named + summary["other"] == summary["count"]


async def test_refused_requests_from_a_token_are_summed(bridge: tuple[Harness, Client]) -> None:
    harness, client = bridge
    flood = 200
    for index in range(flood):
        body = harness.request(cameras=[f"camera{index}"])
        response = await client.post("/api/share-requests", json=body, headers=REQUESTER)
        assert response.status == 400
    written = len(_records(harness, "request_rejected"))
    assert 0 < written <= MAX_RECORDS_PER_FLOOD
    await _sum_up(harness)
    assert written + _summed(harness, "request_rejected") == flood


async def test_a_requester_token_cannot_block_the_owner(bridge: tuple[Harness, Client]) -> None:
    harness, client = bridge
    answers = [
        (await client.post("/api/share-requests", json=harness.request(), headers=REQUESTER)).status
        for _ in range(25)
    ]
    assert answers.count(201) == 20
    assert answers[20:] == [429] * 5
    # The owner's own requests (the integration's API token) and MQTT still get through.
    response = await client.post("/api/share-requests", json=harness.request(), headers=API)
    assert response.status == 201, await response.text()
    assert (await _answer(harness, json.dumps(harness.request()).encode()))["state"] == "pending"
