"""Every error answer is JSON `{"error": ...}`, including the unexpected ones."""

from __future__ import annotations

import logging

from aiohttp import web

from doorstep_bridge.http.auth import Handler, json_error
from doorstep_bridge.http.throttle import LogThrottle
from doorstep_bridge.text import is_text

_LOGGER = logging.getLogger(__name__)
#: A bug hit by every request must not flood the log: one traceback per kind a minute.
_THROTTLE = LogThrottle(_LOGGER)


def _route(request: web.Request) -> str:
    """The route's template (``/share/{token}``): a path may carry a secret."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


#: Headers of a refusal the client needs to act on it (RFC 9110 wants Allow on a 405).
_KEPT_HEADERS = ("Allow",)


def _message(err: web.HTTPException) -> str:
    """What the raiser said, else the status's own reason.

    Handlers raise HTTP errors with a plain-text reason; aiohttp's own default text is
    just ``"400: Bad Request"``, which says nothing more than the status.
    """
    if isinstance(err, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(err.allowed_methods))
        return f"method {err.method} is not allowed here; this path takes {allowed}"
    text = err.text or ""
    return text if text and text != f"{err.status}: {err.reason}" else err.reason


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors and unexpected exceptions into JSON answers.

    An unexpected exception is logged (its traceback at most once a minute per
    route and kind) and answered with a plain 500 that reveals nothing of the
    bridge's internals.
    """
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        response = json_error(err.status, _message(err))
        for name in _KEPT_HEADERS:
            if name in err.headers:
                response.headers[name] = err.headers[name]
        return response
    except Exception as err:  # noqa: BLE001 - any bug becomes a 500, logged
        route = _route(request)
        _THROTTLE.log(
            logging.ERROR,
            f"{route}:{type(err).__name__}",
            "Request %s %s failed",
            request.method,
            route,
            exc_info=True,
        )
        return json_error(500, "internal error; see the bridge's log")


@web.middleware
async def text_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (400) a request whose headers, path or query are not valid UTF-8.

    Checked before authentication, so no route, credential check or audit record
    ever sees undecodable text.
    """
    for name, value in request.headers.items():
        if not is_text(value):
            return json_error(400, f"header {name}: not valid UTF-8")
    if not is_text(request.path) or not all(
        is_text(key) and is_text(value) for key, value in request.query.items()
    ):
        return json_error(400, "the URL is not valid UTF-8")
    return await handler(request)
