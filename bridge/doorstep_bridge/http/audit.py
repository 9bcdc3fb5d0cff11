"""The audit log for its owner: the newest records and whether the chain verifies.

``GET /api/audit?limit=N`` (API token) answers the verification of the whole log
(every segment, as ``doorstep-bridge audit verify`` walks it) and the newest
``N`` records, newest first. The records are read from the end of the segments,
so the answer costs the same for a log of a week and one of years; the
verification walks everything, on a worker thread.

A record is shown as written, without its ``prev`` and ``hash`` (the chain's
plumbing, of no use to a person). A line that is not a complete record (one
being appended right now, or damage that the verification reports) is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from doorstep_bridge.http.auth import json_error
from doorstep_bridge.keys import AUDIT
from doorstep_bridge.sharing.audit import LOG_NAME, VerifyResult, closed_segments, verify

routes = web.RouteTableDef()

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: Bytes read at a time from the end of a segment.
BLOCK = 64 * 1024
#: The chain's own fields, left out of the answer.
HIDDEN = frozenset({"prev", "hash"})


def _limit(request: web.Request) -> int | None:
    """The ``limit`` query parameter; None when it is not a whole number in range."""
    value = request.query.get("limit", "")
    if value == "":
        return DEFAULT_LIMIT
    if not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 1 <= number <= MAX_LIMIT else None


def _complete_lines_from_end(path: Path, wanted: int) -> list[bytes]:
    """Up to `wanted` complete lines (ending in a newline) from the end of `path`, last first."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return []
    with file:
        position = file.seek(0, os.SEEK_END)
        buffer = b""
        while position > 0 and buffer.count(b"\n") <= wanted:
            step = min(BLOCK, position)
            position -= step
            file.seek(position)
            buffer = file.read(step) + buffer
    lines = buffer.split(b"\n")
    lines.pop()  # after the last newline: nothing, or a line being written now
    if position > 0 and lines:
        lines.pop(0)  # may have begun before the part that was read
    return lines[::-1][:wanted]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _records(lines: list[bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            record = json.loads(line, parse_constant=_no_constant)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("seq"), int):
            yield record


def newest_records(folder: Path, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` records of the audit log in `folder`, newest first.

    The live segment is read first, then the closed ones from the newest. A
    segment closed between the two reads is met twice; only records older than
    those already found are taken, so none is listed twice.
    """
    found: list[dict[str, Any]] = []
    below: int | None = None
    live = folder / LOG_NAME
    for path in [live, *reversed(closed_segments(folder))]:
        if len(found) >= limit:
            break
        for record in _records(_complete_lines_from_end(path, limit - len(found))):
            if below is None or record["seq"] < below:
                found.append({k: v for k, v in record.items() if k not in HIDDEN})
                below = record["seq"]
    return found[:limit]


def verification_json(result: VerifyResult, last_seq: int) -> dict[str, Any]:
    """The verification as the API answers it."""
    return {
        "ok": result.ok,
        "count": result.count,
        "last_seq": last_seq,
        "bad_record": result.bad_record,
        "file": result.file,
        "problem": result.problem,
        "past_head": result.past_head,
        "message": result.message,
    }


def _read(folder: Path, limit: int, last_seq: int) -> dict[str, Any]:
    result = verify(folder)
    return {
        "verification": verification_json(result, last_seq),
        "records": newest_records(folder, limit),
    }


@routes.get("/api/audit")
async def audit(request: web.Request) -> web.Response:
    """``{"verification": {...}, "records": [newest first]}``; ``?limit=1..200`` (50)."""
    limit = _limit(request)
    if limit is None:
        return json_error(400, f"limit: expected a whole number from 1 to {MAX_LIMIT}")
    log = request.app.get(AUDIT)
    if log is None:
        return json_error(503, "the audit log is not open")
    last_seq, _hash = log.head
    body = await asyncio.to_thread(_read, log.path, limit, last_seq)
    return web.json_response(body, headers={"Cache-Control": "no-store"})
