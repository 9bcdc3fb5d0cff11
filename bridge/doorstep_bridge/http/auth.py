"""Bearer-token authentication for the `/api/` routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import hmac
from typing import TypeAlias, TypeVar

from aiohttp import web

from doorstep_bridge.keys import API_TOKEN

#: Routes under /api/ that answer without a token.
PUBLIC_API_PATHS = frozenset({"/api/health", "/api/announcement-proof"})

Handler: TypeAlias = Callable[[web.Request], Awaitable[web.StreamResponse]]
HandlerT = TypeVar("HandlerT", bound=Handler)


def has_api_token(request: web.Request) -> bool:
    """True when the request carries the bridge's API token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    # surrogateescape: undecodable bytes compare as the bytes they were, never raise.
    offered = token.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(offered, request.app[API_TOKEN].encode())


def shown(value: str, limit: int = 40) -> str:
    """`value` quoted for an error message, cut to `limit` characters (it came from a client)."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def json_error(status: int, message: str) -> web.Response:
    """A JSON error body `{"error": message}` with `status`."""
    return web.json_response({"error": message}, status=status)


@web.middleware
async def token_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reject `/api/` requests without the API token (401); other paths pass through.

    Handlers that accept another credential (a requester token on share requests)
    are marked with :func:`allow_other_credentials` and check it themselves.
    """
    if (
        request.path.startswith("/api/")
        and request.path not in PUBLIC_API_PATHS
        and not getattr(handler, "allows_other_credentials", False)
        and not has_api_token(request)
    ):
        return json_error(401, "missing or invalid API token")
    return await handler(request)


def allow_other_credentials(handler: HandlerT) -> HandlerT:
    """Mark a handler that authenticates the request itself (e.g. with a requester token)."""
    handler.allows_other_credentials = True  # type: ignore[attr-defined]
    return handler
