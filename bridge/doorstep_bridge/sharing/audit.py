"""Tamper-evident audit log: append-only JSON lines chained by SHA-256.

Every record is one line of canonical JSON (sorted keys, no spaces, RFC 8259:
no ``NaN``) holding ``seq`` (1, 2, ...), ``time``, ``kind``, the record's own
fields, ``prev`` (the ``hash`` of the record before it, 64 zeros for the first)
and ``hash``: the SHA-256 of the canonical JSON of the record without ``hash``.
Changing a record breaks its hash; inserting, deleting or reordering records
breaks ``seq`` and ``prev``; cutting records off the end is caught by the *head*
(``head.json`` beside the log: the sequence number and hash of the last
record), which is rewritten atomically after every append.

The log is kept in *segments*: records are appended to ``audit.jsonl``; once it
holds `SEGMENT_BYTES`, it is renamed ``audit-000001.jsonl`` (then ``-000002`` and
so on) and a new ``audit.jsonl`` continues the same chain (its first record's
``prev`` is the hash of the previous segment's last record). Opening the log
reads only the live segment and the last line of the segment before it;
`verify` walks them all.

The tail rule. The head is written after the record, so a crash can leave at
most ONE record past the head. The bridge accepts exactly that, at start, with a
warning and an ``audit_recovered`` record naming it (never silently); `verify`
reports it apart ("1 record past the head (crash window)"), and two or more
records past the head are an error. So are records without a head, a head
without its records, and a storage folder that was used (its clip index or
share folder exists) with no log at all: the first start writes a ``log_created``
record, so a bridge that ever ran has a log and a head.

One storage folder without a log is not an error: the one an upgrade finds. Bridges
before the ``log_created`` record made the audit folder at every start but wrote the
log only with its first record, so one that never recorded anything left the folder
empty. The start takes that for an upgrade, and says so in its ``log_created``
record (``upgraded``), only when nothing in the storage folder could have produced a
record (see `upgrade_blocker`); otherwise it is a deleted log, as before.

The chain proves that the log was not edited after the fact by anyone who
cannot also rewrite every later record and the head. It is not a signature:
someone with write access to the whole folder can forge a new consistent
history. docs/privacy.md explains what that means for the owner.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
import contextlib
from dataclasses import dataclass
import errno
import hashlib
import json
import logging
import math
import os
from pathlib import Path
import re
import sqlite3
import threading
from typing import Any

from doorstep_bridge.exceptions import AuditError
from doorstep_bridge.files import fsync_dir
from doorstep_bridge.models import iso, utcnow
from doorstep_bridge.text import clean_text, is_text

_LOGGER = logging.getLogger(__name__)

LOG_NAME = "audit.jsonl"
HEAD_NAME = "head.json"
#: Created by the owner to start a new log on a storage folder whose log is gone.
NEW_LOG_NAME = "NEW_LOG"
SEGMENT_NAME = re.compile(r"^audit-(\d{6,})\.jsonl$")
GENESIS = "0" * 64
#: Keys every record has; fields passed to `append` may not use them.
RESERVED = frozenset({"seq", "time", "kind", "prev", "hash"})
#: Bytes read at a time from the end of a segment.
TAIL_BLOCK = 64 * 1024
#: The live segment is closed once it holds this many bytes.
SEGMENT_BYTES = 4 * 1024 * 1024
#: Files in the storage folder that show the bridge has run there before. Both are
#: created after the audit log at every start, so they never exist on a first start.
RAN_BEFORE = ("clips.db", "shares")
#: The clip index and the share database (recording.store, sharing.book), read only
#: to tell an upgrade from a deleted log.
CLIP_INDEX = "clips.db"
SHARE_DB = Path("shares") / "shares.sqlite3"
#: Created at every start of a share service that starts its audit log with a record.
SIGNING_KEY = Path("shares") / "export-signing-key.pem"
#: Nesting allowed in a record's fields.
MAX_DEPTH = 8


def audit_dir(storage_path: Path) -> Path:
    """The folder holding the audit log under the bridge's storage folder."""
    return storage_path / "audit"


def segment_name(number: int) -> str:
    """File name of closed segment `number` (1-based)."""
    return f"audit-{number:06d}.jsonl"


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of `record` without its ``hash`` key."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def field_problem(fields: dict[str, Any]) -> str | None:
    """What is wrong with `fields` as a record's fields, naming the field; None if fine.

    Field names are text and not reserved; values are JSON (RFC 8259): text
    without lone surrogates, finite numbers, booleans, null, lists and objects.
    """
    for name, value in fields.items():
        if not isinstance(name, str) or not is_text(name):
            return f"field {clean_text(str(name))!r}: a field name must be text"
        if name in RESERVED:
            return f"field {name!r}: reserved (seq, time, kind, prev and hash are the log's own)"
        problem = _value_problem(value, 0)
        if problem is not None:
            return f"field {name!r}: {problem}"
    return None


def _value_problem(value: Any, depth: int) -> str | None:  # noqa: PLR0911 - one per type
    if depth > MAX_DEPTH:
        return "nested too deeply"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "not a finite number (NaN or Infinity)"
    if isinstance(value, str):
        return None if is_text(value) else "not valid text (a lone surrogate or invalid bytes)"
    if isinstance(value, list | tuple):
        for item in value:
            if (problem := _value_problem(item, depth + 1)) is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not is_text(key):
                return "a key must be text"
            if (problem := _value_problem(item, depth + 1)) is not None:
                return problem
        return None
    return f"not JSON ({type(value).__name__})"


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data`: `os.write` may write only part of it (a disk filling up)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of checking an audit log.

    Attributes:
        ok: True when every record and the head check out.
        count: Number of readable records (over every segment).
        bad_record: ``seq`` of the first bad record, if any.
        problem: What is wrong with it.
        file: The segment holding it (or the file that is missing).
        past_head: 1 when one record is past the head: the window between an
            append and its head (a crash, or a bridge writing right now).
        recovered: ``seq`` of records the bridge found past the head at a start.
        upgrade: No log yet in a storage folder of an older bridge that never
            recorded anything; the next start writes its first record.
    """

    ok: bool
    count: int
    bad_record: int | None = None
    problem: str | None = None
    file: str | None = None
    past_head: int = 0
    recovered: tuple[int, ...] = ()
    upgrade: bool = False

    @property
    def message(self) -> str:
        """Lines for people: intact, or the first bad record and why."""
        if not self.ok:
            where = f" ({self.file})" if self.file else ""
            return f"audit log NOT intact: record {self.bad_record}{where}: {self.problem}"
        lines = [f"audit log intact: {self.count} record(s)"]
        if self.upgrade:
            lines.append(
                "no log yet: this storage folder is from an older bridge that never recorded "
                "anything (no share, no deleted clip); the next start begins the log with a "
                "log_created record (upgraded)"
            )
        if self.past_head:
            lines.append(
                f"1 record past the head (crash window): record {self.count} was written but "
                "the head not moved to it; the bridge records this at its next start"
            )
        if self.recovered:
            seqs = ", ".join(map(str, self.recovered))
            lines.append(
                f"note: record(s) {seqs} were found past the head at a start (crash window) "
                "and accepted; see the audit_recovered records"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message


def _good(count: int, past_head: int = 0, recovered: tuple[int, ...] = ()) -> VerifyResult:
    return VerifyResult(ok=True, count=count, past_head=past_head, recovered=recovered)


def _bad(count: int, bad_record: int, problem: str, file: str | None = None) -> VerifyResult:
    return VerifyResult(ok=False, count=count, bad_record=bad_record, problem=problem, file=file)


@dataclass(frozen=True, slots=True)
class _Scan:
    """What reading one segment found: records up to the first problem."""

    records: list[dict[str, Any]]
    bad: VerifyResult | None
    torn_tail: bool


def _scan(log_path: Path, base_seq: int = 0, base_prev: str = GENESIS) -> _Scan:
    """Read one segment whose first record follows ``(base_seq, base_prev)``."""
    try:
        data = log_path.read_bytes()
    except FileNotFoundError:
        data = b""
    lines = data.split(b"\n")
    torn_tail = bool(lines[-1])  # the last line has no newline: a write was cut short
    if not lines[-1]:
        lines.pop()
    records: list[dict[str, Any]] = []
    prev = base_prev
    for number, line in enumerate(lines, start=base_seq + 1):
        problem = _check_line(
            line, number, prev, is_last_line=number == base_seq + len(lines), torn=torn_tail
        )
        if problem is not None:
            bad = _bad(base_seq + len(records), number, problem, log_path.name)
            return _Scan(records, bad, torn_tail)
        record: dict[str, Any] = json.loads(line)
        records.append(record)
        prev = record["hash"]
    return _Scan(records, None, torn_tail)


def _check_line(  # noqa: PLR0911 - one return per kind of damage reads best
    line: bytes, number: int, prev: str, *, is_last_line: bool, torn: bool
) -> str | None:
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except ValueError:
        if is_last_line and torn:
            return "incomplete last line (the write was cut short or the file truncated)"
        return "not valid JSON"
    if not isinstance(record, dict) or not record.keys() >= RESERVED:
        return "not an audit record (fields seq/time/kind/prev/hash missing)"
    if not isinstance(record["hash"], str) or record_hash(record) != record["hash"]:
        return "contents changed: its hash does not match"
    if record["seq"] != number:
        return (
            f"out of sequence: expected seq {number}, found {record['seq']!r} "
            "(a record was inserted, deleted or moved)"
        )
    if record["prev"] != prev:
        return "does not chain to the record before it (a record was inserted, deleted or moved)"
    if _canonical(record) != line:
        return "not in canonical form (the line was rewritten)"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_head(head_path: Path) -> dict[str, Any] | None:
    try:
        head = json.loads(head_path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return head if isinstance(head, dict) else {}


def _head_position(head: dict[str, Any]) -> tuple[int, str] | None:
    seq, digest = head.get("seq"), head.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(digest, str) or seq < 0:
        return None
    return seq, digest


def closed_segments(path: Path) -> list[Path]:
    """The closed segments in folder `path`, oldest first."""
    try:
        names = [entry.name for entry in os.scandir(path)]
    except FileNotFoundError:
        return []
    numbered = [
        (int(match.group(1)), name) for name in names if (match := SEGMENT_NAME.match(name))
    ]
    return [path / name for _number, name in sorted(numbered)]


def ran_before(path: Path) -> bool:
    """True when the storage folder around audit folder `path` shows the bridge ran there."""
    return any((path.parent / name).exists() for name in RAN_BEFORE)


def never_ran(path: Path) -> bool:
    """True when no bridge has run with the storage folder around audit folder `path`.

    Then there is no log to check, which is not the same as a log found intact: most
    likely the config is not the one the bridge runs with, or this is not its machine.
    """
    return not path.exists() and not ran_before(path)


def upgrade_blocker(path: Path) -> str | None:
    """Why audit folder `path`, with no log in a used storage folder, is not an upgrade.

    None when it is what a bridge before the ``log_created`` record leaves when it
    never recorded anything: an empty audit folder (those bridges made it at every
    start and wrote the log with its first record), and nothing in the storage folder
    that a record would have gone with: no share in the share database (nor a clip
    held for one), no clip deleted or erased in the clip index, no clip index set
    aside, and no sign of a bridge that starts its log with a record (the share
    service's signing key, the clip index's ``sightings`` table). Otherwise the log
    was deleted, and the reason is returned. The databases are only queried.
    """
    try:
        with os.scandir(path) as entries:
            names = sorted(entry.name for entry in entries)
    except FileNotFoundError:
        return "the audit folder itself is missing"
    if names:
        return f"the audit folder holds {', '.join(names[:3])}"
    storage = path.parent
    aside = sorted(storage.glob(f"{CLIP_INDEX}.corrupt-*"))
    if aside:
        return f"{aside[0].name} exists: the history of an earlier clip index is not known"
    if (storage / SIGNING_KEY).exists():
        return f"{SIGNING_KEY} exists: a bridge that starts its log with a record ran here"
    try:
        return _clip_index_blocker(storage / CLIP_INDEX) or _share_db_blocker(storage / SHARE_DB)
    except sqlite3.Error as err:
        return f"the clip index or share database cannot be read ({err})"


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _count(db: sqlite3.Connection, query: str) -> int:
    return int(db.execute(query).fetchone()[0])


def _open_db(path: Path) -> sqlite3.Connection:
    """An existing database with its write-ahead log, only queried.

    Not read-only: that connection would leave ``-wal`` and ``-shm`` files behind.
    """
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)


def _clip_index_blocker(path: Path) -> str | None:
    if not path.exists():
        return None
    db = _open_db(path)
    try:
        tables = _tables(db)
        if not {"clips", "holds", "events"} <= tables:
            return f"{CLIP_INDEX} is not a clip index a bridge wrote"
        if "sightings" in tables:
            return f"{CLIP_INDEX} was opened by a bridge that starts its log with a record"
        gone = _count(db, "SELECT count(*) FROM events WHERE action IN ('deleted', 'erased')")
        if gone:
            return f"{CLIP_INDEX} lists {gone} deleted or erased clip(s)"
        if held := _count(db, "SELECT count(*) FROM holds"):
            return f"{CLIP_INDEX} lists {held} clip(s) held for a share"
    finally:
        db.close()
    return None


def _share_db_blocker(path: Path) -> str | None:
    if not path.exists():
        return None
    db = _open_db(path)
    try:
        if "shares" not in _tables(db):
            return f"{SHARE_DB} is not a share database a bridge wrote"
        if shares := _count(db, "SELECT count(*) FROM shares"):
            return f"{SHARE_DB} holds {shares} share(s)"
    finally:
        db.close()
    return None


def _missing_log(path: Path, why: str) -> str:
    return (
        "the audit log is missing (no records and no head) but the bridge has run in this "
        f"storage folder before ({' or '.join(RAN_BEFORE)} exists) and it is no upgrade from "
        f"a bridge that never recorded anything ({why}): restore the audit folder from a "
        f"backup, or create an empty file {path / NEW_LOG_NAME} to start a new log on purpose "
        "(its first record says so)"
    )


def verify(path: Path) -> VerifyResult:
    """Check the audit log in folder `path` (``<storage>/audit``), every segment.

    Detects changed, inserted, reordered, deleted and truncated records, replaced
    or missing segments, records appended past the head and a missing or altered
    head, naming the first bad record.
    """
    return _verify(path, None)


def read_records(path: Path) -> tuple[VerifyResult, list[dict[str, Any]]]:
    """The log in folder ``path`` checked as :func:`verify` does, and its records.

    One reading of every segment, without opening the log for writing. The records
    are those up to the first bad one (all of them when the log is intact), oldest first.
    """
    records: list[dict[str, Any]] = []
    return _verify(path, records), records


def _verify(  # noqa: PLR0911, PLR0912 - one return per damage
    path: Path, keep: list[dict[str, Any]] | None
) -> VerifyResult:
    """:func:`verify`; the records read are added to ``keep`` when it is given."""
    head = _read_head(path / HEAD_NAME)
    position = _head_position(head) if head else None
    files = [*closed_segments(path), path / LOG_NAME]
    seq, prev = 0, GENESIS
    head_hash = GENESIS if position is not None and position[0] == 0 else None
    recovered: list[int] = []
    for file in files:
        closed = file.name != LOG_NAME
        scan = _scan(file, seq, prev)
        if keep is not None:
            keep.extend(scan.records)
        if scan.bad is not None:
            return scan.bad
        if closed and not scan.records:
            return _bad(seq, seq + 1, "an empty segment (its records were deleted)", file.name)
        for record in scan.records:
            if position is not None and record["seq"] == position[0]:
                head_hash = record["hash"]
            if record["kind"] == "audit_recovered" and isinstance(record.get("record"), int):
                recovered.append(record["record"])
        if scan.records:
            seq, prev = scan.records[-1]["seq"], scan.records[-1]["hash"]
    count = seq
    if head is None:
        if count == 0:
            if not ran_before(path):
                return _good(0)
            why = upgrade_blocker(path)
            if why is not None:
                return _bad(0, 1, _missing_log(path, why), LOG_NAME)
            return VerifyResult(ok=True, count=0, upgrade=True)
        return _bad(count, count, "the head file is missing (deleted?)", HEAD_NAME)
    if position is None:
        return _bad(count, max(count, 1), "the head file is damaged", HEAD_NAME)
    head_seq, digest = position
    if head_seq > count:
        return _bad(
            count,
            count + 1,
            f"missing: the head says the log has {head_seq} record(s) but it has {count} "
            "(records were cut off the end, or the log was emptied or deleted)",
            LOG_NAME,
        )
    if digest != head_hash:
        return _bad(count, max(head_seq, 1), "does not match the hash kept in the head", HEAD_NAME)
    past = count - head_seq
    if past > 1:
        return _bad(
            count,
            head_seq + 2,
            f"{past} records past the head: a crash leaves at most one, so these were "
            "appended without the bridge",
            LOG_NAME,
        )
    return _good(count, past, tuple(recovered))


def verify_log(storage_path: Path) -> VerifyResult:
    """Check the audit log of the bridge whose storage folder is `storage_path`."""
    return verify(audit_dir(storage_path))


def _lines_from_end(path: Path, wanted: int) -> tuple[list[bytes], bool]:
    """Up to `wanted` complete lines from the end of `path`, last first.

    Reads blocks from the end only, not the whole file. Also says whether the file
    ends in a line without its newline (being appended right now, or cut short):
    that line is not among those returned.
    """
    with path.open("rb") as file:
        position = file.seek(0, os.SEEK_END)
        buffer = b""
        while position > 0 and buffer.count(b"\n") <= wanted:
            step = min(TAIL_BLOCK, position)
            position -= step
            file.seek(position)
            buffer = file.read(step) + buffer
    lines = buffer.split(b"\n")
    torn = bool(lines.pop())  # after the last newline: nothing, or an unfinished line
    if position > 0 and lines:
        lines.pop(0)  # may have begun before the part that was read
    return lines[::-1][:wanted], torn


def _parsed(line: bytes) -> dict[str, Any] | None:
    """The JSON object on ``line`` when it has a whole-number ``seq``; None otherwise."""
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("seq"), int) else None


def newest_records(path: Path, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` records of the log in folder `path`, newest first, as written.

    Read from the end of the segments, so it costs the same for a log of a week and
    one of years. A line that is not a complete record (one being appended right now,
    or damage that :func:`verify` reports) is skipped. The live segment is read
    first, then the closed ones from the newest: a segment closed between the two
    is met twice, and only records older than those already found are taken, so
    none is listed twice.
    """
    found: list[dict[str, Any]] = []
    below: int | None = None
    for file in _newest_segments_first(path):
        if len(found) >= limit:
            break
        try:
            lines, _torn = _lines_from_end(file, limit - len(found))
        except FileNotFoundError:
            continue
        for record in filter(None, map(_parsed, lines)):
            if below is None or record["seq"] < below:
                found.append(record)
                below = record["seq"]
    return found[:limit]


#: Records that end a share for good: once one is written, the share has ended.
ENDING_KINDS = frozenset({"revoke", "expiry"})


def share_endings(path: Path, share_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The ``revoke`` or ``expiry`` record of each of `share_ids` that has one in the log.

    Read from the newest record back, each share only as far back as its ``request``
    record (nothing of a share comes before it), so the cost is that of the open
    shares' lifetimes, not of the whole history. Skips what :func:`newest_records`
    skips.
    """
    wanted = set(share_ids)
    found: dict[str, dict[str, Any]] = {}
    below: int | None = None
    for file in _newest_segments_first(path):
        if not wanted:
            break
        try:
            data = file.read_bytes()  # a segment is at most a few MiB
        except FileNotFoundError:
            continue
        for record in filter(None, map(_parsed, reversed(data.split(b"\n")))):
            if below is not None and record["seq"] >= below:
                continue  # met in the live segment already (see newest_records)
            below = record["seq"]
            share_id = record.get("share_id")
            if not isinstance(share_id, str) or share_id not in wanted:
                continue
            if record.get("kind") in ENDING_KINDS:
                found[share_id] = record
                wanted.discard(share_id)
            elif record.get("kind") == "request":
                wanted.discard(share_id)
    return found


def _newest_segments_first(path: Path) -> Iterator[Path]:
    yield path / LOG_NAME
    # Listed only once the live segment was read (see newest_records).
    yield from reversed(closed_segments(path))


def _last_record(path: Path) -> dict[str, Any] | None:
    """The last record of a closed segment, read from its end (not the whole file)."""
    lines, torn = _lines_from_end(path, 1)
    if torn or not lines:
        return None  # empty, or the last line has no newline
    record = _parsed(lines[0])
    if record is None or not record.keys() >= RESERVED or record_hash(record) != record["hash"]:
        return None
    return record


class AuditLog:
    """The append-only audit log in folder `path`, safe to use from several threads.

    Opening it checks the live segment against the end of the segment before it
    and against the head: a log that does not verify is not appended to (that
    would hide the damage behind a new head), and `AuditError` is raised. The
    repairs made are each recorded: a last line cut short by a crash mid-write
    (never completed) is cut off (``repair``), a last record complete but for
    its newline gets it back (``repair``), and one record past the head (a crash
    before the head was written) is accepted (``audit_recovered``).

    Args:
        path: The audit folder (``<storage>/audit``).
        segment_bytes: Size at which the live segment is closed.

    Raises:
        AuditError: The log is damaged or cannot be written.
    """

    def __init__(self, path: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self._dir = path
        self._log_path = path / LOG_NAME
        self._head_path = path / HEAD_NAME
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        # Set when a failed append could not be taken back: appending after the
        # remains would bury them mid-log, where they read as tampering.
        self._broken: str | None = None
        # A deleted audit folder is not the empty one an older bridge leaves.
        self._existed = path.is_dir()
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise AuditError(f"cannot create the audit folder {path}: {err}") from err
        try:
            self._open()
        except OSError as err:
            raise AuditError(f"cannot read the audit log in {path}: {err}") from err

    def _refuse(self, problem: str) -> AuditError:
        return AuditError(
            f"the audit log in {self._dir} does not verify ({problem}); keep a copy for "
            "evidence; docs/sharing.md says how to start a new log"
        )

    def _open(self) -> None:
        closed = closed_segments(self._dir)
        self._segments = len(closed)
        base_seq, base_prev = 0, GENESIS
        if closed:
            last = _last_record(closed[-1])
            if last is None:
                raise self._refuse(f"{closed[-1].name}: its last record is unreadable")
            base_seq, base_prev = last["seq"], last["hash"]
        scan = _scan(self._log_path, base_seq, base_prev)
        # A last line cut short by a crash mid-write was never acknowledged: it is
        # cut off, but only once the complete records have passed every check (the
        # evidence of anything else stays as it was found).
        torn = (
            scan.bad is not None
            and scan.torn_tail
            and scan.bad.bad_record == base_seq + len(scan.records) + 1
        )
        if scan.bad is not None and not torn:
            raise self._refuse(scan.bad.message)
        # A last line without its newline that passed every check is a whole record
        # whose newline a crash kept from the disk: it stays, and gets its newline
        # before anything is appended (else the next record would share its line).
        unterminated = scan.bad is None and scan.torn_tail
        records = scan.records
        ends: list[tuple[int, str]] = [(base_seq, base_prev)]
        ends += [(record["seq"], record["hash"]) for record in records[-2:]]
        head = _read_head(self._head_path)
        create = self._check_missing_head(ends[-1][0]) if head is None else None
        recovered = self._check_head(head, ends, records) if head is not None else None
        if torn:
            self._cut_torn_tail()
        if unterminated:
            self._end_last_line(records[-1]["seq"])
        self._seq, self._prev = ends[-1]
        self._size = self._log_path.stat().st_size if self._log_path.exists() else 0
        if recovered is not None:
            self._recover(recovered)
        if create is not None:
            self._create(create)
        if torn:
            self.append("repair", problem="an incomplete last line (a write cut short) was removed")
        if unterminated:
            self.append(
                "repair",
                record=records[-1]["seq"],
                problem="the last record's newline was missing (a write cut short): added",
            )

    def _check_missing_head(self, last_seq: int) -> str:
        """No head: fine only for a new log; returns how it begins (see `_create`)."""
        if last_seq:
            raise self._refuse(f"record {last_seq}: the head file is missing (deleted?)")
        if (self._dir / NEW_LOG_NAME).exists():
            return "restarted"
        if not ran_before(self._dir):
            return "created"
        why = upgrade_blocker(self._dir) if self._existed else "the audit folder was missing"
        if why is not None:
            raise self._refuse(_missing_log(self._dir, why))
        return "upgraded"

    def _check_head(
        self, head: dict[str, Any], ends: list[tuple[int, str]], records: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Hold the head against the last records; returns the one record past it, if any."""
        position = _head_position(head)
        if position is None:
            raise self._refuse("the head file is damaged")
        head_seq, digest = position
        last_seq = ends[-1][0]
        if head_seq > last_seq:
            raise self._refuse(
                f"the head says the log has {head_seq} record(s) but it has {last_seq} "
                "(records were cut off the end, or the log was emptied or deleted)"
            )
        if last_seq - head_seq > 1:
            raise self._refuse(
                f"{last_seq - head_seq} records past the head: a crash leaves at most one"
            )
        if dict(ends).get(head_seq) != digest:
            raise self._refuse(f"record {head_seq}: does not match the hash kept in the head")
        return records[-1] if last_seq == head_seq + 1 else None

    def _recover(self, record: dict[str, Any]) -> None:
        """Accept the one record past the head (the crash window), saying so."""
        _LOGGER.warning(
            "Audit log: record %d (%s) was written but the head not moved to it (a crash "
            "between the two): accepted and recorded as audit_recovered",
            record["seq"],
            record["kind"],
        )
        self._write_head(record["seq"], record["hash"])
        self.append(
            "audit_recovered",
            record=record["seq"],
            record_kind=record["kind"],
            problem="one record past the head at start (the crash window): accepted",
        )

    def _create(self, how: str) -> None:
        """Write the first record of a new log, so that a log that ran is never empty.

        ``how``: ``created`` (a first start), ``restarted`` (``NEW_LOG``) or
        ``upgraded`` (a storage folder of an older bridge that never recorded anything).
        """
        if how == "restarted":
            _LOGGER.warning(
                "Audit log: starting a new log on purpose (%s exists); earlier history is "
                "not in it",
                NEW_LOG_NAME,
            )
            self.append(
                "log_created",
                restarted=True,
                problem="the owner started a new log (NEW_LOG): earlier records are not in it",
            )
            (self._dir / NEW_LOG_NAME).unlink(missing_ok=True)
        elif how == "upgraded":
            _LOGGER.info(
                "Audit log: starting the log of a storage folder from an older bridge that "
                "never recorded anything (no share, no deleted or erased clip)"
            )
            self.append(
                "log_created",
                restarted=False,
                upgraded=True,
                note="upgrade from a bridge that wrote its log only with a first record; "
                "this storage folder never needed one, so no record is missing",
            )
        else:
            self.append("log_created", restarted=False)

    @property
    def path(self) -> Path:
        """The folder holding the log and its head."""
        return self._dir

    @property
    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the last record."""
        with self._lock:
            return self._seq, self._prev

    def append(self, kind: str, /, **fields: Any) -> dict[str, Any]:
        """Append one record, durably (fsync) before returning it.

        `kind` is positional-only, so any field name (``self``, ``kind``...) is a
        field, refused with `ValueError` if it is one of the log's own.

        Args:
            kind: What happened (``request``, ``decision``, ``download``, ...).
            **fields: JSON details (RFC 8259: finite numbers, valid text); not
                ``seq/time/kind/prev/hash``.

        Raises:
            AuditError: The record could not be written.
            ValueError: A field name is reserved, or a value is not JSON.
        """
        problem = field_problem(fields)
        if problem is not None:
            raise ValueError(f"audit record {kind!r}: {problem}")
        with self._lock:
            record: dict[str, Any] = {
                **fields,
                "seq": self._seq + 1,
                "time": iso(utcnow()),
                "kind": kind,
                "prev": self._prev,
            }
            record["hash"] = record_hash(record)
            line = _canonical(record) + b"\n"
            if self._broken is not None:
                raise AuditError(
                    f"cannot write the audit log: an earlier failed write could not be undone "
                    f"({self._broken}); restart the bridge to repair it"
                )
            if self._size >= self._segment_bytes:
                self._rotate()
            try:
                self._write_record(line, record["seq"], record["hash"])
            except OSError as err:
                raise AuditError(f"cannot write the audit log: {err}") from err
            self._seq = record["seq"]
            self._prev = record["hash"]
            self._size += len(line)
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every record of every segment (for tests and diagnostics; reads them all)."""
        with self._lock:
            found: list[dict[str, Any]] = []
            seq, prev = 0, GENESIS
            for file in [*closed_segments(self._dir), self._log_path]:
                scan = _scan(file, seq, prev)
                found.extend(scan.records)
                if scan.records:
                    seq, prev = scan.records[-1]["seq"], scan.records[-1]["hash"]
            return found

    def _rotate(self) -> None:
        """Close the live segment: the next record starts a new one (the caller holds the lock).

        A crash after the rename leaves no live segment and the head on the last
        record of the closed one: the next start continues from there.
        """
        target = self._dir / segment_name(self._segments + 1)
        try:
            if target.exists():
                raise FileExistsError(errno.EEXIST, "a segment of that name exists", str(target))
            self._log_path.rename(target)
            fsync_dir(self._dir)
        except OSError as err:
            # Keep appending to the live segment: a large file beats a lost record.
            _LOGGER.warning("Audit log: cannot close the segment: %s", err)
            return
        self._segments += 1
        self._size = 0
        _LOGGER.info("Audit log: segment %s closed at record %d", target.name, self._seq)

    def _write_record(self, line: bytes, seq: int, digest: str) -> None:
        """Append `line` and move the head to it, all or nothing.

        A full disk can cut the write short or fail the head after the line is
        on disk. Either way the log is cut back to its size before the append
        (so the next record neither lands after half a line nor reuses a
        sequence number) and the error is raised: the step it records must not
        happen.
        """
        fd = os.open(self._log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, line)
                os.fsync(fd)
                self._replace_head(seq, digest)
            except OSError:
                self._undo(fd, size)
                raise
        finally:
            os.close(fd)
        try:
            fsync_dir(self._dir)
        except OSError as err:
            # The record and the head are both written; if the rename of the head
            # is lost, the head is one record behind: the crash window, accepted
            # (and recorded) at the next start.
            _LOGGER.warning("Audit log: cannot sync the folder after an append: %s", err)

    def _undo(self, fd: int, size: int) -> None:
        """Cut the log back to `size` bytes after a failed append."""
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError as err:
            self._broken = str(err)
            _LOGGER.error("Audit log: cannot undo a failed append: %s", err)  # noqa: TRY400

    def _write_head(self, seq: int, digest: str) -> None:
        self._replace_head(seq, digest)
        fsync_dir(self._dir)

    def _replace_head(self, seq: int, digest: str) -> None:
        tmp = self._head_path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, _canonical({"seq": seq, "hash": digest}))
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(self._head_path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise

    def _end_last_line(self, seq: int) -> None:
        """Add the newline a crash kept from the end of record `seq`, durably."""
        _LOGGER.warning(
            "Audit log: record %d is complete but its newline is missing (a write cut "
            "short): newline added",
            seq,
        )
        fd = os.open(self._log_path, os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _cut_torn_tail(self) -> None:
        data = self._log_path.read_bytes()
        keep = data.rfind(b"\n") + 1
        _LOGGER.warning("Audit log: removing an incomplete last line (%d bytes)", len(data) - keep)
        with self._log_path.open("r+b") as file:
            file.truncate(keep)
            file.flush()
            os.fsync(file.fileno())
