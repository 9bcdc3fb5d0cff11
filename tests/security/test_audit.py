"""Tampering with the audit log: every named case is caught by `audit verify` and at start.

The cases: byte flips, truncation, a deleted middle record, reordered records, a
forged tail of one record (the crash window: accepted, but reported and recorded)
and of two (an error), a deleted log, a deleted head, both deleted on a storage
folder that was used (also one an upgrade from an older bridge would leave, but with
shares or deleted clips), and a segment replaced or deleted across rotation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
import random
import sqlite3
import subprocess
import sys
from typing import Any

import pytest

from doorstep_bridge.exceptions import AuditError
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.sharing.audit import (
    GENESIS,
    HEAD_NAME,
    LOG_NAME,
    NEW_LOG_NAME,
    AuditLog,
    closed_segments,
    record_hash,
    verify,
)
from tests.security import soak

#: Small segments, so that a few dozen records span several files.
SEGMENT_BYTES = 2_000


def _storage(tmp_path: Path) -> Path:
    storage = tmp_path / "data"
    storage.mkdir()
    return storage


def _log(storage: Path, count: int = 8, *, segment_bytes: int = 1 << 20) -> AuditLog:
    """A log of `count` records in a storage folder a bridge has run in."""
    log = AuditLog(storage / "audit", segment_bytes=segment_bytes)
    # What a bridge leaves after its first start (created after the log, every start).
    (storage / "clips.db").write_bytes(b"")
    for index in range(count - 1):  # record 1 is log_created
        log.append("download", share_id="s_AAAAAAAAAA", n=index, client="192.0.2.7")
    return log


def _live(log: AuditLog) -> Path:
    return log.path / LOG_NAME


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _canonical_line(record: dict[str, Any]) -> bytes:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode() + b"\n"


def _forge(after: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A record that chains correctly after `after`, as someone who read the log would write."""
    record = {
        **fields,
        "seq": after["seq"] + 1,
        "time": after["time"],
        "kind": "download",
        "prev": after["hash"],
    }
    record["hash"] = record_hash(record)
    return record


def _refused(log_dir: Path, match: str) -> None:
    with pytest.raises(AuditError, match=match):
        AuditLog(log_dir)


def test_random_byte_flips_are_all_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path), 30, segment_bytes=SEGMENT_BYTES)
    files = [*closed_segments(log.path), _live(log)]
    assert len(files) >= 3  # the flips land in closed segments and the live one
    rng = random.Random(13)
    flips = soak.scaled(300, 2_000)
    passed: list[str] = []
    for _ in range(flips):
        file = rng.choice(files)
        original = file.read_bytes()
        data = bytearray(original)
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)
        file.write_bytes(bytes(data))
        result = verify(log.path)
        file.write_bytes(original)
        if result.ok:
            passed.append(f"a flip at byte {position} of {file.name} passed")
    soak.record("audit byte flips", flips=flips, caught=flips - len(passed))
    assert not passed, passed[:5]
    assert verify(log.path).ok


def test_truncation_is_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path))
    _live(log).write_bytes(b"".join(_lines(_live(log))[:5]))
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 6
    assert "the head says the log has 8" in (result.problem or "")
    _refused(log.path, "cut off the end")
    soak.record("audit tampering", case="truncation", caught=True)


def test_a_deleted_middle_record_is_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path))
    lines = _lines(_live(log))
    del lines[3]
    _live(log).write_bytes(b"".join(lines))
    result = verify(log.path)
    assert (result.ok, result.bad_record) == (False, 4)
    _refused(log.path, "record 4")
    soak.record("audit tampering", case="a deleted middle record", caught=True)


def test_reordered_records_are_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path))
    lines = _lines(_live(log))
    lines[2], lines[5] = lines[5], lines[2]
    _live(log).write_bytes(b"".join(lines))
    result = verify(log.path)
    assert (result.ok, result.bad_record) == (False, 3)
    assert "out of sequence" in (result.problem or "")
    _refused(log.path, "record 3")
    soak.record("audit tampering", case="reordered records", caught=True)


def test_one_forged_record_past_the_head_is_reported_and_recorded_never_blessed(
    tmp_path: Path,
) -> None:
    log = _log(_storage(tmp_path))
    last = log.records()[-1]
    with _live(log).open("ab") as file:
        file.write(_canonical_line(_forge(last, client="203.0.113.9")))
    result = verify(log.path)
    # A crash between a record and its head looks the same, so it cannot be an error,
    # but it is named apart from an intact log.
    assert result.ok
    assert result.past_head == 1
    assert "1 record past the head (crash window)" in result.message
    reopened = AuditLog(log.path)
    flagged = reopened.records()[-1]
    assert flagged["kind"] == "audit_recovered"
    assert flagged["record"] == last["seq"] + 1
    after = verify(log.path)
    assert (after.ok, after.past_head, after.recovered) == (True, 0, (last["seq"] + 1,))
    assert "found past the head at a start" in after.message
    soak.record("audit tampering", case="one forged record past the head (reported)", caught=True)


def test_two_forged_records_past_the_head_are_an_error(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path))
    first = _forge(log.records()[-1], client="203.0.113.9")
    second = _forge(first, client="203.0.113.9")
    with _live(log).open("ab") as file:
        file.write(_canonical_line(first) + _canonical_line(second))
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 10
    assert "2 records past the head" in (result.problem or "")
    _refused(log.path, "2 records past the head")
    soak.record("audit tampering", case="two forged records past the head", caught=True)


def test_a_deleted_log_is_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path))
    _live(log).unlink()
    result = verify(log.path)
    assert not result.ok
    assert "the head says the log has 8 record(s) but it has 0" in (result.problem or "")
    _refused(log.path, "emptied or deleted")
    _live(log).write_bytes(b"")  # emptied rather than deleted: the same
    assert not verify(log.path).ok
    soak.record("audit tampering", case="a deleted or emptied log", caught=True)


def test_a_deleted_head_is_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path))
    (log.path / HEAD_NAME).unlink()
    result = verify(log.path)
    assert not result.ok
    assert "head file is missing" in (result.problem or "")
    _refused(log.path, "head file is missing")
    soak.record("audit tampering", case="a deleted head", caught=True)


def test_both_deleted_on_a_used_storage_folder_is_caught(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    log = _log(storage)
    _live(log).unlink()
    (log.path / HEAD_NAME).unlink()
    result = verify(log.path)
    assert not result.ok
    assert "the audit log is missing" in (result.problem or "")
    _refused(log.path, "the audit log is missing")
    # The owner can start a new log on purpose; its first record says so.
    (log.path / NEW_LOG_NAME).touch()
    restarted = AuditLog(log.path)
    [first] = restarted.records()
    assert (first["kind"], first["restarted"], first["prev"]) == ("log_created", True, GENESIS)
    assert not (log.path / NEW_LOG_NAME).exists()
    assert verify(log.path).ok
    soak.record("audit tampering", case="log and head deleted", caught=True)


def test_a_first_start_creates_a_log_that_is_never_empty(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    assert verify(storage / "audit").ok  # nothing ran here yet
    log = AuditLog(storage / "audit")
    assert [r["kind"] for r in log.records()] == ["log_created"]
    (storage / "clips.db").write_bytes(b"")
    assert verify(log.path).ok


def test_the_chain_runs_across_segments(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path), 40, segment_bytes=SEGMENT_BYTES)
    segments = closed_segments(log.path)
    assert len(segments) >= 3
    assert [p.name for p in segments][:2] == ["audit-000001.jsonl", "audit-000002.jsonl"]
    result = verify(log.path)
    assert (result.ok, result.count) == (True, 40)
    # Each segment continues from the one before it.
    first_of_second = json.loads(_lines(segments[1])[0])
    last_of_first = json.loads(_lines(segments[0])[-1])
    assert first_of_second["prev"] == last_of_first["hash"]
    reopened = AuditLog(log.path, segment_bytes=SEGMENT_BYTES)
    assert reopened.append("expiry")["seq"] == 41
    assert verify(log.path).ok


def test_a_replaced_segment_is_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path), 40, segment_bytes=SEGMENT_BYTES)
    segments = closed_segments(log.path)
    # A self-consistent forgery of segment 2: same sequence numbers, chained from the
    # end of segment 1, every hash recomputed; only the next segment can tell.
    previous = json.loads(_lines(segments[0])[-1])
    forged: list[bytes] = []
    for line in _lines(segments[1]):
        record = json.loads(line)
        record.update(client="203.0.113.66", prev=previous["hash"])
        record["hash"] = record_hash(record)
        forged.append(_canonical_line(record))
        previous = record
    segments[1].write_bytes(b"".join(forged))
    result = verify(log.path)
    assert not result.ok
    assert result.file == segments[2].name
    assert "does not chain" in (result.problem or "")
    assert result.bad_record == json.loads(_lines(segments[2])[0])["seq"]
    soak.record("audit tampering", case="a replaced segment", caught=True)


def test_a_deleted_segment_is_caught(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path), 40, segment_bytes=SEGMENT_BYTES)
    segments = closed_segments(log.path)
    segments[1].unlink()
    assert not verify(log.path).ok
    segments[-1].unlink()  # the newest closed one: the start-up check sees that too
    assert not verify(log.path).ok
    _refused(log.path, "does not chain|out of sequence")
    soak.record("audit tampering", case="a deleted segment", caught=True)


def test_a_crash_right_after_closing_a_segment_starts_cleanly(tmp_path: Path) -> None:
    log = _log(_storage(tmp_path), 10, segment_bytes=SEGMENT_BYTES)
    count = log.head[0]
    # As if the bridge stopped after renaming the live segment, before the next record.
    _live(log).rename(log.path / f"audit-{len(closed_segments(log.path)) + 1:06d}.jsonl")
    assert verify(log.path).ok
    assert AuditLog(log.path).append("expiry")["seq"] == count + 1
    assert verify(log.path).ok


def test_cli_names_the_crash_window_and_fails_past_it(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        f"storage: {{path: {storage}}}\ncameras: {{front_door: {{source: demo://}}}}\n",
        encoding="utf-8",
    )
    log = _log(storage, 4)
    command = [sys.executable, "-m", "doorstep_bridge", "audit", "verify", "--config", str(config)]
    first = _forge(log.records()[-1])
    with _live(log).open("ab") as file:
        file.write(_canonical_line(first))
    one = subprocess.run(command, capture_output=True, text=True, check=False)
    assert one.returncode == 0, one.stdout + one.stderr
    assert "1 record past the head (crash window)" in one.stdout
    with _live(log).open("ab") as file:
        file.write(_canonical_line(_forge(first)))
    two = subprocess.run(command, capture_output=True, text=True, check=False)
    assert two.returncode != 0
    assert "record 6" in two.stdout
    assert "2 records past the head" in two.stdout
    soak.record("audit tampering", case="audit verify (CLI) past the crash window", caught=True)


# The storage folder a bridge of 3b5d79d (the last before the log began with log_created)
# leaves when it never recorded anything: an empty audit folder (made at every start; the
# log and head came with the first record), and its clip index and share database with
# the schemas of that commit (recording/store.py and sharing/store.py), no rows.
_OLD_CLIP_INDEX = """
CREATE TABLE clips (id TEXT PRIMARY KEY, camera TEXT NOT NULL, start REAL NOT NULL,
    end REAL NOT NULL, reason TEXT NOT NULL, path TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0, snapshot TEXT, thumbnail TEXT, status TEXT NOT NULL);
CREATE TABLE holds (share_id TEXT NOT NULL, clip_id TEXT NOT NULL,
    PRIMARY KEY (share_id, clip_id));
CREATE TABLE events (time REAL NOT NULL, clip_id TEXT NOT NULL, camera TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
"""
_OLD_SHARE_DB = """
CREATE TABLE shares (id TEXT PRIMARY KEY, state TEXT NOT NULL, token_hash TEXT UNIQUE,
    created TEXT NOT NULL, data TEXT NOT NULL);
"""


def _old_storage(tmp_path: Path, clips: str = "", shares: str = "") -> Path:
    """A storage folder as 3b5d79d left it, with `clips` and `shares` run in its databases."""
    storage = _storage(tmp_path)
    (storage / "audit").mkdir(mode=0o700)
    (storage / "shares").mkdir(mode=0o700)
    for path, script in (
        (storage / "clips.db", _OLD_CLIP_INDEX + clips),
        (storage / "shares" / "shares.sqlite3", _OLD_SHARE_DB + shares),
    ):
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(script)
        db.close()
    return storage


def test_an_upgrade_from_a_bridge_that_never_recorded_anything_starts_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = _old_storage(tmp_path)
    before = verify(storage / "audit")
    assert before.ok
    assert "older bridge that never recorded anything" in before.message
    with caplog.at_level(logging.INFO, "doorstep_bridge.sharing.audit"):
        log = AuditLog(storage / "audit")
    [first] = log.records()
    assert (first["kind"], first["restarted"], first["upgraded"]) == ("log_created", False, True)
    assert "no record is missing" in first["note"]
    assert "older bridge that never recorded anything" in caplog.text
    after = verify(storage / "audit")
    assert (after.ok, after.count, after.message) == (True, 1, "audit log intact: 1 record(s)")
    # Nothing but the log was written: the databases are as the old bridge left them.
    assert sorted(p.name for p in storage.iterdir()) == ["audit", "clips.db", "shares"]
    assert [p.name for p in (storage / "shares").iterdir()] == ["shares.sqlite3"]


@pytest.mark.parametrize(
    ("clips", "shares", "why"),
    [
        ("", "INSERT INTO shares VALUES ('s_A', 'ready', 'h', 't', '{}');", "holds 1 share"),
        ("INSERT INTO events VALUES (1, 'c_1', 'cam', 'deleted', 'retention');", "", "deleted"),
        ("INSERT INTO events VALUES (1, 'c_1', 'cam', 'erased', 'forget');", "", "erased"),
        ("INSERT INTO holds VALUES ('s_A', 'c_1');", "", "held for a share"),
        ("CREATE TABLE sightings (camera TEXT, start REAL, end REAL);", "", "starts its log"),
    ],
)
def test_a_deleted_log_is_no_upgrade_when_something_was_recorded(
    tmp_path: Path, clips: str, shares: str, why: str
) -> None:
    storage = _old_storage(tmp_path, clips, shares)
    result = verify(storage / "audit")
    assert not result.ok
    assert "the audit log is missing" in (result.problem or "")
    assert why in (result.problem or "")
    _refused(storage / "audit", why)
    assert list((storage / "audit").iterdir()) == []


def test_a_deleted_audit_folder_is_no_upgrade(tmp_path: Path) -> None:
    storage = _old_storage(tmp_path)
    (storage / "audit").rmdir()
    _refused(storage / "audit", "the audit folder was missing")


def test_a_deleted_log_of_a_bridge_of_today_is_no_upgrade(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    log = AuditLog(storage / "audit")
    store = ClipStore(storage)  # the clip index as this bridge creates it
    store.open()
    store.close()
    _live(log).unlink()
    (log.path / HEAD_NAME).unlink()
    assert not verify(log.path).ok
    _refused(log.path, "a bridge that starts its log with a record")
