"""Range requests on files, answered as RFC 9110 says and refused as every other error is.

aiohttp's ``FileResponse`` serves a Range, but gets three things wrong (3.11 to 3.14):
it answers ``bytes=-0`` (a suffix of no bytes, which no file can satisfy) with the whole
file, it knows ``If-Range`` dates only (a stale ETag there still gets a part of the
file, and a range beyond the end an empty 416), and it refuses with an empty body.
Here the bridge decides: a Range the file cannot satisfy is ``416`` with
``{"error": ...}`` and ``Content-Range: bytes */<size>``; an ``If-Range`` that no
longer matches the file, a Range in another unit than bytes and one of several byte
ranges get the whole file (``200``); the rest is left to aiohttp.
The other preconditions come first, as RFC 9110 orders them (13.2.2): a client whose
copy is still the file gets its ``304`` (and a failed ``If-Match`` its ``412``) from
aiohttp whatever its Range asks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
import math
from pathlib import Path
import re
import stat

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import ETAG_ANY, ETag

from doorstep_bridge.http.auth import json_error

#: ``bytes=-0``, ``bytes=-000``: a suffix of no bytes (aiohttp reads it as "from byte 0").
_EMPTY_SUFFIX = re.compile(r"bytes=\s*-\s*0+\s*", re.IGNORECASE)
#: The unit a Range names (RFC 9110, 14.1: a token, then ``=``).
_UNIT = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=")
_BYTE_RANGE = r"\s*(?:\d+\s*-\s*\d*|-\s*\d+)\s*"
#: Several byte ranges, each well formed: ``bytes=0-99,200-299``.
_SEVERAL = re.compile(rf"bytes\s*={_BYTE_RANGE}(?:,{_BYTE_RANGE})+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FileState:
    """A file's size and validators, as ``FileResponse`` sends them.

    Attributes:
        size: Bytes.
        etag: The strong ETag, quoted (``"<mtime ns>-<size>"`` in hex).
        last_modified: Last-Modified in whole seconds (aiohttp rounds up).
    """

    size: int
    etag: str
    last_modified: int


def _state(path: Path) -> FileState | None:
    """The file's state; None when it is not a file (gone, or never made)."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileState(st.st_size, f'"{st.st_mtime_ns:x}-{st.st_size:x}"', math.ceil(st.st_mtime))


async def file_state(path: Path) -> FileState | None:
    """:func:`_state`, off the event loop (the disk may be slow or asleep)."""
    return await asyncio.to_thread(_state, path)


def _ignored(value: str) -> bool:
    """Whether a Range is one to ignore, serving the whole file (RFC 9110, 14.2).

    Another unit than bytes must be ignored. Several byte ranges may be: the bridge
    serves one range at a time, and refusing them with ``416`` would say that none of
    them is in the file. A Range that names no unit at all is left to be refused.
    """
    unit = _UNIT.match(value)
    if unit is None:
        return False
    return unit.group(1).lower() != "bytes" or _SEVERAL.fullmatch(value) is not None


def range_applies(request: web.BaseRequest, state: FileState) -> bool:
    """Whether the request's Range is to be served (RFC 9110, 13.1.5).

    With ``If-Range`` only while the client's validator is the file's: the same strong
    ETag (a weak one never matches), or exactly its Last-Modified. Otherwise the client
    holds another version of the file and gets the whole of this one. A Range to ignore
    (another unit, several ranges) is never served.
    """
    if "Range" not in request.headers or _ignored(request.headers["Range"]):
        return False
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    validator = validator.strip()
    if validator.startswith(('"', "W/")):
        return validator == state.etag
    try:
        date = parsedate_to_datetime(validator)
    except (TypeError, ValueError):
        return False
    return date.tzinfo is not None and date.timestamp() == state.last_modified


def _tag_matches(tags: tuple[ETag, ...] | None, state: FileState, *, weak: bool) -> bool:
    """Whether an ``If-Match`` or ``If-None-Match`` list names the file (``*`` names any)."""
    if tags is None:
        return False
    if len(tags) == 1 and tags[0].value == ETAG_ANY:
        return True
    return any(f'"{tag.value}"' == state.etag for tag in tags if weak or not tag.is_weak)


def precondition_decides(request: web.BaseRequest, state: FileState) -> bool:
    """Whether the request's preconditions end it before its Range is looked at.

    RFC 9110 (13.2.2) evaluates ``If-Match``, ``If-Unmodified-Since``, ``If-None-Match``
    and ``If-Modified-Since`` before ``Range``: a failed one is a ``412``, a client whose
    copy is the file gets ``304``. aiohttp answers both, in that order, with the same
    comparisons as here (``Last-Modified`` is the modification time rounded up, so a whole
    second compares with it as aiohttp compares with the exact time).
    """
    if_match = request.if_match
    if if_match is not None and not _tag_matches(if_match, state, weak=False):
        return True  # 412
    unmodified_since = request.if_unmodified_since
    if (
        if_match is None
        and unmodified_since is not None
        and state.last_modified > unmodified_since.timestamp()
    ):
        return True  # 412
    if_none_match = request.if_none_match
    if if_none_match is not None:
        return _tag_matches(if_none_match, state, weak=True)  # 304
    modified_since = request.if_modified_since
    return modified_since is not None and state.last_modified <= modified_since.timestamp()


def unsatisfiable(request: web.BaseRequest, state: FileState) -> web.Response | None:
    """The ``416`` answer when the request's Range asks for no byte of the file.

    A Range that starts past the end, a suffix of zero bytes (``bytes=-0``) and one that
    is not a single byte range are refused; one aiohttp clamps (a suffix longer than the
    file, an end past it) is served. A request that another precondition ends (``304``,
    ``412``) is left to aiohttp.
    """
    if not range_applies(request, state) or precondition_decides(request, state):
        return None
    size = state.size
    if _EMPTY_SUFFIX.fullmatch(request.headers["Range"].strip()):
        problem = "Range: bytes=-0 asks for the last 0 bytes; ask for at least 1"
    else:
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


class RangedFile(web.FileResponse):
    """A ``FileResponse`` that serves a Range only when :func:`range_applies` says so.

    aiohttp would compare an ``If-Range`` date itself and ignore an ``If-Range`` ETag;
    it is handed the request without ``If-Range``, and without ``Range`` when the
    client's validator no longer matches or the Range is one to ignore (the whole file,
    ``200``).

    Args:
        path: The file.
        state: The file's state when the request was checked.
        headers: Response headers.
    """

    def __init__(self, path: Path, state: FileState, *, headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._file_state = state

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Send the file (aiohttp calls this once the handler returned)."""
        applies = range_applies(request, self._file_state)
        # Cloned only when something goes (a player's seek usually keeps its headers).
        if "If-Range" in request.headers or ("Range" in request.headers and not applies):
            dropped = {"if-range"} if applies else {"if-range", "range"}
            kept = [
                (key, value) for key, value in request.headers.items() if key.lower() not in dropped
            ]
            request = request.clone(headers=kept)
        return await super().prepare(request)
