"""The clip store: index, queries, holds, and reconciliation after a crash."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import os
from pathlib import Path
import shutil
import sqlite3

import pytest

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.files import atomic_write
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.store import INDEX_NAME, ClipStore, PendingClip
from doorstep_bridge.recording.writer import ClipWriter, finalize

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _record(
    store: ClipStore,
    packets: list[EncodedPacket],
    camera: str = "front_door",
    start: datetime = T0,
    reason: str = "motion",
    *,
    finish: bool = True,
) -> PendingClip:
    pending = store.new_clip(camera, start, reason)
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()), pending.comment())
    for packet in packets:
        writer.write(packet)
    if finish:
        writer.close()
        done = finalize(pending.partial, pending.final)
        store.complete(pending, duration=done.duration, size=done.size)
    return pending


def test_finished_clip_is_listed_with_its_files(
    store: ClipStore, storage: Path, packets: list[EncodedPacket]
) -> None:
    pending = _record(store, packets[:30])
    info = store.get(pending.id)
    assert info is not None
    assert info.path == storage / "front_door" / "2026-11-23" / f"{pending.id}.mp4"
    assert info.path.is_file()
    assert info.size == info.path.stat().st_size
    assert info.duration == pytest.approx(2.0, abs=0.01)
    assert info.start == T0
    payload = info.payload()
    assert payload["id"].startswith("c_20261123T100000_front_door_")
    assert payload["reason"] == "motion"
    assert payload["held"] is False
    assert store.usage() == (info.size, 1)


def test_clip_being_recorded_is_not_listed(store: ClipStore, packets: list[EncodedPacket]) -> None:
    pending = _record(store, packets[:15], finish=False)
    assert store.get(pending.id) is None
    assert store.list() == ([], 0)
    assert store.status(pending.id) == "recording"


def test_list_filters_pages_and_orders_newest_first(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    ids = []
    for index, (camera, reason) in enumerate(
        [
            ("front_door", "motion"),
            ("back_door", "ring"),
            ("front_door", "ring"),
            ("front_door", "manual"),
        ]
    ):
        start = T0 + timedelta(minutes=10 * index)
        ids.append(_record(store, packets[:15], camera, start, reason).id)
    clips, total = store.list()
    assert total == 4
    assert [c.id for c in clips] == ids[::-1]
    clips, total = store.list(camera="front_door", limit=2, offset=1)
    assert total == 3
    assert [c.id for c in clips] == [ids[2], ids[0]]
    assert [c.id for c in store.list(reason="ring")[0]] == [ids[2], ids[1]]
    since = T0 + timedelta(minutes=15)
    until = T0 + timedelta(minutes=25)
    assert [c.id for c in store.list(since=since, until=until)[0]] == [ids[2]]
    window = store.clips_between(["front_door", "back_door"], T0, T0 + timedelta(minutes=20))
    assert [c.id for c in window] == ids[:3]
    assert store.clips_between(["garage"], T0, T0 + timedelta(hours=1)) == []


def test_held_clips_cannot_be_deleted_until_released(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    pending = _record(store, packets[:15])
    store.hold("s_1", [pending.id])
    info = store.get(pending.id)
    assert info is not None
    assert info.held_by == ("s_1",)
    assert info.payload()["held"] is True
    assert store.delete(pending.id, "retention") is None
    assert store.deletable() == []
    store.release("s_1")
    deleted = store.delete(pending.id, "retention")
    assert deleted is not None
    assert not deleted.path.exists()
    assert store.get(pending.id) is None
    assert [e.action for e in store.events()] == ["deleted"]


def test_a_clip_is_kept_whole_while_another_program_locks_the_index(
    store: ClipStore, packets: list[EncodedPacket]
) -> None:
    # A backup or a database browser holding a write lock is not a full disk: removing
    # the files first would leave a listed clip that cannot play.
    pending = _record(store, packets[:15])
    other = sqlite3.connect(store.root / INDEX_NAME, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="database is locked"):
            store.delete(pending.id, "retention")
        kept = store.get(pending.id)
        assert kept is not None
        assert kept.path.is_file()
    finally:
        other.execute("ROLLBACK")
        other.close()
    deleted = store.delete(pending.id, "retention")
    assert deleted is not None
    assert not deleted.path.exists()
    assert store.get(pending.id) is None


def test_a_page_of_clips_is_a_few_queries_however_many_clips_shares_hold(
    store: ClipStore,
) -> None:
    # Listing asked "who holds it?" once per clip, and each question read every hold:
    # a page of 500 clips took 0.6 s with 50,000 held clips (the media browser waits).
    ids = [
        store.complete(
            store.new_clip("front_door", T0 + timedelta(minutes=i), "motion"), duration=5, size=1
        ).id
        for i in range(40)
    ]
    store.hold("s_1", ids[:3])
    store.hold("s_2", ids[1:2])
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    clips, total = store.list(limit=40)
    store.db.set_trace_callback(None)
    assert total == 40
    assert len(statements) == 3  # how many, this page, who holds them
    assert {clip.id: clip.held_by for clip in clips if clip.held_by} == {
        ids[0]: ("s_1",),
        ids[1]: ("s_1", "s_2"),
        ids[2]: ("s_1",),
    }
    # One clip (each Range request of a player) finds its holds without reading them all.
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN SELECT share_id FROM holds WHERE clip_id = ?", (ids[0],)
    ).fetchall()
    assert "SEARCH holds USING" in str(plan)


@pytest.mark.parametrize("clip_id", ["../etc/passwd", "a/b", "c_1.mp4", "", "x" * 200])
def test_invalid_ids_are_unknown(store: ClipStore, clip_id: str) -> None:
    assert store.get(clip_id) is None


def test_partial_clip_after_a_crash_is_repaired(
    storage: Path, packets: list[EncodedPacket]
) -> None:
    store = ClipStore(storage)
    store.open()
    pending = _record(store, packets[:50], finish=False)
    # The process dies here: no close(), the partial file is all there is.
    store.close()

    reopened = ClipStore(storage)
    events = reopened.open()
    assert [(e.clip_id, e.action) for e in events] == [(pending.id, "repaired")]
    info = reopened.get(pending.id)
    assert info is not None
    assert reopened.status(pending.id) == "repaired"
    assert info.path == pending.final
    assert not pending.partial.exists()
    assert 2.0 <= info.duration <= 50 / 15
    reopened.close()


def test_unrepairable_partial_and_missing_files_are_removed(
    storage: Path, packets: list[EncodedPacket]
) -> None:
    store = ClipStore(storage)
    store.open()
    broken = _record(store, packets[:15], finish=False)
    gone = _record(store, packets[:15], start=T0 + timedelta(minutes=1))
    kept = _record(store, packets[:15], start=T0 + timedelta(minutes=2))
    store.close()
    broken.partial.write_bytes(b"not a video")
    gone.final.unlink()

    reopened = ClipStore(storage)
    actions = {(e.clip_id, e.action) for e in reopened.open()}
    assert actions == {(broken.id, "removed"), (gone.id, "missing")}
    assert not broken.partial.exists()
    assert [c.id for c in reopened.list()[0]] == [kept.id]
    reopened.close()


def test_files_missing_from_the_index_are_adopted(
    storage: Path, packets: list[EncodedPacket], tmp_path: Path
) -> None:
    store = ClipStore(storage)
    store.open()
    pending = _record(store, packets[:15], reason="ring")
    store.close()
    (storage / "clips.db").unlink()
    for suffix in ("-wal", "-shm"):
        (storage / f"clips.db{suffix}").unlink(missing_ok=True)
    stray = pending.final.with_name(".leftover.mp4.tmp")
    shutil.copy(pending.final, stray)
    junk = pending.final.with_name("c_junk.mp4")
    junk.write_bytes(b"junk")

    reopened = ClipStore(storage)
    actions = {(e.clip_id, e.action) for e in reopened.open()}
    assert actions == {(pending.id, "adopted"), ("c_junk", "removed")}
    info = reopened.get(pending.id)
    assert info is not None
    assert info.reason == "ring"
    assert info.start == T0
    assert not stray.exists()
    assert not junk.exists()
    reopened.close()


def _overwrite_header(index: Path) -> None:
    """Bytes that no SQLite file begins with."""
    data = bytearray(index.read_bytes())
    data[:16] = b"not an index 123"
    index.write_bytes(bytes(data))


def _overwrite_schema(index: Path) -> None:
    """A valid header over a schema page that is garbage."""
    data = bytearray(index.read_bytes())
    data[100:200] = b"\xff" * 100
    index.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_overwrite_header, "file is not a database"),
        (_overwrite_schema, "database disk image is malformed"),
    ],
)
def test_a_damaged_index_is_set_aside_and_rebuilt_from_the_files(
    storage: Path,
    packets: list[EncodedPacket],
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None],
    said: str,
) -> None:
    store = ClipStore(storage)
    store.open()
    pending = _record(store, packets[:15], reason="ring")
    store.close()
    damage(storage / "clips.db")

    reopened = ClipStore(storage)
    actions = {(e.clip_id, e.action) for e in reopened.open()}
    try:
        assert actions == {(pending.id, "adopted")}
        assert f"is unreadable ({said}); rebuilding it from the files" in caplog.text
        [aside] = storage.glob("clips.db.corrupt-*")  # kept for whoever wants to look
        assert aside.stat().st_size > 0
        info = reopened.get(pending.id)
        assert info is not None
        assert info.reason == "ring"
    finally:
        reopened.close()


def test_a_forgotten_clip_whose_files_stayed_is_not_adopted_again(
    store: ClipStore, storage: Path, packets: list[EncodedPacket]
) -> None:
    erased = _record(store, packets[:15])
    deleted = _record(store, packets[:15], start=T0 + timedelta(minutes=1))
    video = erased.final.read_bytes()
    store.erase(erased.id, "forgotten on request of Alice")
    store.delete(deleted.id, "motion clip older than 7 days")
    # Their files could not be removed then (a failing disk): they are still there.
    erased.final.parent.mkdir(exist_ok=True)
    erased.final.write_bytes(video)
    deleted.final.write_bytes(video)
    store.close()

    reopened = ClipStore(storage)
    actions = {(e.clip_id, e.action) for e in reopened.open()}
    try:
        assert reopened.get(erased.id) is None
        assert reopened.get(deleted.id) is None
        assert not actions & {(erased.id, "adopted"), (deleted.id, "adopted")}
        assert not erased.final.exists()
        assert not deleted.final.exists()
    finally:
        reopened.close()


def test_reconciliation_leaves_other_features_files_alone(storage: Path) -> None:
    others = [
        storage / "shares" / "exports" / "c_lookalike.mp4",
        storage / "audit" / "2026-11-23" / "c_record.jpg",
        storage / "front_door" / "notes" / "c_junk.mp4",
    ]
    for path in others:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not a clip")
    store = ClipStore(storage)
    assert store.open() == []
    store.close()
    assert all(path.exists() for path in others)


def test_what_the_store_creates_is_for_its_owner_only(
    storage: Path, packets: list[EncodedPacket]
) -> None:
    """Folders 0700, index (and its journal files) and snapshots 0600, whatever the umask.

    Files FFmpeg writes (the clips) take the process umask, which the command
    line sets to 077: tests/security/test_storage.py checks those on a real bridge.
    """
    old_umask = os.umask(0o022)  # a usual login umask: what the library alone would do
    try:
        store = ClipStore(storage)
        store.open()
        pending = _record(store, packets[:15])
        atomic_write(pending.snapshot, b"jpeg")
    finally:
        os.umask(old_umask)
    folders = [storage, storage / "front_door", pending.final.parent]
    files = [storage / "clips.db", storage / "clips.db-wal", storage / "clips.db-shm"]
    assert {str(p): oct(p.stat().st_mode & 0o777) for p in folders} == {
        str(p): "0o700" for p in folders
    }
    assert {str(p): oct(p.stat().st_mode & 0o777) for p in [*files, pending.snapshot]} == {
        str(p): "0o600" for p in [*files, pending.snapshot]
    }
    store.close()
