"""Bridge-level HTTP routes: health, announcement proof, info, doorbell presses."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from typing import Any

from aiohttp import web

from doorstep_bridge import PROTOCOL_VERSION, __version__
from doorstep_bridge.http.auth import json_error, shown
from doorstep_bridge.http.body import read_body
from doorstep_bridge.keys import (
    API_TOKEN,
    BRIDGE_ID,
    CAMERAS,
    CLIP_STORE,
    CONFIG,
    DOORBELL,
    MQTT,
    SHARES,
)
from doorstep_bridge.models import iso
from doorstep_bridge.mqtt.publisher import bridge_info

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    """Liveness, without a token: the version and whether the broker connection is up.

    Always 200 while the bridge answers (it may record without the broker); no
    address, user or other detail of the broker is given.
    """
    mqtt = request.app.get(MQTT)
    connected = mqtt is not None and mqtt.connected
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "mqtt": "connected" if connected else "disconnected",
        }
    )


#: A challenge's nonce: 16 to 128 URL-safe characters (``secrets.token_urlsafe``).
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_NONCE_HINT = 'expected a JSON body {"nonce": "..."} with 16 to 128 URL-safe characters'


def announcement_proof(token: str, api_url: str, base_topic: str, nonce: str) -> str:
    """Proof that whoever answers holds ``token`` and announces ``api_url`` and ``base_topic``.

    HMAC-SHA256 keyed with the API token, hex. The announced address and topic are in
    the message, so a forged announcement gains nothing by relaying the challenge to
    the real bridge: the real bridge proves its own announcement, not the forged one.
    Home Assistant computes the same (custom_components/doorstep/api.py).
    """
    message = f"doorstep announcement proof\n{api_url}\n{base_topic}\n{nonce}"
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def _parse_nonce(raw: bytes) -> str | None:
    """The ``nonce`` of a body ``{"nonce": "..."}``; None for anything else."""
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or set(data) != {"nonce"}:
        return None
    nonce = data["nonce"]
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        return None
    return nonce


@routes.post("/api/announcement-proof")
async def prove_announcement(request: web.Request) -> web.Response:
    """Without a token: prove this bridge's discovery announcement → ``{"proof": hex}``.

    Anyone who can write to the broker can publish a discovery message under this
    bridge's id. Home Assistant follows a new address or base topic only once the
    address answers a fresh nonce with the proof over what the message announced:
    that takes the API token, yet the token never travels.
    """
    nonce = _parse_nonce(await read_body(request))
    if nonce is None:
        return json_error(400, _NONCE_HINT)
    config = request.app[CONFIG]
    # The very strings of the discovery message (mqtt.publisher.bridge_info).
    proof = announcement_proof(
        request.app[API_TOKEN], config.http.announced_url, config.mqtt.base_topic, nonce
    )
    return web.json_response({"proof": proof})


@routes.get("/api/info")
async def info(request: web.Request) -> web.Response:
    """The bridge info plus each camera's live status and the bridge's figures."""
    app = request.app
    config = app[CONFIG]
    data: dict[str, Any] = bridge_info(config, app[BRIDGE_ID])
    stats: dict[str, Any] = {}
    if (store := app.get(CLIP_STORE)) is not None:
        stats["storage_used_bytes"], stats["clips"] = await asyncio.to_thread(store.usage)
    if (shares := app.get(SHARES)) is not None:
        stats["pending_shares"] = shares.pending_count
        # Recipients check a signed export against this (doorstep-bridge verify-export).
        data["export_signing_key"] = shares.signing_fingerprint
    data["stats"] = stats
    cameras = app.get(CAMERAS)
    for name, camera in data["cameras"].items():
        if cameras is not None:
            status = cameras.status(name)
            camera.update(
                online=status.online,
                motion=status.motion,
                motion_detection=status.motion_detection,
                recording=status.recording,
                recording_error=status.error,
            )
            if status.health is not None:
                camera.update(
                    status=str(status.health.status),
                    status_detail=status.health.detail,
                    status_since=iso(status.health.since),
                )
    return web.json_response(data)


@routes.get("/api/rings")
async def rings(request: web.Request) -> web.Response:
    """The latest doorbell presses, oldest first: what a client away from the broker missed.

    Each as its ring message plus ``age`` (seconds ago, on the bridge's steady clock).
    """
    recent = request.app[DOORBELL].recent()
    return web.json_response(
        {"rings": [{**event.payload(), "age": round(age, 3)} for event, age in recent]}
    )


@routes.post("/api/cameras/{camera}/ring")
async def ring(request: web.Request) -> web.Response:
    """One doorbell press from an HTTP client (a button, a script)."""
    camera = request.match_info["camera"]
    if camera not in request.app[CONFIG].cameras:
        return json_error(404, f"unknown camera {shown(camera)}")
    event = request.app[DOORBELL].press(camera, "http")
    body: dict[str, Any] = {"accepted": event is not None}
    if event is not None:
        body["ring"] = event.payload()
    return web.json_response(body, status=202)
