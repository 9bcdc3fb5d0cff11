"""A whole share life cycle through a real broker and the HTTP API, with zero egress.

The bridge part here is the real thing (MQTT client, publisher, audit log, share
service, HTTP routes) with a small in-test clip store holding real H.264 clips.
A `sys.addaudit` hook records every socket connection and name lookup the
process makes while the life cycle runs: all of them must go to loopback (the
broker, and the test's own HTTP client talking to the bridge).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import ipaddress
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
import pytest

from doorstep_bridge.config import Config, parse_config
from doorstep_bridge.events import EventBus
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.shares import routes
from doorstep_bridge.keys import AUDIT, BUS, CLIP_STORE, CONFIG, MQTT, SHARES
from doorstep_bridge.lifecycle import (
    audit_ctx,
    identity_ctx,
    mqtt_connect_ctx,
    mqtt_ctx,
    publisher_ctx,
    shares_ctx,
)
from doorstep_bridge.models import utcnow
from doorstep_bridge.sharing.audit import verify_log

from ..conftest import Broker
from .conftest import API_TOKEN, CONNECTIONS, MASK, FakeClipStore, share_state, write_clip

API = {"Authorization": f"Bearer {API_TOKEN}"}


def _config(tmp_path: Path, broker: Broker) -> Config:
    return parse_config(
        {
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "base_topic": "doorstep"},
            "http": {"token": API_TOKEN},
            "storage": {"path": str(tmp_path / "data")},
            "cameras": {
                "front_door": {"source": "rtsp://192.0.2.10/stream", "privacy_masks": [MASK]}
            },
            "sharing": {"decision_timeout_minutes": 10},
        }
    )


@pytest.fixture
async def bridge(
    tmp_path: Path, mqtt_broker: Broker
) -> AsyncIterator[tuple[web.Application, TestClient[Any, Any]]]:
    store = FakeClipStore()
    clips = tmp_path / "clips"
    clips.mkdir()
    # Footage from "a few minutes ago", so the request window is in the past.
    start = utcnow() - timedelta(minutes=5)
    store.add("front_door", write_clip(clips / "front.mp4", seconds=2.0), start, 2.0)
    app = web.Application(middlewares=[token_middleware])
    app[CONFIG] = _config(tmp_path, mqtt_broker)
    app[BUS] = EventBus()
    app[CLIP_STORE] = store  # type: ignore[assignment]
    app.cleanup_ctx.extend(
        [identity_ctx, mqtt_ctx, publisher_ctx, audit_ctx, shares_ctx, mqtt_connect_ctx]
    )
    app.add_routes(routes)
    CONNECTIONS.active = True
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    assert await app[MQTT].wait_connected(10)
    assert await app[MQTT].wait_subscribed(10)
    yield app, client
    await client.close()
    CONNECTIONS.active = False


def _request(app: web.Application, **overrides: Any) -> bytes:
    clip = app[CLIP_STORE].clips_between(["front_door"], utcnow() - timedelta(hours=1), utcnow())[0]
    start, end = clip.start, clip.end
    body = {
        "requester": "Doorbell camera app",
        "cameras": ["front_door"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "reason": "Parcel went missing",
    }
    body.update(overrides)
    return json.dumps(body).encode()


async def test_life_cycle_over_mqtt_and_http_with_zero_egress(
    bridge: tuple[web.Application, TestClient[Any, Any]],
    mqtt_broker: Broker,
    mqtt_listener: Any,
) -> None:
    app, client = bridge
    outside = mqtt_listener("doorstep/share/#", "doorstep/available")
    # Seeing the retained "online" proves the outside client's subscriptions are active.
    await asyncio.to_thread(outside.wait_for, "doorstep/available", 10, b"online")

    # A local system asks for footage over MQTT: a pending request appears, retained.
    await asyncio.to_thread(
        outside.publish, "doorstep/share/request", _request(app, request_id="r1")
    )
    pending = await asyncio.to_thread(share_state, outside, request_id="r1", state="pending")
    share_id = pending["id"]
    assert app[SHARES].get(share_id).payload()["state"] == "pending"  # type: ignore[union-attr]

    # Forged approvals over MQTT: none of them can decide anything.
    forged = [
        ("doorstep/share/request", _request(app, id=share_id, decision="approve", request_id="f1")),
        ("doorstep/share/request", json.dumps({"id": share_id, "decision": "approve"}).encode()),
        (f"doorstep/share/{share_id}/decision", b'{"decision": "approve", "by": "owner"}'),
        (f"doorstep/share/{share_id}/set", b"approve"),
        ("doorstep/share/decision", json.dumps({"id": share_id, "decision": "approve"}).encode()),
    ]
    for topic, payload in forged:
        await asyncio.to_thread(outside.publish, topic, payload)
    rejected = await asyncio.to_thread(share_state, outside, request_id="f1")
    assert rejected["state"] == "rejected"
    assert "cannot decide" in rejected["error"]
    # A valid request after the forgeries: once it is in, the forgeries were all handled.
    await asyncio.to_thread(
        outside.publish, "doorstep/share/request", _request(app, request_id="r2")
    )
    await asyncio.to_thread(share_state, outside, request_id="r2", state="pending")
    assert app[SHARES].get(share_id).payload()["state"] == "pending"  # type: ignore[union-attr]
    assert app[SHARES].get(share_id).payload()["decision"] is None  # type: ignore[union-attr]

    # Invalid request: published once as rejected, with the reason.
    await asyncio.to_thread(
        outside.publish,
        "doorstep/share/request",
        _request(app, cameras=["garage"], request_id="bad"),
    )
    bad = await asyncio.to_thread(share_state, outside, request_id="bad")
    assert bad["state"] == "rejected"
    assert "unknown camera 'garage'" in bad["error"]

    # The owner approves over the authenticated API; the state and link reach MQTT.
    response = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "approve", "by": "owner", "via": "phone", "redact": True},
        headers=API,
    )
    assert response.status == 200
    ready = await asyncio.to_thread(share_state, outside, id=share_id, state="ready")
    assert ready["link"].startswith("/share/")
    assert ready["decision"]["via"] == "phone"

    response = await client.get(ready["link"])
    assert response.status == 200
    assert (await response.read())[4:8] == b"ftyp"

    response = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "revoke", "by": "owner", "via": "ui"},
        headers=API,
    )
    assert (await response.json())["state"] == "revoked"
    await asyncio.to_thread(share_state, outside, id=share_id, state="revoked", link=None)
    assert (await client.get(ready["link"])).status == 410

    config = app[CONFIG]
    result = verify_log(config.storage.path)
    assert result.ok, result.message
    kinds = [r["kind"] for r in app[AUDIT].records()]
    for kind in ("request", "request_rejected", "decision", "render", "download", "revoke"):
        assert kind in kinds

    # Zero egress: every connection stayed on loopback (the broker, this test's HTTP
    # client, paho's internal wake-up socket pair); the bridge did reach the broker.
    with CONNECTIONS.lock:
        connects = list(CONNECTIONS.connects)
    assert ("127.0.0.1", mqtt_broker.port) in connects
    for address in connects:
        assert isinstance(address, tuple), address
        assert ipaddress.ip_address(address[0]).is_loopback, address
    for host in CONNECTIONS.lookups:
        assert host in {"127.0.0.1", "localhost", None}, host


def _share_topics(listener: Any) -> list[tuple[str, bytes, bool]]:
    """What a client subscribing now finds on ``doorstep/share/s_...`` (the retained ones)."""
    listener.wait_for("doorstep/available", 10, b"online")  # its subscriptions are active
    return [m for m in listener.drain(settle=0.5) if m[0].startswith("doorstep/share/s_")]


async def test_junk_requests_leave_nothing_retained_and_are_limited(
    bridge: tuple[web.Application, TestClient[Any, Any]],
    mqtt_listener: Any,
) -> None:
    from doorstep_bridge.sharing.repeats import RepeatLimits
    from doorstep_bridge.sharing.requests import MQTT_REQUESTS_PER_MINUTE

    app, _client = bridge
    outside = mqtt_listener("doorstep/share/#", "doorstep/available")
    await asyncio.to_thread(outside.wait_for, "doorstep/available", 10, b"online")
    flood = MQTT_REQUESTS_PER_MINUTE + 5
    for index in range(flood):
        await asyncio.to_thread(outside.publish, "doorstep/share/request", f"junk {index}")
    answers = [
        await asyncio.to_thread(share_state, outside, state="rejected") for _ in range(flood)
    ]
    errors = [answer["error"] for answer in answers]
    assert sum("too many share requests over MQTT" in e for e in errors) == 5
    assert len({answer["id"] for answer in answers}) == flood

    # Someone subscribing afterwards (Home Assistant restarting) finds none of them.
    later = mqtt_listener("doorstep/share/#", "doorstep/available")
    assert await asyncio.to_thread(_share_topics, later) == []
    # Only what was read is audited, and a burst of the same refusal is summed after the
    # first few records (the sum is written within a minute or at stop).
    kinds = [r["kind"] for r in app[AUDIT].records()]
    assert kinds.count("request_rejected") == RepeatLimits().per_entry


async def test_a_forgotten_share_is_cleared_from_the_broker(
    tmp_path: Path, mqtt_broker: Broker, mqtt_listener: Any
) -> None:
    from doorstep_bridge.lifecycle import share_service
    from doorstep_bridge.sharing.decisions import FORGET_AFTER

    from .conftest import Clock

    app = web.Application()
    app[CONFIG] = _config(tmp_path, mqtt_broker)
    app[BUS] = EventBus()
    app.cleanup_ctx.extend([identity_ctx, mqtt_ctx, publisher_ctx, audit_ctx, mqtt_connect_ctx])
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert await app[MQTT].wait_connected(10)
        clock = Clock(now=utcnow())
        store = FakeClipStore()
        service = share_service(
            app[CONFIG], app[BUS], store, app[AUDIT], clock=clock, steady=clock.steady
        )
        await service.start()
        try:
            watcher = mqtt_listener("doorstep/share/#", "doorstep/available")
            await asyncio.to_thread(watcher.wait_for, "doorstep/available", 10, b"online")
            body = json.loads(_request_at(clock.now))
            share = (await service.create_request(body, "http")).payload()
            await service.decide(share["id"], "deny", "owner", "ui")
            await asyncio.to_thread(share_state, watcher, id=share["id"], state="denied")
            late = mqtt_listener("doorstep/share/#", "doorstep/available")
            retained = await asyncio.to_thread(_share_topics, late)
            assert [(t, json.loads(p)["state"], r) for t, p, r in retained] == [
                (f"doorstep/share/{share['id']}", "denied", True)
            ]
            clock.advance(seconds=FORGET_AFTER.total_seconds() + 1)
            await service.tick()
            await asyncio.to_thread(watcher.wait_for, f"doorstep/share/{share['id']}", 10, b"")
        finally:
            await service.stop()
        later = mqtt_listener("doorstep/share/#", "doorstep/available")
        assert await asyncio.to_thread(_share_topics, later) == []
    finally:
        await runner.cleanup()


def _request_at(now: Any) -> bytes:
    return json.dumps(
        {
            "requester": "Doorbell camera app",
            "cameras": ["front_door"],
            "start": (now - timedelta(minutes=5)).isoformat(),
            "end": (now - timedelta(minutes=4)).isoformat(),
            "reason": "Parcel went missing",
        }
    ).encode()
