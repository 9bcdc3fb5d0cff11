"""The audit log: append, verify, and every kind of tampering caught and named."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest

from doorstep_bridge.exceptions import AuditError
from doorstep_bridge.sharing.audit import (
    AuditLog,
    audit_dir,
    closed_segments,
    share_endings,
    verify,
    verify_log,
)


def _log_with(tmp_path: Path, count: int = 5) -> AuditLog:
    """A log of `count` records: ``log_created`` (written at creation) and downloads."""
    log = AuditLog(tmp_path / "audit")
    for index in range(count - 1):
        log.append("download", share_id="s_TEST", n=index, client="192.0.2.7")
    return log


def _lines(log: AuditLog) -> list[bytes]:
    return (log.path / "audit.jsonl").read_bytes().splitlines(keepends=True)


def _write(log: AuditLog, lines: list[bytes]) -> None:
    (log.path / "audit.jsonl").write_bytes(b"".join(lines))


def test_intact_log_verifies(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    result = verify(log.path)
    assert result.ok
    assert result.count == 5
    assert "intact: 5 record(s)" in result.message
    records = log.records()
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[1]["prev"] == records[0]["hash"]
    assert records[0]["kind"] == "log_created"
    assert records[1]["kind"] == "download"
    assert records[1]["client"] == "192.0.2.7"


def test_empty_or_absent_log_is_intact(tmp_path: Path) -> None:
    assert verify(tmp_path / "nothing").ok
    AuditLog(tmp_path / "audit")
    assert verify(tmp_path / "audit").ok
    assert verify(tmp_path / "audit").count == 1  # log_created


def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    _log_with(tmp_path, 3)
    log = AuditLog(tmp_path / "audit")
    record = log.append("expiry", share_id="s_TEST")
    assert record["seq"] == 4
    assert verify(log.path).ok


def test_reserved_field_names_are_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    with pytest.raises(ValueError, match="reserved"):
        log.append("request", seq=7)
    with pytest.raises(ValueError, match="reserved"):
        log.append("request", kind="forged")


def test_changed_record_is_named(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    lines = _lines(log)
    lines[2] = lines[2].replace(b"192.0.2.7", b"192.0.2.8")
    _write(log, lines)
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 3
    assert "hash does not match" in (result.problem or "")


def test_changed_record_with_recomputed_hash_breaks_the_chain(tmp_path: Path) -> None:
    from doorstep_bridge.sharing.audit import record_hash

    log = _log_with(tmp_path)
    lines = _lines(log)
    record = json.loads(lines[1])
    record["client"] = "203.0.113.1"
    record["hash"] = record_hash(record)
    lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    _write(log, lines)
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 3  # record 3 no longer chains to the rewritten record 2
    assert "chain" in (result.problem or "")


def test_deleted_record_is_named(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    lines = _lines(log)
    del lines[1]
    _write(log, lines)
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 2
    assert "expected seq 2" in (result.problem or "")


def test_inserted_record_is_named(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    lines = _lines(log)
    lines.insert(3, lines[3])  # a duplicate of record 4 placed before it
    _write(log, lines)
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 5


def test_reordered_records_are_named(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 2
    assert "out of sequence" in (result.problem or "")


def test_truncated_log_is_caught_by_the_head(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    _write(log, _lines(log)[:3])
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 4
    assert "head says the log has 5" in (result.problem or "")


def test_emptied_log_is_caught_by_the_head(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    (log.path / "audit.jsonl").unlink()
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 1


def test_cut_mid_record_is_named(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    data = (log.path / "audit.jsonl").read_bytes()
    (log.path / "audit.jsonl").write_bytes(data[:-40])
    result = verify(log.path)
    assert not result.ok
    assert result.bad_record == 5
    assert "incomplete last line" in (result.problem or "")


def test_missing_head_is_caught(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    (log.path / "head.json").unlink()
    result = verify(log.path)
    assert not result.ok
    assert "head file is missing" in (result.problem or "")


def test_bridge_refuses_to_append_to_a_tampered_log(tmp_path: Path) -> None:
    log = _log_with(tmp_path)
    _write(log, _lines(log)[:3])
    with pytest.raises(AuditError, match="does not verify"):
        AuditLog(log.path)
    # And the evidence stays as it was found.
    assert not verify(log.path).ok


def test_crash_mid_append_is_repaired_with_a_record(tmp_path: Path) -> None:
    log = _log_with(tmp_path, 2)
    with (log.path / "audit.jsonl").open("ab") as file:
        file.write(b'{"client":"192.0.2.7","kind":"downl')  # power cut mid-write
    reopened = AuditLog(log.path)
    records = reopened.records()
    assert [r["kind"] for r in records] == ["log_created", "download", "repair"]
    assert verify(log.path).ok


def test_crash_between_append_and_head_is_accepted(tmp_path: Path) -> None:
    log = _log_with(tmp_path, 3)
    head = (log.path / "head.json").read_bytes()
    log.append("expiry", share_id="s_TEST")
    (log.path / "head.json").write_bytes(head)  # as if the head write never happened
    result = verify(log.path)
    assert result.ok
    assert result.past_head == 1
    assert "1 record past the head (crash window)" in result.message
    reopened = AuditLog(log.path)
    assert [r["kind"] for r in reopened.records()][-2:] == ["expiry", "audit_recovered"]
    assert reopened.records()[-1]["record"] == 4
    reopened.append("purge", share_id="s_TEST")
    result = verify(log.path)
    assert result.count == 6
    assert result.past_head == 0
    assert result.recovered == (4,)


def test_crash_that_loses_only_the_last_newline_keeps_the_record(tmp_path: Path) -> None:
    log = _log_with(tmp_path, 2)
    head = (log.path / "head.json").read_bytes()
    log.append("decision", share_id="s_TEST", decision="approve")
    data = (log.path / "audit.jsonl").read_bytes()
    # Every byte of record 3 reached the disk but its newline; the head never moved.
    (log.path / "audit.jsonl").write_bytes(data[:-1])
    (log.path / "head.json").write_bytes(head)
    assert verify(log.path).past_head == 1
    reopened = AuditLog(log.path)
    reopened.append("download", share_id="s_TEST")
    result = verify(log.path)
    assert result.ok, result.message
    assert result.count == 6
    assert result.recovered == (3,)
    assert (log.path / "audit.jsonl").read_bytes().startswith(data)  # nothing lost
    records = AuditLog(log.path).records()  # and later starts open it
    assert [r["kind"] for r in records] == [
        "log_created",
        "download",
        "decision",
        "audit_recovered",
        "repair",
        "download",
    ]
    assert records[2]["decision"] == "approve"
    assert records[4]["record"] == 3


def test_last_record_without_its_newline_at_the_head_gets_it_back(tmp_path: Path) -> None:
    log = _log_with(tmp_path, 3)
    data = (log.path / "audit.jsonl").read_bytes()
    (log.path / "audit.jsonl").write_bytes(data[:-1])
    reopened = AuditLog(log.path)
    assert (log.path / "audit.jsonl").read_bytes().startswith(data)
    assert [r["kind"] for r in reopened.records()][-2:] == ["download", "repair"]
    assert verify(log.path).ok
    assert AuditLog(log.path).append("expiry")["seq"] == 5


def test_cli_verify_exit_codes(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        f"storage: {{path: {storage}}}\ncameras: {{front_door: {{source: demo://}}}}\n",
        encoding="utf-8",
    )
    log = AuditLog(audit_dir(storage))
    for index in range(2):
        log.append("request", n=index)
    command = [sys.executable, "-m", "doorstep_bridge", "audit", "verify", "--config", str(config)]
    ok = subprocess.run(command, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    lines = (log.path / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (log.path / "audit.jsonl").write_bytes(lines[0] + lines[2])
    bad = subprocess.run(command, capture_output=True, text=True, check=False)
    assert bad.returncode != 0
    assert "record 2" in bad.stdout
    assert verify_log(storage).bad_record == 2


@pytest.mark.parametrize("command", [["audit", "verify"], ["report"]])
def test_cli_says_when_no_bridge_ran_with_the_storage_folder(
    tmp_path: Path, command: list[str]
) -> None:
    # A config whose storage.path no bridge used (another machine's, a typo): there is
    # no log to check, which must not read as a log found intact.
    storage = tmp_path / "not-the-bridges"
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        f"storage: {{path: {storage}}}\ncameras: {{front_door: {{source: demo://}}}}\n",
        encoding="utf-8",
    )
    args = [sys.executable, "-m", "doorstep_bridge", *command, "--config", str(config)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        (
            f"no audit log: no bridge has run with the storage folder {storage} (storage.path);"
            " give the config the bridge runs with, on the machine it runs on"
        )
    ]
    assert "intact" not in result.stdout
    assert not storage.exists()  # looking created nothing


# A real short write: the kernel writes what fits under RLIMIT_FSIZE and returns the
# count, and the next write fails (EFBIG) -- what a disk filling up mid-line does.
# It runs in a child process so the limit cannot touch the test process.
_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from doorstep_bridge.exceptions import AuditError
from doorstep_bridge.sharing.audit import AuditLog

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
path = Path(sys.argv[1])
log = AuditLog(path)  # record 1: log_created
log.append("request", share_id="s_AAAAAAAAAA", reason="x" * 200)
size = (path / "audit.jsonl").stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))
try:
    log.append("decision", share_id="s_AAAAAAAAAA", reason="y" * 200)
except AuditError as err:
    print("refused:", err)
print("size after:", (path / "audit.jsonl").stat().st_size == size)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print("next seq:", log.append("download", share_id="s_AAAAAAAAAA")["seq"])
"""


def test_disk_full_mid_line_leaves_no_half_record(tmp_path: Path) -> None:
    path = tmp_path / "audit"
    run = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "refused: cannot write the audit log" in run.stdout
    assert "size after: True" in run.stdout  # the half line was cut off again
    assert "next seq: 3" in run.stdout
    result = verify(path)
    assert result.ok, result.message
    assert result.count == 3
    # And the bridge starts on it again.
    assert AuditLog(path).append("expiry")["seq"] == 4


def test_failed_head_write_takes_the_record_back(tmp_path: Path) -> None:
    log = _log_with(tmp_path, 2)
    size = (log.path / "audit.jsonl").stat().st_size
    blocker = log.path / "head.tmp"
    blocker.mkdir()  # the head cannot be written: its temporary file's name is taken
    with pytest.raises(AuditError, match="cannot write the audit log"):
        log.append("decision", share_id="s_TEST")
    assert (log.path / "audit.jsonl").stat().st_size == size
    assert log.head[0] == 2
    blocker.rmdir()
    assert log.append("download", share_id="s_TEST")["seq"] == 3  # after log_created, download
    assert verify(log.path).ok
    assert [r["kind"] for r in AuditLog(log.path).records()][-1] == "download"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1], id="last line without its newline"),
        pytest.param(lambda data: data[:-20] + data[-19:], id="last record changed"),
    ],
)
def test_a_closed_segment_whose_last_record_is_unreadable_stops_the_opening(
    tmp_path: Path, damage: Any
) -> None:
    log = AuditLog(tmp_path / "audit", segment_bytes=600)
    for index in range(20):
        log.append("download", share_id="s_TEST", n=index, client="192.0.2.7")
    last = closed_segments(log.path)[-1]
    last.write_bytes(damage(last.read_bytes()))
    with pytest.raises(AuditError, match=f"{last.name}: its last record is unreadable"):
        AuditLog(log.path, segment_bytes=600)


def test_share_endings_reads_back_through_segments_to_each_shares_request(
    tmp_path: Path,
) -> None:
    log = AuditLog(tmp_path / "audit", segment_bytes=600)
    log.append("request", share_id="s_AAAAAAAAAA")
    log.append("revoke", share_id="s_AAAAAAAAAA", by="owner", via="ui")
    log.append("request", share_id="s_BBBBBBBBBB")
    for number in range(20):  # the revoke ends up in a closed segment
        log.append("download", share_id="s_BBBBBBBBBB", client=f"192.0.2.{number}")
    log.append("expiry", share_id="s_CCCCCCCCCC", was="pending", reason="late")
    assert closed_segments(log.path)
    endings = share_endings(log.path, ["s_AAAAAAAAAA", "s_BBBBBBBBBB"])
    assert list(endings) == ["s_AAAAAAAAAA"]  # B has none; C is not asked for
    assert endings["s_AAAAAAAAAA"]["kind"] == "revoke"
