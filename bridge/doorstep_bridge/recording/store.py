"""The clip store: files under ``<storage>/<cam>/<YYYY-MM-DD>/`` and an SQLite index.

Layout (dates are UTC)::

    <storage>/clips.db                              the index (SQLite, WAL)
    <storage>/<cam>/<YYYY-MM-DD>/<id>.mp4           finished clip (+faststart)
    <storage>/<cam>/<YYYY-MM-DD>/<id>.jpg           its snapshot
    <storage>/<cam>/<YYYY-MM-DD>/<id>.thumb.jpg     its thumbnail
    <storage>/<cam>/<YYYY-MM-DD>/<id>.partial.mp4   while recording (fragmented MP4)

A clip is inserted as ``recording`` when it starts and becomes ``ok`` once its
file is complete. :meth:`ClipStore.open` reconciles the index with the disk after
a crash: partial files are repaired into playable clips (``repaired``) or removed,
rows whose file vanished are dropped, and files the index does not know are
adopted when playable (their metadata names camera, reason and start) or removed.
Every such decision, and every deletion, is written to the ``events`` table.

A clip's start is its first frame's capture time on the wall clock. When that clock
steps (NTP setting the stale clock of a board without a real-time clock),
:meth:`ClipStore.follow_clock` moves the times of the clips and person sightings this
run indexed before the step by as much. Their ids and day folders keep the stamp they
were given: shares, audit records and Home Assistant's media browser name clips by id.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
import logging
import os
from pathlib import Path
import re
import secrets
import sqlite3
import threading
from typing import Any

from doorstep_bridge.clock import Clock, SteadyClock, StepWatch, steady_seconds
from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.files import fsync_dir
from doorstep_bridge.models import ClipInfo, utcnow
from doorstep_bridge.recording.settings import CLIP_REASONS
from doorstep_bridge.recording.writer import NothingPlayableError, finalize, probe
from doorstep_bridge.wal import DISK_FAULTS, disk_error_text, open_wal, result_code

_LOGGER = logging.getLogger(__name__)

INDEX_NAME = "clips.db"
CLIP_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
REASONS = frozenset(CLIP_REASONS)
_CAMERA_DIR = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")
#: Folders of other features in the storage folder (sharing, audit log).
_OTHER_FEATURES = frozenset({"shares", "audit"})
_DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    id TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    reason TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    snapshot TEXT,
    thumbnail TEXT,
    status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS clips_start ON clips (start);
CREATE INDEX IF NOT EXISTS clips_camera ON clips (camera, start);
CREATE TABLE IF NOT EXISTS holds (
    share_id TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    PRIMARY KEY (share_id, clip_id)
);
-- Every clip served or listed asks who holds it: without this, each asks the whole table.
CREATE INDEX IF NOT EXISTS holds_clip ON holds (clip_id);
CREATE TABLE IF NOT EXISTS sightings (
    camera TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL
);
CREATE INDEX IF NOT EXISTS sightings_camera ON sightings (camera, start);
CREATE TABLE IF NOT EXISTS events (
    time REAL NOT NULL,
    clip_id TEXT NOT NULL,
    camera TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""
#: Clip ids in one ``IN (...)`` query: well under SQLite's oldest limit of 999 variables.
_IDS_PER_QUERY = 500
#: Index statuses of a playable clip.
PLAYABLE = ("ok", "repaired")
#: SQLite's result codes for an index file that is itself damaged: it is set aside.
_DAMAGED_INDEX = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class ClipNotFoundError(LookupError):
    """No finished clip has this id."""


class ClipHeldError(StorageError):
    """A share holds the clip, so it cannot be erased.

    Attributes:
        shares: Ids of the shares that hold it.
    """

    def __init__(self, shares: tuple[str, ...]) -> None:
        super().__init__(f"held by share {', '.join(shares)}")
        self.shares = shares


@dataclass(frozen=True, slots=True)
class PendingClip:
    """A clip being recorded: where its files go."""

    id: str
    camera: str
    start: datetime
    reason: str
    partial: Path
    final: Path
    snapshot: Path
    thumbnail: Path

    def comment(self) -> str:
        """Metadata stored in the MP4 so a lost index can be rebuilt from the files."""
        return json.dumps(
            {"camera": self.camera, "reason": self.reason, "start": self.start.timestamp()}
        )


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """A decision the store made about a clip (repair, removal, deletion)."""

    time: datetime
    clip_id: str
    camera: str
    action: str
    detail: str


def valid_clip_id(clip_id: str) -> bool:
    """True for ids that can name a clip (no path separators, no dots)."""
    return bool(CLIP_ID.match(clip_id))


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _create_owner_only(path: Path) -> None:
    """Create the index file 0600 if missing: SQLite gives its journal files its mode.

    Raises:
        StorageError: It cannot be created.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as err:
        raise StorageError(f"cannot open the clip index {path}: {err.strerror}") from None


class ClipStore:
    """Clip files and their SQLite index. All methods are thread-safe and synchronous.

    Args:
        root: The storage folder (``storage.path``).
        clock: The wall clock (tests pass a controllable one).
        steady: Seconds on a clock nobody sets, to tell a step of the wall clock.
    """

    def __init__(
        self, root: Path, *, clock: Clock = utcnow, steady: SteadyClock = steady_seconds
    ) -> None:
        self.root = root
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._steps = StepWatch(clock, steady)
        # What this run stamped with its wall clock, so a step of it can be followed: the
        # ids of the clips it indexed, and the rowids of the sightings it wrote. Clips of
        # an earlier run stay as they are: a step now says nothing about that run's clock.
        self._stamped_clips: set[str] = set()
        self._stamped_sightings: set[int] = set()
        #: Clips cut off by a crash that the disk kept from repairing, retried later.
        self._deferred: dict[str, PendingClip] = {}
        self._repair_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------

    def open(self) -> list[StoreEvent]:
        """Create or open the index and reconcile it with the files on disk.

        Returns:
            What the reconciliation did (repairs, removals, adoptions).

        Raises:
            StorageError: The storage folder cannot be created or the index opened.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise StorageError(f"cannot create {self.root}: {err.strerror}") from None
        with self._lock:
            self._steps.read()  # the clocks as they are now are what a step is told from
            self._db = self._connect()
            since = utcnow()
            try:
                self._reconcile()
                # A run that ended without saying (killed) may have left a sighting open;
                # one left open for good would make every later motion clip a person clip.
                with self._tx() as db:
                    db.execute("UPDATE sightings SET end = ? WHERE end IS NULL", (_ts(since),))
            except sqlite3.Error as err:
                if result_code(err) not in DISK_FAULTS:
                    raise
                # A bridge that does not start passes on no doorbell press: start, and
                # leave the index as it is until a start with room (nothing records now).
                _LOGGER.warning(
                    "The clip index could not be brought up to date with the files (%s);"
                    " the next start with free space does it",
                    disk_error_text(err),
                )
            return self.events(since=since - timedelta(seconds=1))

    def _connect(self) -> sqlite3.Connection:
        path = self.root / INDEX_NAME
        _create_owner_only(path)
        try:
            return open_wal(path, _SCHEMA)
        except sqlite3.Error as err:
            if result_code(err) not in _DAMAGED_INDEX:
                # A full or failing disk, a lock or a permission is not the index's fault:
                # setting it aside would lose what only it knows (a press that made a
                # motion clip a ring clip, person sightings, which clips were deleted).
                why = disk_error_text(err)
                raise StorageError(
                    f"cannot open the clip index {path}: {why}; it is kept as it is"
                ) from None
            # A corrupt index is set aside; the clips are adopted again from their files.
            aside = path.with_name(f"{INDEX_NAME}.corrupt-{int(utcnow().timestamp())}")
            _LOGGER.error(  # noqa: TRY400 - the message says it all; no traceback needed
                "Clip index %s is unreadable (%s); rebuilding it from the files", path, err
            )
            try:
                path.replace(aside)
                _create_owner_only(path)
                return open_wal(path, _SCHEMA)
            except (OSError, sqlite3.Error) as again:
                raise StorageError(f"cannot open the clip index {path}: {again}") from None

    def close(self) -> None:
        """Close the index."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open index connection."""
        if self._db is None:
            raise StorageError("the clip store is not open")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _log(
        self, db: sqlite3.Connection, clip_id: str, camera: str, action: str, detail: str
    ) -> None:
        db.execute(
            "INSERT INTO events (time, clip_id, camera, action, detail) VALUES (?, ?, ?, ?, ?)",
            (_ts(utcnow()), clip_id, camera, action, detail),
        )

    # -- paths ---------------------------------------------------------------------

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _abs(self, rel: str | None) -> Path | None:
        return None if rel is None else self.root / rel

    def new_clip(self, camera: str, start: datetime, reason: str) -> PendingClip:
        """Reserve an id and paths for a clip that starts now; indexed as ``recording``.

        Raises:
            StorageError: The folder cannot be created or the index written.
        """
        if reason not in REASONS:
            raise ValueError(f"unknown clip reason {reason!r}")
        stamp = start.astimezone(UTC)
        clip_id = f"c_{stamp:%Y%m%dT%H%M%S}_{camera}_{secrets.token_hex(2)}"
        folder = self.root / camera / f"{stamp:%Y-%m-%d}"
        pending = PendingClip(
            id=clip_id,
            camera=camera,
            start=start,
            reason=reason,
            partial=folder / f"{clip_id}.partial.mp4",
            final=folder / f"{clip_id}.mp4",
            snapshot=folder / f"{clip_id}.jpg",
            thumbnail=folder / f"{clip_id}.thumb.jpg",
        )
        try:
            # mkdir's mode applies to the last folder only: the camera's comes first.
            folder.parent.mkdir(exist_ok=True, mode=0o700)
            folder.mkdir(exist_ok=True, mode=0o700)
            with self._tx() as db:
                db.execute(
                    "INSERT INTO clips (id, camera, start, end, reason, path, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'recording')",
                    (clip_id, camera, _ts(start), _ts(start), reason, self._rel(pending.partial)),
                )
                # Under the index lock, so a step followed now moves this clip or none.
                self._stamped_clips.add(clip_id)
        except (OSError, sqlite3.Error) as err:
            raise StorageError(f"cannot start a clip for {camera}: {err}") from None
        return pending

    def set_reason(self, clip_id: str, reason: str) -> None:
        """Give a clip a weightier reason (a press during a motion clip).

        The row is what a repair after a crash goes by, so it must say ``ring`` as
        soon as the press is known; and what retention and the clip lists go by, so
        an earlier part of the same visit (a full disk cut it, and it may be
        finished already) says it too.

        Raises:
            StorageError: The index cannot be written.
        """
        if reason not in REASONS:
            raise ValueError(f"unknown clip reason {reason!r}")
        try:
            with self._tx() as db:
                db.execute("UPDATE clips SET reason = ? WHERE id = ?", (reason, clip_id))
        except sqlite3.Error as err:
            raise StorageError(f"cannot index clip {clip_id}: {err}") from None

    def complete(
        self,
        pending: PendingClip,
        *,
        duration: float,
        size: int,
        reason: str | None = None,
        snapshot: bool = False,
    ) -> ClipInfo:
        """Mark a clip finished (its final file is in place).

        Its end is reckoned from the start in the index, which a step of the clock
        while it was recorded moved (see :meth:`follow_clock`), not from ``pending``'s.
        """
        try:
            with self._tx() as db:
                db.execute(
                    "UPDATE clips SET end = start + ?, path = ?, size = ?, snapshot = ?,"
                    " thumbnail = ?, reason = ?, status = 'ok' WHERE id = ?",
                    (
                        duration,
                        self._rel(pending.final),
                        size,
                        self._rel(pending.snapshot) if snapshot else None,
                        self._rel(pending.thumbnail) if snapshot else None,
                        reason or pending.reason,
                        pending.id,
                    ),
                )
        except sqlite3.Error as err:
            raise StorageError(f"cannot index clip {pending.id}: {err}") from None
        info = self.get(pending.id)
        assert info is not None
        return info

    def discard(self, pending: PendingClip, why: str, action: str = "discarded") -> None:
        """Forget a clip that could not be written; its files are removed."""
        for path in (pending.partial, pending.final, pending.snapshot, pending.thumbnail):
            _unlink(path)
        try:
            with self._tx() as db:
                db.execute("DELETE FROM clips WHERE id = ?", (pending.id,))
                self._log(db, pending.id, pending.camera, action, why)
                self._stamped_clips.discard(pending.id)
        except sqlite3.Error as err:
            _LOGGER.error("Cannot remove clip %s from the index: %s", pending.id, err)  # noqa: TRY400

    # -- start-up reconciliation ---------------------------------------------------

    def _reconcile(self) -> None:
        db = self.db
        rows = db.execute("SELECT id, camera, start, reason, path, status FROM clips").fetchall()
        known: set[str] = set()
        for clip_id, camera, start, reason, rel, status in rows:
            known.add(clip_id)
            path = self.root / rel
            if status == "recording":
                self._repair(clip_id, camera, _dt(start), reason, path)
            elif not path.is_file():
                with self._tx() as tx:
                    tx.execute("DELETE FROM clips WHERE id = ?", (clip_id,))
                    tx.execute("DELETE FROM holds WHERE clip_id = ?", (clip_id,))
                    self._log(tx, clip_id, camera, "missing", f"{rel} is gone; dropped from index")
                _LOGGER.warning("Clip %s: file %s is missing; dropped from the index", clip_id, rel)
        self._sweep(known)

    def _repair(
        self, clip_id: str, camera: str, start: datetime, reason: str, path: Path
    ) -> ClipInfo | None:
        """Finish a clip cut off by a crash; None when it is gone or must wait for room."""
        folder = path.parent
        pending = PendingClip(
            clip_id,
            camera,
            start,
            reason,
            folder / f"{clip_id}.partial.mp4",
            folder / f"{clip_id}.mp4",
            folder / f"{clip_id}.jpg",
            folder / f"{clip_id}.thumb.jpg",
        )
        if not pending.partial.is_file() and not pending.final.is_file():
            self._deferred.pop(clip_id, None)
            self.discard(pending, "cut off by a crash; no file left", "missing")
            _LOGGER.warning("Clip %s was cut off by a crash and left no file; dropped", clip_id)
            return None
        try:
            if pending.partial.is_file():
                finished = finalize(pending.partial, pending.final)
                duration, size = finished.duration, finished.size
            else:
                duration, _, _ = probe(pending.final)  # crashed after the rename
                size = pending.final.stat().st_size
        except (StorageError, OSError) as err:
            if _disk_at_fault(err):
                self._defer(pending, str(err))
                return None
            self._deferred.pop(clip_id, None)
            self.discard(pending, f"cut off by a crash, not repairable: {err}", "removed")
            _LOGGER.warning(
                "Clip %s was cut off by a crash and could not be repaired (%s); removed",
                clip_id,
                err,
            )
            return None
        has_snapshot = pending.snapshot.is_file() and pending.thumbnail.is_file()
        try:
            self.complete(pending, duration=duration, size=size, snapshot=has_snapshot)
            with self._tx() as db:
                db.execute("UPDATE clips SET status = 'repaired' WHERE id = ?", (clip_id,))
                self._log(
                    db, clip_id, camera, "repaired", f"cut off by a crash; {duration:.1f} s kept"
                )
        except (StorageError, sqlite3.Error) as err:
            # The finished file is in place; only the index could not say so (a full
            # disk). The row still reads "recording": the next attempt probes the file.
            self._defer(pending, str(err))
            return None
        retried = self._deferred.pop(clip_id, None) is not None
        _LOGGER.warning(
            "Clip %s was cut off by a crash; repaired%s (%.1f s kept)",
            clip_id,
            " now that the disk takes it" if retried else "",
            duration,
        )
        return self.get(clip_id)

    def _defer(self, pending: PendingClip, why: str) -> None:
        """Keep a clip the disk (not the file) kept from repairing; say so once."""
        if pending.id in self._deferred:
            _LOGGER.debug("Clip %s still cannot be repaired: %s", pending.id, why)
        else:
            _LOGGER.warning(
                "Clip %s was cut off by a crash and cannot be repaired now (%s); its file is"
                " kept and repaired when the disk takes it",
                pending.id,
                why,
            )
        self._deferred[pending.id] = pending

    def retry_repairs(self) -> builtins.list[ClipInfo]:
        """Try again to repair the clips a full (or failing) disk kept from repairing at start.

        Returns:
            The clips repaired now (they are listed from now on).
        """
        with self._repair_lock:
            repaired: builtins.list[ClipInfo] = []
            for pending in builtins.list(self._deferred.values()):
                clip = self._repair(
                    pending.id, pending.camera, pending.start, pending.reason, pending.partial
                )
                if clip is not None:
                    repaired.append(clip)
            return repaired

    def _sweep(self, known: set[str]) -> None:
        """Remove temporary files and adopt or remove clip files the index does not know."""
        indexed = {row[0] for row in self.db.execute("SELECT id FROM clips")}
        for path in self._clip_files("*"):
            name = path.name
            if name.startswith(".") and name.endswith(".tmp"):
                _unlink(path)
                continue
            clip_id = name.split(".", 1)[0]
            if clip_id in indexed or not valid_clip_id(clip_id):
                continue
            if self._was_removed(clip_id):
                # Deleted or erased, but the file could not be removed then: a forgotten
                # clip must not come back.
                _unlink(path)
                continue
            if name.endswith(".partial.mp4") or (name.endswith(".mp4") and clip_id not in known):
                self._adopt(path, clip_id)
                indexed.add(clip_id)
        # Snapshots whose clip is gone.
        for path in self._clip_files("*.jpg"):
            if path.name.split(".", 1)[0] not in indexed:
                _unlink(path)

    def _was_removed(self, clip_id: str) -> bool:
        """True when the index deleted or erased this clip (its ``events``)."""
        row = self.db.execute(
            "SELECT 1 FROM events WHERE clip_id = ? AND action IN ('deleted', 'erased') LIMIT 1",
            (clip_id,),
        ).fetchone()
        return row is not None

    def _clip_files(self, pattern: str) -> builtins.list[Path]:
        """Files in ``<cam>/<YYYY-MM-DD>/`` folders only.

        Other features (shares, the audit log) keep their own files in the storage
        folder; they are never touched.
        """
        files: builtins.list[Path] = []
        for camera in self.root.iterdir():
            if (
                not camera.is_dir()
                or camera.name in _OTHER_FEATURES
                or not _CAMERA_DIR.match(camera.name)
            ):
                continue
            for day in camera.iterdir():
                if day.is_dir() and _DAY_DIR.match(day.name):
                    files.extend(p for p in day.glob(pattern) if p.is_file())
        return sorted(files)

    def _adopt(self, path: Path, clip_id: str) -> None:
        camera = path.parent.parent.name
        final = path.with_name(f"{clip_id}.mp4")
        try:
            if path.name.endswith(".partial.mp4"):
                finalize(path, final)
            duration, _, comment = probe(final)
            meta: dict[str, Any] = json.loads(comment) if comment else {}
            start = _dt(float(meta["start"]))
            reason = str(meta.get("reason", "motion"))
            if reason not in REASONS:
                reason = "motion"
            size = final.stat().st_size
        except (StorageError, OSError, ValueError, KeyError, TypeError) as err:
            if _disk_at_fault(err):
                # Nothing is lost by waiting: the file stays and is adopted at the next start.
                _LOGGER.warning(
                    "Clip file %s is not in the index and cannot be adopted now (%s); kept",
                    path.name,
                    err,
                )
                return
            for stale in (path, final):
                _unlink(stale)
            with self._tx() as db:
                self._log(db, clip_id, camera, "removed", f"unindexed, unplayable file: {err}")
            _LOGGER.warning("Removed unindexed, unplayable clip file %s", path.name)
            return
        snapshot = final.with_name(f"{clip_id}.jpg")
        thumb = final.with_name(f"{clip_id}.thumb.jpg")
        has_snapshot = snapshot.is_file() and thumb.is_file()
        with self._tx() as db:
            db.execute(
                "INSERT INTO clips (id, camera, start, end, reason, path, size, snapshot,"
                " thumbnail, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'repaired')",
                (
                    clip_id,
                    camera,
                    _ts(start),
                    _ts(start) + duration,
                    reason,
                    self._rel(final),
                    size,
                    self._rel(snapshot) if has_snapshot else None,
                    self._rel(thumb) if has_snapshot else None,
                ),
            )
            self._log(db, clip_id, camera, "adopted", f"{final.name} was not in the index")
        _LOGGER.warning("Clip file %s was not in the index; adopted", final.name)

    # -- queries -------------------------------------------------------------------

    _COLUMNS = "id, camera, start, end, reason, path, size, snapshot, thumbnail"

    def _info(self, row: tuple[Any, ...], holders: tuple[str, ...] | None = None) -> ClipInfo:
        clip_id, camera, start, end, reason, rel, size, snapshot, thumbnail = row
        if holders is None:
            holders = tuple(
                r[0]
                for r in self.db.execute(
                    "SELECT share_id FROM holds WHERE clip_id = ? ORDER BY share_id", (clip_id,)
                )
            )
        return ClipInfo(
            id=clip_id,
            camera=camera,
            start=_dt(start),
            end=_dt(end),
            reason=reason,
            path=self.root / rel,
            size=size,
            snapshot_path=self._abs(snapshot),
            thumbnail_path=self._abs(thumbnail),
            held_by=holders,
        )

    def _infos(self, rows: Sequence[tuple[Any, ...]]) -> builtins.list[ClipInfo]:
        """The clips of many rows, their holders asked for in one query per page, not per clip."""
        holders: dict[str, builtins.list[str]] = {}
        ids = [row[0] for row in rows]
        for first in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[first : first + _IDS_PER_QUERY]
            marks = ", ".join("?" for _ in chunk)
            for share_id, clip_id in self.db.execute(
                f"SELECT share_id, clip_id FROM holds WHERE clip_id IN ({marks})"  # noqa: S608
                " ORDER BY share_id",
                chunk,
            ):
                holders.setdefault(clip_id, []).append(share_id)
        return [self._info(row, tuple(holders.get(row[0], ()))) for row in rows]

    def get(self, clip_id: str) -> ClipInfo | None:
        """A finished clip by id (None for unknown, unfinished or invalid ids)."""
        if not valid_clip_id(clip_id):
            return None
        with self._lock:
            row = self.db.execute(
                f"SELECT {self._COLUMNS} FROM clips WHERE id = ? AND status IN ('ok', 'repaired')",  # noqa: S608
                (clip_id,),
            ).fetchone()
            return self._info(row) if row else None

    def list(  # noqa: PLR0917 - the documented call takes the filters positionally
        self,
        camera: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        reason: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[ClipInfo], int]:
        """Finished clips, newest first, and how many match in total.

        ``since``/``until`` select clips that overlap the interval.
        """
        where = ["status IN ('ok', 'repaired')"]
        args: list[Any] = []
        if camera is not None:
            where.append("camera = ?")
            args.append(camera)
        if since is not None:
            where.append("end >= ?")
            args.append(_ts(since))
        if until is not None:
            where.append("start <= ?")
            args.append(_ts(until))
        if reason is not None:
            where.append("reason = ?")
            args.append(reason)
        clause = " AND ".join(where)
        with self._lock:
            total = self.db.execute(
                f"SELECT COUNT(*) FROM clips WHERE {clause}",  # noqa: S608
                args,
            ).fetchone()[0]
            rows = self.db.execute(
                f"SELECT {self._COLUMNS} FROM clips WHERE {clause}"  # noqa: S608
                " ORDER BY start DESC, id DESC LIMIT ? OFFSET ?",
                [*args, max(0, limit), max(0, offset)],
            ).fetchall()
            return self._infos(rows), int(total)

    def newest_with_snapshot(self, camera: str) -> ClipInfo | None:
        """The camera's newest finished clip that has a snapshot, or None."""
        with self._lock:
            row = self.db.execute(
                f"SELECT {self._COLUMNS} FROM clips WHERE status IN ('ok', 'repaired')"  # noqa: S608
                " AND camera = ? AND snapshot IS NOT NULL ORDER BY start DESC, id DESC LIMIT 1",
                (camera,),
            ).fetchone()
            return self._info(row) if row else None

    def clips_between(
        self, cameras: Sequence[str], start: datetime, end: datetime
    ) -> builtins.list[ClipInfo]:
        """Finished clips of these cameras that overlap [start, end], oldest first."""
        if not cameras:
            return []
        marks = ", ".join("?" for _ in cameras)
        with self._lock:
            rows = self.db.execute(
                f"SELECT {self._COLUMNS} FROM clips WHERE status IN ('ok', 'repaired')"  # noqa: S608
                f" AND camera IN ({marks}) AND end >= ? AND start <= ? ORDER BY start, id",
                [*cameras, _ts(start), _ts(end)],
            ).fetchall()
            return self._infos(rows)

    def hold(self, share_id: str, clip_ids: Sequence[str]) -> None:
        """Keep these clips from retention until :meth:`release` (for an active share)."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO holds (share_id, clip_id) VALUES (?, ?)",
                [(share_id, clip_id) for clip_id in clip_ids],
            )

    def release(self, share_id: str) -> None:
        """Drop every hold of a share."""
        with self._tx() as db:
            db.execute("DELETE FROM holds WHERE share_id = ?", (share_id,))

    def person_seen(self, camera: str, moment: datetime, *, active: bool) -> None:
        """Person detection saw someone come into (or leave) a camera's view.

        Motion clips that overlap a sighting are ``person`` clips for retention.
        """
        with self._tx() as db:
            if active:
                row = db.execute(
                    "INSERT INTO sightings (camera, start, end) VALUES (?, ?, NULL)",
                    (camera, _ts(moment)),
                ).lastrowid
                if row is not None:
                    self._stamped_sightings.add(row)
            else:
                db.execute(
                    "UPDATE sightings SET end = ? WHERE camera = ? AND end IS NULL",
                    (_ts(moment), camera),
                )

    def forget_sightings(self, before: datetime) -> None:
        """Drop sightings that ended before ``before`` (older than any clip kept)."""
        with self._tx() as db:
            gone = db.execute(
                "SELECT rowid FROM sightings WHERE end IS NOT NULL AND end < ?", (_ts(before),)
            ).fetchall()
            db.execute("DELETE FROM sightings WHERE end IS NOT NULL AND end < ?", (_ts(before),))
            self._stamped_sightings.difference_update(row for (row,) in gone)

    def usage(self, *, held: bool = True) -> tuple[int, int]:
        """(bytes of finished clips, number of finished clips).

        Without ``held``, of the clips no share holds.
        """
        unheld = "" if held else " AND id NOT IN (SELECT clip_id FROM holds)"
        with self._lock:
            size, count = self.db.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM clips"  # noqa: S608 - no input
                f" WHERE status IN ('ok', 'repaired'){unheld}"
            ).fetchone()
            return int(size), int(count)

    def events(self, since: datetime | None = None) -> builtins.list[StoreEvent]:
        """Decisions the store made (repairs, removals, deletions), oldest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT time, clip_id, camera, action, detail FROM events WHERE time >= ?"
                " ORDER BY time, rowid",
                (_ts(since) if since else 0.0,),
            ).fetchall()
        return [
            StoreEvent(_dt(t), clip_id, cam, action, detail)
            for t, clip_id, cam, action, detail in rows
        ]

    def status(self, clip_id: str) -> str | None:
        """The index status of a clip (``recording``, ``ok``, ``repaired``) or None."""
        with self._lock:
            row = self.db.execute("SELECT status FROM clips WHERE id = ?", (clip_id,)).fetchone()
            return str(row[0]) if row else None

    # -- clock steps ---------------------------------------------------------------

    def clock_stepped(self) -> bool:
        """True when the wall clock stepped and :meth:`follow_clock` has not followed yet.

        Reads two clocks only: cheap enough to ask often.
        """
        return bool(self._steps.read().step)

    def follow_clock(self) -> tuple[timedelta, builtins.list[str]] | None:
        """Move the times this run stamped by a step of the wall clock, if it stepped.

        A clip recorded before NTP set a stale clock carries a start decades or hours
        off, which retention would take for its age, and the clip lists for its time.
        Its start and end in the index (a clip being recorded too: its end is reckoned
        from its start) and the person sightings of this run move by the step.

        Returns:
            The step and the ids of the clips moved, or None when the clock did not step.

        Raises:
            StorageError: The index could not be written: nothing moved, and the step
                is still there to be followed at the next call.
        """
        with self._lock:
            reading = self._steps.read()
            if not reading.step:
                return None
            seconds = reading.step.total_seconds()
            clips = sorted(self._stamped_clips)
            sightings = sorted(self._stamped_sightings)
            moved: builtins.list[str] = []
            try:
                with self._tx() as db:
                    for first in range(0, len(clips), _IDS_PER_QUERY):
                        chunk = clips[first : first + _IDS_PER_QUERY]
                        marks = ", ".join("?" for _ in chunk)
                        moved += [
                            row[0]
                            for row in db.execute(
                                f"SELECT id FROM clips WHERE id IN ({marks})",  # noqa: S608
                                chunk,
                            )
                        ]
                        db.execute(
                            "UPDATE clips SET start = start + ?, end = end + ?"  # noqa: S608
                            f" WHERE id IN ({marks})",
                            [seconds, seconds, *chunk],
                        )
                    for first in range(0, len(sightings), _IDS_PER_QUERY):
                        rows = sightings[first : first + _IDS_PER_QUERY]
                        marks = ", ".join("?" for _ in rows)
                        db.execute(
                            "UPDATE sightings SET start = start + ?,"  # noqa: S608
                            f" end = end + ? WHERE rowid IN ({marks})",
                            [seconds, seconds, *rows],
                        )
            except sqlite3.Error as err:
                raise StorageError(
                    f"cannot move the clip times by the clock's step: {disk_error_text(err)}"
                ) from None
            self._steps.follow(reading)
            self._stamped_clips = set(moved)
            return reading.step, moved

    # -- retention -----------------------------------------------------------------

    def deletable(
        self,
        *,
        before: datetime | None = None,
        reason: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[ClipInfo]:
        """Finished clips not held by any share, oldest first.

        Args:
            before: Only clips that ended before this.
            reason: Only clips of this kind (``ring``, ``manual``; ``person``: motion
                clips during which a person was seen; ``motion``: the other ones).
            limit: At most this many.
            offset: Skip this many.
        """
        clause = "status IN ('ok', 'repaired') AND id NOT IN (SELECT clip_id FROM holds)"
        args: list[Any] = []
        if before is not None:
            clause += " AND end < ?"
            args.append(_ts(before))
        if reason is not None:
            seen = (
                "EXISTS (SELECT 1 FROM sightings s WHERE s.camera = clips.camera"
                " AND s.start <= clips.end AND (s.end IS NULL OR s.end >= clips.start))"
            )
            if reason == "person":
                clause += f" AND (reason = 'person' OR (reason = 'motion' AND {seen}))"
            elif reason == "motion":
                clause += f" AND reason = 'motion' AND NOT {seen}"
            else:
                clause += " AND reason = ?"
                args.append(reason)
        with self._lock:
            rows = self.db.execute(
                f"SELECT {self._COLUMNS} FROM clips WHERE {clause}"  # noqa: S608
                " ORDER BY start, id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return self._infos(rows)

    def delete(self, clip_id: str, why: str) -> ClipInfo | None:
        """Delete a clip's files and index entry unless a share holds it.

        Returns:
            The deleted clip, or None when it is unknown or held.

        Raises:
            StorageError: The index cannot record the deletion. On a full or failing
                disk its files are gone; otherwise (the index is locked by another
                program) the clip is kept whole.
        """
        with self._lock:
            info = self.get(clip_id)
            if info is None or info.held_by:
                return None
            try:
                self._forget(info, why)
            except sqlite3.Error as err:
                if result_code(err) not in DISK_FAULTS:
                    # Another program holds the index (a backup, a database browser):
                    # removing the files would leave a listed clip that cannot play.
                    raise StorageError(
                        f"cannot delete clip {clip_id}: {err}; it is kept until the index"
                        " can record the deletion"
                    ) from None
                # A full disk: the index cannot even grow its journal to record the
                # deletion. Remove the files first to make room (a row whose file is
                # gone would be dropped at the next start anyway), then try again.
                _LOGGER.warning(
                    "Cannot index the deletion of clip %s (%s); files first", clip_id, err
                )
                self._remove_files(info)
                try:
                    self._forget(info, why)
                except sqlite3.Error as again:
                    raise StorageError(f"cannot delete clip {clip_id}: {again}") from None
        self._remove_files(info)
        return info

    def erase(
        self, clip_id: str, why: str, before: Callable[[ClipInfo], None] | None = None
    ) -> ClipInfo:
        """Erase one clip on request (forget a visit): files, snapshot, thumbnail and row.

        Unlike retention, the caller learns why nothing happened. The check that no
        share holds the clip, ``before`` and the erasure happen under the index lock,
        so a share cannot take hold of the clip in between.

        Args:
            clip_id: The clip.
            why: Recorded in the ``events`` table.
            before: Runs once the clip may be erased, before anything is removed (the
                audit record); an exception from it leaves the clip as it was.

        Raises:
            ClipNotFoundError: Unknown (or still recording) clip.
            ClipHeldError: A share holds it; nothing was erased.
            StorageError: The index cannot record the erasure.
        """
        with self._lock:
            info = self.get(clip_id)
            if info is None:
                raise ClipNotFoundError(clip_id)
            if info.held_by:
                raise ClipHeldError(info.held_by)
            if before is not None:
                before(info)
            try:
                self._forget(info, why, "erased")
            except sqlite3.Error as err:
                raise StorageError(f"cannot erase clip {clip_id}: {err}") from None
        self._remove_files(info)
        return info

    def _forget(self, info: ClipInfo, why: str, action: str = "deleted") -> None:
        with self._tx() as db:
            db.execute("DELETE FROM clips WHERE id = ?", (info.id,))
            self._log(db, info.id, info.camera, action, why)
            self._stamped_clips.discard(info.id)

    @staticmethod
    def _remove_files(info: ClipInfo) -> None:
        for path in (info.path, info.snapshot_path, info.thumbnail_path):
            if path is not None:
                _unlink(path)
        try:
            fsync_dir(info.path.parent)
            if not any(info.path.parent.iterdir()):
                info.path.parent.rmdir()
        except OSError:
            pass


def _disk_at_fault(err: BaseException) -> bool:
    """True when a repair failed because of the disk (full, quota, I/O), not the file.

    The writer wraps what went wrong in a :class:`StorageError`; the operating
    system's error is found in the exception chain. A file with nothing playable
    or with data FFmpeg cannot read is at fault itself: repairing it later would
    not help.
    """
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, NothingPlayableError):
            return False
        if isinstance(seen, OSError):  # PyAV's errno errors (ENOSPC, EDQUOT, EIO) too
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        _LOGGER.error("Cannot remove %s: %s", path, err.strerror)  # noqa: TRY400
