"""Decisions and time: approve, deny, revoke, expire, forget.

Decisions arrive only through the HTTP API with the API token (Home Assistant
on behalf of a person, or an automation the owner wrote); MQTT can only ask.
The link lifetime of an approval is the owner's choice (the integration's
options), capped by ``sharing.link_ttl_hours``: the approver says yes or no (and,
where the owner offers it, whether faces stay unblurred), never how long the link
lives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
from dataclasses import replace
from datetime import datetime, timedelta
import logging
import math
import re
from typing import Any

from doorstep_bridge.exceptions import AuditError, ShareError
from doorstep_bridge.sharing.audit import field_problem
from doorstep_bridge.sharing.book import RETRY_AFTER_FAILURE, ShareBook, unlink
from doorstep_bridge.sharing.exports import ShareExports
from doorstep_bridge.sharing.fields import text_field
from doorstep_bridge.sharing.settings import SharingSettings
from doorstep_bridge.sharing.signing import SIGNATURE_SUFFIX
from doorstep_bridge.sharing.state import (
    DECISIONS,
    FINAL,
    VIAS,
    Decision,
    Share,
    ShareConflictError,
    ShareState,
)

_LOGGER = logging.getLogger(__name__)

#: Names of rendered exports (and renders cut short) in the shares folder.
EXPORT_NAME = re.compile(r"^s_[A-Z2-7]{10}\.mp4(\.part|\.doorstep-sig\.json)?$")
#: A share that ended this long ago is forgotten: its row is deleted and its retained
#: topic cleared (the audit log keeps the history).
FORGET_AFTER = timedelta(days=7)
#: The timers look at least this often, even with no deadline in sight.
MAX_SLEEP = 60.0


class ShareDecisions:
    """The state machine's moves that people and time make.

    Args:
        book: The shares.
        settings: The `sharing` section (face redaction default, link lifetime cap).
        exports: Renders approved shares; told to stop when one is revoked.
    """

    def __init__(self, book: ShareBook, settings: SharingSettings, exports: ShareExports) -> None:
        self._book = book
        self._settings = settings
        self._exports = exports

    async def decide(
        self,
        share_id: str,
        decision: str,
        by: str,
        via: str,
        redact: bool | None = None,
        *,
        link_ttl_hours: float | None = None,
        by_id: str | None = None,
    ) -> Share:
        """Approve, deny or revoke a share (callers must have checked the API token).

        Args:
            share_id: The share.
            decision: ``approve``, ``deny`` or ``revoke``.
            by: Who decided (an HA user name).
            via: ``phone``, ``ui`` or ``automation``.
            redact: Blur faces (default: ``sharing.redact_faces``). Privacy masks
                are filled whatever this says.
            link_ttl_hours: With ``approve``: the link lifetime the owner set in the
                integration's options, capped by ``sharing.link_ttl_hours``;
                ignored otherwise.
            by_id: The decider's Home Assistant user id, when a person decided.

        Raises:
            ShareNotFoundError: No such share.
            ShareConflictError: Not possible in the share's state.
            ShareError: Invalid arguments.
        """
        if decision not in DECISIONS:
            raise ShareError(f"decision: expected one of {', '.join(DECISIONS)}")
        if via not in VIAS:
            raise ShareError(f"via: expected one of {', '.join(VIAS)}")
        who = text_field({"by": by}, "by")
        assert who is not None
        who_id = text_field({"by_id": by_id}, "by_id", required=False)
        if redact is not None and not isinstance(redact, bool):
            raise ShareError("redact: expected true or false")
        redact = self._settings.redact_faces if redact is None else redact
        ttl = self._link_ttl(link_ttl_hours) if decision == "approve" else None
        book = self._book
        async with book.lock:
            now = await book.now()  # first: it may move the share's deadline
            share = book.existing(share_id)
            record = Decision(
                decision=decision, by=who, via=via, at=now, redact=redact, by_id=who_id
            )
            # Before anything else (a revoke too): a request past its deadline is over,
            # whether or not the timers have got to it yet.
            if share.state is ShareState.PENDING and now >= share.deadline:
                await self.expire(share, "no decision before the deadline")
                raise ShareConflictError(f"share {share_id} expired without a decision")
            if decision == "revoke":
                return await self._revoke(share, record)
            if share.state is not ShareState.PENDING:
                raise ShareConflictError(f"share {share_id} is {share.state}, not pending")
            extra = {"link_ttl_hours": ttl} if ttl is not None else {}
            if decision == "approve" and self._needs_two(share):
                if any(approval.same_decider(record) for approval in share.approvals):
                    raise ShareConflictError(
                        f"{who} already approved share {share_id}: a legal request needs a "
                        "second approval by someone else"
                    )
                if not share.approvals:
                    return await self._first_approval(share, record, extra)
                # Faces stay blurred unless both approvers said otherwise.
                record = replace(record, redact=record.redact or share.approvals[0].redact)
            new = share.moved(
                ShareState.APPROVED if decision == "approve" else ShareState.DENIED,
                decision=record,
                link_ttl_hours=ttl,
            )
            await book.append("decision", share_id=share.id, **record.audited(), **extra)
            await book.save(new)
            if new.state is ShareState.DENIED:
                await book.release(new)
        book.publish(new)
        book.publish_stats()
        if new.state is ShareState.APPROVED:
            self._exports.enqueue(new.id)
        _LOGGER.info("Share %s %s by %s via %s", share_id, new.state, who, via)
        return new

    def _needs_two(self, share: Share) -> bool:
        return share.kind == "legal" and self._settings.legal_two_approvers

    async def _first_approval(
        self, share: Share, record: Decision, extra: Mapping[str, Any]
    ) -> Share:
        """Record the first of two approvals: the share stays pending (caller holds the lock)."""
        book = self._book
        new = share.changed(approvals=(record,))
        await book.append(
            "decision",
            share_id=share.id,
            **record.audited(),
            step="first of two approvals",
            **extra,
        )
        await book.save(new)
        book.publish(new)
        _LOGGER.info("Share %s: first approval by %s, waiting for a second", share.id, record.by)
        return new

    def _link_ttl(self, hours: Any) -> float | None:
        if hours is None:
            return None
        invalid = ShareError("link_ttl_hours: expected a finite number of hours above 0")
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise invalid
        try:
            # JSON integers have no size limit; one no float can hold is no lifetime either.
            asked = float(hours)
        except OverflowError:
            raise invalid from None
        if not math.isfinite(asked) or not asked > 0:
            raise invalid
        return min(asked, self._settings.link_ttl_hours)

    async def _revoke(self, share: Share, record: Decision) -> Share:
        if share.state is ShareState.PENDING:
            raise ShareConflictError(f"share {share.id} is pending: deny it instead of revoking")
        if share.state in FINAL:
            raise ShareConflictError(f"share {share.id} is {share.state}: nothing to revoke")
        # error=None: a note that the render's end waits to be recorded no longer applies.
        new = share.moved(ShareState.REVOKED, revoked_by=record, progress=None, error=None)
        # The record first: a revoke that cannot be audited is not applied, and the owner
        # is told so, so the render goes on. Nothing can be released meanwhile: a render
        # that ends waits for the lock held here, then finds the share revoked.
        await self._book.append("revoke", share_id=share.id, **record.audited())
        # Written, it is final: applied even while the database cannot take it (settle).
        self._exports.cancel(share.id)
        await self._book.settle(new)
        await self._book.end(new, "revoked")
        self._book.publish(new)
        _LOGGER.info("Share %s revoked by %s", share.id, record.by)
        return new

    async def note(self, share_id: str, kind: str, fields: Mapping[str, Any]) -> None:
        """Audit something the integration did for a share.

        The integration has no other way into the log: notifications it sent to
        the approvers, decisions it refused (wrong user, stale nonce, too late).

        Raises:
            ShareNotFoundError: No such share.
            ShareError: A field is not JSON the log can hold (named in the message).
        """
        self._book.existing(share_id)
        record = {**fields, "share_id": share_id}
        problem = field_problem(record)
        if problem is not None:
            raise ShareError(problem)
        await self._book.append(kind, **record)

    # -- time -------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Expire requests and links past their time; forget shares ended long ago."""
        book = self._book
        async with book.lock:
            await book.save_unsaved()
            now = await book.now()
            await book.purge_ended()
            for share in book.all():
                if share.state is ShareState.PENDING and now >= share.deadline:
                    await self.expire(share, "no decision before the deadline")
                elif (
                    share.state is ShareState.READY
                    and share.link_expires
                    and now >= share.link_expires
                ):
                    await self.expire(share, "the link reached its lifetime")
            await self.forget_ended(now)
        await self.write_repeats()

    async def write_repeats(self, *, everything: bool = False) -> None:
        """Write the ``repeated`` records that are due (all of them when stopping).

        A sum that cannot be written keeps its counts for the next tick; when the bridge
        is stopping, the bridge's own log keeps them.
        """
        repeats = self._book.repeats
        for summary in repeats.due(self._book.clock(), everything=everything):
            try:
                await self._book.append("repeated", **summary.fields)
            except AuditError:
                _LOGGER.exception("Cannot audit repeated records: %s", summary.fields)
                repeats.restore(summary)

    async def forget_ended(self, now: datetime) -> None:
        """Forget shares that ended `FORGET_AFTER` ago (the caller holds the lock)."""
        for share in self._book.all():
            if share.state not in FINAL or now - _ended(share) < FORGET_AFTER:
                continue
            await self._book.append("forget", share_id=share.id, state=str(share.state))
            await self._book.forget(share)
            _LOGGER.info("Share %s forgotten (%s)", share.id, share.state)

    async def run_timers(self) -> None:
        """Tick at each deadline and link expiry (and every minute); runs until cancelled."""
        book = self._book
        failing = False
        while True:
            try:
                await self.tick()
            except Exception:
                # One traceback per failure, not one per retry.
                if not failing:
                    _LOGGER.exception(
                        "Share timers failed; retrying every %g s", RETRY_AFTER_FAILURE
                    )
                failing = True
            else:
                if failing:
                    _LOGGER.info("Share timers work again")
                failing = False
            book.wake.clear()
            delay = MAX_SLEEP
            upcoming = [
                s.deadline if s.state is ShareState.PENDING else s.link_expires
                for s in book.all()
                if s.state is ShareState.PENDING or (s.state is ShareState.READY and s.link_expires)
            ]
            if upcoming:
                soonest = min(t for t in upcoming if t is not None)
                delay = min(delay, max(0.05, (soonest - book.clock()).total_seconds()))
            if failing:
                # Not at once: the deadline that failed is still in the past.
                delay = max(delay, RETRY_AFTER_FAILURE)
            if book.unsaved:
                # Ended shares wait for the database: sooner than the next deadline.
                delay = min(delay, RETRY_AFTER_FAILURE)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation
            # that arrives as the wait ends, and stop() would then wait here for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await book.wake.wait()

    async def expire(self, share: Share, why: str) -> None:
        """Expire `share` (the caller holds the lock)."""
        new = share.moved(ShareState.EXPIRED, progress=None)
        await self._book.append("expiry", share_id=share.id, was=str(share.state), reason=why)
        # Written, it is final: applied even while the database cannot take it, so neither
        # the timers nor the link write it again meanwhile (see `ShareBook.settle`).
        await self._book.settle(new)
        await self._book.end(new, "expired")
        self._book.publish(new)
        self._book.publish_stats()

    async def purge_orphans(self) -> None:
        """Remove exports no ready share owns (renders cut short, shares forgotten)."""
        ready = [s.file for s in self._book.all() if s.state is ShareState.READY and s.file]
        keep = {*ready, *(name + SIGNATURE_SUFFIX for name in ready)}
        for path in sorted(self._book.folder.iterdir()):
            if EXPORT_NAME.match(path.name) and path.name not in keep:
                # Recorded first, as every purge (see `ShareBook.purge_ended`): a file is
                # never gone without its record.
                try:
                    await self._book.append(
                        "purge",
                        share_id=path.name.split(".", 1)[0],
                        file=path.name,
                        reason="not a ready share",
                        existed=True,
                    )
                except AuditError as err:
                    # No link serves it; the next start purges it (a full disk: start).
                    _LOGGER.warning(
                        "Cannot audit the purge of %s; it is kept until a start can: %s",
                        path.name,
                        err,
                    )
                    return
                await asyncio.to_thread(unlink, path)


def _ended(share: Share) -> datetime:
    """When a final share ended (for an empty or failed render: when it was approved)."""
    if share.revoked_by is not None:
        return share.revoked_by.at
    if share.state is ShareState.EXPIRED:
        # A link reaching its lifetime, or a request its deadline.
        return share.link_expires or share.deadline
    if share.decision is not None:
        return share.decision.at
    return share.created
