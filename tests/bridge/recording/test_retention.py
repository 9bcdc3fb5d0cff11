"""Retention by kind of clip: each kind its own period, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from doorstep_bridge.events import PersonChanged
from doorstep_bridge.keys import BUS
from doorstep_bridge.models import ClipInfo
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.retention import Retention
from doorstep_bridge.recording.settings import (
    RetentionPeriods,
    StorageSettings,
    retention_periods,
)
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.recording.writer import ClipWriter, finalize

from ..bridge_runner import bridge_config, run_bridge
from ..conftest import Broker

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _clip(
    store: ClipStore, packets: list[EncodedPacket], reason: str, ended_days_ago: float
) -> ClipInfo:
    start = NOW - timedelta(days=ended_days_ago, seconds=1)
    pending = store.new_clip("front_door", start, reason)
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()))
    for packet in packets[:15]:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    return store.complete(pending, duration=done.duration, size=done.size, snapshot=False)


def test_each_kind_of_clip_is_kept_for_its_own_period(
    store: ClipStore, storage: Path, packets: list[EncodedPacket]
) -> None:
    clips = {
        (reason, age): _clip(store, packets, reason, age)
        for reason in ("ring", "motion", "manual")
        for age in (3, 10, 40, 100)
    }
    store.hold("s_1", [clips["motion", 100].id])
    now = [NOW]
    audited: list[tuple[str, str]] = []
    retention = Retention(
        store,
        StorageSettings(path=storage, retention=RetentionPeriods(ring=30, motion=7, manual=60)),
        now=lambda: now[0],
        on_delete=lambda clip, why: audited.append((clip.id, why)),
    )

    deleted = retention.run()

    gone = {("ring", 40), ("ring", 100), ("motion", 10), ("motion", 40), ("manual", 100)}
    assert {c.id for c in deleted} == {clips[key].id for key in gone}
    assert sorted(audited) == sorted(
        (clips[reason, age].id, f"{reason} clip older than {days} days")
        for reason, age in gone
        for days in [{"ring": 30, "motion": 7, "manual": 60}[reason]]
    )
    assert all(not clips[key].path.exists() for key in gone)
    kept = {c.id for c in store.list(limit=100)[0]}
    assert kept == {c.id for key, c in clips.items() if key not in gone}
    assert store.get(clips["motion", 100].id) is not None  # a share holds it

    # Eight days on, the 3-day-old motion clip has passed its week; the rest have not.
    now[0] = NOW + timedelta(days=8)
    assert [c.id for c in retention.run()] == [clips["motion", 3].id]
    store.release("s_1")
    assert [c.id for c in retention.run()] == [clips["motion", 100].id]


def test_retention_days_is_the_period_of_every_kind_not_named() -> None:
    assert retention_periods(None, {}) == RetentionPeriods(ring=30, person=30, motion=7, manual=30)
    assert retention_periods(14.0, {}) == RetentionPeriods(14, 14, 14, 14)
    assert retention_periods(14.0, {"motion": 2.0}) == RetentionPeriods(14, 14, 2, 14)
    assert retention_periods(None, {"ring": 90.0}) == RetentionPeriods(90, 30, 7, 30)
    periods = RetentionPeriods(ring=30, person=20, motion=7, manual=60)
    assert periods.payload() == {"ring": 30.0, "person": 20.0, "motion": 7.0, "manual": 60.0}
    # A kind the store does not know is kept for the longest period.
    assert periods.days("parcel") == 60


def test_a_motion_clip_with_a_person_in_it_is_kept_as_long_as_a_person_clip(
    store: ClipStore, storage: Path, packets: list[EncodedPacket]
) -> None:
    seen = [_clip(store, packets, "motion", age) for age in (10, 40)]
    open_ended = _clip(store, packets, "motion", 12)
    # Clips the recorder marked ``person`` itself (no sighting left in the index).
    marked = [_clip(store, packets, "person", age) for age in (25, 35)]
    passers_by = [_clip(store, packets, "motion", age) for age in (20, 50)]
    for clip in seen:
        store.person_seen("front_door", clip.start, active=True)
        store.person_seen("front_door", clip.end, active=False)
    store.person_seen("front_door", open_ended.start, active=True)  # still in view
    # Someone seen at another camera does not count here.
    store.person_seen("back_yard", passers_by[0].start, active=True)
    audited: list[tuple[str, str]] = []
    retention = Retention(
        store,
        StorageSettings(path=storage, retention=RetentionPeriods(30, 30, 7, 30)),
        now=lambda: NOW,
        on_delete=lambda clip, why: audited.append((clip.id, why)),
    )

    retention.run()

    assert sorted(audited) == sorted(
        [
            (seen[1].id, "person clip older than 30 days"),
            (marked[1].id, "person clip older than 30 days"),
            (passers_by[0].id, "motion clip older than 7 days"),
            (passers_by[1].id, "motion clip older than 7 days"),
        ]
    )
    assert {c.id for c in store.list(limit=100)[0]} == {seen[0].id, open_ended.id, marked[0].id}
    # Sightings older than the longest period (and a day) are dropped; open ones stay.
    rows = store.db.execute("SELECT camera, end FROM sightings ORDER BY start").fetchall()
    assert len(rows) == 3
    assert sum(end is None for _, end in rows) == 2


def test_a_sighting_a_killed_run_left_open_ends_when_the_store_opens(storage: Path) -> None:
    store = ClipStore(storage)
    store.open()
    store.person_seen("front_door", NOW, active=True)
    store.close()  # no "gone": the bridge was killed, or person detection is off since
    store = ClipStore(storage)
    store.open()
    try:
        [(start, end)] = store.db.execute("SELECT start, end FROM sightings").fetchall()
    finally:
        store.close()
    assert start == NOW.timestamp()
    assert end is not None
    assert end >= start


async def test_the_running_bridge_records_person_sightings(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    config = bridge_config(mqtt_broker, tmp_path / "bridge")
    async with run_bridge(config) as bridge:
        bus = bridge.app[BUS]
        bus.publish(PersonChanged("front_door", active=True, time=NOW))
        bus.publish(PersonChanged("front_door", active=False, time=NOW + timedelta(seconds=9)))
    # Written in order by the time the bridge stopped.
    store = ClipStore(config.storage.path)
    store.open()
    try:
        rows = store.db.execute("SELECT camera, start, end FROM sightings").fetchall()
    finally:
        store.close()
    assert rows == [("front_door", NOW.timestamp(), NOW.timestamp() + 9)]
