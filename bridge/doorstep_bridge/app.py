"""Composition root: builds the aiohttp application that owns every long-lived service.

Each service is an aiohttp ``cleanup_ctx``: set up in order at start, torn down
in reverse at stop. So the broker connection outlives the cameras (the last
clip and the ``offline`` message still reach MQTT), and the audit log outlives
everything that writes to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from doorstep_bridge.camera.manager import cameras_ctx
from doorstep_bridge.config import Config
from doorstep_bridge.doorbell import doorbell_ctx
from doorstep_bridge.events import EventBus
from doorstep_bridge.http import clips as clip_routes
from doorstep_bridge.http import live as live_routes
from doorstep_bridge.http import routes as bridge_routes
from doorstep_bridge.http import shares as share_routes
from doorstep_bridge.http import switches as switch_routes
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.errors import error_middleware, text_middleware
from doorstep_bridge.identity import api_token, bridge_id, ensure_storage
from doorstep_bridge.keys import API_TOKEN, BRIDGE_ID, BUS, CONFIG
from doorstep_bridge.mqtt.publisher import (
    commands_ctx,
    mqtt_connect_ctx,
    mqtt_ctx,
    publisher_ctx,
)
from doorstep_bridge.recording.store import clip_store_ctx
from doorstep_bridge.sharing.context import audit_ctx, shares_ctx


async def identity_ctx(app: web.Application) -> AsyncIterator[None]:
    """Storage folder, bridge id and API token (generated on first start)."""
    storage = app[CONFIG].storage.path
    ensure_storage(storage)
    app[BRIDGE_ID] = bridge_id(storage)
    app[API_TOKEN] = api_token(storage, app[CONFIG].http.token)
    yield


def create_app(config: Config) -> web.Application:
    """Build the bridge application for `config` (nothing runs until it starts)."""
    app = web.Application(
        middlewares=[error_middleware, text_middleware, token_middleware], client_max_size=64 * 1024
    )
    app[CONFIG] = config
    app[BUS] = EventBus()
    app.cleanup_ctx.extend(
        [
            identity_ctx,
            audit_ctx,  # first up, last down: everything else may write to it
            clip_store_ctx,
            mqtt_ctx,  # outlives the cameras: the last clip and "offline" still go out
            publisher_ctx,
            doorbell_ctx,
            cameras_ctx,
            commands_ctx,
            shares_ctx,
            mqtt_connect_ctx,  # last: every subscription is in place when messages arrive
        ]
    )
    app.add_routes(bridge_routes.routes)
    app.add_routes(clip_routes.routes)
    app.add_routes(share_routes.routes)
    app.add_routes(live_routes.install(app))  # also starts and stops the live hub
    app.add_routes(switch_routes.routes)
    return app
