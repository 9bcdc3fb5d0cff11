"""The audit log for its owner: the newest records and whether the chain verifies.

``GET /api/audit?limit=N`` (API token) answers the verification of the whole log
(every segment, as ``doorstep-bridge audit verify`` walks it) and the newest
``N`` records, newest first (``sharing.audit.newest_records``: read from the end of
the segments, so the answer costs the same for a log of a week and one of years);
the verification walks everything, on a worker thread.

A record is shown as written, without its ``prev`` and ``hash`` (the chain's
plumbing, of no use to a person).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from doorstep_bridge.http.auth import json_error
from doorstep_bridge.keys import AUDIT
from doorstep_bridge.sharing.audit import VerifyResult, newest_records, verify

routes = web.RouteTableDef()

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: The chain's own fields, left out of the answer.
HIDDEN = frozenset({"prev", "hash"})


def _limit(request: web.Request) -> int | None:
    """The ``limit`` query parameter; None when it is not a whole number in range."""
    value = request.query.get("limit", "")
    if value == "":
        return DEFAULT_LIMIT
    # Python refuses to read an integer of over 4300 digits; ten are plenty for a limit.
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_LIMIT else None


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
        "records": [
            {key: value for key, value in record.items() if key not in HIDDEN}
            for record in newest_records(folder, limit)
        ],
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
