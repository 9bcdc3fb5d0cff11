"""Clip routes: list, one clip, its video (HTTP Range), snapshot, thumbnail; record now.

Authentication is the token middleware's job (every route here is under /api/).
Clip ids are checked against ``[A-Za-z0-9_-]`` before anything else: an id is
looked up in the index, never joined into a path, so ``..`` and friends are 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from doorstep_bridge.events import RecordRequested
from doorstep_bridge.http.auth import json_error, shown
from doorstep_bridge.http.body import read_body
from doorstep_bridge.keys import BUS, CLIP_STORE, CONFIG
from doorstep_bridge.models import ClipInfo, parse_record_request
from doorstep_bridge.recording.store import REASONS, valid_clip_id

routes = web.RouteTableDef()

MAX_LIMIT = 500


class BadQueryError(ValueError):
    """A query parameter is malformed; the message names it."""


def _time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadQueryError(f"{name}: expected an ISO 8601 time with a timezone") from None
    if moment.tzinfo is None:
        raise BadQueryError(f"{name}: expected an ISO 8601 time with a timezone")
    return moment


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadQueryError(f"{name}: expected a whole number") from None
    if not low <= number <= high:
        raise BadQueryError(f"{name}: expected {low}..{high}")
    return number


def _reason(request: web.Request) -> str | None:
    reason = request.query.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise BadQueryError(f"reason: expected one of {', '.join(sorted(REASONS))}")
    return reason


@routes.get("/api/clips")
async def list_clips(request: web.Request) -> web.Response:
    """Finished clips, newest first: ``?camera=&since=&until=&reason=&limit=&offset=``."""
    try:
        filters: dict[str, Any] = {
            "camera": request.query.get("camera") or None,
            "since": _time(request, "since"),
            "until": _time(request, "until"),
            "reason": _reason(request),
            "limit": _int(request, "limit", 50, 1, MAX_LIMIT),
            "offset": _int(request, "offset", 0, 0, 10**9),
        }
    except BadQueryError as err:
        return json_error(400, str(err))
    clips, total = await asyncio.to_thread(request.app[CLIP_STORE].list, **filters)
    return web.json_response({"clips": [clip.payload() for clip in clips], "total": total})


async def _clip(request: web.Request) -> ClipInfo | None:
    clip_id = request.match_info["clip_id"]
    if not valid_clip_id(clip_id):
        return None
    return await asyncio.to_thread(request.app[CLIP_STORE].get, clip_id)


@routes.get("/api/clips/{clip_id}")
async def get_clip(request: web.Request) -> web.Response:
    """One clip's JSON."""
    clip = await _clip(request)
    if clip is None:
        return json_error(404, "unknown clip")
    return web.json_response(clip.payload())


def _file(path: Path | None, content_type: str) -> web.StreamResponse:
    if path is None or not path.is_file():
        return json_error(404, "not found")
    # FileResponse answers Range requests (206, Content-Range) and conditional GETs.
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _clip_file(
    request: web.Request, path_of: Callable[[ClipInfo], Path | None], content_type: str
) -> web.StreamResponse:
    clip = await _clip(request)
    if clip is None:
        return json_error(404, "unknown clip")
    return _file(path_of(clip), content_type)


@routes.get("/api/clips/{clip_id}/video")
async def clip_video(request: web.Request) -> web.StreamResponse:
    """The MP4 (H.264, +faststart); HTTP Range supported."""
    return await _clip_file(request, lambda clip: clip.path, "video/mp4")


@routes.get("/api/clips/{clip_id}/snapshot")
async def clip_snapshot(request: web.Request) -> web.StreamResponse:
    """The clip's snapshot JPEG."""
    return await _clip_file(request, lambda clip: clip.snapshot_path, "image/jpeg")


@routes.get("/api/clips/{clip_id}/thumbnail")
async def clip_thumbnail(request: web.Request) -> web.StreamResponse:
    """The clip's small thumbnail JPEG."""
    return await _clip_file(request, lambda clip: clip.thumbnail_path, "image/jpeg")


@routes.post("/api/cameras/{camera}/record")
async def record(request: web.Request) -> web.Response:
    """Record now; optional body ``{"duration": seconds}`` → 202."""
    camera = request.match_info["camera"]
    if camera not in request.app[CONFIG].cameras:
        return json_error(404, f"unknown camera {shown(camera)}")
    try:
        duration = parse_record_request(await read_body(request))
    except ValueError as err:
        return json_error(400, str(err))
    request.app[BUS].publish(RecordRequested(camera, duration))
    return web.json_response({"accepted": True, "camera": camera, "duration": duration}, status=202)
