"""Share routes: requests, decisions, the audit hook for the integration, share links.

``/api/share-requests`` accepts the API token or a requester token
(``sharing.requester_tokens``); a requester token can only create requests.
Decisions and everything else under ``/api/shares`` need the API token (the
token middleware enforces it). ``/share/<token>`` needs no login: the link
token is the credential, checked against its stored hash, and every request on
it is audited before a byte is sent. A browser gets the recipient's page
(``http.recipient``), everything else the MP4.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from doorstep_bridge.exceptions import AuditError, ShareError, StorageError
from doorstep_bridge.http.auth import allow_other_credentials, has_api_token, json_error
from doorstep_bridge.http.body import read_body
from doorstep_bridge.http.ranges import FileState, RangedFile, file_state, unsatisfiable
from doorstep_bridge.http.recipient import (
    LINK_HEADERS,
    gone_page,
    page_response,
    share_page,
    wants_page,
)
from doorstep_bridge.keys import CONFIG, SHARES
from doorstep_bridge.sharing.audit import audit_dir
from doorstep_bridge.sharing.downloads import Download
from doorstep_bridge.sharing.report import build_report
from doorstep_bridge.sharing.state import (
    ShareConflictError,
    ShareGoneError,
    ShareLimitError,
    ShareNotFoundError,
)

_LOGGER = logging.getLogger(__name__)

routes = web.RouteTableDef()

#: Audit record kinds the integration may add through ``POST /api/shares/<id>/audit``.
INTEGRATION_AUDIT_KINDS = frozenset({"notification", "decision_refused"})
MAX_AUDIT_FIELDS = 20
MAX_AUDIT_VALUE = 300
#: Client details from a proxy are cut to this length before they are logged.
MAX_CLIENT_TEXT = 300


def _error(err: ShareError) -> web.Response:
    if isinstance(err, ShareNotFoundError):
        return json_error(404, str(err))
    if isinstance(err, ShareGoneError):
        return json_error(410, str(err))
    if isinstance(err, ShareConflictError):
        return json_error(409, str(err))
    if isinstance(err, ShareLimitError):
        return json_error(429, str(err))
    return json_error(400, str(err))


def _cannot_write(err: AuditError | StorageError) -> str:
    """What could not be written, for a 503: the audit log, or the share database."""
    if isinstance(err, AuditError):
        return "the audit log cannot be written"
    # E.g. "database is locked": another program (a backup, the sqlite3 CLI) holds it.
    return f"the share database cannot be written ({err})"


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await read_body(request))
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the parser follows ('[' * 60000).
        raise web.HTTPBadRequest(
            text="expected a JSON body (valid JSON, not nested too deeply)"
        ) from None


def _requester_token_name(request: web.Request) -> str | None:
    """Name of the requester token the request carries, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    found = None
    offered = token.strip().encode("utf-8", "surrogateescape")
    for name, expected in request.app[CONFIG].sharing.requester_tokens:
        # Compare against every token (no early exit) to keep timing uniform.
        if hmac.compare_digest(offered, expected.encode()):
            found = name
    return found


@routes.post("/api/share-requests")
@allow_other_credentials
async def create_share_request(request: web.Request) -> web.Response:
    """Create a share request (API token or a requester token) → 201 share state."""
    if has_api_token(request):
        source = "http"
    else:
        name = _requester_token_name(request)
        if name is None:
            return json_error(401, "missing or invalid API or requester token")
        source = f"http:{name}"
    shares = request.app[SHARES]
    try:
        try:
            data = await _json_body(request)
        except web.HTTPBadRequest as err:
            # Refused (400) and audited like any other invalid request.
            await shares.refuse_unreadable(source, err.text or "")
            raise
        view = await shares.create_request(data, source)
    except ShareError as err:
        return _error(err)
    except (AuditError, StorageError) as err:
        _LOGGER.exception("Cannot record a share request")
        return json_error(503, f"{_cannot_write(err)}; no request was stored")
    return web.json_response(view.payload(), status=201)


@routes.get("/api/share-report")
async def share_report(request: web.Request) -> web.Response:
    """The transparency report's figures, from the audit log (``doorstep-bridge report``)."""
    folder = audit_dir(request.app[CONFIG].storage.path)
    report = await asyncio.to_thread(build_report, folder)
    return web.json_response(report.summary())


@routes.get("/api/shares")
async def list_shares(request: web.Request) -> web.Response:
    """Every share request, newest first."""
    views = request.app[SHARES].list()
    return web.json_response({"shares": [view.payload() for view in views]})


@routes.get("/api/shares/{share_id}")
async def get_share(request: web.Request) -> web.Response:
    """One share's state."""
    view = request.app[SHARES].get(request.match_info["share_id"])
    if view is None:
        return json_error(404, "no such share")
    return web.json_response(view.payload())


@routes.post("/api/shares/{share_id}/decision")
async def decide(request: web.Request) -> web.Response:
    """Approve, deny or revoke (API token only; requester tokens never get here)."""
    data = await _json_body(request)
    if not isinstance(data, dict):
        return json_error(400, "expected a JSON object with decision, by, via")
    unknown = sorted(set(data) - {"decision", "by", "by_id", "via", "redact", "link_ttl_hours"})
    if unknown:
        return json_error(400, f"unknown field(s): {', '.join(map(str, unknown))}")
    for key in ("decision", "by", "via"):
        if not isinstance(data.get(key), str):
            return json_error(400, f"{key}: expected a string")
    try:
        view = await request.app[SHARES].decide(
            request.match_info["share_id"],
            data["decision"],
            data["by"],
            data["via"],
            data.get("redact"),
            link_ttl_hours=data.get("link_ttl_hours"),
            by_id=data.get("by_id"),
        )
    except ShareError as err:
        return _error(err)
    except (AuditError, StorageError) as err:
        # Not a revoke once its record is written: that holds whatever the database says.
        _LOGGER.exception("Cannot record a share decision")
        return json_error(503, f"{_cannot_write(err)}; the decision was not applied")
    return web.json_response(view.payload())


@routes.post("/api/shares/{share_id}/audit")
async def add_audit_record(request: web.Request) -> web.Response:
    """Let the integration log what happened on its side → 204.

    That is a notification sent to the approvers or a decision it refused.
    """
    data = await _json_body(request)
    kind = data.get("kind") if isinstance(data, dict) else None
    # A string first: a list or an object cannot even be looked up among the kinds.
    if not isinstance(kind, str) or kind not in INTEGRATION_AUDIT_KINDS:
        kinds = ", ".join(sorted(INTEGRATION_AUDIT_KINDS))
        return json_error(400, f"expected a JSON object with kind: one of {kinds}")
    fields = {key: value for key, value in data.items() if key != "kind"}
    if len(fields) > MAX_AUDIT_FIELDS or not all(
        isinstance(key, str)
        and key not in {"seq", "time", "prev", "hash", "share_id"}
        and _small_json(value)
        for key, value in fields.items()
    ):
        return json_error(400, "audit fields must be a few short strings, numbers or lists")
    try:
        await request.app[SHARES].note(request.match_info["share_id"], kind, fields)
    except ShareError as err:
        return _error(err)
    except AuditError:
        _LOGGER.exception("Cannot write an audit record")
        return json_error(503, "the audit log cannot be written")
    return web.Response(status=204)


def _small_json(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_AUDIT_VALUE
    if isinstance(value, list):
        return len(value) <= MAX_AUDIT_FIELDS and all(
            isinstance(item, str) and len(item) <= MAX_AUDIT_VALUE for item in value
        )
    return False


def _client(request: web.Request) -> tuple[str | None, str | None, str]:
    """Client address, user agent, and through whom (``direct`` or ``proxy``)."""
    if has_api_token(request) and "X-Doorstep-Client-Address" in request.headers:
        address = request.headers.get("X-Doorstep-Client-Address", "")[:MAX_CLIENT_TEXT]
        agent = request.headers.get("X-Doorstep-Client-Agent", "")[:MAX_CLIENT_TEXT]
        return address or None, agent or None, "proxy"
    agent = request.headers.get("User-Agent", "")[:MAX_CLIENT_TEXT]
    return request.remote, agent or None, "direct"


async def _download(request: web.Request, **details: Any) -> Download | web.Response:
    """Check the link and audit the request; the download, or the error answer.

    A browser asking for the page gets the error as a plain page (same status).
    """
    page = wants_page(request) and "file" not in details
    address, agent, via = _client(request)
    details["via"] = via
    if "Range" in request.headers:
        details["range"] = request.headers["Range"][:100]
    if request.method == "HEAD":
        # Headers only (a chat app previewing the link, a download manager): audited,
        # as every visit is, but no footage was sent.
        details["method"] = "HEAD"
    if page:
        details["file"] = "page"
    try:
        return await request.app[SHARES].download(
            request.match_info["token"], address, agent, **details
        )
    except ShareError as err:
        response = _error(err)
        if page:
            response = gone_page(response.status, str(err))
        if isinstance(err, ShareLimitError):
            response.headers["Retry-After"] = "60"  # the clients' window is a minute
        return response
    except (AuditError, StorageError) as err:
        _LOGGER.exception("Cannot record a request on a share link")
        message = f"{_cannot_write(err)}; nothing is released"
        return gone_page(503, message) if page else json_error(503, message)


@routes.get("/share/{token}")
async def share_link(request: web.Request) -> web.StreamResponse:
    """A ready share: its page for a browser, else the MP4; 404 unknown, 410 expired or revoked.

    ``?raw=1`` always gives the MP4 (``&download=1``: as an attachment).
    """
    download = await _download(request)
    if isinstance(download, web.Response):
        return download
    if wants_page(request):
        return await _page(request, download)
    state = await file_state(download.path)
    if state is None:
        return json_error(410, "this share's video is no longer available")
    if (refused := unsatisfiable(request, state)) is not None:
        return refused
    disposition = "attachment" if request.query.get("download") else "inline"
    return SharedVideo(
        download,
        state,
        headers={
            "Content-Type": "video/mp4",
            "Content-Disposition": f'{disposition}; filename="{download.filename}"',
            **LINK_HEADERS,
        },
    )


class SharedVideo(RangedFile):
    """A share's video: a revoke or an expiry while it is being sent cuts the connection.

    A slow or paused client could otherwise go on receiving the footage long after the
    owner withdrew it (the open file outlives its deletion).
    """

    def __init__(self, download: Download, state: FileState, *, headers: dict[str, str]) -> None:
        super().__init__(download.path, state, headers=headers)
        self._withdrawn = download.withdrawn

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Send the file (aiohttp calls this once the handler returned)."""
        sending = asyncio.current_task()
        assert sending is not None
        under_way = True

        def cut(_watch: asyncio.Task[bool]) -> None:
            # Only while this response is sent: the connection may carry the next request.
            if under_way:
                # As when the client goes away: aiohttp closes the connection.
                sending.cancel()

        watch = asyncio.create_task(self._withdrawn.wait())
        watch.add_done_callback(cut)
        try:
            return await super().prepare(request)
        finally:
            under_way = False
            watch.cancel()


async def _page(request: web.Request, download: Download) -> web.Response:
    """The recipient's page, from the export's signed manifest."""
    try:
        text = await asyncio.to_thread(download.signature.read_text, encoding="utf-8")
        document = json.loads(text)
        manifest = document["manifest"]
        fingerprint = str(document["key_fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return gone_page(410, "this share's video is no longer available")
    return page_response(share_page(manifest, fingerprint, request.match_info["token"]))


@routes.get("/share/{token}/signature")
async def share_signature(request: web.Request) -> web.StreamResponse:
    """The signature file of a ready share's export (docs/sharing.md, "Signed exports")."""
    download = await _download(request, file="signature")
    if isinstance(download, web.Response):
        return download
    state = await file_state(download.signature)
    if state is None:
        return json_error(410, "this share's signature is no longer available")
    if (refused := unsatisfiable(request, state)) is not None:
        return refused
    return RangedFile(
        download.signature,
        state,
        headers={
            "Content-Type": "application/json",
            "Content-Disposition": f'attachment; filename="{download.signature_filename}"',
            **LINK_HEADERS,
        },
    )
