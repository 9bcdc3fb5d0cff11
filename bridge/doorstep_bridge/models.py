"""Wire-level records shared by the bridge's features and published over MQTT/HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
import json
from pathlib import Path
from typing import Any

#: Longest manual recording a record-now command may ask for, in seconds.
MAX_RECORD_SECONDS = 3600.0


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 with timezone and millisecond precision, as every payload uses."""
    return moment.isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class RingEvent:
    """One doorbell press (after debounce)."""

    id: str
    camera: str
    time: datetime
    source: str  # "mqtt", "button", "http", "demo"

    def payload(self) -> dict[str, Any]:
        """The `<b>/<cam>/ring` JSON body."""
        return {"id": self.id, "camera": self.camera, "time": iso(self.time)}


class StreamStatus(StrEnum):
    """What a camera's main stream is doing, or why it is down (``<b>/<cam>/status``)."""

    CONNECTING = "connecting"
    """The bridge has not finished its first attempt yet."""
    ONLINE = "online"
    AUTH_FAILED = "auth_failed"
    """The camera refused the user or password (HTTP/RTSP 401 or 403)."""
    NOT_FOUND = "not_found"
    """No such stream (404), or no such file."""
    REFUSED = "refused"
    """Nothing listens at that address and port (connection refused)."""
    UNREACHABLE = "unreachable"
    """No answer: timeout, no route to the host, or its name does not resolve."""
    NO_VIDEO = "no_video"
    """The camera answers but sends no video the bridge can use."""
    ERROR = "error"
    """Any other failure; the detail says which."""


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """A camera's stream status, why, and since when."""

    status: StreamStatus
    since: datetime
    detail: str | None = None

    def payload(self) -> dict[str, Any]:
        """The ``<b>/<cam>/status`` JSON body."""
        return {"status": str(self.status), "detail": self.detail, "since": iso(self.since)}


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """A finished, playable clip in the store."""

    id: str
    camera: str
    start: datetime
    end: datetime
    reason: str  # "ring", "person", "motion", "manual" (recording.settings.CLIP_REASONS)
    path: Path
    size: int
    snapshot_path: Path | None = None
    thumbnail_path: Path | None = None
    held_by: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return (self.end - self.start).total_seconds()

    def payload(self) -> dict[str, Any]:
        """The `<b>/<cam>/clip` JSON body and the HTTP clip record."""
        return {
            "id": self.id,
            "camera": self.camera,
            "start": iso(self.start),
            "end": iso(self.end),
            "reason": self.reason,
            "duration": round(self.duration, 3),
            "size": self.size,
            "has_snapshot": self.snapshot_path is not None,
            "held": bool(self.held_by),
        }


def optional_json_object(payload: bytes, key: str, example: str) -> dict[str, Any]:
    """A command body: empty (``{}``), or a JSON object whose only key may be ``key``.

    Args:
        payload: The body as received.
        key: The one key allowed.
        example: A body to show in the error (``{"duration": 30}``).

    Raises:
        ValueError: With a message fit for the user.
    """
    if not payload.strip():
        return {}
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValueError(f"expected a JSON body such as {example}") from None
    if not isinstance(data, dict) or set(data) - {key}:
        raise ValueError(f"expected a JSON object with an optional {key}")
    return data


def parse_record_request(payload: bytes) -> float | None:
    """A record-now command (MQTT or HTTP): empty, or JSON ``{"duration": seconds}``.

    Returns:
        The duration asked for, or None for the camera's default.

    Raises:
        ValueError: With a message fit for the user.
    """
    data = optional_json_object(payload, "duration", '{"duration": 30}')
    duration = data.get("duration")
    if duration is None:
        return None
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not 0 < duration <= MAX_RECORD_SECONDS
    ):
        raise ValueError(f"duration: expected seconds in (0, {MAX_RECORD_SECONDS:g}]")
    return float(duration)
