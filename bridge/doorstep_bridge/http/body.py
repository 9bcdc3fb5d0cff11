"""Request bodies, read with a deadline.

A client that announces a body and then sends it a byte at a time would keep a
connection busy (and out of reach of the idle-connection limits) for as long
as it likes; the whole body must arrive within :data:`BODY_TIMEOUT`.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

#: Seconds for a whole request body (at most 64 KiB) to arrive.
BODY_TIMEOUT = 30.0


async def read_body(request: web.Request) -> bytes:
    """The request's body.

    Raises:
        web.HTTPRequestTimeout: It did not arrive within :data:`BODY_TIMEOUT` (408).
    """
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout from None
