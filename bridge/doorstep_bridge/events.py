"""A small typed in-process event bus connecting the bridge's features.

Features publish what happened (a ring, motion, a finished clip); the MQTT
publisher, the recorder and the share workflow subscribe to what they need.
Handlers run on the event loop and must not block.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
import logging
from typing import Any, Protocol, TypeAlias, TypeVar

from doorstep_bridge.models import CameraHealth, ClipInfo, RingEvent

_LOGGER = logging.getLogger(__name__)

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class MotionChanged:
    """Motion on a camera turned on or off (after hysteresis)."""

    camera: str
    active: bool
    time: datetime


@dataclass(frozen=True, slots=True)
class PersonChanged:
    """A person came into or left a camera's view (person detection, docs/detection.md)."""

    camera: str
    active: bool
    time: datetime


@dataclass(frozen=True, slots=True)
class PackageChanged:
    """A parcel was left in (``delivered``) or taken from (``removed``) the doorstep zone."""

    camera: str
    change: str
    time: datetime


@dataclass(frozen=True, slots=True)
class CameraAvailability:
    """A camera's stream came up or went down."""

    camera: str
    online: bool


@dataclass(frozen=True, slots=True)
class CameraStatusChanged:
    """A camera's stream status changed (online, or why it is down)."""

    camera: str
    health: CameraHealth


@dataclass(frozen=True, slots=True)
class RecordingProblem:
    """Recording on a camera fails or is at risk (a full disk), or works again (None)."""

    camera: str
    problem: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class MaskProblem:
    """A camera's privacy masks do not fit the frames it sends, or they do (None)."""

    camera: str
    problem: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class ClipFinished:
    """A clip was written, indexed and is playable."""

    clip: ClipInfo


@dataclass(frozen=True, slots=True)
class ClipDeleted:
    """Retention (or a repair at start-up) removed a clip."""

    clip_id: str
    camera: str
    reason: str


@dataclass(frozen=True, slots=True)
class ClipsHeld:
    """A share started or stopped holding these clips from retention (their ``held``)."""

    clip_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NoClips:
    """A camera has no clip at all (at start-up: the storage folder was emptied or moved)."""

    camera: str


@dataclass(frozen=True, slots=True)
class SnapshotTaken:
    """A new JPEG snapshot of a camera."""

    camera: str
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class RecordRequested:
    """Someone asked a camera to record now (button, automation, HTTP)."""

    camera: str
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class CameraSwitchChanged:
    """Motion detection or recording was switched on or off for a camera."""

    camera: str
    switch: str  # "motion_detection" or "recording"
    on: bool


class ShareStatePayload(Protocol):
    """A share's state as the sharing parts hand it out: typed, its JSON made on demand.

    The edges (the HTTP handlers, the MQTT publisher) call :meth:`payload`; nothing
    before them deals in the JSON.
    """

    def payload(self) -> dict[str, Any]:
        """The public state JSON (docs/mqtt.md, "Share state")."""
        ...


@dataclass(frozen=True, slots=True)
class ShareStateChanged:
    """A share request changed state.

    Attributes:
        share_id: The share.
        view: Its state (a ``ShareView``, or a ``RejectedRequest`` for a refused MQTT
            request); None when the share was forgotten, which clears the retained
            ``<b>/share/<id>`` topic (an empty retained payload).
        retain: Publish retained; False for one-off answers (``rejected``), so
            junk requests leave nothing behind on the broker.
    """

    share_id: str
    view: ShareStatePayload | None
    retain: bool = True


@dataclass(frozen=True, slots=True)
class StatsChanged:
    """Bridge-level figures (storage used, pending shares) changed."""

    stats: dict[str, Any]


Event: TypeAlias = (
    RingEvent
    | MotionChanged
    | PersonChanged
    | PackageChanged
    | CameraAvailability
    | CameraStatusChanged
    | RecordingProblem
    | MaskProblem
    | ClipFinished
    | ClipDeleted
    | ClipsHeld
    | NoClips
    | SnapshotTaken
    | RecordRequested
    | CameraSwitchChanged
    | ShareStateChanged
    | StatsChanged
)


class EventBus:
    """Synchronous fan-out of events to subscribers, by event type."""

    def __init__(self) -> None:
        self._handlers: defaultdict[type[Any], list[Callable[[Any], None]]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call `handler` for every event of `event_type`; returns an unsubscribe callable."""
        handlers = self._handlers[event_type]
        handlers.append(handler)

        def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Deliver `event` to its subscribers; one failing handler does not stop the others."""
        for handler in list(self._handlers.get(type(event), ())):
            try:
                handler(event)
            except Exception:
                _LOGGER.exception("Handler for %s failed", type(event).__name__)
