"""The bridge's MQTT contract as the integration reads it (docs/mqtt.md).

Free of Home Assistant imports on purpose: the contract test in tests/contract
feeds it what the bridge's own models build, without HA installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
import json
from typing import Any

#: Discovery lives under a fixed prefix whatever the base topic (manifest "mqtt" key).
DISCOVERY_PREFIX = "doorstep/discovery"
#: The MQTT/HTTP protocol version this integration speaks.
PROTOCOL_VERSION = 1

ONLINE = "online"
OFFLINE = "offline"
ON = "ON"
OFF = "OFF"

#: Camera switches controllable over MQTT (retained state + ``/set`` command).
SWITCHES = ("motion_detection", "recording")

#: States of a share request (docs/mqtt.md "Share state").
SHARE_STATES = (
    "pending",
    "approved",
    "rendering",
    "ready",
    "expired",
    "revoked",
    "denied",
    "empty",
    "failed",
    "rejected",
)
#: States after which nothing changes any more.
FINAL_SHARE_STATES = frozenset({"expired", "revoked", "denied", "empty", "failed", "rejected"})

#: A camera stream's status (docs/mqtt.md "Camera status"): ``online`` or why it is down.
STREAM_STATUSES = (
    "connecting",
    "online",
    "auth_failed",
    "not_found",
    "refused",
    "unreachable",
    "no_video",
    "error",
)
#: Statuses in which the camera is not down.
UP_STATUSES = frozenset({"connecting", "online"})


#: What an MQTT message carries (HA hands over str, bytes or bytearray).
type Payload = str | bytes | bytearray


class ProtocolError(ValueError):
    """A payload that does not match the contract."""


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of one bridge, mirroring the bridge's ``mqtt/topics.py``."""

    base: str

    @property
    def available(self) -> str:
        """Bridge availability (LWT)."""
        return f"{self.base}/available"

    @property
    def bridge_info(self) -> str:
        """Bridge info JSON."""
        return f"{self.base}/bridge/info"

    @property
    def bridge_stats(self) -> str:
        """Storage and share counters."""
        return f"{self.base}/bridge/stats"

    @property
    def bridge_egress(self) -> str:
        """What the bridge's egress guard refused (count and the last one)."""
        return f"{self.base}/bridge/egress"

    def camera_available(self, camera: str) -> str:
        """Camera stream up or down."""
        return f"{self.base}/{camera}/available"

    def camera_status(self, camera: str) -> str:
        """Camera stream status JSON (``online`` or why it is down)."""
        return f"{self.base}/{camera}/status"

    def recording_problem(self, camera: str) -> str:
        """Why recording fails or is at risk (JSON); no message while it works."""
        return f"{self.base}/{camera}/recording_problem"

    def mask_problem(self, camera: str) -> str:
        """Why the privacy masks do not fit the camera's frames (JSON); none while they do."""
        return f"{self.base}/{camera}/mask_problem"

    def motion(self, camera: str) -> str:
        """Motion ``ON``/``OFF``."""
        return f"{self.base}/{camera}/motion"

    def person(self, camera: str) -> str:
        """Person ``ON``/``OFF`` (cameras with person detection)."""
        return f"{self.base}/{camera}/person"

    def package(self, camera: str) -> str:
        """One message per parcel left or taken."""
        return f"{self.base}/{camera}/package"

    def ring(self, camera: str) -> str:
        """One message per doorbell press."""
        return f"{self.base}/{camera}/ring"

    def clip(self, camera: str) -> str:
        """Latest finished clip."""
        return f"{self.base}/{camera}/clip"

    def snapshot(self, camera: str) -> str:
        """Latest snapshot (JPEG bytes)."""
        return f"{self.base}/{camera}/snapshot"

    def record_set(self, camera: str) -> str:
        """Record-now command."""
        return f"{self.base}/{camera}/record/set"

    def switch(self, camera: str, switch: str) -> str:
        """Retained state of a camera switch."""
        return f"{self.base}/{camera}/{switch}"

    def switch_set(self, camera: str, switch: str) -> str:
        """Command topic of a camera switch."""
        return f"{self.base}/{camera}/{switch}/set"

    @property
    def share_wildcard(self) -> str:
        """Every share state."""
        return f"{self.base}/share/+"

    def share(self, share_id: str) -> str:
        """State of one share request."""
        return f"{self.base}/share/{share_id}"

    @property
    def camera_wildcards(self) -> tuple[str, ...]:
        """Subscriptions that cover every per-camera state topic."""
        return (f"{self.base}/+/available", f"{self.base}/+/motion", f"{self.base}/+/ring",
                f"{self.base}/+/clip", f"{self.base}/+/motion_detection",
                f"{self.base}/+/recording", f"{self.base}/+/status",
                f"{self.base}/+/person", f"{self.base}/+/package",
                f"{self.base}/+/recording_problem", f"{self.base}/+/mask_problem")  # fmt: skip

    def split_camera_topic(self, topic: str) -> tuple[str, str] | None:
        """``(camera, leaf)`` for ``<b>/<cam>/<leaf>``, else None."""
        prefix = f"{self.base}/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 2 or parts[0] in RESERVED_CAMERA_NAMES:
            return None
        return parts[0], parts[1]


#: Names that can never be cameras (docs/mqtt.md).
RESERVED_CAMERA_NAMES = frozenset({"available", "bridge", "share", "discovery"})


def discovery_topic(bridge_id: str) -> str:
    """Retained discovery topic of one bridge."""
    return f"{DISCOVERY_PREFIX}/{bridge_id}"


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """A camera as the bridge describes it."""

    key: str
    name: str
    #: The camera looks for people (``<b>/<cam>/person``).
    person: bool = False
    #: The camera has a ``doorstep`` zone where it notices parcels (``<b>/<cam>/package``).
    package: bool = False


@dataclass(frozen=True, slots=True)
class BridgeInfo:
    """Discovery / bridge info JSON."""

    id: str
    name: str
    version: str
    protocol: int
    base_topic: str
    api_url: str
    cameras: tuple[CameraInfo, ...]
    #: Days the bridge keeps each kind of clip (``{"ring": 30, ...}``); empty from an
    #: older bridge.
    retention: dict[str, float] = field(default_factory=dict)

    def camera(self, key: str) -> CameraInfo | None:
        """One camera, by its key."""
        return next((camera for camera in self.cameras if camera.key == key), None)

    @property
    def compatible(self) -> bool:
        """True when this integration understands the bridge."""
        return self.protocol == PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """``<b>/<cam>/status``: the stream's status, why, and since when."""

    status: str
    detail: str | None
    since: datetime | None

    @property
    def down(self) -> bool:
        """The camera is down (for a reason the status names)."""
        return self.status not in UP_STATUSES


@dataclass(frozen=True, slots=True)
class RecordingProblem:
    """``<b>/<cam>/recording_problem``: why recording fails or is at risk, since when.

    ``<b>/<cam>/mask_problem`` (why the privacy masks do not fit the camera's frames)
    has the same form.
    """

    problem: str
    since: datetime | None


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """Per-camera state from ``GET /api/info``."""

    online: bool | None
    motion: bool | None
    motion_detection: bool | None
    recording: bool | None
    health: CameraHealth | None = None


@dataclass(frozen=True, slots=True)
class BridgeStats:
    """``<b>/bridge/stats``."""

    storage_used_bytes: int | None = None
    clips: int | None = None
    pending_shares: int | None = None

    def merged(self, newer: BridgeStats) -> BridgeStats:
        """These stats updated with the figures ``newer`` carries.

        The bridge's features report their own figures; a message may carry some only.
        """
        return BridgeStats(
            storage_used_bytes=_first(newer.storage_used_bytes, self.storage_used_bytes),
            clips=_first(newer.clips, self.clips),
            pending_shares=_first(newer.pending_shares, self.pending_shares),
        )


def _first(value: int | None, fallback: int | None) -> int | None:
    return fallback if value is None else value


@dataclass(frozen=True, slots=True)
class Ring:
    """One doorbell press."""

    id: str
    camera: str
    #: On the bridge's clock, which may differ from Home Assistant's.
    time: datetime
    #: Seconds since the press on the bridge's steady clock, as ``GET /api/rings`` lists
    #: it (an older bridge does not say; a ring message never does).
    age: float | None = None


#: What ``<b>/<cam>/package`` reports.
PACKAGE_CHANGES = ("delivered", "removed")


@dataclass(frozen=True, slots=True)
class EgressReport:
    """``<b>/bridge/egress``: connections the bridge's egress guard refused since it started."""

    blocked: int
    #: The last refusal: ``action``, ``destination``, ``caller``, ``thread``, ``at``.
    last: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Package:
    """A parcel left at (``delivered``) or taken from (``removed``) the door."""

    camera: str
    type: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Clip:
    """A finished clip."""

    id: str
    camera: str
    start: datetime
    end: datetime
    reason: str
    duration: float
    size: int
    has_snapshot: bool
    held: bool

    def attributes(self) -> dict[str, Any]:
        """Entity attributes (JSON-friendly): the keys of :data:`CLIP_ATTRIBUTES`."""
        return {
            "clip_id": self.id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "reason": self.reason,
            "duration": self.duration,
            "size": self.size,
            "has_snapshot": self.has_snapshot,
            "held": self.held,
        }


#: The attributes of a clip's entity, restored with it after a restart.
CLIP_ATTRIBUTES = ("clip_id", "start", "end", "reason", "duration", "size", "has_snapshot", "held")


@dataclass(frozen=True, slots=True)
class Decision:
    """Who decided a share request, and how."""

    decision: str
    by: str
    via: str
    at: datetime | None
    redact: bool
    #: The decider's Home Assistant user id (a person's decision, from a bridge that has it).
    by_id: str | None = None

    def made_by(self, user_id: str, name: str) -> bool:
        """Whether this is that user's decision: by id when the bridge has it, else by name."""
        if self.by_id is not None:
            return self.by_id == user_id
        return self.by == name


@dataclass(frozen=True, slots=True)
class LegalRequest:
    """Who asks under what authority, and the scope (cameras, window) that authority allows."""

    authority: str
    reference: str
    legal_basis: str
    scope_cameras: tuple[str, ...]
    scope_start: datetime | None
    scope_end: datetime | None


@dataclass(frozen=True, slots=True)
class Share:
    """One share request as the bridge last published it (its ``state`` is one field)."""

    id: str
    state: str
    requester: str
    cameras: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    reason: str
    created: datetime | None
    deadline: datetime | None
    decision: Decision | None
    link: str | None
    link_expires: datetime | None
    error: str | None
    request_id: str | None
    #: ``ordinary`` or ``legal`` (then ``legal`` is set); an older bridge sends neither.
    kind: str = "ordinary"
    legal: LegalRequest | None = None
    #: A legal request's first approval, waiting for a second approver.
    approvals: tuple[Decision, ...] = ()
    #: Who revoked a ``revoked`` share (``decision`` stays its approval).
    revoked_by: Decision | None = None

    @property
    def final(self) -> bool:
        """No further change can happen."""
        return self.state in FINAL_SHARE_STATES

    def event_data(self) -> dict[str, Any]:
        """Data of the HA bus events (no link: it is a secret)."""
        return {
            "share_id": self.id,
            "state": self.state,
            "requester": self.requester,
            "cameras": list(self.cameras),
            "start": _iso_or_none(self.start),
            "end": _iso_or_none(self.end),
            "reason": self.reason,
            "deadline": _iso_or_none(self.deadline),
            "decided_by": self.decision.by if self.decision else None,
            "decided_via": self.decision.via if self.decision else None,
            "redact": self.decision.redact if self.decision else None,
            "error": self.error,
            "request_id": self.request_id,
            "kind": self.kind,
            "reference": self.legal.reference if self.legal else None,
            "approved_by": [approval.by for approval in self.approvals],
            "revoked_by": self.revoked_by.by if self.revoked_by else None,
            "revoked_via": self.revoked_by.via if self.revoked_by else None,
        }


def _iso_or_none(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _json_object(payload: Payload) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(f"not JSON: {err}") from err
    if not isinstance(data, dict):
        raise ProtocolError("expected a JSON object")
    return data


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{key}: expected a non-empty string")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{key}: expected a string")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{key}: expected an integer")
    return value


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{key}: expected a number")
    return float(value)


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise ProtocolError(f"{key}: expected true or false")
    return value


def parse_time(value: object, key: str = "time") -> datetime:
    """An ISO 8601 time with a timezone."""
    if not isinstance(value, str):
        raise ProtocolError(f"{key}: expected an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise ProtocolError(f"{key}: expected an ISO 8601 time") from err
    if moment.tzinfo is None:
        raise ProtocolError(f"{key}: the time has no timezone")
    return moment


def _opt_time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return None if value is None else parse_time(value, key)


def parse_bridge_info(payload: Payload | Mapping[str, Any]) -> BridgeInfo:
    """Discovery / ``<b>/bridge/info`` / ``GET /api/info`` JSON."""
    data = payload if isinstance(payload, Mapping) else _json_object(payload)
    cameras_raw = data.get("cameras")
    if not isinstance(cameras_raw, Mapping):
        raise ProtocolError("cameras: expected an object")
    cameras = []
    for key, value in cameras_raw.items():
        if not isinstance(value, Mapping) or key in RESERVED_CAMERA_NAMES:
            raise ProtocolError(f"cameras.{key}: invalid camera")
        name = value.get("name")
        cameras.append(
            CameraInfo(
                key=key,
                name=name if isinstance(name, str) and name else key,
                person=value.get("person") is True,
                package=value.get("package") is True,
            )
        )
    return BridgeInfo(
        id=_str(data, "id"),
        name=_str(data, "name"),
        version=_str(data, "version"),
        protocol=_int(data, "protocol"),
        base_topic=_str(data, "base_topic"),
        api_url=_str(data, "api_url"),
        cameras=tuple(cameras),
        retention=_retention(data.get("retention")),
    )


def _retention(value: Any) -> dict[str, float]:
    """The bridge's retention periods, ignoring what is not ``{kind: days}``."""
    if not isinstance(value, Mapping):
        return {}
    return {
        str(kind): float(days)
        for kind, days in value.items()
        if isinstance(days, int | float) and not isinstance(days, bool)
    }


def _opt_bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def parse_camera_status(info: Mapping[str, Any]) -> dict[str, CameraStatus]:
    """Per-camera live state that ``GET /api/info`` adds to the bridge info."""
    cameras = info.get("cameras")
    result: dict[str, CameraStatus] = {}
    if not isinstance(cameras, Mapping):
        return result
    for key, value in cameras.items():
        if isinstance(value, Mapping):
            health = None
            if value.get("status") is not None:
                try:
                    health = parse_camera_health(
                        {
                            "status": value.get("status"),
                            "detail": value.get("status_detail"),
                            "since": value.get("status_since"),
                        }
                    )
                except ProtocolError:
                    health = None  # a newer bridge's status: the MQTT topic will say
            result[key] = CameraStatus(
                online=_opt_bool(value, "online"),
                motion=_opt_bool(value, "motion"),
                motion_detection=_opt_bool(value, "motion_detection"),
                recording=_opt_bool(value, "recording"),
                health=health,
            )
    return result


def parse_camera_health(payload: Payload | Mapping[str, Any]) -> CameraHealth:
    """``<b>/<cam>/status`` (``{"status", "detail", "since"}``)."""
    data = payload if isinstance(payload, Mapping) else _json_object(payload)
    status = _str(data, "status")
    if status not in STREAM_STATUSES:
        raise ProtocolError(f"status: unknown camera status {status!r}")
    return CameraHealth(
        status=status, detail=_opt_str(data, "detail"), since=_opt_time(data, "since")
    )


def parse_recording_problem(payload: Payload) -> RecordingProblem:
    """``<b>/<cam>/recording_problem`` (``{"problem", "since"}``)."""
    data = _json_object(payload)
    return RecordingProblem(problem=_str(data, "problem"), since=_opt_time(data, "since"))


def parse_stats(payload: Payload | Mapping[str, Any]) -> BridgeStats:
    """``<b>/bridge/stats`` (or ``"stats"`` of ``GET /api/info``); figures may be missing."""
    data = payload if isinstance(payload, Mapping) else _json_object(payload)
    return BridgeStats(
        storage_used_bytes=_opt_int(data, "storage_used_bytes"),
        clips=_opt_int(data, "clips"),
        pending_shares=_opt_int(data, "pending_shares"),
    )


def parse_online(payload: Payload) -> bool:
    """``online`` / ``offline``."""
    text = payload if isinstance(payload, str) else bytes(payload).decode(errors="replace")
    if text == ONLINE:
        return True
    if text == OFFLINE:
        return False
    raise ProtocolError(f"expected online/offline, got {text[:20]!r}")


def parse_on_off(payload: Payload) -> bool:
    """``ON`` / ``OFF``."""
    text = payload if isinstance(payload, str) else bytes(payload).decode(errors="replace")
    if text == ON:
        return True
    if text == OFF:
        return False
    raise ProtocolError(f"expected ON/OFF, got {text[:20]!r}")


def parse_ring(payload: Payload | Mapping[str, Any]) -> Ring:
    """``<b>/<cam>/ring``, or one item of ``GET /api/rings``."""
    data = payload if isinstance(payload, Mapping) else _json_object(payload)
    age = None if data.get("age") is None else _number(data, "age")
    if age is not None and age < 0:
        raise ProtocolError("age: expected seconds, not negative")
    return Ring(
        id=_str(data, "id"), camera=_str(data, "camera"), time=parse_time(data.get("time")), age=age
    )


def parse_egress(payload: Payload) -> EgressReport:
    """``<b>/bridge/egress``: ``{"blocked": n, "last": {...} | null}``."""
    data = _json_object(payload)
    blocked = data.get("blocked")
    last = data.get("last") or {}
    if isinstance(blocked, bool) or not isinstance(blocked, int) or blocked < 0:
        raise ProtocolError("blocked: expected a count")
    if not isinstance(last, Mapping):
        raise ProtocolError("last: expected an object or null")
    fields = ("action", "destination", "caller", "thread", "at")
    return EgressReport(blocked, {key: str(last[key]) for key in fields if key in last})


def parse_package(payload: Payload) -> Package:
    """``<b>/<cam>/package``."""
    data = _json_object(payload)
    kind = _str(data, "type")
    if kind not in PACKAGE_CHANGES:
        raise ProtocolError(f"type: expected delivered or removed, got {kind[:20]!r}")
    return Package(camera=_str(data, "camera"), type=kind, time=parse_time(data.get("time")))


def parse_clip(payload: Payload | Mapping[str, Any]) -> Clip:
    """``<b>/<cam>/clip`` and the HTTP clip record."""
    data = payload if isinstance(payload, Mapping) else _json_object(payload)
    return Clip(
        id=_str(data, "id"),
        camera=_str(data, "camera"),
        start=parse_time(data.get("start"), "start"),
        end=parse_time(data.get("end"), "end"),
        reason=_str(data, "reason"),
        duration=_number(data, "duration"),
        size=_int(data, "size"),
        has_snapshot=_bool(data, "has_snapshot"),
        held=_bool(data, "held"),
    )


def _parse_decision(value: object, key: str = "decision") -> Decision | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{key}: expected an object")
    redact = value.get("redact", True)
    return Decision(
        decision=_str(value, "decision"),
        by=_opt_str(value, "by") or "",
        via=_opt_str(value, "via") or "",
        at=_opt_time(value, "at"),
        redact=redact if isinstance(redact, bool) else True,
        by_id=_opt_str(value, "by_id"),
    )


def parse_share(payload: Payload | Mapping[str, Any]) -> Share:
    """``<b>/share/<id>`` and the HTTP share state."""
    data = payload if isinstance(payload, Mapping) else _json_object(payload)
    state = _str(data, "state")
    if state not in SHARE_STATES:
        raise ProtocolError(f"state: unknown share state {state!r}")
    cameras = data.get("cameras") or []
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        raise ProtocolError("cameras: expected a list of names")
    return Share(
        id=_str(data, "id"),
        state=state,
        requester=_opt_str(data, "requester") or "",
        cameras=tuple(cameras),
        start=_opt_time(data, "start"),
        end=_opt_time(data, "end"),
        reason=_opt_str(data, "reason") or "",
        created=_opt_time(data, "created"),
        deadline=_opt_time(data, "deadline"),
        decision=_parse_decision(data.get("decision")),
        link=_opt_str(data, "link"),
        link_expires=_opt_time(data, "link_expires"),
        error=_opt_str(data, "error"),
        request_id=_opt_str(data, "request_id"),
        kind=_opt_str(data, "kind") or "ordinary",
        legal=_parse_legal(data.get("legal")),
        approvals=_parse_approvals(data.get("approvals")),
        revoked_by=_parse_decision(data.get("revoked_by"), "revoked_by"),
    )


def _parse_legal(value: object) -> LegalRequest | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ProtocolError("legal: expected an object")
    scope = value.get("scope")
    scope = scope if isinstance(scope, Mapping) else {}
    cameras = scope.get("cameras")
    return LegalRequest(
        authority=_opt_str(value, "authority") or "",
        reference=_opt_str(value, "reference") or "",
        legal_basis=_opt_str(value, "legal_basis") or "",
        scope_cameras=tuple(c for c in cameras if isinstance(c, str))
        if isinstance(cameras, list)
        else (),
        scope_start=_opt_time(scope, "start"),
        scope_end=_opt_time(scope, "end"),
    )


def _parse_approvals(value: object) -> tuple[Decision, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(d for d in map(_parse_decision, value) if d is not None)


def share_request_body(
    *,
    requester: str,
    cameras: list[str],
    start: datetime,
    end: datetime,
    reason: str,
    request_id: str | None = None,
    legal: LegalRequest | None = None,
) -> dict[str, Any]:
    """Body of ``POST /api/share-requests`` (same as ``<b>/share/request``)."""
    body: dict[str, Any] = {
        "requester": requester,
        "cameras": cameras,
        "start": start.isoformat(timespec="milliseconds"),
        "end": end.isoformat(timespec="milliseconds"),
        "reason": reason,
    }
    if request_id is not None:
        body["request_id"] = request_id
    if legal is not None:
        body.update(
            kind="legal",
            authority=legal.authority,
            reference=legal.reference,
            legal_basis=legal.legal_basis,
            scope={
                "cameras": list(legal.scope_cameras),
                "start": _iso_ms(legal.scope_start),
                "end": _iso_ms(legal.scope_end),
            },
        )
    return body


def _iso_ms(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None
