"""aiohttp cleanup contexts that own the audit log and the share service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from doorstep_bridge.keys import AUDIT, BUS, CLIP_STORE, CONFIG, MQTT, SHARES
from doorstep_bridge.mqtt.topics import Topics
from doorstep_bridge.sharing.audit import AuditLog, audit_dir
from doorstep_bridge.sharing.service import ShareService


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open ``<storage>/audit`` for everything that writes to it.

    A log that does not verify is refused (`AuditError`): the bridge does not
    start sharing on top of a damaged history. Retention deletions are written by
    the camera manager itself (``clip_deleted``), in the thread that deletes.
    """
    app[AUDIT] = await asyncio.to_thread(AuditLog, audit_dir(app[CONFIG].storage.path))
    yield


async def shares_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the share service and listen for requests on ``<b>/share/request``."""
    config = app[CONFIG]
    service = ShareService(config, app[BUS], app[CLIP_STORE], app[AUDIT])
    await service.start()
    app[SHARES] = service

    def on_request(_topic: str, payload: bytes) -> None:
        service.handle_mqtt_request(payload)

    unsubscribe = app[MQTT].subscribe(Topics(config.mqtt.base_topic).share_request, on_request)
    try:
        yield
    finally:
        unsubscribe()
        await service.stop()
