"""The shares the bridge knows, and the one way a change to them is made.

Every part of the workflow (requests, decisions, exports, downloads) reads and
changes shares through one :class:`ShareBook`. A change is written to the audit
log *before* it takes effect (a release that cannot be audited does not
happen), then saved to the share database, then published on the bus
(``ShareStateChanged``, which the MQTT publisher sends retained on
``<b>/share/<id>``). One asyncio lock serialises the changes; the parts hold it
around each of theirs.

An end (revoke, expiry) is the one change that does not wait for the database: once
its record is written the share has ended, in memory at once, and a database that
cannot take it (locked by a backup, full) is written again later (:meth:`ShareBook.settle`).
At start the audit log has the last word on ends the database missed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import logging
from pathlib import Path
from typing import Any

from doorstep_bridge.clock import Clock, SteadyClock, StepWatch, steady_seconds
from doorstep_bridge.events import ClipsHeld, EventBus, ShareStateChanged, StatsChanged
from doorstep_bridge.exceptions import AuditError, StorageError
from doorstep_bridge.models import ClipInfo
from doorstep_bridge.sharing.audit import AuditLog, share_endings
from doorstep_bridge.sharing.clips import ClipSource
from doorstep_bridge.sharing.database import ShareDB
from doorstep_bridge.sharing.links import link_path, valid_share_id
from doorstep_bridge.sharing.repeats import Admission, Entry, Group, RepeatedRecords
from doorstep_bridge.sharing.signing import signature_path
from doorstep_bridge.sharing.state import (
    FINAL,
    HOLDING,
    Decision,
    RejectedRequest,
    Share,
    ShareNotFoundError,
    ShareState,
    ShareView,
)

_LOGGER = logging.getLogger(__name__)

#: A step that failed because what it must record could not be written (a full disk) is
#: tried again this much later, not at once: whatever failed is most likely still failing.
RETRY_AFTER_FAILURE = 5.0


def export_name(share_id: str) -> str:
    """The name of ``share_id``'s rendered export in the shares folder."""
    return f"{share_id}.mp4"


def unlink(path: Path) -> bool:
    """Remove ``path``; False when it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class ShareBook:
    """Every share in memory, its database, its audit trail and its announcements.

    Args:
        folder: The shares folder: the database and the rendered exports. It sits
            two levels below the storage folder on purpose: the clip store adopts
            unknown ``<storage>/<camera>/<day>/<id>.mp4`` files as clips.
        bus: Where state changes are published.
        clip_store: Finds clips and holds them from retention while a share needs them.
        audit: The audit log every step is written to.
        clock: Current time (tests pass a controllable clock).
        steady: Seconds on a clock nobody sets (see :meth:`now`).
    """

    def __init__(
        self,
        folder: Path,
        bus: EventBus,
        clip_store: ClipSource,
        audit: AuditLog,
        clock: Clock,
        *,
        steady: SteadyClock = steady_seconds,
    ) -> None:
        self.folder = folder
        self.clip_store = clip_store
        self.clock = clock
        self.steady = steady
        # Tells a step of the wall clock (see `now`).
        self._steps = StepWatch(clock, steady)
        self.lock = asyncio.Lock()
        #: Set when a deadline or a link lifetime may have moved closer (the timers wake).
        self.wake = asyncio.Event()
        #: Bursts of the records a client can repeat at will are summed, not written whole.
        self.repeats = RepeatedRecords()
        self._bus = bus
        self._audit = audit
        self._db: ShareDB | None = None
        self._shares: dict[str, Share] = {}
        self._tokens: dict[str, str] = {}  # share id → token, in memory only
        self._by_hash: dict[str, str] = {}  # token hash → share id
        self._withdrawn: dict[str, asyncio.Event] = {}  # share id → set when its link ends
        # Exports of ended shares whose purge record could not be written yet: file name →
        # (share id, why). Kept on disk, out of reach of any link, until it can.
        self._unpurged: dict[str, tuple[str, str]] = {}
        self._purge_failing = False  # said once in the log
        # Ended shares the database could not take yet (see `settle`): share id → share.
        self._unsaved: dict[str, Share] = {}
        self._save_failing = False  # said once in the log
        self._audit_failing = False  # the last record could not be written
        # Shares whose deadline or link end was reckoned from this run's wall clock.
        self._reckoned_here: set[str] = set()
        #: The sum of the clock steps followed so far (see :meth:`now`).
        self.stepped = timedelta(0)

    # -- opening and closing ----------------------------------------------------------------

    async def open(self) -> None:
        """Create the folder, load every share from the database, then end those the log ended.

        A revoke or an expiry is in effect once its record is written, saved or not (see
        :meth:`settle`): a share the database still has open but the audit log has ended
        (the bridge stopped before the database could take the end) ends now, its export
        purged and its clips released, so no restart brings a link back.
        """
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = await asyncio.to_thread(ShareDB, self.folder / "shares.sqlite3")
        for share in await asyncio.to_thread(self._db.load_all):
            self._shares[share.id] = share
            if share.token_hash:
                self._by_hash[share.token_hash] = share.id
        still_open = [share.id for share in self._shares.values() if share.state not in FINAL]
        if not still_open:
            return
        endings = await asyncio.to_thread(share_endings, self._audit.path, still_open)
        for share_id, record in endings.items():
            share = _ended_by(self._shares[share_id], record)
            _LOGGER.warning(
                "Share %s ended in the audit log (%s, record %d) but not in the share database"
                " (the bridge stopped before the database could take it): it is %s now",
                share_id,
                record["kind"],
                record["seq"],
                share.state,
            )
            await self.settle(share)
            await self.end(share, str(share.state))

    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- reading ----------------------------------------------------------------------------

    def all(self) -> list[Share]:
        """Every share, in no particular order."""
        return list(self._shares.values())

    def find(self, share_id: str) -> Share | None:
        """The share with that id, or None."""
        return self._shares.get(share_id)

    def existing(self, share_id: str) -> Share:
        """The share with that id.

        Raises:
            ShareNotFoundError: No such share (or not even a share id).
        """
        share = self._shares.get(share_id) if valid_share_id(share_id) else None
        if share is None:
            raise ShareNotFoundError(f"no share {share_id!r}")
        return share

    def by_token_hash(self, digest: str) -> Share | None:
        """The share whose link token hashes to ``digest``, or None."""
        share_id = self._by_hash.get(digest)
        return self._shares.get(share_id) if share_id else None

    async def clips_of(self, share: Share) -> list[ClipInfo]:
        """The clips in ``share``'s window, from the clip store."""
        # The clip store is SQLite behind a lock: thread-safe, but blocking.
        return await asyncio.to_thread(
            self.clip_store.clips_between, share.cameras, share.start, share.end
        )

    def view(self, share: Share) -> ShareView:
        """``share`` with its link, when the bridge knows it."""
        token = self._tokens.get(share.id)
        return ShareView(share, link_path(token) if token else None)

    def pending_from(self, source: str) -> int:
        """Requests from ``source`` waiting for a decision."""
        return sum(
            1
            for share in self._shares.values()
            if share.state is ShareState.PENDING and share.source == source
        )

    @property
    def pending_count(self) -> int:
        """Requests waiting for a decision."""
        return sum(1 for s in self._shares.values() if s.state is ShareState.PENDING)

    @property
    def holding(self) -> frozenset[str]:
        """Ids of shares that still hold clips from retention."""
        return frozenset(s.id for s in self._shares.values() if s.state in HOLDING)

    # -- changing ---------------------------------------------------------------------------

    async def append(self, kind: str, /, **fields: Any) -> dict[str, Any]:
        """Write one audit record (in a worker thread: it fsyncs); the record as written."""
        try:
            record = await asyncio.to_thread(self._audit.append, kind, **fields)
        except AuditError:
            self._audit_failing = True
            raise
        self._audit_failing = False
        return record

    async def append_repeatable(
        self, kind: str, group: Group, entry: Entry, *, refuse_new: bool = False, **fields: Any
    ) -> bool:
        """Write a record a client can repeat at will, or count it (see :mod:`.repeats`).

        A counted record is summed in a ``repeated`` record later, which is only safe
        while the log can be written: while it cannot, each record is written on its
        own (and fails), so nothing is let through on the promise of a sum; the first
        one written ends that.

        Returns:
            False when the request is to be refused instead (a new client over the
            group's cap, with ``refuse_new``): nothing was written or counted.

        Raises:
            AuditError: The record could not be written (nothing is to be served).
        """
        if self._audit_failing:
            await self.append(kind, **fields)
            return True
        admission = self.repeats.admit(kind, group, entry, self.clock(), refuse_new=refuse_new)
        if admission is Admission.REFUSE:
            return False
        if admission is Admission.WRITE:
            try:
                await self.append(kind, **fields)
            except AuditError:
                self.repeats.unwrite(kind, group, entry)
                raise
        return True

    async def now(self) -> datetime:
        """The current time, once this run's deadlines have followed any step of the clock.

        A request's deadline and a link's end are a duration from a moment read on the
        wall clock, and the wall clock can step: a board without a real-time clock boots
        hours or decades behind until NTP sets it, and a clock found ahead is set back.
        Left alone, a step forward would expire requests before anyone could answer and
        links before their lifetime, and a step back would make a link outlive it. So a
        step, measured against :attr:`steady`, moves every deadline and link end reckoned
        in this run by as much (audited as ``clock_step``). Those read from the database
        stay: they were reckoned by an earlier run's clock, which this run cannot judge.
        The caller holds the lock.

        Raises:
            AuditError: The step could not be recorded (nothing moved; asked again later).
        """
        reading = self._steps.read()
        wall, step = reading.wall, reading.step
        if not step:
            return wall
        moved = [
            share
            for share in self._shares.values()
            if share.id in self._reckoned_here
            and (
                share.state is ShareState.PENDING
                or (share.state is ShareState.READY and share.link_expires is not None)
            )
        ]
        await self.append(
            "clock_step",
            seconds=round(step.total_seconds(), 3),
            shares=[share.id for share in moved],
        )
        self._steps.follow(reading)
        self.stepped += step
        self.repeats.shift(step)
        _LOGGER.warning(
            "The system clock stepped by %+.0f s; %d share deadline(s) and link end(s) moved"
            " with it, so each keeps the time it was given",
            step.total_seconds(),
            len(moved),
        )
        for share in moved:
            if share.state is ShareState.PENDING:
                new = share.changed(deadline=share.deadline + step)
            else:
                assert share.link_expires is not None
                new = share.changed(link_expires=share.link_expires + step)
            await self.save(new)
            self.publish(new)
        self.wake.set()
        return wall

    async def save(self, share: Share) -> None:
        """Save ``share`` to the database, then keep it in memory."""
        assert self._db is not None, "ShareBook.open() was not awaited"
        await asyncio.to_thread(self._db.save, share)
        old = self._shares.get(share.id)
        if old is None or (old.deadline, old.link_expires) != (share.deadline, share.link_expires):
            # New, or given a link: reckoned from this run's clock (see `now`).
            self._reckoned_here.add(share.id)
        self._shares[share.id] = share

    async def settle(self, share: Share) -> None:
        """Keep an ended share (its ``revoke`` or ``expiry`` record written) and save it.

        The record made the end final, so it holds in memory at once, whatever the
        database says: a database that cannot be written (another program holds its
        lock, a full disk) must not keep a link serving. It is saved again at each tick
        of the share timers and when the bridge stops (:meth:`save_unsaved`); a restart
        before that ends it again from the audit log (:meth:`open`).
        """
        self._shares[share.id] = share
        self._unsaved[share.id] = share
        await self.save_unsaved()

    @property
    def unsaved(self) -> bool:
        """Whether ended shares wait for the database to take them."""
        return bool(self._unsaved)

    async def save_unsaved(self) -> None:
        """Save the ended shares the database could not take yet (see :meth:`settle`)."""
        if self._db is None:
            return  # closed: the next start ends them again from the audit log
        for share_id, share in list(self._unsaved.items()):
            try:
                await asyncio.to_thread(self._db.save, share)
            except StorageError as err:
                # Once, not at every tick while the database stays locked.
                log = _LOGGER.debug if self._save_failing else _LOGGER.error
                log(
                    "Share %s is %s, but the share database cannot be written (%s); its link"
                    " answers 410 all the same, and the database is written again every"
                    " %g s until it can be",
                    share_id,
                    share.state,
                    err,
                    RETRY_AFTER_FAILURE,
                )
                self._save_failing = True
                return
            del self._unsaved[share_id]
            if self._save_failing:
                _LOGGER.info("Share %s: the share database took its end", share_id)
            self._save_failing = False

    def keep_in_memory(self, share: Share) -> None:
        """Keep ``share`` in memory only.

        For what is not worth a database write: render progress, and a note saying which
        step of a render waits to be recorded (a restart renders the share again anyway).
        """
        self._shares[share.id] = share

    async def forget(self, share: Share) -> None:
        """Delete ``share`` from the database and memory; clear its retained topic."""
        assert self._db is not None
        await asyncio.to_thread(self._db.delete, share.id)
        self._unsaved.pop(share.id, None)  # deleted: nothing left to save
        del self._shares[share.id]
        self._reckoned_here.discard(share.id)
        if share.token_hash:
            self._by_hash.pop(share.token_hash, None)
        # No state: the publisher sends an empty retained payload, which clears
        # <b>/share/<id> on the broker.
        self._bus.publish(ShareStateChanged(share.id, None))

    def give_link(self, share: Share, token: str) -> None:
        """Remember the token of a ready share's link (in memory only)."""
        assert share.token_hash is not None
        self._tokens[share.id] = token
        self._by_hash[share.token_hash] = share.id

    async def hold(self, share: Share) -> None:
        """Hold ``share``'s clips from retention (renewing a hold the store kept is harmless)."""
        await asyncio.to_thread(self.clip_store.hold, share.id, share.clips)
        self._bus.publish(ClipsHeld(tuple(share.clips)))

    async def release(self, share: Share) -> None:
        """Let retention have ``share``'s clips again."""
        await asyncio.to_thread(self.clip_store.release, share.id)
        self._bus.publish(ClipsHeld(tuple(share.clips)))

    def withdrawn(self, share_id: str) -> asyncio.Event:
        """Set when ``share_id``'s link stops working (revoked, expired)."""
        return self._withdrawn.setdefault(share_id, asyncio.Event())

    async def end(self, share: Share, why: str) -> None:
        """A share left the holding states: drop its file, its token and its holds.

        Downloads still under way on its link are cut off (:meth:`withdrawn`). The
        share has ended whatever happens to its file: its clips go back to retention
        even when the purge cannot be recorded (see :meth:`purge_ended`).
        """
        self._tokens.pop(share.id, None)
        withdrawn = self._withdrawn.pop(share.id, None)
        if withdrawn is not None:
            withdrawn.set()
        try:
            await self.purge_export(share, why)
        finally:
            await self.release(share)

    async def purge_export(self, share: Share, why: str) -> None:
        """Delete ``share``'s export, if it has one, once its ``purge`` record is written.

        A render that is done but not recorded yet has its file on disk and none on the
        share (the file is named on the share only once it is ready): that file goes too.
        """
        file = share.file or export_name(share.id)
        if share.file is None and not await asyncio.to_thread((self.folder / file).exists):
            return
        self._unpurged[file] = (share.id, why)
        await self.purge_ended()

    async def purge_ended(self) -> None:
        """Delete the exports of ended shares, each once its ``purge`` record is written.

        An export whose record cannot be written stays on disk, out of reach (its
        share has ended, its link answers 410), and is tried again at each tick of
        the share timers; a restart's orphan purge takes it otherwise.
        """
        for file, (share_id, why) in list(self._unpurged.items()):
            path = self.folder / file
            existed = await asyncio.to_thread(path.exists)
            try:
                await self.append(
                    "purge", share_id=share_id, file=file, reason=why, existed=existed
                )
            except AuditError as err:
                # Once, not at every tick of the timers while the disk stays full.
                log = _LOGGER.debug if self._purge_failing else _LOGGER.error
                log(
                    "Cannot audit the purge of %s (share %s): the file is kept until it can be"
                    " (%s)",
                    file,
                    share_id,
                    err,
                )
                self._purge_failing = True
                return
            self._purge_failing = False
            del self._unpurged[file]
            # The signature goes with its export (a copy already given away keeps its own).
            for target in (path, signature_path(path)):
                try:
                    await asyncio.to_thread(unlink, target)
                except OSError as err:
                    _LOGGER.warning("Cannot delete %s: %s", target, err)

    # -- announcing -------------------------------------------------------------------------

    def publish(self, share: Share) -> None:
        """Announce ``share``'s state (retained on ``<b>/share/<id>``)."""
        self._bus.publish(ShareStateChanged(share.id, self.view(share)))

    def publish_rejection(self, rejection: RejectedRequest) -> None:
        """Announce a rejected request, once.

        Not retained: a rejection is an answer, not a share; retaining it would let
        junk requests pile up topics on the broker.
        """
        self._bus.publish(ShareStateChanged(rejection.id, rejection, retain=False))

    def publish_stats(self) -> None:
        """Announce how many requests wait for a decision."""
        self._bus.publish(StatsChanged({"pending_shares": self.pending_count}))


def _ended_by(share: Share, record: dict[str, Any]) -> Share:
    """``share`` as its ``revoke`` or ``expiry`` audit record left it (see `ShareBook.open`)."""
    if record["kind"] == "revoke":
        revoked_by = Decision(
            decision="revoke",
            by=str(record.get("by")),
            via=str(record.get("via")),
            at=datetime.fromisoformat(str(record.get("at") or record["time"])),
            redact=True,  # not audited for a revoke, which releases nothing to redact
            by_id=record.get("by_id"),
        )
        ended = share.changed(state=ShareState.REVOKED, revoked_by=revoked_by)
    else:
        ended = share.changed(state=ShareState.EXPIRED)
    # Not `Share.moved`: whatever state the database kept, the record ended the share, and a
    # start must not fail on a history it cannot move along (ending is always safe).
    return ended.changed(progress=None, error=None)
