"""The bridge application: the services of `lifecycle`, the middlewares and the routes.

`lifecycle` is the composition root for what runs (start-up and shutdown
order); this module only assembles the HTTP side around it, so that a test can
build an application with a subset of the services and the same routes.
"""

from __future__ import annotations

from aiohttp import web

from doorstep_bridge.config import Config
from doorstep_bridge.events import EventBus
from doorstep_bridge.http import audit as audit_routes
from doorstep_bridge.http import clips as clip_routes
from doorstep_bridge.http import live as live_routes
from doorstep_bridge.http import routes as bridge_routes
from doorstep_bridge.http import shares as share_routes
from doorstep_bridge.http import switches as switch_routes
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.errors import error_middleware, text_middleware
from doorstep_bridge.keys import BUS, CONFIG
from doorstep_bridge.lifecycle import SERVICES


def create_app(config: Config) -> web.Application:
    """Build the bridge application for `config` (nothing runs until it starts)."""
    app = web.Application(
        middlewares=[error_middleware, text_middleware, token_middleware], client_max_size=64 * 1024
    )
    app[CONFIG] = config
    app[BUS] = EventBus()
    app.cleanup_ctx.extend(SERVICES)
    app.add_routes(bridge_routes.routes)
    app.add_routes(clip_routes.routes)
    app.add_routes(share_routes.routes)
    app.add_routes(live_routes.install(app))  # ends live streams early at shutdown
    app.add_routes(switch_routes.routes)
    app.add_routes(audit_routes.routes)
    return app
