"""The transparency report: who asked for footage, under what, what was decided and released.

Built from the audit log alone (the share database forgets a share a week after it
ended; the log keeps the whole history), read without opening it for writing, so
``doorstep-bridge report`` can run next to a running bridge.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from doorstep_bridge.sharing.audit import read_records

#: Outcomes in the order the report lists them.
OUTCOMES = (
    "released",
    "approved",
    "denied",
    "revoked before release",
    "expired without a decision",
    "waiting for a second approval",
    "pending",
    "empty",
    "failed",
)


@dataclass(slots=True)
class ShareHistory:
    """What the audit log says about one share request."""

    share_id: str
    time: str
    requester: str
    kind: str
    cameras: tuple[str, ...]
    start: str
    end: str
    reason: str
    legal: dict[str, Any] | None = None
    approvers: list[str] = field(default_factory=list)
    denied_by: str | None = None
    first_approval: bool = False
    render: str | None = None
    size: int | None = None
    sha256: str | None = None
    faces_blurred: bool | None = None
    #: Requests for the video (not for the recipient's page or the signature).
    downloads: int = 0
    revoked: bool = False
    ended: str | None = None

    @property
    def outcome(self) -> str:
        """Where the request ended up, as the report names it."""
        if self.render is not None:
            # ready: released; empty or failed say so.
            return "released" if self.render == "ready" else self.render
        if self.denied_by is not None:
            return "denied"
        if self.revoked:
            # Approved, then withdrawn before its export was ready: nothing was released.
            return "revoked before release"
        if self.ended == "expired" and (self.first_approval or not self.approvers):
            return "expired without a decision"
        if self.first_approval:
            return "waiting for a second approval"
        return "approved" if self.approvers else "pending"


@dataclass(frozen=True, slots=True)
class Report:
    """The report's content: the log's state and every share request in the period."""

    log_ok: bool
    log_message: str
    records: int
    since: datetime | None
    shares: tuple[ShareHistory, ...]
    refused: int

    def by_requester(self) -> list[tuple[str, str, int, int]]:
        """``(requester, kind, asked, released)`` of each requester and kind, sorted."""
        asked = Counter((share.requester, share.kind) for share in self.shares)
        released = Counter(
            (share.requester, share.kind) for share in self.shares if share.outcome == "released"
        )
        return [
            (requester, kind, count, released[requester, kind])
            for (requester, kind), count in sorted(asked.items())
        ]

    def summary(self) -> dict[str, Any]:
        """The report's figures, for ``GET /api/share-report`` (JSON-ready)."""
        return {
            "log_ok": self.log_ok,
            "log": self.log_message,
            "requests": len(self.shares),
            "kinds": dict(Counter(share.kind for share in self.shares)),
            "refused": self.refused,
            "outcomes": dict(Counter(share.outcome for share in self.shares)),
            "requesters": [
                {"requester": requester, "kind": kind, "asked": asked, "released": released}
                for requester, kind, asked, released in self.by_requester()
            ],
        }

    def text(self) -> str:
        """The report for people."""
        lines = ["Doorstep transparency report", ""]
        lines.append(f"Audit log: {self.log_message}")
        if not self.log_ok:
            lines.append("  (what follows is read up to the first bad record)")
        if self.since is not None:
            lines.append(f"Period: since {self.since.isoformat()}")
        kinds = Counter(share.kind for share in self.shares)
        lines.append("")
        lines.append(
            f"Requests: {len(self.shares)} "
            f"(ordinary {kinds.get('ordinary', 0)}, legal {kinds.get('legal', 0)}); "
            f"refused as invalid or out of scope: {self.refused}"
        )
        outcomes = Counter(share.outcome for share in self.shares)
        lines.append(
            "Outcomes: "
            + (", ".join(f"{name} {outcomes[name]}" for name in OUTCOMES if outcomes[name]) or "-")
        )
        rows = self.by_requester()
        if rows:
            lines.extend(["", "By requester:"])
            lines.extend(
                f"  {requester} ({kind}): {asked} asked, {released} released"
                for requester, kind, asked, released in rows
            )
        legal = [share for share in self.shares if share.legal is not None]
        if legal:
            lines.extend(["", "Legal requests:"])
            for share in legal:
                assert share.legal is not None
                scope = share.legal.get("scope") or {}
                lines.append(f"  {share.share_id}  {share.time}  {share.outcome}")
                lines.append(f"    authority:   {share.legal.get('authority')}")
                lines.append(f"    reference:   {share.legal.get('reference')}")
                lines.append(f"    legal basis: {share.legal.get('legal_basis')}")
                lines.append(
                    f"    scope:       {', '.join(scope.get('cameras', []))}, "
                    f"{scope.get('start')} to {scope.get('end')}"
                )
                if share.approvers:
                    lines.append(f"    approved by: {', '.join(share.approvers)}")
        releases = [share for share in self.shares if share.outcome == "released"]
        lines.extend(["", "Released:" if releases else "Released: nothing"])
        for share in releases:
            faces = "faces blurred" if share.faces_blurred else "faces NOT blurred"
            lines.append(
                f"  {share.share_id}  {', '.join(share.cameras)}  {share.start} to {share.end}"
            )
            lines.append(
                f"    to {share.requester}, approved by {', '.join(share.approvers)}; {faces}; "
                f"{share.size} bytes, SHA-256 {share.sha256}; "
                f"downloads {share.downloads}; {share.ended or 'link still open'}"
            )
        return "\n".join(lines)


def _share(record: dict[str, Any]) -> ShareHistory:
    legal = None
    if record.get("request_kind") == "legal":
        legal = {key: record.get(key) for key in ("authority", "reference", "legal_basis", "scope")}
    return ShareHistory(
        share_id=str(record["share_id"]),
        time=str(record["time"]),
        requester=str(record.get("requester")),
        kind=str(record.get("request_kind") or "ordinary"),
        cameras=tuple(record.get("cameras") or ()),
        start=str(record.get("start")),
        end=str(record.get("end")),
        reason=str(record.get("reason")),
        legal=legal,
    )


def _apply(share: ShareHistory, record: dict[str, Any]) -> None:
    kind = record["kind"]
    if kind == "decision":
        if record.get("decision") == "deny":
            share.denied_by = str(record.get("by"))
        else:
            share.approvers.append(str(record.get("by")))
            share.first_approval = record.get("step") == "first of two approvals"
    elif kind == "render_start":
        share.faces_blurred = bool(record.get("redact"))
    elif kind == "render":
        share.render = str(record.get("result"))
        share.size = record.get("size")
        share.sha256 = record.get("sha256")
    elif kind == "download" and _is_video(record):
        share.downloads += 1
    elif kind == "repeated" and record.get("of") == "download":
        share.downloads += _video_downloads(record)
    elif kind == "revoke":
        share.revoked = True
        share.ended = f"revoked by {record.get('by')}"
    elif kind == "expiry":
        share.ended = "expired"


def _is_video(record: dict[str, Any]) -> bool:
    """A request for the video itself: not the page, the signature, or a HEAD (headers only)."""
    return record.get("file") is None and record.get("method") is None


def _video_downloads(summary: dict[str, Any]) -> int:
    """Requests for the video in a ``repeated`` sum of downloads.

    The recipient's page, the signature file and HEAD requests are not downloads of
    the footage. Clients beyond those the sum names (``other``) are counted: they may
    have fetched it.
    """
    entries = summary.get("entries")
    if not isinstance(entries, list):
        return int(summary.get("count") or 0)
    named = sum(
        int(entry.get("count") or 0)
        for entry in entries
        if isinstance(entry, dict) and _is_video(entry)
    )
    return named + int(summary.get("other") or 0)


def build_report(audit_folder: Path, since: datetime | None = None) -> Report:
    """The transparency report of the audit log in ``audit_folder``."""
    result, records = read_records(audit_folder)
    shares: dict[str, ShareHistory] = {}
    refused = 0
    for record in records:
        kind = record["kind"]
        in_period = since is None or datetime.fromisoformat(str(record["time"])) >= since
        if kind == "request" and in_period:
            shares[str(record["share_id"])] = _share(record)
        elif kind == "request_rejected" and in_period:
            refused += 1
        elif kind == "repeated" and record.get("of") == "request_rejected" and in_period:
            refused += int(record.get("count") or 0)
        elif (share := shares.get(str(record.get("share_id")))) is not None:
            _apply(share, record)
    return Report(
        log_ok=result.ok,
        log_message=result.message.splitlines()[0],
        records=len(records),
        since=since,
        shares=tuple(shares.values()),
        refused=refused,
    )
