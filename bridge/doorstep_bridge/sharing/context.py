"""aiohttp cleanup contexts that own the audit log and the share service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import logging
from typing import Any

from aiohttp import web

from doorstep_bridge.events import ClipDeleted
from doorstep_bridge.keys import AUDIT, BUS, CLIP_STORE, CONFIG, MQTT, SHARES
from doorstep_bridge.mqtt.topics import Topics
from doorstep_bridge.sharing.audit import AuditLog, audit_dir
from doorstep_bridge.sharing.service import ShareService

_LOGGER = logging.getLogger(__name__)


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open ``<storage>/audit`` and audit every clip that retention deletes.

    A log that does not verify is refused (`AuditError`): the bridge does not
    start sharing on top of a damaged history.
    """
    log = await asyncio.to_thread(AuditLog, audit_dir(app[CONFIG].storage.path))
    app[AUDIT] = log
    pending: set[asyncio.Task[Any]] = set()

    def on_deleted(event: ClipDeleted) -> None:
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(
                log.append,
                "retention_delete",
                clip_id=event.clip_id,
                camera=event.camera,
                reason=event.reason,
            )
        )
        pending.add(task)
        task.add_done_callback(pending.discard)

    unsubscribe = app[BUS].subscribe(ClipDeleted, on_deleted)
    yield
    unsubscribe()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


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
