"""Share requests: validation, per-source limits, and the MQTT way in.

A request only ever becomes ``pending``: nothing here can decide. Invalid ones
are audited (a burst from one source is summed) and, from MQTT, answered once
with a ``rejected`` state that is not retained.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
import json
import logging
from typing import Any, TypeAlias

from doorstep_bridge.exceptions import AuditError, ShareError
from doorstep_bridge.models import iso
from doorstep_bridge.sharing.book import ShareBook
from doorstep_bridge.sharing.fields import echo, moment_field, text_field
from doorstep_bridge.sharing.links import new_share_id
from doorstep_bridge.sharing.repeats import Entry
from doorstep_bridge.sharing.settings import SharingSettings
from doorstep_bridge.sharing.state import (
    KINDS,
    LegalBasis,
    RejectedRequest,
    Share,
    ShareLimitError,
    ShareState,
)
from doorstep_bridge.text import clean_text, is_text

_LOGGER = logging.getLogger(__name__)

#: What a legal request adds (``kind: legal``): who asks, under what, and the scope.
LEGAL_FIELDS = frozenset({"authority", "reference", "legal_basis", "scope"})
REQUEST_FIELDS = (
    frozenset({"requester", "cameras", "start", "end", "reason", "request_id", "kind"})
    | LEGAL_FIELDS
)
#: A request may reach this far into the future (clocks of HA and the bridge differ).
CLOCK_SKEW = timedelta(minutes=5)
#: Text echoed back from a rejected request is cut to this length.
MAX_ECHO = 200
#: Share requests taken over MQTT per minute; anyone on the broker can send them.
MQTT_REQUESTS_PER_MINUTE = 10
#: Requests waiting for a decision at once *per source* (the API token, each requester
#: token, MQTT); more from that source are rejected until some are decided. Each source
#: has its own quota, so no other source can block the owner's own requests.
MAX_PENDING = 20

Spawn: TypeAlias = Callable[[Coroutine[Any, Any, None]], None]


@dataclass(frozen=True, slots=True)
class ShareRequest:
    """A request that passed validation: what is asked, by whom, and why."""

    requester: str
    reason: str
    request_id: str | None
    cameras: tuple[str, ...]
    start: datetime
    end: datetime
    kind: str = "ordinary"
    legal: LegalBasis | None = None


class ShareRequests:
    """Takes share requests from the HTTP API and from MQTT.

    Args:
        book: The shares.
        settings: The `sharing` section (window limit, decision timeout).
        cameras: The configured camera names.
        spawn: Runs a coroutine in the background (requests from MQTT arrive
            in a callback, not in a task).
    """

    def __init__(
        self, book: ShareBook, settings: SharingSettings, cameras: Collection[str], spawn: Spawn
    ) -> None:
        self._book = book
        self._settings = settings
        self._cameras = cameras
        self._spawn = spawn
        # Steady seconds of the requests taken in the last minute: a step of the wall
        # clock back would keep the throttle shut for as long as the step.
        self._mqtt_times: deque[float] = deque()
        self._mqtt_throttled = False

    def validate(self, data: Any) -> ShareRequest:
        """Check a request body.

        Raises:
            ShareError: Saying what is wrong, one problem at a time.
        """
        if not isinstance(data, dict):
            raise ShareError("expected a JSON object with requester, cameras, start, end, reason")
        unknown = sorted(set(data) - REQUEST_FIELDS)
        if unknown:
            raise ShareError(
                f"unknown field(s) {', '.join(map(str, unknown))}: a request has only "
                "requester, cameras, start, end, reason, request_id, kind and, for a legal "
                "request, authority, reference, legal_basis and scope (and cannot decide)"
            )
        requester = text_field(data, "requester")
        reason = text_field(data, "reason")
        request_id = text_field(data, "request_id", required=False)
        assert requester is not None
        assert reason is not None
        cameras = self._cameras_field(data.get("cameras"), "cameras")
        start, end = moment_field(data, "start"), moment_field(data, "end")
        if end <= start:
            raise ShareError("end must be after start")
        limit = self._settings.max_window_hours
        if end - start > timedelta(hours=limit):
            raise ShareError(f"the window is longer than sharing.max_window_hours ({limit:g} h)")
        if start > self._book.clock() + CLOCK_SKEW:
            raise ShareError("start is in the future: only recorded footage can be shared")
        kind = data.get("kind", "ordinary")
        if kind not in KINDS:
            raise ShareError(f"kind: expected one of {', '.join(KINDS)}")
        legal = self._legal(data, cameras, start, end) if kind == "legal" else None
        if legal is None and LEGAL_FIELDS & set(data):
            named = ", ".join(sorted(LEGAL_FIELDS & set(data)))
            raise ShareError(f"{named}: only a request with kind: legal carries these")
        return ShareRequest(
            requester=requester,
            reason=reason,
            request_id=request_id,
            cameras=cameras,
            start=start,
            end=end,
            kind=kind,
            legal=legal,
        )

    def _cameras_field(self, cameras: Any, key: str) -> tuple[str, ...]:
        if isinstance(cameras, str):
            cameras = [cameras]
        if not isinstance(cameras, list) or not cameras:
            raise ShareError(f"{key}: expected a list of camera names")
        for camera in cameras:
            if not isinstance(camera, str) or camera not in self._cameras:
                known = ", ".join(self._cameras)
                shown = echo(camera) if isinstance(camera, str) else type(camera).__name__
                raise ShareError(f"{key}: unknown camera {shown!r} (known: {known})")
        return tuple(dict.fromkeys(cameras))

    def _legal(
        self, data: dict[str, Any], cameras: tuple[str, ...], start: datetime, end: datetime
    ) -> LegalBasis:
        """The authority and scope of a ``kind: legal`` request; the request must fit it."""
        authority = text_field(data, "authority")
        reference = text_field(data, "reference")
        legal_basis = text_field(data, "legal_basis")
        assert authority is not None
        assert reference is not None
        assert legal_basis is not None
        scope = data.get("scope")
        if not isinstance(scope, dict):
            raise ShareError(
                "scope: expected the cameras and window the authority allows "
                '({"cameras": [...], "start": ..., "end": ...})'
            )
        unknown = sorted(set(scope) - {"cameras", "start", "end"})
        if unknown:
            raise ShareError(f"scope: unknown field(s) {', '.join(map(str, unknown))}")
        scope_cameras = self._cameras_field(scope.get("cameras"), "scope.cameras")
        try:
            scope_start, scope_end = moment_field(scope, "start"), moment_field(scope, "end")
        except ShareError as err:
            raise ShareError(f"scope.{err}") from None
        if scope_end <= scope_start:
            raise ShareError("scope: end must be after start")
        legal = LegalBasis(
            authority=authority,
            reference=reference,
            legal_basis=legal_basis,
            scope_cameras=scope_cameras,
            scope_start=scope_start,
            scope_end=scope_end,
        )
        problem = legal.problem(cameras, start, end)
        if problem is not None:
            raise ShareError(problem)
        return legal

    async def create(self, data: Any, source: str) -> Share:
        """Validate and store a new request (state ``pending``).

        Args:
            data: The request body (docs/mqtt.md, "Share request").
            source: Where it came from (``mqtt``, ``http``, ``http:<requester token>``).

        Raises:
            ShareError: The request is invalid (the message says why); audited.
            ShareLimitError: Too many requests from `source` wait for a decision.
        """
        book = self._book
        try:
            request = self.validate(data)
        except ShareError as err:
            await self._rejected(source, str(err), data)
            raise
        async with book.lock:
            # Under the lock, from `now`: a deadline reckoned before a step is followed
            # would be moved by it once more.
            now = await book.now()
            share = Share(
                id=new_share_id(),
                state=ShareState.PENDING,
                created=now,
                deadline=now + timedelta(minutes=self._settings.decision_timeout_minutes),
                source=source,
                **{field.name: getattr(request, field.name) for field in fields(request)},
            )
            if book.pending_from(source) >= MAX_PENDING:
                error = (
                    f"too many requests from this source are waiting for a decision (at most "
                    f"{MAX_PENDING} per source): decide some or let them expire first"
                )
                await self._rejected(source, error, data)
                raise ShareLimitError(error)
            clips = await book.clips_of(share)
            share = share.changed(clips=tuple(clip.id for clip in clips))
            await book.append(
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
                request_kind=share.kind,
                **(share.legal.payload() if share.legal else {}),
            )
            await book.save(share)
            await book.hold(share)
        book.publish(share)
        book.publish_stats()
        book.wake.set()
        _LOGGER.info("Share request %s from %s (%s)", share.id, share.requester, source)
        return share

    async def refuse_unreadable(self, source: str, error: str) -> None:
        """Audit a request whose body could not be read as JSON, as any refused one."""
        await self._rejected(source, error, None)

    async def _rejected(self, source: str, error: str, data: Any) -> None:
        """Audit a refused request; a burst from one source is summed, not written whole."""
        error = clean_text(error)
        entry: Entry = (("error", error[:200]),)
        await self._book.append_repeatable(
            "request_rejected",
            ("source", source),
            entry,
            source=source,
            error=error,
            **_summary(data),
        )

    # -- MQTT -------------------------------------------------------------------------------

    def handle_mqtt_request(self, payload: bytes) -> None:
        """A message on ``<b>/share/request``: create a request, never decide.

        Invalid requests are published once (not retained) as ``rejected`` with the
        reason. Over `MQTT_REQUESTS_PER_MINUTE` messages in a minute are rejected
        unread: anyone who can write to the broker can send them.
        """
        now = self._book.steady()
        while self._mqtt_times and now - self._mqtt_times[0] >= 60:
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
                await self.refuse_unreadable("mqtt", str(err))
                raise
            await self.create(data, "mqtt")
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
        """Answer a refused MQTT request with a ``rejected`` state, echoing what is usable."""

        def field(key: str) -> str | None:
            value = data.get(key)
            return value[:MAX_ECHO] if isinstance(value, str) and is_text(value) else None

        cameras = data.get("cameras")
        self._book.publish_rejection(
            RejectedRequest(
                id=new_share_id(),
                created=self._book.clock(),
                error=clean_text(error),
                requester=field("requester"),
                cameras=tuple(c[:MAX_ECHO] for c in cameras if isinstance(c, str) and is_text(c))
                if isinstance(cameras, list)
                else (),
                start=_time_or_none(data.get("start")),
                end=_time_or_none(data.get("end")),
                reason=field("reason"),
                request_id=field("request_id"),
            )
        )


def _summary(data: Any) -> dict[str, Any]:
    """The audit-worthy part of a possibly invalid request."""
    if not isinstance(data, dict):
        return {}
    return {
        key: data[key]
        for key in ("requester", "request_id")
        if isinstance(data.get(key), str) and len(data[key]) <= 200 and is_text(data[key])
    }


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


def _time_or_none(value: Any) -> datetime | None:
    """`value` when it is an ISO 8601 time with a timezone (echoed in rejections)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
