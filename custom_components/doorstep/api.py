"""Async client of the bridge's HTTP API (docs/http-api.md).

No Home Assistant imports: the session is injected (HA's shared one), so this
module could become a small library of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
import hashlib
import hmac
import json
import os
from typing import Any
from urllib.parse import quote

import aiohttp

from .protocol import (
    BridgeInfo,
    BridgeStats,
    CameraStatus,
    Clip,
    ProtocolError,
    Ring,
    Share,
    parse_bridge_info,
    parse_camera_status,
    parse_clip,
    parse_ring,
    parse_share,
    parse_stats,
)

REQUEST_TIMEOUT = 10.0
#: Media kinds the bridge serves for a clip.
CLIP_MEDIA = ("video", "snapshot", "thumbnail")
#: Audit records one ``GET /api/audit`` returns at most.
MAX_AUDIT_RECORDS = 200
#: A share link's query parameters passed on to the bridge (the video itself, as a file).
LINK_QUERY = ("raw", "download")
#: Characters of each of them passed on (their values are flags: "1").
MAX_LINK_QUERY = 8
#: Bytes of an answer to ``POST /api/announcement-proof`` read at most.
MAX_PROOF_ANSWER = 4096


class DoorstepError(Exception):
    """Any failure talking to the bridge."""


class DoorstepConnectionError(DoorstepError):
    """The bridge could not be reached or answered garbage."""


class DoorstepAuthError(DoorstepError):
    """The bridge rejected the API token."""


class DoorstepNotFoundError(DoorstepError):
    """The bridge does not know this object."""


class DoorstepRequestError(DoorstepError):
    """The bridge refused the request (4xx other than auth/404); message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class BridgeSnapshot:
    """What ``GET /api/info`` tells about the bridge right now."""

    info: BridgeInfo
    stats: BridgeStats | None
    cameras: Mapping[str, CameraStatus]
    #: Fingerprint of the key the bridge signs share exports with (None: an older bridge).
    export_signing_key: str | None = None


@dataclass(frozen=True, slots=True)
class ClipPage:
    """One page of ``GET /api/clips``."""

    clips: tuple[Clip, ...]
    total: int


@dataclass(frozen=True, slots=True)
class AuditCheck:
    """Whether the bridge's audit log verifies (``GET /api/audit``'s ``verification``)."""

    ok: bool
    count: int
    last_seq: int
    bad_record: int | None
    file: str | None
    problem: str | None
    past_head: int


@dataclass(frozen=True, slots=True)
class AuditPage:
    """The verification and the newest audit records, newest first."""

    check: AuditCheck
    records: tuple[Mapping[str, Any], ...]


def _int(data: Mapping[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{key}: expected a whole number")
    return value


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{key}: expected text")
    return value


def parse_audit(data: Mapping[str, Any]) -> AuditPage:
    """``GET /api/audit``'s answer.

    Raises:
        ProtocolError: The answer is not shaped as docs/http-api.md says.
    """
    check = data.get("verification")
    records = data.get("records")
    if not isinstance(check, Mapping) or not isinstance(check.get("ok"), bool):
        raise ProtocolError("verification: expected an object with ok")
    if not isinstance(records, list) or not all(
        isinstance(r, Mapping) and isinstance(r.get("seq"), int) and isinstance(r.get("kind"), str)
        for r in records
    ):
        raise ProtocolError("records: expected a list of records with seq and kind")
    return AuditPage(
        check=AuditCheck(
            ok=check["ok"],
            count=_int(check, "count") or 0,
            last_seq=_int(check, "last_seq") or 0,
            bad_record=_int(check, "bad_record", optional=True),
            file=_text(check, "file"),
            problem=_text(check, "problem"),
            past_head=_int(check, "past_head", optional=True) or 0,
        ),
        records=tuple(records[:MAX_AUDIT_RECORDS]),
    )


def _unreachable(err: BaseException) -> DoorstepConnectionError:
    """The error for a bridge that did not answer, in words an owner can act on.

    It reaches the media browser's and the actions' messages: a repr such as
    ``ClientConnectorError(ConnectionKey(host=..., proxy_headers_hash=None), ...)``
    would bury the address and the reason.
    """
    if isinstance(err, TimeoutError):
        reason = f"the bridge did not answer within {REQUEST_TIMEOUT:.0f} s"
    elif isinstance(err, aiohttp.ClientConnectorError):
        os_error, number = err.os_error, err.os_error.errno
        # errno's own text ("Connection refused"); a lookup error has only its message.
        why = os.strerror(number) if number is not None and number > 0 else os_error.strerror
        reason = f"cannot connect to the bridge at {err.host}:{err.port}: {why or os_error}"
    elif isinstance(err, aiohttp.ClientError):
        reason = f"the connection to the bridge failed: {err or type(err).__name__}"
    else:  # a body that is not JSON
        reason = "the bridge answered something that is not JSON"
    return DoorstepConnectionError(reason)


def _range_headers(range_header: str | None, if_range: str | None) -> dict[str, str]:
    """A player's ``Range``, with its ``If-Range`` (meaningless without a range)."""
    if not range_header:
        return {}
    if if_range:
        return {"Range": range_header, "If-Range": if_range}
    return {"Range": range_header}


def health_url(url: str) -> str:
    """The bridge's health page, which an owner can open in a browser (no token needed)."""
    return url.rstrip("/") + "/api/health"


def announcement_proof(token: str, api_url: str, base_topic: str, nonce: str) -> str:
    """The proof a bridge holding ``token`` gives for announcing ``api_url`` and ``base_topic``.

    HMAC-SHA256 keyed with the API token, hex; the bridge computes the same
    (``POST /api/announcement-proof``, docs/http-api.md).
    """
    message = f"doorstep announcement proof\n{api_url}\n{base_topic}\n{nonce}"
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


async def ask_announcement_proof(session: aiohttp.ClientSession, url: str, nonce: str) -> str:
    """Ask the bridge at ``url`` to prove its announcement for ``nonce``; its ``proof``.

    Sends no token: ``url`` comes from an MQTT message anyone on the broker can forge.

    Raises:
        DoorstepNotFoundError: A bridge from before the endpoint (or not a bridge).
        DoorstepError: Anything else that is not a proof.
    """
    path = "/api/announcement-proof"
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            response = await session.post(
                url.rstrip("/") + path, json={"nonce": nonce}, allow_redirects=False
            )
            async with response:
                if response.status == 404:
                    raise DoorstepNotFoundError(path)
                # Whoever answers is unknown: read no more than a proof takes.
                body = b""
                async for chunk in response.content.iter_any():
                    body += chunk
                    if len(body) > MAX_PROOF_ANSWER:
                        raise DoorstepConnectionError("its answer is far too long for a proof")
        data = json.loads(body)
    except (TimeoutError, aiohttp.ClientError, ValueError, RecursionError) as err:
        raise _unreachable(err) from err
    if not isinstance(data, dict):
        raise DoorstepConnectionError("the bridge answered something that is not an object")
    if response.status != 200:
        why = f"it answered {response.status}: {data.get('error') or response.reason}"
        raise DoorstepRequestError(response.status, why)
    proof = data.get("proof")
    if not isinstance(proof, str):
        raise DoorstepConnectionError("its answer holds no proof")
    return proof


class DoorstepApiClient:
    """Talks to one bridge with its API token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        on_auth_error: Callable[[], None] | None = None,
    ) -> None:
        """Args: ``on_auth_error`` is called whenever the bridge rejects the token."""
        self._session = session
        self._url = url.rstrip("/")
        self._token = token
        # Optional decision fields the bridge refused as unknown (an older bridge).
        self._refused_fields: set[str] = set()
        self._on_auth_error = on_auth_error

    def _auth_error(self) -> DoorstepAuthError:
        if self._on_auth_error is not None:
            self._on_auth_error()
        return DoorstepAuthError("the bridge rejected the API token")

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._token}"}
        if extra:
            headers.update(extra)
        return headers

    async def _json(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None, empty_ok: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                response = await self._session.request(
                    method, self._url + path, headers=self._headers(), params=params, json=body
                )
                async with response:
                    if response.status in (401, 403):
                        raise self._auth_error()
                    if response.status == 404:
                        raise DoorstepNotFoundError(path)
                    if empty_ok and response.status == 204:
                        return {}
                    data = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            raise _unreachable(err) from err
        if not isinstance(data, dict):
            raise DoorstepConnectionError("the bridge answered something that is not an object")
        if response.status >= 400:
            message = data.get("error")
            raise DoorstepRequestError(response.status, str(message or response.reason))
        return data

    async def info(self) -> BridgeSnapshot:
        """Bridge info, stats and camera states; also the connection test."""
        data = await self._json("GET", "/api/info")
        try:
            info = parse_bridge_info(data)
            stats_raw = data.get("stats")
            stats = parse_stats(stats_raw) if isinstance(stats_raw, Mapping) else None
        except ProtocolError as err:
            raise DoorstepConnectionError(f"unexpected bridge info: {err}") from err
        key = data.get("export_signing_key")
        return BridgeSnapshot(
            info=info,
            stats=stats,
            cameras=parse_camera_status(data),
            export_signing_key=key if isinstance(key, str) else None,
        )

    async def clips(
        self,
        *,
        camera: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        reason: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ClipPage:
        """Clips, newest first; ``reason`` keeps one kind (``ring``, ``motion``...)."""
        params = {"limit": str(limit), "offset": str(offset)}
        if camera:
            params["camera"] = camera
        if reason:
            params["reason"] = reason
        if since:
            params["since"] = since.isoformat()
        if until:
            params["until"] = until.isoformat()
        data = await self._json("GET", "/api/clips", params=params)
        try:
            clips = tuple(parse_clip(item) for item in data.get("clips", []))
            total = int(data.get("total", len(clips)))
        except (ProtocolError, TypeError, ValueError) as err:
            raise DoorstepConnectionError(f"unexpected clip list: {err}") from err
        return ClipPage(clips=clips, total=total)

    async def clip(self, clip_id: str) -> Clip:
        """One clip (``GET /api/clips/<id>``).

        Raises:
            DoorstepNotFoundError: The bridge has no such clip (any more).
        """
        data = await self._json("GET", f"/api/clips/{quote(clip_id, safe='')}")
        try:
            return parse_clip(data)
        except ProtocolError as err:
            raise DoorstepConnectionError(f"unexpected clip: {err}") from err

    async def set_switch(self, camera: str, switch: str, *, on: bool) -> bool:
        """Turn a camera's ``motion_detection`` or ``recording`` switch on or off.

        The bridge takes "off" only here, with the API token (never over MQTT).

        Returns:
            The switch's state as the bridge answers it.

        Raises:
            DoorstepNotFoundError: Unknown camera, or a bridge older than the route.
            DoorstepRequestError: The bridge refused the switch or the body.
        """
        path = f"/api/cameras/{quote(camera, safe='')}/switches/{quote(switch, safe='')}"
        data = await self._json("PUT", path, body={"on": on})
        state = data.get("on")
        if not isinstance(state, bool):
            raise DoorstepConnectionError("the bridge answered a switch without its state")
        return state

    async def forget_clip(self, clip_id: str, *, by: str) -> None:
        """Erase a clip, its snapshot and thumbnail (``DELETE /api/clips/<id>``).

        Raises:
            DoorstepNotFoundError: Unknown clip (or a bridge older than the route).
            DoorstepRequestError: Refused; status 409 while a share holds the clip.
        """
        await self._json("DELETE", f"/api/clips/{quote(clip_id, safe='')}", body={"by": by})

    async def create_share(self, body: Mapping[str, Any]) -> Share:
        """Create a share request; returns its state (pending or rejected)."""
        return self._share(await self._json("POST", "/api/share-requests", body=body))

    async def share(self, share_id: str) -> Share:
        """One share state; :class:`DoorstepNotFoundError` when the bridge has no such share."""
        return self._share(await self._json("GET", f"/api/shares/{quote(share_id, safe='')}"))

    async def decide(
        self,
        share_id: str,
        *,
        decision: str,
        by: str,
        via: str,
        redact: bool = True,
        link_ttl_hours: float | None = None,
        by_id: str | None = None,
    ) -> Share:
        """Approve, deny or revoke a share request.

        A bridge that predates ``link_ttl_hours`` or ``by_id`` refuses unknown fields:
        the decision is made anyway without them (the bridge's own link lifetime, the
        two approvals of a legal request compared by name), and they are no longer sent.
        """
        body: dict[str, Any] = {"decision": decision, "by": by, "via": via, "redact": redact}
        optional = {"link_ttl_hours": link_ttl_hours, "by_id": by_id}
        body.update(
            (key, value)
            for key, value in optional.items()
            if value is not None and key not in self._refused_fields
        )
        path = f"/api/shares/{quote(share_id, safe='')}/decision"
        while True:
            try:
                return self._share(await self._json("POST", path, body=body))
            except DoorstepRequestError as err:
                refused = [key for key in optional if key in body and key in str(err)]
                if err.status != 400 or "unknown field" not in str(err) or not refused:
                    raise
            self._refused_fields.update(refused)
            for key in refused:
                del body[key]

    async def audit(self, share_id: str, kind: str, fields: Mapping[str, Any]) -> None:
        """Append what the integration did (``notification``, ``decision_refused``)."""
        path = f"/api/shares/{quote(share_id, safe='')}/audit"
        await self._json("POST", path, body={"kind": kind, **fields}, empty_ok=True)

    async def rings(self) -> list[Ring]:
        """The bridge's latest doorbell presses, oldest first (``GET /api/rings``).

        Raises:
            DoorstepNotFoundError: A bridge older than ``GET /api/rings``.
        """
        data = await self._json("GET", "/api/rings")
        items = data.get("rings")
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise DoorstepConnectionError("unexpected ring list: expected a list of objects")
        try:
            return [parse_ring(item) for item in items]
        except ProtocolError as err:
            raise DoorstepConnectionError(f"unexpected ring list: {err}") from err

    async def audit_log(self, *, limit: int = 50) -> AuditPage:
        """The audit log's newest records (newest first) and whether it verifies.

        Raises:
            DoorstepNotFoundError: A bridge older than ``GET /api/audit``.
        """
        data = await self._json("GET", "/api/audit", params={"limit": str(limit)})
        try:
            return parse_audit(data)
        except ProtocolError as err:
            raise DoorstepConnectionError(f"unexpected audit log answer: {err}") from err

    async def share_report(self) -> dict[str, Any]:
        """The transparency report's figures (``GET /api/share-report``), as the bridge sends them.

        Raises:
            DoorstepNotFoundError: A bridge older than the report.
        """
        return await self._json("GET", "/api/share-report")

    @staticmethod
    def _share(data: Mapping[str, Any]) -> Share:
        try:
            return parse_share(data)
        except ProtocolError as err:
            raise DoorstepConnectionError(f"unexpected share state: {err}") from err

    async def open_clip_media(
        self,
        clip_id: str,
        kind: str,
        *,
        range_header: str | None = None,
        if_range: str | None = None,
        method: str = "GET",
    ) -> aiohttp.ClientResponse:
        """Start streaming a clip's video/snapshot/thumbnail; the caller releases it.

        ``method`` ``HEAD`` asks for the headers only (size, type), as a player may.
        ``range_header`` and ``if_range`` are the player's: the bridge serves the range
        only while ``If-Range`` still names its file.
        """
        if kind not in CLIP_MEDIA:
            raise DoorstepNotFoundError(kind)
        path = f"/api/clips/{quote(clip_id, safe='')}/{kind}"
        extra = _range_headers(range_header, if_range) or None
        # A file is sent without pause: silence means a bridge that is gone (a host off
        # the network leaves the connection open), not one that is busy.
        return await self._open(
            path, self._headers(extra), method=method, read_timeout=REQUEST_TIMEOUT
        )

    async def open_share_link(
        self,
        token: str,
        *,
        signature: bool = False,
        page: bool = False,
        query: Mapping[str, str] | None = None,
        method: str = "GET",
        range_header: str | None = None,
        if_range: str | None = None,
        client_address: str | None = None,
        client_agent: str | None = None,
    ) -> aiohttp.ClientResponse:
        """Start streaming a share link for an outside recipient; the caller releases it.

        Args:
            token: The link's token.
            signature: The export's signature file instead of the video.
            page: The recipient's page (a browser asks for HTML), as the bridge decides.
            query: The recipient's query; only ``raw`` and ``download`` are passed on.
            method: ``GET``, or ``HEAD`` for the headers only.
            range_header: The recipient's ``Range``.
            if_range: The recipient's ``If-Range``.
            client_address: The recipient's address, for the bridge's audit record.
            client_agent: The recipient's user agent, for the same.

        Error answers (404, 410, ...) are returned, not raised: the caller passes them on.
        """
        extra: dict[str, str] = {}
        if page:
            extra["Accept"] = "text/html"
        extra.update(_range_headers(range_header, if_range))
        if client_address:
            extra["X-Doorstep-Client-Address"] = client_address
        if client_agent:
            extra["X-Doorstep-Client-Agent"] = client_agent
        path = f"/share/{quote(token, safe='')}" + ("/signature" if signature else "")
        params = {
            key: value[:MAX_LINK_QUERY] for key, value in (query or {}).items() if key in LINK_QUERY
        }
        return await self._open(
            path, self._headers(extra), raise_not_found=False, method=method, params=params
        )

    async def _open(
        self,
        path: str,
        headers: Mapping[str, str],
        *,
        raise_not_found: bool = True,
        method: str = "GET",
        read_timeout: float | None = None,
        params: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Start a streamed request; ``read_timeout`` bounds each wait for data.

        A player that stops reading pauses the socket, and with it this timeout.
        """
        try:
            response = await self._session.request(
                method,
                self._url + path,
                headers=headers,
                params=params,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=REQUEST_TIMEOUT, sock_read=read_timeout
                ),
            )
        except (TimeoutError, aiohttp.ClientError) as err:
            raise _unreachable(err) from err
        if response.status in (401, 403):
            response.release()
            raise self._auth_error()
        if raise_not_found and response.status == 404:
            response.release()
            raise DoorstepNotFoundError(path)
        return response

    async def live_image(self, camera: str) -> bytes:
        """The camera's latest masked frame (JPEG), from frames the bridge decoded already.

        Raises:
            DoorstepRequestError: 503 when the camera is offline or has no recent frame.
        """
        response = await self._open_live(camera, "live.jpg")
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await response.read()
        except (TimeoutError, aiohttp.ClientError) as err:
            raise _unreachable(err) from err
        finally:
            response.release()

    async def open_live_stream(self, camera: str) -> aiohttp.ClientResponse:
        """Start the camera's masked MJPEG stream; the caller closes the response.

        Raises:
            DoorstepRequestError: 503 when the camera is offline or has too many viewers.
        """
        return await self._open_live(camera, "live.mjpeg")

    async def _open_live(self, camera: str, name: str) -> aiohttp.ClientResponse:
        path = f"/api/cameras/{quote(camera, safe='')}/{name}"
        response = await self._open(path, self._headers())
        if response.status == 200:
            return response
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                data = await response.json(content_type=None)
            message = data.get("error") if isinstance(data, dict) else None
        except (TimeoutError, aiohttp.ClientError, ValueError):
            message = None
        finally:
            response.release()
        raise DoorstepRequestError(response.status, str(message or response.reason))
