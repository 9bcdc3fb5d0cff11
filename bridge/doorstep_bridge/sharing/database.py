"""SQLite persistence of share requests (``<storage.path>/shares/shares.sqlite3``).

One row per share: the searchable columns (state, token hash) plus the whole
record as JSON. Writes commit before returning (WAL, ``synchronous=FULL``) so a
decision or a revocation survives a crash. Calls block: the service runs them
in a worker thread.
"""

from __future__ import annotations

from datetime import datetime
import json
from pathlib import Path
import sqlite3
import threading
from typing import Any

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.sharing.state import Decision, LegalBasis, Share, ShareState
from doorstep_bridge.wal import disk_error_text, open_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    token_hash TEXT UNIQUE,
    created TEXT NOT NULL,
    data TEXT NOT NULL
);
"""


def _decision_to_json(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "decision": decision.decision,
        "by": decision.by,
        "by_id": decision.by_id,
        "via": decision.via,
        "at": decision.at.isoformat(),
        "redact": decision.redact,
    }


def _decision_from_json(data: dict[str, Any] | None) -> Decision | None:
    if data is None:
        return None
    return Decision(
        decision=data["decision"],
        by=data["by"],
        via=data["via"],
        at=datetime.fromisoformat(data["at"]),
        redact=data["redact"],
        by_id=data.get("by_id"),  # absent in shares stored before it existed
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def share_to_json(share: Share) -> str:
    """The stored JSON of `share`."""
    return json.dumps(
        {
            "id": share.id,
            "state": str(share.state),
            "requester": share.requester,
            "cameras": list(share.cameras),
            "start": share.start.isoformat(),
            "end": share.end.isoformat(),
            "reason": share.reason,
            "created": share.created.isoformat(),
            "deadline": share.deadline.isoformat(),
            "source": share.source,
            "request_id": share.request_id,
            "decision": _decision_to_json(share.decision),
            "revoked_by": _decision_to_json(share.revoked_by),
            "progress": share.progress,
            "token_hash": share.token_hash,
            "link_expires": share.link_expires.isoformat() if share.link_expires else None,
            "file": share.file,
            "error": share.error,
            "clips": list(share.clips),
            "link_ttl_hours": share.link_ttl_hours,
            "kind": share.kind,
            "legal": share.legal.payload() if share.legal else None,
            "approvals": [_decision_to_json(a) for a in share.approvals],
        }
    )


def _legal_from_json(data: dict[str, Any] | None) -> LegalBasis | None:
    if data is None:
        return None
    scope = data["scope"]
    return LegalBasis(
        authority=data["authority"],
        reference=data["reference"],
        legal_basis=data["legal_basis"],
        scope_cameras=tuple(scope["cameras"]),
        scope_start=datetime.fromisoformat(scope["start"]),
        scope_end=datetime.fromisoformat(scope["end"]),
    )


def share_from_json(text: str) -> Share:
    """Parse what `share_to_json` wrote."""
    data = json.loads(text)
    return Share(
        id=data["id"],
        state=ShareState(data["state"]),
        requester=data["requester"],
        cameras=tuple(data["cameras"]),
        start=datetime.fromisoformat(data["start"]),
        end=datetime.fromisoformat(data["end"]),
        reason=data["reason"],
        created=datetime.fromisoformat(data["created"]),
        deadline=datetime.fromisoformat(data["deadline"]),
        source=data["source"],
        request_id=data["request_id"],
        decision=_decision_from_json(data["decision"]),
        revoked_by=_decision_from_json(data["revoked_by"]),
        progress=data["progress"],
        token_hash=data["token_hash"],
        link_expires=_time(data["link_expires"]),
        file=data["file"],
        error=data["error"],
        clips=tuple(data["clips"]),
        link_ttl_hours=data.get("link_ttl_hours"),
        # Rows written before requests had a kind are ordinary ones.
        kind=data.get("kind", "ordinary"),
        legal=_legal_from_json(data.get("legal")),
        approvals=tuple(
            decision
            for decision in map(_decision_from_json, data.get("approvals", []))
            if decision is not None
        ),
    )


class ShareDB:
    """The shares table; one connection guarded by a lock, usable from any thread."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Even on a full disk: a bridge that does not start passes on no doorbell press.
            self._db = open_wal(path, _SCHEMA)
        except sqlite3.Error as err:
            why = disk_error_text(err)
            raise StorageError(f"cannot open the share database {path}: {why}") from err
        self._lock = threading.Lock()

    def save(self, share: Share) -> None:
        """Insert or replace `share`, committed when this returns."""
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO shares (id, state, token_hash, created, data) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "state = excluded.state, token_hash = excluded.token_hash, "
                    "data = excluded.data",
                    (
                        share.id,
                        str(share.state),
                        share.token_hash,
                        share.created.isoformat(),
                        share_to_json(share),
                    ),
                )
        except sqlite3.Error as err:
            raise StorageError(f"cannot save share {share.id}: {err}") from err

    def delete(self, share_id: str) -> None:
        """Delete one share, committed when this returns."""
        try:
            with self._lock:
                self._db.execute("DELETE FROM shares WHERE id = ?", (share_id,))
        except sqlite3.Error as err:
            raise StorageError(f"cannot delete share {share_id}: {err}") from err

    def load_all(self) -> list[Share]:
        """Every share, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM shares ORDER BY created, id").fetchall()
        return [share_from_json(row[0]) for row in rows]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
