"""SQLite databases in WAL mode that still open when the disk is full.

SQLite keeps a WAL database's index in a shared-memory file next to it
(``<name>-shm``), made anew at the first open after a clean stop. On a full disk
it cannot be given room, and the open fails with "disk I/O error" although the
database itself is fine. The database is then opened with that index in the
process's own memory (SQLite's exclusive locking mode): the bridge has it, for
itself alone until it restarts, and a write that does not fit fails like any
other write on a full disk.
"""

from __future__ import annotations

import logging
from pathlib import Path
import sqlite3

_LOGGER = logging.getLogger(__name__)

#: SQLite's result codes for a disk that is full or failing: the database file is fine.
DISK_FAULTS = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})


def result_code(err: sqlite3.Error) -> int | None:
    """SQLite's primary result code of an error; None for the sqlite3 module's own errors."""
    code: int | None = getattr(err, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def disk_error_text(err: sqlite3.Error) -> str:
    """The error's text; SQLite's "disk I/O error" does not say a full disk is one cause."""
    if result_code(err) == sqlite3.SQLITE_IOERR:
        return f"{err} (the disk is full or failing)"
    return str(err)


def open_wal(path: Path, schema: str) -> sqlite3.Connection:
    """Open (or create) a database in WAL mode with synchronous writes, and its schema.

    The connection may be used from any thread (callers guard it with a lock) and
    commits each statement unless a transaction is begun.

    Raises:
        sqlite3.Error: It cannot be opened even with its WAL index in memory.
    """
    try:
        return _connect(path, schema, alone=False)
    except sqlite3.Error as err:
        if result_code(err) not in DISK_FAULTS:
            raise
        _LOGGER.warning(
            "%s cannot be opened as usual (%s): the disk is full or failing. It is kept as it"
            " is and opened with its WAL index in memory, for the bridge alone until the next"
            " start",
            path,
            err,
        )
    return _connect(path, schema, alone=True)


def _connect(path: Path, schema: str, *, alone: bool) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        if alone:
            # Keeps the WAL index in memory only when set before the first read.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except sqlite3.Error:
        db.close()
        raise
    return db
