"""Clip routes: list, one clip, its files (video with HTTP Range), record now, forget.

Authentication is the token middleware's job (every route here is under /api/).
Clip ids are checked against ``[A-Za-z0-9_-]`` before anything else: an id is
looked up in the index, never joined into a path, so ``..`` and friends are 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
import logging
from pathlib import Path
import re
from typing import Any

from aiohttp import web

from doorstep_bridge.events import ClipDeleted, RecordRequested
from doorstep_bridge.exceptions import AuditError, StorageError
from doorstep_bridge.http.auth import json_error, shown
from doorstep_bridge.http.body import read_body
from doorstep_bridge.http.ranges import RangedFile, file_state, unsatisfiable
from doorstep_bridge.keys import AUDIT, BUS, CLIP_STORE, CONFIG
from doorstep_bridge.models import ClipInfo, optional_json_object, parse_record_request
from doorstep_bridge.recording.store import (
    REASONS,
    ClipHeldError,
    ClipNotFoundError,
    valid_clip_id,
)
from doorstep_bridge.text import is_text

_LOGGER = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_LIMIT = 500
#: A camera key as the config allows it (``front_door``): anything else names no camera.
CAMERA_KEY = re.compile(r"[a-z0-9][a-z0-9_]{0,62}")
#: The query parameters of ``GET /api/clips``, in the order the errors name them.
LIST_PARAMETERS = ("camera", "since", "until", "reason", "limit", "offset")
#: Longest "by" of a forget request (as a share decision's).
MAX_BY = 100


class BadQueryError(ValueError):
    """A query parameter is malformed; the message names it."""


#: A UTC offset at the end of a time: ``01``, ``0100`` or ``01:00``.
_OFFSET = re.compile(r"\d{2}(?::?\d{2})?")


def _plus_restored(value: str) -> str:
    """``…T10:00:00 01:00`` → ``…T10:00:00+01:00``.

    An unencoded ``+`` in a query string decodes to a space, so a natural
    ``curl '…?since=2026-01-01T00:00:00+00:00'`` arrives with a space before the
    offset. A space there cannot mean anything else; elsewhere it is left alone.
    """
    head, space, offset = value.rpartition(" ")
    if space and _OFFSET.fullmatch(offset) and ("T" in head or ":" in head):
        return f"{head}+{offset}"
    return value


def _time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    value = _plus_restored(value)
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


def _camera(request: web.Request) -> str | None:
    camera = request.query.get("camera") or None
    # The camera's display name ("Front door") instead of its key lists nothing: say so.
    if camera is not None and not CAMERA_KEY.fullmatch(camera):
        raise BadQueryError(
            f"camera: expected a camera key such as front_door (lowercase letters, digits"
            f" and '_'), not {shown(camera)}"
        )
    return camera


def _unknown_parameters(request: web.Request) -> None:
    # A typo ("cameras", "reasons") would answer every clip, as if it had filtered them.
    for name in request.query:
        if name not in LIST_PARAMETERS:
            raise BadQueryError(
                f"{shown(name)}: unknown parameter; expected {', '.join(LIST_PARAMETERS)}"
            )


def _interval(request: web.Request) -> tuple[datetime | None, datetime | None]:
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None and until is not None and since > until:
        # Swapped, they would select nothing: as if there were no clips.
        raise BadQueryError("since: after until; since is the earlier time")
    return since, until


def _reason(request: web.Request) -> str | None:
    reason = request.query.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise BadQueryError(f"reason: expected one of {', '.join(sorted(REASONS))}")
    return reason


@routes.get("/api/clips")
async def list_clips(request: web.Request) -> web.Response:
    """Finished clips, newest first: ``?camera=&since=&until=&reason=&limit=&offset=``."""
    try:
        _unknown_parameters(request)
        since, until = _interval(request)
        filters: dict[str, Any] = {
            "camera": _camera(request),
            "since": since,
            "until": until,
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


async def _file(request: web.Request, path: Path | None, content_type: str) -> web.StreamResponse:
    state = None if path is None else await file_state(path)
    if path is None or state is None:
        return json_error(404, "not found")
    if (refused := unsatisfiable(request, state)) is not None:
        return refused
    # Answers Range requests (206, Content-Range) and conditional GETs.
    return RangedFile(
        path,
        state,
        headers={
            "Content-Type": content_type,
            # Revalidated at each use (an unchanged file is a 304): a forgotten clip must
            # not stay viewable from a client's cache.
            "Cache-Control": "private, no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _clip_file(
    request: web.Request, path_of: Callable[[ClipInfo], Path | None], content_type: str
) -> web.StreamResponse:
    clip = await _clip(request)
    if clip is None:
        return json_error(404, "unknown clip")
    return await _file(request, path_of(clip), content_type)


def _forget_by(body: bytes) -> str:
    """Who asks to forget a clip: empty body, or JSON ``{"by": "name"}``.

    Raises:
        ValueError: With a message fit for the caller.
    """
    by = optional_json_object(body, "by", '{"by": "Alice"}').get("by", "api")
    if not isinstance(by, str) or not by.strip() or len(by) > MAX_BY or not is_text(by):
        raise ValueError(f"by: expected text of 1 to {MAX_BY} characters")
    return by.strip()


@routes.delete("/api/clips/{clip_id}")
async def forget_clip(request: web.Request) -> web.Response:
    """Erase a clip, its snapshot and thumbnail; optional body ``{"by": "name"}``.

    The audit log keeps that the clip was erased, by whom and when, nothing of
    what it showed. A clip a pending or active share holds is refused with 409.
    """
    clip_id = request.match_info["clip_id"]
    try:
        by = _forget_by(await read_body(request))
    except ValueError as err:
        return json_error(400, str(err))
    if not valid_clip_id(clip_id):
        return json_error(404, "unknown clip")
    return await _erase(request, clip_id, by)


async def _erase(request: web.Request, clip_id: str, by: str) -> web.Response:
    audit = request.app[AUDIT]

    def record(clip: ClipInfo) -> None:
        audit.append("clip_erased", clip=clip.id, camera=clip.camera, by=by)

    store = request.app[CLIP_STORE]
    try:
        clip = await asyncio.to_thread(
            store.erase, clip_id, f"forgotten on request of {by}", record
        )
    except ClipNotFoundError:
        return json_error(404, "unknown clip")
    except ClipHeldError as err:
        return web.json_response(
            {
                "error": f"a share holds this clip ({', '.join(err.shares)}): deny or revoke"
                " the share first",
                "shares": list(err.shares),
            },
            status=409,
        )
    except AuditError:
        _LOGGER.exception("Cannot audit the erasure of clip %s", clip_id)
        return json_error(503, "the audit log cannot be written; the clip was not erased")
    except StorageError as err:
        _LOGGER.error("Cannot erase clip %s: %s", clip_id, err)  # noqa: TRY400
        return json_error(503, "the clip index cannot record the erasure; try again")
    _LOGGER.info("Clip %s (%s) erased on request of %s", clip.id, clip.camera, shown(by, MAX_BY))
    request.app[BUS].publish(ClipDeleted(clip.id, clip.camera, "forgotten"))
    return web.json_response({"id": clip.id, "erased": True})


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
