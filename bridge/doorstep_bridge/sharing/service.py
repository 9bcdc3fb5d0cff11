"""The share workflow as the edges see it: requests, decisions, links, all audited.

:class:`ShareService` puts the parts together and owns their tasks and threads:
:class:`~doorstep_bridge.sharing.requests.ShareRequests` (validation and limits),
:class:`~doorstep_bridge.sharing.decisions.ShareDecisions` (the state machine's
moves and its timers), :class:`~doorstep_bridge.sharing.exports.ShareExports`
(renders and links) and :class:`~doorstep_bridge.sharing.downloads.ShareDownloads`
(link serving). They share one :class:`~doorstep_bridge.sharing.book.ShareBook`.

The parts deal in typed :class:`~doorstep_bridge.sharing.state.Share` records,
and the service hands out :class:`~doorstep_bridge.sharing.state.ShareView`
(a share with its link, when known). No JSON is made here: the HTTP handlers and
the MQTT publisher call :meth:`ShareView.payload` at the edge.

Nothing here can be decided over MQTT: :meth:`handle_mqtt_request` only ever
creates requests. Decisions arrive through :meth:`decide`, which the HTTP API
calls for requests carrying the API token.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from doorstep_bridge.clock import Clock, SteadyClock, steady_seconds
from doorstep_bridge.events import EventBus
from doorstep_bridge.models import utcnow
from doorstep_bridge.sharing.audit import AuditLog
from doorstep_bridge.sharing.book import ShareBook
from doorstep_bridge.sharing.clips import ClipSource
from doorstep_bridge.sharing.decisions import ShareDecisions
from doorstep_bridge.sharing.downloads import Download, ShareDownloads
from doorstep_bridge.sharing.exports import Renderer, ShareExports
from doorstep_bridge.sharing.render import render
from doorstep_bridge.sharing.requests import ShareRequest, ShareRequests
from doorstep_bridge.sharing.settings import SharingSettings
from doorstep_bridge.sharing.signing import KEY_FILE, ExportSigner
from doorstep_bridge.sharing.state import HOLDING, ShareState, ShareView
from doorstep_bridge.validation import Polygon


def share_files_dir(storage: Path) -> Path:
    """Where the share database and rendered exports live, in the storage folder."""
    return storage / "shares"


class ShareService:
    """Every share request of the bridge, from request to purge.

    Args:
        settings: The `sharing` section.
        folder: The shares folder (:func:`share_files_dir`).
        privacy_masks: Each configured camera's privacy masks, by camera name.
        bus: Where state changes are published.
        clip_store: Finds clips and holds them from retention.
        audit: The audit log every step is written to.
        clock: Current time (tests pass a controllable clock).
        steady: Seconds on a clock nobody sets (tests pass a controllable one).
        renderer: The blocking render function (tests may wrap it).
    """

    def __init__(
        self,
        settings: SharingSettings,
        folder: Path,
        privacy_masks: Mapping[str, tuple[Polygon, ...]],
        *,
        bus: EventBus,
        clip_store: ClipSource,
        audit: AuditLog,
        clock: Clock = utcnow,
        steady: SteadyClock = steady_seconds,
        renderer: Renderer = render,
    ) -> None:
        self._book = ShareBook(folder, bus, clip_store, audit, clock, steady=steady)
        self._requests = ShareRequests(self._book, settings, privacy_masks.keys(), self._spawn)
        self._exports = ShareExports(self._book, settings, privacy_masks, renderer)
        self._decisions = ShareDecisions(self._book, settings, self._exports)
        self._downloads = ShareDownloads(self._book, self._decisions)
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the shares, purge leftovers, resume renders, start the timers."""
        book = self._book
        await book.open()
        self._exports.signer = await asyncio.to_thread(
            ExportSigner.load_or_create, book.folder / KEY_FILE
        )
        await self._decisions.purge_orphans()
        # Before publishing: what is forgotten now is cleared, not published again.
        await self._decisions.forget_ended(book.clock())
        for share in book.all():
            if share.state in HOLDING:
                await book.hold(share)
            if share.state in (ShareState.APPROVED, ShareState.RENDERING):
                self._exports.enqueue(share.id)
            if share.state is not ShareState.READY:
                # A ready share's link is unknown after a restart (only its hash
                # is stored): leave the retained message on the broker alone.
                book.publish(share)
        book.publish_stats()
        self._spawn(self._decisions.run_timers())
        self._spawn(self._exports.run())

    async def stop(self) -> None:
        """Stop timers and renders (an interrupted render resumes at the next start)."""
        # Renders first: the render worker, once cancelled, no longer knows its render's
        # cancel flag, and the stop would wait for the whole render to finish.
        for share in self._book.all():
            if share.state is ShareState.RENDERING:
                self._exports.cancel(share.id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._decisions.write_repeats(everything=True)
        await self._exports.stop()
        # A last try; what the database still cannot take, the next start ends again
        # from the audit log (see `ShareBook.open`).
        await self._book.save_unsaved()
        self._book.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what the edges ask -----------------------------------------------------------------

    def get(self, share_id: str) -> ShareView | None:
        """One share with its link (when known), or None."""
        share = self._book.find(share_id)
        return None if share is None else self._book.view(share)

    def list(self) -> builtins.list[ShareView]:
        """Every share with its link (when known), newest first."""
        shares = sorted(self._book.all(), key=lambda s: (s.created, s.id), reverse=True)
        return [self._book.view(share) for share in shares]

    def validate(self, data: Any) -> ShareRequest:
        """Check a request body; the cleaned request (`ShareError` says what is wrong)."""
        return self._requests.validate(data)

    async def create_request(self, data: Any, source: str) -> ShareView:
        """Validate and store a new request (see `ShareRequests.create`)."""
        return self._book.view(await self._requests.create(data, source))

    async def refuse_unreadable(self, source: str, error: str) -> None:
        """Audit a request from `source` whose body is not even JSON (`error` says so)."""
        await self._requests.refuse_unreadable(source, error)

    def handle_mqtt_request(self, payload: bytes) -> None:
        """A message on ``<b>/share/request``: create a request, never decide."""
        self._requests.handle_mqtt_request(payload)

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
    ) -> ShareView:
        """Approve, deny or revoke; the share as it now is (see `ShareDecisions.decide`)."""
        share = await self._decisions.decide(
            share_id, decision, by, via, redact, link_ttl_hours=link_ttl_hours, by_id=by_id
        )
        return self._book.view(share)

    async def note(self, share_id: str, kind: str, fields: Mapping[str, Any]) -> None:
        """Audit something the integration did for a share (see `ShareDecisions.note`)."""
        await self._decisions.note(share_id, kind, fields)

    async def download(
        self, token: str, client: str | None, agent: str | None, **details: Any
    ) -> Download:
        """Check a link token and audit the download (see `ShareDownloads.download`)."""
        return await self._downloads.download(token, client, agent, **details)

    async def tick(self) -> None:
        """Expire requests and links past their time; forget shares ended long ago."""
        await self._decisions.tick()

    @property
    def pending_count(self) -> int:
        """Requests waiting for a decision."""
        return self._book.pending_count

    @property
    def signing_fingerprint(self) -> str | None:
        """Fingerprint of the key exports are signed with (None before :meth:`start`)."""
        signer = self._exports.signer
        return None if signer is None else signer.fingerprint

    @property
    def holding(self) -> frozenset[str]:
        """Ids of shares that still hold clips from retention."""
        return self._book.holding
