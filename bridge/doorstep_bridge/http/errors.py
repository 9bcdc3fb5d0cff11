"""Every error answer is JSON `{"error": ...}`, including the unexpected ones."""

from __future__ import annotations

import logging

from aiohttp import web

from doorstep_bridge.http.auth import Handler, json_error

_LOGGER = logging.getLogger(__name__)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors and unexpected exceptions into JSON answers.

    An unexpected exception is logged with its traceback and answered with a
    plain 500 that reveals nothing of the bridge's internals.
    """
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        return json_error(err.status, err.reason)
    except Exception:
        _LOGGER.exception("Request %s %s failed", request.method, request.path)
        return json_error(500, "internal error; see the bridge's log")
