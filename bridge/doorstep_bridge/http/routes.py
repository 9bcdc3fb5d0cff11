"""Bridge-level HTTP routes: health, info, doorbell presses and the latest ones."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from doorstep_bridge import PROTOCOL_VERSION, __version__
from doorstep_bridge.http.auth import json_error, shown
from doorstep_bridge.keys import BRIDGE_ID, CAMERAS, CLIP_STORE, CONFIG, DOORBELL, MQTT, SHARES
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
