"""The share request record, its state machine, and the typed states the edges receive.

``pending`` → ``approved`` → ``rendering`` → ``ready`` → ``expired`` | ``revoked``;
``pending`` → ``denied`` | ``expired``; ``rendering`` → ``empty`` | ``failed``.
Every change goes through :func:`check_transition`, so a share can never jump
to ``ready`` without an approval, nor come back from a final state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from doorstep_bridge.exceptions import ShareError
from doorstep_bridge.models import iso


class ShareState(StrEnum):
    """Where a share request is in its life."""

    PENDING = "pending"
    APPROVED = "approved"
    RENDERING = "rendering"
    READY = "ready"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DENIED = "denied"
    EMPTY = "empty"
    FAILED = "failed"
    #: Failed validation; published once, never stored.
    REJECTED = "rejected"


TRANSITIONS: dict[ShareState, frozenset[ShareState]] = {
    ShareState.PENDING: frozenset({ShareState.APPROVED, ShareState.DENIED, ShareState.EXPIRED}),
    ShareState.APPROVED: frozenset({ShareState.RENDERING, ShareState.REVOKED, ShareState.FAILED}),
    ShareState.RENDERING: frozenset(
        {ShareState.READY, ShareState.EMPTY, ShareState.FAILED, ShareState.REVOKED}
    ),
    ShareState.READY: frozenset({ShareState.EXPIRED, ShareState.REVOKED}),
}
#: States a share never leaves.
FINAL = frozenset(
    {
        ShareState.EXPIRED,
        ShareState.REVOKED,
        ShareState.DENIED,
        ShareState.EMPTY,
        ShareState.FAILED,
        ShareState.REJECTED,
    }
)
#: States whose clips are held from retention (the request may still be released).
HOLDING = frozenset(
    {ShareState.PENDING, ShareState.APPROVED, ShareState.RENDERING, ShareState.READY}
)

DECISIONS = ("approve", "deny", "revoke")
#: What a request is: an ordinary one, or one made under legal authority (with a scope).
KINDS = ("ordinary", "legal")
VIAS = ("phone", "ui", "automation")


class ShareNotFoundError(ShareError):
    """No share with that id."""


class ShareConflictError(ShareError):
    """The share is not in a state that allows this (decided already, expired...)."""


class ShareGoneError(ShareError):
    """The share link expired or was revoked (HTTP 410)."""


class ShareLimitError(ShareError):
    """Too many requests: waiting for decisions, over MQTT or from new clients on a link (429)."""


def check_transition(old: ShareState, new: ShareState) -> None:
    """Raise `ShareConflictError` unless `old` → `new` is allowed."""
    if new not in TRANSITIONS.get(old, frozenset()):
        raise ShareConflictError(f"a share that is {old} cannot become {new}")


@dataclass(frozen=True, slots=True)
class Decision:
    """Who decided, how, and whether the export is redacted."""

    decision: str
    by: str
    via: str
    at: datetime
    redact: bool
    #: The decider's Home Assistant user id, when a person decided: names change and
    #: two people may share one, so the two approvals of a legal request compare this.
    by_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The ``decision`` object of the share state JSON."""
        fields = {
            "decision": self.decision,
            "by": self.by,
            "via": self.via,
            "at": iso(self.at),
            "redact": self.redact,
        }
        if self.by_id is not None:
            fields["by_id"] = self.by_id
        return fields

    def same_decider(self, other: Decision) -> bool:
        """Whether `other` was decided by the same person (by user id when both have one)."""
        if self.by_id is not None and other.by_id is not None:
            return self.by_id == other.by_id
        return self.by == other.by

    def audited(self) -> dict[str, Any]:
        """The fields of its audit record: whether faces are blurred only for an approval."""
        fields = self.payload()
        if self.decision != "approve":
            del fields["redact"]  # a deny or a revoke releases nothing to redact
        return fields


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """Who asks under what authority, and the scope (cameras, window) it allows."""

    authority: str
    reference: str
    legal_basis: str
    scope_cameras: tuple[str, ...]
    scope_start: datetime
    scope_end: datetime

    def payload(self) -> dict[str, Any]:
        """The ``legal`` object of the share state JSON (and of the audit record)."""
        return {
            "authority": self.authority,
            "reference": self.reference,
            "legal_basis": self.legal_basis,
            "scope": {
                "cameras": list(self.scope_cameras),
                "start": iso(self.scope_start),
                "end": iso(self.scope_end),
            },
        }

    def problem(self, cameras: tuple[str, ...], start: datetime, end: datetime) -> str | None:
        """Why ``cameras`` from ``start`` to ``end`` is outside the scope, or None."""
        outside = [camera for camera in cameras if camera not in self.scope_cameras]
        if outside:
            listed = ", ".join(map(repr, outside))
            named = f"camera {listed} is" if len(outside) == 1 else f"cameras {listed} are"
            return (
                f"outside the stated scope: {named} not in the scope "
                f"({', '.join(self.scope_cameras)})"
            )
        if start < self.scope_start or end > self.scope_end:
            return (
                f"outside the stated scope: the window {iso(start)} to {iso(end)} is not "
                f"inside the scope's {iso(self.scope_start)} to {iso(self.scope_end)}"
            )
        return None


@dataclass(frozen=True, slots=True)
class Share:
    """One share request as the bridge stores it.

    The link token itself is never stored: only ``token_hash``.
    """

    id: str
    state: ShareState
    requester: str
    cameras: tuple[str, ...]
    start: datetime
    end: datetime
    reason: str
    created: datetime
    deadline: datetime
    source: str
    request_id: str | None = None
    decision: Decision | None = None
    revoked_by: Decision | None = None
    progress: float | None = None
    token_hash: str | None = None
    link_expires: datetime | None = None
    file: str | None = None
    error: str | None = None
    clips: tuple[str, ...] = ()
    #: Link lifetime the owner set in the integration's options (capped by
    #: ``sharing.link_ttl_hours``); None: the cap itself.
    link_ttl_hours: float | None = None
    #: ``ordinary`` or ``legal`` (then ``legal`` says under what authority and scope).
    kind: str = "ordinary"
    legal: LegalBasis | None = None
    #: Approvals that wait for a second approver (``sharing.legal_two_approvers``).
    approvals: tuple[Decision, ...] = ()

    def moved(self, state: ShareState, **changes: Any) -> Share:
        """A copy in `state` (checked against the state machine) with `changes`."""
        check_transition(self.state, state)
        return replace(self, state=state, **changes)

    def changed(self, **changes: Any) -> Share:
        """A copy with `changes`, state unchanged."""
        return replace(self, **changes)

    def payload(self, link: str | None = None) -> dict[str, Any]:
        """The public state JSON (docs/mqtt.md, "Share state").

        Args:
            link: The link path, given only while the share is ready and the
                token is known (it is kept in memory only).
        """
        return {
            "id": self.id,
            "state": str(self.state),
            "requester": self.requester,
            "cameras": list(self.cameras),
            "start": iso(self.start),
            "end": iso(self.end),
            "reason": self.reason,
            "created": iso(self.created),
            "deadline": iso(self.deadline),
            "decision": self.decision.payload() if self.decision else None,
            "progress": self.progress,
            "link": link if self.state is ShareState.READY else None,
            "link_expires": iso(self.link_expires) if self.link_expires else None,
            "error": self.error,
            "request_id": self.request_id,
            "kind": self.kind,
            "legal": self.legal.payload() if self.legal else None,
            "approvals": [approval.payload() for approval in self.approvals],
            "revoked_by": self.revoked_by.payload() if self.revoked_by else None,
        }


@dataclass(frozen=True, slots=True)
class ShareView:
    """A share as its asker sees it: the record, and its link while the bridge knows it.

    This is what the share workflow hands out (``ShareService``, the bus); the edges
    turn it into JSON with :meth:`payload`. The link is known only in memory (the
    database keeps its hash): after a restart a ready share has none.
    """

    share: Share
    link: str | None = None

    def payload(self) -> dict[str, Any]:
        """The state JSON (docs/mqtt.md, "Share state"): for the HTTP and MQTT edges."""
        return self.share.payload(self.link)


@dataclass(frozen=True, slots=True)
class RejectedRequest:
    """A request from MQTT refused before it became a share: answered once, never stored.

    The fields echo what the asker sent, where it was usable (text cut short, times
    only with a timezone), so the asker can tell which of its requests this answers.
    """

    id: str
    created: datetime
    error: str
    requester: str | None = None
    cameras: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    reason: str | None = None
    request_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The ``rejected`` state JSON (docs/mqtt.md, "Share state"), for the MQTT edge."""
        return {
            "id": self.id,
            "state": str(ShareState.REJECTED),
            "requester": self.requester,
            "cameras": list(self.cameras),
            "start": iso(self.start) if self.start else None,
            "end": iso(self.end) if self.end else None,
            "reason": self.reason,
            "created": iso(self.created),
            "deadline": None,
            "decision": None,
            "progress": None,
            "link": None,
            "link_expires": None,
            "error": self.error,
            "request_id": self.request_id,
            "kind": None,
            "legal": None,
            "approvals": [],
            "revoked_by": None,
        }
