"""Tamper-evident audit log: append-only JSON lines chained by SHA-256.

Every record is one line of canonical JSON (sorted keys, no spaces) holding
``seq`` (1, 2, ...), ``time``, ``kind``, the record's own fields, ``prev`` (the
``hash`` of the record before it, 64 zeros for the first) and ``hash``: the
SHA-256 of the canonical JSON of the record without ``hash``. Changing a
record breaks its hash; inserting, deleting or reordering records breaks
``seq`` and ``prev``; cutting records off the end is caught by the *head*
(``head.json`` beside the log: the sequence number and hash of the last
record), which is rewritten atomically after every append.

The chain proves that the log was not edited after the fact by anyone who
cannot also rewrite every later record and the head. It is not a signature:
someone with write access to the whole folder can forge a new consistent
history. docs/privacy.md explains what that means for the owner.

Layout: ``<storage.path>/audit/audit.jsonl`` and ``<storage.path>/audit/head.json``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import errno
import hashlib
import json
import logging
import os
from pathlib import Path
import threading
from typing import Any

from doorstep_bridge.exceptions import AuditError
from doorstep_bridge.models import iso, utcnow
from doorstep_bridge.recording.writer import fsync_dir

_LOGGER = logging.getLogger(__name__)

LOG_NAME = "audit.jsonl"
HEAD_NAME = "head.json"
GENESIS = "0" * 64
#: Keys every record has; fields passed to `append` may not use them.
RESERVED = frozenset({"seq", "time", "kind", "prev", "hash"})


def audit_dir(storage_path: Path) -> Path:
    """The folder holding the audit log under the bridge's storage folder."""
    return storage_path / "audit"


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of `record` without its ``hash`` key."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


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
        count: Number of readable records in the log.
        bad_record: Number (1-based line / ``seq``) of the first bad record, if any.
        problem: What is wrong with it.
    """

    ok: bool
    count: int
    bad_record: int | None = None
    problem: str | None = None

    @property
    def message(self) -> str:
        """One line for people: intact, or the first bad record and why."""
        if self.ok:
            return f"audit log intact: {self.count} record(s)"
        return f"audit log NOT intact: record {self.bad_record}: {self.problem}"

    def __str__(self) -> str:
        return self.message


def _good(count: int) -> VerifyResult:
    return VerifyResult(ok=True, count=count)


def _bad(count: int, bad_record: int, problem: str) -> VerifyResult:
    return VerifyResult(ok=False, count=count, bad_record=bad_record, problem=problem)


@dataclass(frozen=True, slots=True)
class _Scan:
    """What reading the log found: records up to the first problem."""

    records: list[dict[str, Any]]
    bad: VerifyResult | None
    torn_tail: bool


def _scan(log_path: Path) -> _Scan:
    try:
        data = log_path.read_bytes()
    except FileNotFoundError:
        data = b""
    lines = data.split(b"\n")
    torn_tail = bool(lines[-1])  # the last line has no newline: a write was cut short
    if not lines[-1]:
        lines.pop()
    records: list[dict[str, Any]] = []
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        problem = _check_line(line, number, prev, is_last_line=number == len(lines), torn=torn_tail)
        if problem is not None:
            return _Scan(records, _bad(len(records), number, problem), torn_tail)
        record: dict[str, Any] = json.loads(line)
        records.append(record)
        prev = record["hash"]
    return _Scan(records, None, torn_tail)


def _check_line(  # noqa: PLR0911 - one return per kind of damage reads best
    line: bytes, number: int, prev: str, *, is_last_line: bool, torn: bool
) -> str | None:
    try:
        record = json.loads(line)
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


def _read_head(head_path: Path) -> dict[str, Any] | None:
    try:
        head = json.loads(head_path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return head if isinstance(head, dict) else {}


def verify(path: Path) -> VerifyResult:  # noqa: PLR0911 - one return per kind of damage
    """Check the audit log in folder `path` (``<storage>/audit``).

    Detects changed, inserted, reordered, deleted and truncated records and a
    missing or altered head, naming the first bad record.
    """
    scan = _scan(path / LOG_NAME)
    if scan.bad is not None:
        return scan.bad
    count = len(scan.records)
    head = _read_head(path / HEAD_NAME)
    if head is None:
        if count == 0:
            return _good(0)
        return _bad(count, count, "the head file is missing (deleted?)")
    seq, digest = head.get("seq"), head.get("hash")
    if not isinstance(seq, int) or not isinstance(digest, str) or seq < 0:
        return _bad(count, max(count, 1), "the head file is damaged")
    if seq > count:
        return _bad(
            count,
            count + 1,
            f"missing: the head says the log has {seq} record(s) but it has {count} "
            "(records were cut off the end)",
        )
    expected = scan.records[seq - 1]["hash"] if seq else GENESIS
    if digest != expected:
        return _bad(count, max(seq, 1), "does not match the hash kept in the head")
    # One record past the head is the window between appending and updating the
    # head (a crash); more than that was not written by the bridge.
    if count > seq + 1:
        return _bad(count, seq + 2, "appended after the head without the bridge (not in the head)")
    return _good(count)


def verify_log(storage_path: Path) -> VerifyResult:
    """Check the audit log of the bridge whose storage folder is `storage_path`."""
    return verify(audit_dir(storage_path))


class AuditLog:
    """The append-only audit log in folder `path`, safe to use from several threads.

    Opening it checks the chain: a log that does not verify is not appended to
    (that would hide the damage behind a new head), and `AuditError` is raised.
    A last line cut short by a crash mid-write is the one exception: it never
    completed, so it is cut off and a ``repair`` record says so.

    Raises:
        AuditError: The log is damaged or cannot be written.
    """

    def __init__(self, path: Path) -> None:
        self._dir = path
        self._log_path = path / LOG_NAME
        self._head_path = path / HEAD_NAME
        self._lock = threading.Lock()
        # Set when a failed append could not be taken back: appending after the
        # remains would bury them mid-log, where they read as tampering.
        self._broken: str | None = None
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise AuditError(f"cannot create the audit folder {path}: {err}") from err
        scan = _scan(self._log_path)
        repaired: str | None = None
        if scan.bad is not None and scan.torn_tail and scan.bad.bad_record == len(scan.records) + 1:
            self._cut_torn_tail()
            repaired = "an incomplete last line (a write cut short) was removed"
            scan = _scan(self._log_path)
        if scan.bad is None and scan.records:
            head = _read_head(self._head_path)
            last = scan.records[-1]
            if head is None or head.get("seq") == last["seq"] - 1:
                # A crash between appending and writing the head (or a first
                # start after upgrading): the chain itself verified.
                self._write_head(last["seq"], last["hash"])
        result = verify(path) if scan.bad is None else scan.bad
        if not result.ok:
            raise AuditError(
                f"the audit log in {path} does not verify ({result.message}); keep a copy for "
                "evidence and move the folder aside to start a new log"
            )
        self._seq = len(scan.records)
        self._prev = scan.records[-1]["hash"] if scan.records else GENESIS
        if repaired is not None:
            self.append("repair", problem=repaired)

    @property
    def path(self) -> Path:
        """The folder holding the log and its head."""
        return self._dir

    @property
    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the last record."""
        with self._lock:
            return self._seq, self._prev

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one record, durably (fsync) before returning it.

        Args:
            kind: What happened (``request``, ``decision``, ``download``, ...).
            **fields: JSON-serialisable details; not ``seq/time/kind/prev/hash``.

        Raises:
            AuditError: The record could not be written.
            ValueError: A field name is reserved.
        """
        clash = RESERVED & fields.keys()
        if clash:
            raise ValueError(f"reserved audit field(s): {sorted(clash)}")
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
            try:
                self._write_record(line, record["seq"], record["hash"])
            except OSError as err:
                raise AuditError(f"cannot write the audit log: {err}") from err
            self._seq = record["seq"]
            self._prev = record["hash"]
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every record (for tests and diagnostics; reads the whole file)."""
        with self._lock:
            return _scan(self._log_path).records

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
            # is lost, the head is one record behind, which `verify` accepts
            # (the window between an append and its head).
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

    def _cut_torn_tail(self) -> None:
        data = self._log_path.read_bytes()
        keep = data.rfind(b"\n") + 1
        _LOGGER.warning("Audit log: removing an incomplete last line (%d bytes)", len(data) - keep)
        with self._log_path.open("r+b") as file:
            file.truncate(keep)
            file.flush()
            os.fsync(file.fileno())
