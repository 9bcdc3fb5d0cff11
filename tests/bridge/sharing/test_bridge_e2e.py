"""The whole bridge (create_app) through one share's life, with zero egress.

Unlike test_mqtt_and_egress.py this runs every part of the bridge — cameras,
recorder, clip store, doorbell, MQTT, HTTP — with a real clip in the real clip
store. The camera points at a loopback port nothing listens on (the bridge keeps
trying it), so every connection the bridge makes must stay on this machine.

Two views: the audit hook sees every connection Python code opens (MQTT, HTTP);
FFmpeg opens its own sockets in C, so the process's open TCP sockets are also
read from /proc at a few points of the life cycle.
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

from doorstep_bridge.app import create_app
from doorstep_bridge.config import parse_config
from doorstep_bridge.keys import AUDIT, CLIP_STORE, MQTT, SHARES
from doorstep_bridge.models import utcnow
from doorstep_bridge.sharing.audit import verify_log

from ..conftest import Broker, free_port
from .conftest import API_TOKEN, CONNECTIONS, MASK, share_state, write_clip

API = {"Authorization": f"Bearer {API_TOKEN}"}


def _open_tcp_peers() -> set[str]:
    """Remote addresses (hex, as in /proc/net/tcp*) of this process's TCP sockets."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    peers = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes and fields[2].split(":")[0].strip("0"):
                peers.add(fields[2])
    return peers


def _loopback(hex_peer: str) -> bool:
    address = bytes.fromhex(hex_peer.split(":", maxsplit=1)[0])
    if len(address) == 4:
        return ipaddress.IPv4Address(address[::-1]).is_loopback
    # IPv6 in /proc is four little-endian 32-bit words.
    words = b"".join(address[i : i + 4][::-1] for i in range(0, 16, 4))
    ip = ipaddress.IPv6Address(words)
    return ip.is_loopback or (ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


@pytest.fixture
async def bridge(
    tmp_path: Path, mqtt_broker: Broker
) -> AsyncIterator[tuple[web.Application, TestClient[Any, Any]]]:
    config = parse_config(
        {
            "mqtt": {"host": "127.0.0.1", "port": mqtt_broker.port, "base_topic": "doorstep"},
            "http": {"token": API_TOKEN},
            "storage": {"path": str(tmp_path / "data")},
            "cameras": {
                "front_door": {
                    "source": f"rtsp://127.0.0.1:{free_port()}/stream",
                    "privacy_masks": [MASK],
                }
            },
        }
    )
    app = create_app(config)
    CONNECTIONS.active = True
    client = TestClient(TestServer(app, host="127.0.0.1"))
    try:
        await client.start_server()
        assert await app[MQTT].wait_subscribed(10)
        yield app, client
    finally:
        await client.close()
        CONNECTIONS.active = False


async def test_whole_bridge_share_life_cycle_stays_local(
    bridge: tuple[web.Application, TestClient[Any, Any]],
    mqtt_broker: Broker,
    mqtt_listener: Any,
    tmp_path: Path,
) -> None:
    app, client = bridge
    store = app[CLIP_STORE]
    start = utcnow() - timedelta(minutes=3)
    pending_clip = store.new_clip("front_door", start, "motion")
    write_clip(pending_clip.final, seconds=2.0)
    clip = store.complete(pending_clip, duration=2.0, size=pending_clip.final.stat().st_size)

    outside = mqtt_listener("doorstep/share/#", "doorstep/available")
    await asyncio.to_thread(outside.wait_for, "doorstep/available", 10, b"online")
    request = {
        "requester": "Neighbour Alice",
        "cameras": ["front_door"],
        "start": clip.start.isoformat(),
        "end": clip.end.isoformat(),
        "reason": "Parcel went missing",
        "request_id": "e2e",
    }
    await asyncio.to_thread(outside.publish, "doorstep/share/request", json.dumps(request))
    pending = await asyncio.to_thread(share_state, outside, request_id="e2e", state="pending")
    share_id = pending["id"]
    held = await (await client.get(f"/api/clips/{clip.id}", headers=API)).json()
    assert held["held"] is True  # retention keeps it while the share lives

    response = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "approve", "by": "owner", "via": "phone"},
        headers=API,
    )
    assert response.status == 200
    ready = await asyncio.to_thread(share_state, outside, id=share_id, state="ready")
    peers = _open_tcp_peers()
    response = await client.get(ready["link"], headers={"User-Agent": "Recipient"})
    assert response.status == 200
    assert (await response.read())[4:8] == b"ftyp"
    # The export is not a clip: the clip store does not list it.
    listed = await (await client.get("/api/clips", headers=API)).json()
    assert [c["id"] for c in listed["clips"]] == [clip.id]

    response = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "revoke", "by": "owner", "via": "ui"},
        headers=API,
    )
    assert (await response.json())["state"] == "revoked"
    assert (await client.get(ready["link"])).status == 410
    released = await (await client.get(f"/api/clips/{clip.id}", headers=API)).json()
    assert released["held"] is False
    assert app[SHARES].get(share_id).payload()["link"] is None  # type: ignore[union-attr]

    kinds = [r["kind"] for r in app[AUDIT].records()]
    for kind in ("request", "decision", "render", "download", "revoke", "purge"):
        assert kind in kinds
    assert verify_log(tmp_path / "data").ok

    peers |= _open_tcp_peers()
    assert peers, "no open TCP socket found: the /proc check is not working"
    assert all(_loopback(peer) for peer in peers), peers
    with CONNECTIONS.lock:
        connects = list(CONNECTIONS.connects)
        lookups = list(CONNECTIONS.lookups)
    assert ("127.0.0.1", mqtt_broker.port) in connects
    for address in connects:
        assert isinstance(address, tuple), address
        assert ipaddress.ip_address(address[0]).is_loopback, address
    for host in lookups:
        assert host in {"127.0.0.1", "localhost", None}, host
