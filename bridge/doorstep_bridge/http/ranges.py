"""A Range a file cannot satisfy, answered as every other error is: JSON.

aiohttp's ``FileResponse`` answers such a request ``416`` with an empty body; the API
answers ``{"error": ...}`` with the same status and ``Content-Range: bytes */<size>``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from doorstep_bridge.http.auth import json_error


def _size(path: Path) -> int | None:
    """The file's size; None when it is not a file (gone, or never made)."""
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


async def file_size(path: Path) -> int | None:
    """:func:`_size`, off the event loop (the disk may be slow or asleep)."""
    return await asyncio.to_thread(_size, path)


def unsatisfiable(request: web.Request, size: int) -> web.Response | None:
    """The ``416`` answer when the request's Range lies beyond a file of ``size`` bytes.

    A Range aiohttp would ignore (with ``If-Range``) or clamp (a suffix, an end past
    the file) is left to it.
    """
    if "Range" not in request.headers or "If-Range" in request.headers:
        return None
    try:
        start = request.http_range.start
    except ValueError:
        problem = "Range: expected bytes=<first>-[<last>] or bytes=-<count>"
    else:
        if start is None or start < size:  # no range, a suffix (negative), or within
            return None
        problem = f"Range: starts at byte {start}, the file has {size} bytes"
    response = json_error(416, problem)
    response.headers["Content-Range"] = f"bytes */{size}"
    return response
