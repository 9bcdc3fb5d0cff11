"""Wire-level records shared by the bridge's features and published over MQTT/HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


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


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """A finished, playable clip in the store."""

    id: str
    camera: str
    start: datetime
    end: datetime
    reason: str  # "motion", "ring", "manual"
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
