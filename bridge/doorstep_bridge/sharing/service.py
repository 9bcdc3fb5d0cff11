"""The share workflow: requests, decisions, renders, links, expiry, all audited.

One :class:`ShareService` owns every share request. State changes are
serialised by one lock and each is written to the audit log *before* it takes
effect (a release that cannot be audited does not happen), then saved to
SQLite, then published on the bus (``ShareStateChanged``, which the MQTT
publisher sends retained on ``<b>/share/<id>``).

Nothing here can be decided over MQTT: :meth:`handle_mqtt_request` only ever
creates requests. Decisions arrive through :meth:`decide`, which the HTTP API
calls for requests carrying the API token.
"""

from __future__ import annotations

import asyncio
import builtins
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import hashlib
import json
import logging
import math
import os
from pathlib import Path
import re
import threading
from typing import Any

from doorstep_bridge.config import Config
from doorstep_bridge.events import EventBus, ShareStateChanged, StatsChanged
from doorstep_bridge.exceptions import AuditError, ShareError
from doorstep_bridge.models import ClipInfo, iso, utcnow
from doorstep_bridge.sharing.audit import AuditLog, clean_text, field_problem, is_text
from doorstep_bridge.sharing.clips import ClipSource
from doorstep_bridge.sharing.links import (
    link_path,
    new_share_id,
    new_token,
    token_hash,
    valid_share_id,
    valid_token,
)
from doorstep_bridge.sharing.render import (
    RenderCancelledError,
    RenderJob,
    RenderResult,
    Segment,
    render,
)
from doorstep_bridge.sharing.repeats import Entry, RepeatedRecords
from doorstep_bridge.sharing.state import (
    DECISIONS,
    FINAL,
    HOLDING,
    VIAS,
    Decision,
    Share,
    ShareConflictError,
    ShareNotFoundError,
    ShareState,
)
from doorstep_bridge.sharing.store import ShareDB

_LOGGER = logging.getLogger(__name__)

S = ShareState
REQUEST_FIELDS = frozenset({"requester", "cameras", "start", "end", "reason", "request_id"})
MAX_TEXT = {"requester": 100, "reason": 500, "request_id": 100, "by": 100}
#: A request may reach this far into the future (clocks of HA and the bridge differ).
CLOCK_SKEW = timedelta(minutes=5)
#: Progress is published in steps of this much.
PROGRESS_STEP = 0.05
#: Names of rendered exports (and renders cut short) in the shares folder.
EXPORT_NAME = re.compile(r"^s_[A-Z2-7]{10}\.mp4(\.part)?$")
#: Text echoed back from a rejected request is cut to this length.
MAX_ECHO = 200
#: Nice value of the render thread.
RENDER_NICE = 10
#: Downloads of a share that is no longer available answer 410, others 404.
GONE = frozenset({S.EXPIRED, S.REVOKED})
#: Share requests taken over MQTT per minute; anyone on the broker can send them.
MQTT_REQUESTS_PER_MINUTE = 10
#: Requests waiting for a decision at once *per source* (the API token, each requester
#: token, MQTT); more from that source are rejected until some are decided. Each source
#: has its own quota, so no other source can block the owner's own requests.
MAX_PENDING = 20
#: Record kinds a client can repeat at will; bursts of them are summed (`RepeatedRecords`).
REPEATABLE = ("download", "download_refused", "request_rejected")
#: Longest text of a rejected value echoed in an error message.
MAX_ERROR_ECHO = 60
#: A share that ended this long ago is forgotten: its row is deleted and its retained
#: topic cleared (the audit log keeps the history).
FORGET_AFTER = timedelta(days=7)

type Clock = Callable[[], datetime]
type Renderer = Callable[[RenderJob, Callable[[float], None], threading.Event], RenderResult]


class ShareGoneError(ShareError):
    """The share link expired or was revoked (HTTP 410)."""


class ShareLimitError(ShareError):
    """Too many requests: waiting for decisions, or over MQTT in the last minute (HTTP 429)."""


@dataclass(frozen=True, slots=True)
class Download:
    """A download the link allows: the file and the name to offer."""

    path: Path
    filename: str


def _echo(value: str) -> str:
    """`value` as it may appear in an error message: valid text, cut short."""
    text = clean_text(value)
    return text if len(text) <= MAX_ERROR_ECHO else text[:MAX_ERROR_ECHO] + "..."


def _text(data: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ShareError(f"{key}: expected a non-empty string")
    if not is_text(value):
        raise ShareError(f"{key}: not valid text (a lone surrogate or invalid bytes)")
    value = value.strip()
    if len(value) > MAX_TEXT[key]:
        raise ShareError(f"{key}: at most {MAX_TEXT[key]} characters")
    return value


def _moment(data: Mapping[str, Any], key: str) -> datetime:
    value = data.get(key)
    if not isinstance(value, str):
        raise ShareError(f"{key}: expected an ISO 8601 time with a timezone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ShareError(f"{key}: '{_echo(value)}' is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ShareError(f"{key}: the time needs a timezone (e.g. +00:00)")
    return moment


def share_files_dir(config: Config) -> Path:
    """Where the share database and rendered exports live."""
    return config.storage.path / "shares"


class ShareService:
    """Every share request of the bridge, from request to purge.

    Args:
        config: The bridge configuration.
        bus: Where state changes are published.
        store: The clip store (finds and holds clips).
        audit: The audit log every step is written to.
        clock: Current time (tests pass a controllable clock).
        renderer: The blocking render function (tests may wrap it).
    """

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        store: ClipSource,
        audit: AuditLog,
        *,
        clock: Clock = utcnow,
        renderer: Renderer = render,
    ) -> None:
        self._config = config
        self._settings = config.sharing
        self._bus = bus
        self._store = store
        self._audit = audit
        self._clock = clock
        self._renderer = renderer
        self._dir = share_files_dir(config)
        # Exports sit next to the database, two levels below the storage folder: the
        # clip store adopts unknown ``<storage>/<camera>/<day>/<id>.mp4`` files as clips.
        self._exports = self._dir
        self._db: ShareDB | None = None
        self._shares: dict[str, Share] = {}
        self._tokens: dict[str, str] = {}  # share id → token, in memory only
        self._by_hash: dict[str, str] = {}  # token hash → share id
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._cancel: dict[str, threading.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._mqtt_times: deque[datetime] = deque()  # requests taken in the last minute
        self._mqtt_throttled = False
        self._repeats = RepeatedRecords()
        # One render at a time, in a thread of its own at a lower CPU priority, so a
        # long export never delays live recording, rings or the event loop's workers.
        self._render_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="doorstep-render", initializer=_lower_priority
        )

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the shares, purge leftovers, resume renders, start the timers."""
        self._loop = asyncio.get_running_loop()
        self._exports.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = await asyncio.to_thread(ShareDB, self._dir / "shares.sqlite3")
        for share in await asyncio.to_thread(self._db.load_all):
            self._shares[share.id] = share
            if share.token_hash:
                self._by_hash[share.token_hash] = share.id
        await self._purge_orphans()
        # Before publishing: what is forgotten now is cleared, not published again.
        await self._forget_ended(self._clock())
        for share in self._shares.values():
            if share.state in HOLDING:
                # Holds are the clip store's; renewing them is harmless if it kept them.
                await asyncio.to_thread(self._store.hold, share.id, share.clips)
            if share.state in (S.APPROVED, S.RENDERING):
                self._queue.put_nowait(share.id)
            if share.state is not S.READY:
                # A ready share's link is unknown after a restart (only its hash
                # is stored): leave the retained message on the broker alone.
                self._publish(share)
        self._publish_stats()
        self._spawn(self._timer_loop())
        self._spawn(self._render_loop())

    async def stop(self) -> None:
        """Stop timers and renders (an interrupted render resumes at the next start)."""
        for cancel in self._cancel.values():
            cancel.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._write_repeats(everything=True)
        # A cancelled render stops at its next frame and removes its partial file;
        # wait for that, so a restart cannot race it for the same file.
        await asyncio.to_thread(self._render_thread.shutdown, wait=True, cancel_futures=True)
        if self._db is not None:
            self._db.close()
            self._db = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reading ----------------------------------------------------------------------------

    def get(self, share_id: str) -> dict[str, Any] | None:
        """The state JSON of one share, or None."""
        share = self._shares.get(share_id)
        return None if share is None else self._payload(share)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every share's state JSON, newest first."""
        shares = sorted(self._shares.values(), key=lambda s: (s.created, s.id), reverse=True)
        return [self._payload(share) for share in shares]

    def _payload(self, share: Share) -> dict[str, Any]:
        token = self._tokens.get(share.id)
        return share.payload(link_path(token) if token else None)

    # -- requests ---------------------------------------------------------------------------

    def validate(self, data: Any) -> dict[str, Any]:
        """Check a request body; returns the cleaned fields.

        Raises:
            ShareError: Saying what is wrong, one problem at a time.
        """
        if not isinstance(data, dict):
            raise ShareError("expected a JSON object with requester, cameras, start, end, reason")
        unknown = sorted(set(data) - REQUEST_FIELDS)
        if unknown:
            raise ShareError(
                f"unknown field(s) {', '.join(map(str, unknown))}: a request has only "
                "requester, cameras, start, end, reason and request_id (and cannot decide)"
            )
        requester = _text(data, "requester")
        reason = _text(data, "reason")
        request_id = _text(data, "request_id", required=False)
        cameras = data.get("cameras")
        if isinstance(cameras, str):
            cameras = [cameras]
        if not isinstance(cameras, list) or not cameras:
            raise ShareError("cameras: expected a list of camera names")
        for camera in cameras:
            if not isinstance(camera, str) or camera not in self._config.cameras:
                known = ", ".join(self._config.cameras)
                shown = _echo(camera) if isinstance(camera, str) else type(camera).__name__
                raise ShareError(f"cameras: unknown camera {shown!r} (known: {known})")
        start, end = _moment(data, "start"), _moment(data, "end")
        if end <= start:
            raise ShareError("end must be after start")
        limit = self._settings.max_window_hours
        if end - start > timedelta(hours=limit):
            raise ShareError(f"the window is longer than sharing.max_window_hours ({limit:g} h)")
        if start > self._clock() + CLOCK_SKEW:
            raise ShareError("start is in the future: only recorded footage can be shared")
        return {
            "requester": requester,
            "reason": reason,
            "request_id": request_id,
            "cameras": tuple(dict.fromkeys(cameras)),
            "start": start,
            "end": end,
        }

    async def create_request(self, data: Any, source: str) -> dict[str, Any]:
        """Validate and store a new request (state ``pending``).

        Args:
            data: The request body (docs/mqtt.md, "Share request").
            source: Where it came from (``mqtt``, ``http``, ``http:<requester token>``).

        Raises:
            ShareError: The request is invalid (the message says why); audited.
        """
        try:
            fields = self.validate(data)
        except ShareError as err:
            await self._rejected(source, str(err), data)
            raise
        now = self._clock()
        share = Share(
            id=new_share_id(),
            state=S.PENDING,
            created=now,
            deadline=now + timedelta(minutes=self._settings.decision_timeout_minutes),
            source=source,
            **fields,
        )
        async with self._lock:
            if self._pending_from(source) >= MAX_PENDING:
                error = (
                    f"too many requests from this source are waiting for a decision (at most "
                    f"{MAX_PENDING} per source): decide some or let them expire first"
                )
                await self._rejected(source, error, data)
                raise ShareLimitError(error)
            clips = await self._clips(share)
            share = share.changed(clips=tuple(clip.id for clip in clips))
            await self._append(
                "request",
                share_id=share.id,
                requester=share.requester,
                cameras=list(share.cameras),
                start=iso(share.start),
                end=iso(share.end),
                reason=share.reason,
                source=source,
                request_id=share.request_id,
                deadline=iso(share.deadline),
                clips=len(clips),
            )
            await self._save(share)
            await asyncio.to_thread(self._store.hold, share.id, share.clips)
        self._publish(share)
        self._publish_stats()
        self._wake.set()
        _LOGGER.info("Share request %s from %s (%s)", share.id, share.requester, source)
        return self._payload(share)

    async def _rejected(self, source: str, error: str, data: Any) -> None:
        """Audit a refused request; a burst from one source is summed, not written whole."""
        error = clean_text(error)
        entry: Entry = (("error", error[:200]),)
        if self._repeats.admit("request_rejected", ("source", source), entry, self._clock()):
            await self._append("request_rejected", source=source, error=error, **_summary(data))

    def _pending_from(self, source: str) -> int:
        return sum(1 for s in self._shares.values() if s.state is S.PENDING and s.source == source)

    def handle_mqtt_request(self, payload: bytes) -> None:
        """A message on ``<b>/share/request``: create a request, never decide.

        Invalid requests are published once (not retained) as ``rejected`` with the
        reason. Over `MQTT_REQUESTS_PER_MINUTE` messages in a minute are rejected
        unread: anyone who can write to the broker can send them.
        """
        now = self._clock()
        while self._mqtt_times and now - self._mqtt_times[0] >= timedelta(minutes=1):
            self._mqtt_times.popleft()
        if len(self._mqtt_times) >= MQTT_REQUESTS_PER_MINUTE:
            if not self._mqtt_throttled:
                _LOGGER.warning(
                    "Over %d share requests a minute over MQTT: rejecting more",
                    MQTT_REQUESTS_PER_MINUTE,
                )
                self._mqtt_throttled = True
            self._publish_rejected(
                {},
                f"too many share requests over MQTT (at most {MQTT_REQUESTS_PER_MINUTE} a "
                "minute): try again later",
            )
            return
        self._mqtt_throttled = False
        self._mqtt_times.append(now)
        self._spawn(self._mqtt_request(payload))

    async def _mqtt_request(self, payload: bytes) -> None:
        data: Any = None
        try:
            try:
                data = _parse_mqtt_request(payload)
            except ShareError as err:
                await self._rejected("mqtt", str(err), None)
                raise
            await self.create_request(data, "mqtt")
        except ShareError as err:
            self._publish_rejected(data if isinstance(data, dict) else {}, str(err))
        except AuditError as err:
            # As over HTTP (503): nothing was stored, and the asker is told so.
            _LOGGER.error("Cannot audit a share request from MQTT: %s", err)  # noqa: TRY400
            self._publish_rejected(
                data if isinstance(data, dict) else {},
                "the bridge cannot write its audit log; no request was stored",
            )
        except Exception:
            _LOGGER.exception("Share request from MQTT failed")
            # Never silence: the asker learns that nothing was stored.
            self._publish_rejected({}, "the bridge could not take this request; see its log")

    def _publish_rejected(self, data: dict[str, Any], error: str) -> None:
        def field(key: str) -> Any:
            value = data.get(key)
            return value[:MAX_ECHO] if isinstance(value, str) and is_text(value) else None

        cameras = data.get("cameras")
        state = {
            "id": new_share_id(),
            "state": str(S.REJECTED),
            "requester": field("requester"),
            "cameras": [c[:MAX_ECHO] for c in cameras if isinstance(c, str) and is_text(c)]
            if isinstance(cameras, list)
            else [],
            "start": _time_or_none(data.get("start")),
            "end": _time_or_none(data.get("end")),
            "reason": field("reason"),
            "created": iso(self._clock()),
            "deadline": None,
            "decision": None,
            "progress": None,
            "link": None,
            "link_expires": None,
            "error": clean_text(error),
            "request_id": field("request_id"),
        }
        # Not retained: a rejection is an answer, not a share; retaining it would let
        # junk requests pile up topics on the broker.
        self._bus.publish(ShareStateChanged(state["id"], state, retain=False))

    # -- decisions --------------------------------------------------------------------------

    async def decide(
        self,
        share_id: str,
        decision: str,
        by: str,
        via: str,
        redact: bool | None = None,
        *,
        link_ttl_hours: float | None = None,
    ) -> dict[str, Any]:
        """Approve, deny or revoke a share (callers must have checked the API token).

        Args:
            share_id: The share.
            decision: ``approve``, ``deny`` or ``revoke``.
            by: Who decided (an HA user name).
            via: ``phone``, ``ui`` or ``automation``.
            redact: Blur faces (default: ``sharing.redact_faces``). Privacy masks
                are filled whatever this says.
            link_ttl_hours: With ``approve``: the link lifetime the approver chose,
                capped by ``sharing.link_ttl_hours``; ignored otherwise.

        Raises:
            ShareNotFoundError: No such share.
            ShareConflictError: Not possible in the share's state.
            ShareError: Invalid arguments.
        """
        if decision not in DECISIONS:
            raise ShareError(f"decision: expected one of {', '.join(DECISIONS)}")
        if via not in VIAS:
            raise ShareError(f"via: expected one of {', '.join(VIAS)}")
        who = _text({"by": by}, "by")
        assert who is not None
        if redact is not None and not isinstance(redact, bool):
            raise ShareError("redact: expected true or false")
        redact = self._settings.redact_faces if redact is None else redact
        ttl = self._link_ttl(link_ttl_hours) if decision == "approve" else None
        now = self._clock()
        record = Decision(decision=decision, by=who, via=via, at=now, redact=redact)
        async with self._lock:
            share = self._existing(share_id)
            if decision == "revoke":
                return await self._revoke(share, record)
            if share.state is S.PENDING and now >= share.deadline:
                await self._expire(share, "no decision before the deadline")
                raise ShareConflictError(f"share {share_id} expired without a decision")
            if share.state is not S.PENDING:
                raise ShareConflictError(f"share {share_id} is {share.state}, not pending")
            new = share.moved(
                S.APPROVED if decision == "approve" else S.DENIED,
                decision=record,
                link_ttl_hours=ttl,
            )
            extra = {"link_ttl_hours": ttl} if ttl is not None else {}
            await self._append("decision", share_id=share.id, **record.payload(), **extra)
            await self._save(new)
            if new.state is S.DENIED:
                await asyncio.to_thread(self._store.release, new.id)
        self._publish(new)
        self._publish_stats()
        if new.state is S.APPROVED:
            self._queue.put_nowait(new.id)
        _LOGGER.info("Share %s %s by %s via %s", share_id, new.state, who, via)
        return self._payload(new)

    def _link_ttl(self, hours: Any) -> float | None:
        if hours is None:
            return None
        if (
            isinstance(hours, bool)
            or not isinstance(hours, int | float)
            or not math.isfinite(hours)
            or not hours > 0
        ):
            raise ShareError("link_ttl_hours: expected a finite number of hours above 0")
        return min(float(hours), self._settings.link_ttl_hours)

    async def _revoke(self, share: Share, record: Decision) -> dict[str, Any]:
        if share.state is S.PENDING:
            raise ShareConflictError(f"share {share.id} is pending: deny it instead of revoking")
        if share.state in FINAL:
            raise ShareConflictError(f"share {share.id} is {share.state}: nothing to revoke")
        cancel = self._cancel.get(share.id)
        if cancel is not None:
            cancel.set()
        new = share.moved(S.REVOKED, revoked_by=record, progress=None)
        await self._append("revoke", share_id=share.id, **record.payload())
        await self._save(new)
        await self._end(new, "revoked")
        self._publish(new)
        _LOGGER.info("Share %s revoked by %s", share.id, record.by)
        return self._payload(new)

    async def note(self, share_id: str, kind: str, fields: Mapping[str, Any]) -> None:
        """Audit something the integration did for a share.

        The integration has no other way into the log: notifications it sent to
        the approvers, decisions it refused (wrong user, stale nonce, too late).

        Raises:
            ShareNotFoundError: No such share.
            ShareError: A field is not JSON the log can hold (named in the message).
        """
        self._existing(share_id)
        record = {**fields, "share_id": share_id}
        problem = field_problem(record)
        if problem is not None:
            raise ShareError(problem)
        await self._append(kind, **record)

    # -- links ------------------------------------------------------------------------------

    async def download(
        self, token: str, client: str | None, agent: str | None, **details: Any
    ) -> Download:
        """Check a link token and audit the download before it is served.

        Raises:
            ShareNotFoundError: Not a token of any share (404).
            ShareGoneError: Expired or revoked (410).
        """
        if not valid_token(token):
            raise ShareNotFoundError("no such share link")
        # Client details come from request headers: kept as valid text whatever was sent.
        client, agent = _clean_or_none(client), _clean_or_none(agent)
        details = {
            key: clean_text(value) if isinstance(value, str) else value
            for key, value in details.items()
        }
        who: Entry = (("client", client), ("agent", agent), ("via", details.get("via")))
        share_id = self._by_hash.get(token_hash(token))
        share = self._shares.get(share_id) if share_id else None
        if share is None:
            raise ShareNotFoundError("no such share link")
        if share.state is S.READY and share.link_expires and self._clock() >= share.link_expires:
            await self.tick()
            share = self._shares[share.id]
        group = ("share_id", share.id)
        if share.state in GONE:
            if self._repeats.admit("download_refused", group, who, self._clock()):
                await self._append(
                    "download_refused",
                    share_id=share.id,
                    state=str(share.state),
                    client=client,
                    agent=agent,
                    **details,
                )
            raise ShareGoneError(f"this share link was {share.state}")
        if share.state is not S.READY or share.file is None:
            raise ShareNotFoundError("no such share link")
        path = self._exports / share.file
        # The first requests of each client are written before a byte is sent; a burst
        # of further ones (a player's Range requests, a script) is summed.
        if self._repeats.admit("download", group, who, self._clock()):
            await self._append("download", share_id=share.id, client=client, agent=agent, **details)
        return Download(path=path, filename=f"doorstep-{share.id}.mp4")

    # -- timers -----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Expire requests and links past their time; forget shares ended long ago."""
        now = self._clock()
        async with self._lock:
            for share in list(self._shares.values()):
                if share.state is S.PENDING and now >= share.deadline:
                    await self._expire(share, "no decision before the deadline")
                elif share.state is S.READY and share.link_expires and now >= share.link_expires:
                    await self._expire(share, "the link reached its lifetime")
            await self._forget_ended(now)
        await self._write_repeats()

    async def _write_repeats(self, *, everything: bool = False) -> None:
        """Write the ``repeated`` records that are due (all of them when stopping)."""
        for fields in self._repeats.due(self._clock(), everything=everything):
            try:
                await self._append("repeated", **fields)
            except AuditError:
                # The counts are not lost without a trace: the bridge's log has them.
                _LOGGER.exception("Cannot audit repeated records: %s", fields)

    async def _forget_ended(self, now: datetime) -> None:
        """Forget shares that ended `FORGET_AFTER` ago (the caller holds the lock)."""
        assert self._db is not None
        for share in list(self._shares.values()):
            if share.state not in FINAL or now - _ended(share) < FORGET_AFTER:
                continue
            await self._append("forget", share_id=share.id, state=str(share.state))
            await asyncio.to_thread(self._db.delete, share.id)
            del self._shares[share.id]
            if share.token_hash:
                self._by_hash.pop(share.token_hash, None)
            # An empty retained payload clears <b>/share/<id> on the broker.
            self._bus.publish(ShareStateChanged(share.id, {}))
            _LOGGER.info("Share %s forgotten (%s)", share.id, share.state)

    async def _timer_loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                _LOGGER.exception("Share timers failed; retrying")
            self._wake.clear()
            delay = 60.0
            upcoming = [
                s.deadline if s.state is S.PENDING else s.link_expires
                for s in self._shares.values()
                if s.state is S.PENDING or (s.state is S.READY and s.link_expires)
            ]
            if upcoming:
                soonest = min(t for t in upcoming if t is not None)
                delay = min(delay, max(0.05, (soonest - self._clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _expire(self, share: Share, why: str) -> None:
        """Expire `share` (the caller holds the lock)."""
        new = share.moved(S.EXPIRED, progress=None)
        await self._append("expiry", share_id=share.id, was=str(share.state), reason=why)
        await self._save(new)
        await self._end(new, "expired")
        self._publish(new)
        self._publish_stats()

    async def _end(self, share: Share, why: str) -> None:
        """A share left the holding states: drop its file, token and holds."""
        self._tokens.pop(share.id, None)
        if share.file:
            path = self._exports / share.file
            existed = await asyncio.to_thread(_unlink, path)
            await self._append(
                "purge", share_id=share.id, file=share.file, reason=why, existed=existed
            )
        await asyncio.to_thread(self._store.release, share.id)

    async def _purge_orphans(self) -> None:
        keep = {s.file for s in self._shares.values() if s.state is S.READY and s.file}
        for path in sorted(self._exports.iterdir()):
            if EXPORT_NAME.match(path.name) and path.name not in keep:
                await asyncio.to_thread(_unlink, path)
                await self._append("purge", file=path.name, reason="not a ready share")

    # -- rendering --------------------------------------------------------------------------

    async def _render_loop(self) -> None:
        while True:
            share_id = await self._queue.get()
            try:
                await self._render(share_id)
            except Exception:
                _LOGGER.exception("Rendering share %s failed", share_id)

    async def _clips(self, share: Share) -> builtins.list[ClipInfo]:
        # The clip store is SQLite behind a lock: thread-safe, but blocking.
        return await asyncio.to_thread(
            self._store.clips_between, share.cameras, share.start, share.end
        )

    def _segments(self, share: Share, clips: Sequence[ClipInfo]) -> tuple[Segment, ...]:
        ordered = sorted(
            (c for c in clips if c.camera in share.cameras),
            key=lambda c: (share.cameras.index(c.camera), c.start),
        )
        return tuple(
            Segment(
                camera=clip.camera,
                path=clip.path,
                clip_start=clip.start,
                keep_from=max(clip.start, share.start),
                keep_until=min(clip.end, share.end),
                masks=self._config.cameras[clip.camera].privacy_masks,
            )
            for clip in ordered
            if clip.end > share.start and clip.start < share.end
        )

    async def _render(self, share_id: str) -> None:
        async with self._lock:
            share = self._shares.get(share_id)
            if share is None or share.state not in (S.APPROVED, S.RENDERING):
                return
            clips = await self._clips(share)
            segments = self._segments(share, clips)
            redact = share.decision.redact if share.decision else True
            if share.state is S.APPROVED:
                share = share.moved(S.RENDERING, progress=0.0)
                await self._append(
                    "render_start", share_id=share.id, clips=[c.id for c in clips], redact=redact
                )
                await self._save(share)
        self._publish(share)
        cancel = threading.Event()
        self._cancel[share_id] = cancel
        output = self._exports / f"{share_id}.mp4"
        job = RenderJob(share_id=share_id, segments=segments, output=output, redact_faces=redact)
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._render_thread, self._renderer, job, self._progress_callback(share_id), cancel
            )
        except RenderCancelledError:
            return
        except Exception as err:
            _LOGGER.exception("Rendering share %s failed", share_id)
            await self._finish(share_id, S.FAILED, error=f"rendering failed: {err}")
            return
        finally:
            self._cancel.pop(share_id, None)
        if result.frames == 0:
            await self._finish(share_id, S.EMPTY, error="no footage in the window")
            return
        digest = await asyncio.to_thread(_sha256, output)
        await self._finish(share_id, S.READY, result=result, digest=digest, file=output.name)

    async def _finish(
        self,
        share_id: str,
        state: ShareState,
        *,
        error: str | None = None,
        result: RenderResult | None = None,
        digest: str | None = None,
        file: str | None = None,
    ) -> None:
        async with self._lock:
            share = self._shares[share_id]
            if share.state is not S.RENDERING:
                # Revoked meanwhile: whatever was written must not stay.
                if file:
                    await asyncio.to_thread(_unlink, self._exports / file)
                return
            if state is S.READY:
                assert result is not None
                token = new_token()
                hours = share.link_ttl_hours or self._settings.link_ttl_hours
                expires = self._clock() + timedelta(hours=hours)
                new = share.moved(
                    S.READY,
                    progress=1.0,
                    token_hash=token_hash(token),
                    link_expires=expires,
                    file=file,
                )
                await self._append(
                    "render",
                    share_id=share_id,
                    result="ready",
                    frames=result.frames,
                    seconds=round(result.seconds, 3),
                    size=result.size,
                    faces=result.faces,
                    sha256=digest,
                    link_expires=iso(expires),
                )
                await self._save(new)
                self._tokens[share_id] = token
                assert new.token_hash is not None
                self._by_hash[new.token_hash] = share_id
                self._wake.set()
            else:
                new = share.moved(state, progress=None, error=error)
                await self._append("render", share_id=share_id, result=str(state), error=error)
                await self._save(new)
                await self._end(new, str(state))
        self._publish(new)
        _LOGGER.info("Share %s is %s", share_id, new.state)

    def _progress_callback(self, share_id: str) -> Callable[[float], None]:
        loop = self._loop
        assert loop is not None

        def report(fraction: float) -> None:
            loop.call_soon_threadsafe(self._progress, share_id, fraction)

        return report

    def _progress(self, share_id: str, fraction: float) -> None:
        share = self._shares.get(share_id)
        if share is None or share.state is not S.RENDERING:
            return
        fraction = round(min(1.0, max(0.0, fraction)), 2)
        if fraction < 1.0 and fraction - (share.progress or 0.0) < PROGRESS_STEP:
            return
        share = share.changed(progress=fraction)
        self._shares[share_id] = share  # progress is not worth a database write
        self._publish(share)

    # -- plumbing ---------------------------------------------------------------------------

    def _existing(self, share_id: str) -> Share:
        share = self._shares.get(share_id) if valid_share_id(share_id) else None
        if share is None:
            raise ShareNotFoundError(f"no share {share_id!r}")
        return share

    async def _append(self, kind: str, /, **fields: Any) -> None:
        await asyncio.to_thread(self._audit.append, kind, **fields)

    async def _save(self, share: Share) -> None:
        assert self._db is not None, "ShareService.start() was not awaited"
        await asyncio.to_thread(self._db.save, share)
        self._shares[share.id] = share

    def _publish(self, share: Share) -> None:
        self._bus.publish(ShareStateChanged(share.id, self._payload(share)))

    @property
    def pending_count(self) -> int:
        """Requests waiting for a decision."""
        return sum(1 for s in self._shares.values() if s.state is S.PENDING)

    def _publish_stats(self) -> None:
        self._bus.publish(StatsChanged({"pending_shares": self.pending_count}))

    @property
    def holding(self) -> frozenset[str]:
        """Ids of shares that still hold clips from retention."""
        return frozenset(s.id for s in self._shares.values() if s.state in HOLDING)


def _summary(data: Any) -> dict[str, Any]:
    """The audit-worthy part of a possibly invalid request."""
    if not isinstance(data, dict):
        return {}
    return {
        key: data[key]
        for key in ("requester", "request_id")
        if isinstance(data.get(key), str) and len(data[key]) <= 200 and is_text(data[key])
    }


def _clean_or_none(text: str | None) -> str | None:
    return None if text is None else clean_text(text)


def _parse_mqtt_request(payload: bytes) -> Any:
    """The JSON of a share request message.

    Raises:
        ShareError: Not UTF-8, not RFC 8259 JSON (``NaN``), or nested too deeply.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ShareError(
            f"the message is not UTF-8 text (invalid byte at position {err.start})"
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # Not JSON, or nested so deeply that the parser gives up.
        raise ShareError(
            "expected a JSON object with requester, cameras, start, end, reason"
        ) from None


def _reject_constant(name: str) -> Any:
    # Not a ValueError: json.loads lets it through, so the message names the constant.
    raise ShareError(f"{name} is not a number JSON allows (RFC 8259): use a finite number")


def _ended(share: Share) -> datetime:
    """When a final share ended (for an empty or failed render: when it was approved)."""
    if share.revoked_by is not None:
        return share.revoked_by.at
    if share.state is S.EXPIRED:
        # A link reaching its lifetime, or a request its deadline.
        return share.link_expires or share.deadline
    if share.decision is not None:
        return share.decision.at
    return share.created


def _time_or_none(value: Any) -> str | None:
    """`value` when it is an ISO 8601 time with a timezone (echoed in rejections)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return iso(moment) if moment.tzinfo is not None else None


def _lower_priority() -> None:
    """Nice the calling thread.

    On Linux the nice value is per thread, and the encoder threads it starts inherit it.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RENDER_NICE)
    except (OSError, AttributeError):
        _LOGGER.debug("Cannot lower the render thread's priority")


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
