"""Exports: render approved shares, one at a time, and give the ready ones a link.

Renders run in one thread of their own at a lower CPU priority, so a long
export never delays live recording, rings or the event loop's workers. Progress
is reported from that thread to the loop with ``call_soon_threadsafe``; a
revocation stops a render at its next frame through a ``threading.Event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
import os
import threading
from typing import Any, TypeAlias, TypeVar

from doorstep_bridge.models import ClipInfo, iso
from doorstep_bridge.sharing.book import RETRY_AFTER_FAILURE, ShareBook, export_name
from doorstep_bridge.sharing.links import new_token, token_hash
from doorstep_bridge.sharing.render import (
    RenderCancelledError,
    RenderJob,
    RenderResult,
    Segment,
    render,
)
from doorstep_bridge.sharing.settings import SharingSettings
from doorstep_bridge.sharing.signing import ExportSigner, file_sha256
from doorstep_bridge.sharing.state import HOLDING, Share, ShareState
from doorstep_bridge.validation import Polygon

_LOGGER = logging.getLogger(__name__)

#: Progress is published in steps of this much.
PROGRESS_STEP = 0.05
#: Nice value of the render thread.
RENDER_NICE = 10

Renderer: TypeAlias = Callable[[RenderJob, Callable[[float], None], threading.Event], RenderResult]

_T = TypeVar("_T")
#: States of a share in the render queue.
_QUEUED = (ShareState.APPROVED, ShareState.RENDERING)
#: What a share's ``error`` says while a step of its render waits to be recorded.
_START_WAITS = "the render cannot start"
_END_WAITS = "the render is done but its end cannot be recorded"


@dataclass(frozen=True, slots=True)
class _Rendered:
    """A complete export, waiting for its share to become ready."""

    result: RenderResult
    digest: str
    file: str
    link_expires: datetime
    #: `ShareBook.stepped` when ``link_expires`` was reckoned.
    stepped: timedelta


@dataclass(frozen=True, slots=True)
class _Ending:
    """How a render ended, kept until that is recorded (``rendered`` when it is ready)."""

    state: ShareState
    error: str | None = None
    rendered: _Rendered | None = None


class ShareExports:
    """The render queue of approved shares.

    Args:
        book: The shares.
        settings: The `sharing` section (the link lifetime when the owner set none).
        privacy_masks: Each camera's privacy masks, by name: filled in every export.
        renderer: The blocking render function (tests may wrap it).

    Attributes:
        signer: Signs each export (set by the service once its key is loaded).
    """

    def __init__(
        self,
        book: ShareBook,
        settings: SharingSettings,
        privacy_masks: Mapping[str, tuple[Polygon, ...]],
        renderer: Renderer = render,
    ) -> None:
        self._book = book
        self._settings = settings
        self._privacy_masks = privacy_masks
        self._renderer = renderer
        self.signer: ExportSigner | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._cancel: dict[str, threading.Event] = {}
        self._stepped: dict[str, timedelta] = {}  # `_Rendered.stepped` of each render
        self._loop: asyncio.AbstractEventLoop | None = None
        self._render_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="doorstep-render", initializer=_lower_priority
        )

    def enqueue(self, share_id: str) -> None:
        """Render ``share_id`` after the shares queued before it."""
        self._queue.put_nowait(share_id)

    def cancel(self, share_id: str) -> None:
        """Stop ``share_id``'s render at its next frame, if one runs."""
        cancel = self._cancel.get(share_id)
        if cancel is not None:
            cancel.set()

    async def stop(self) -> None:
        """Stop every render and wait for the render thread.

        A cancelled render stops at its next frame and removes its partial file;
        waiting for that means a restart cannot race it for the same file.
        """
        for cancel in self._cancel.values():
            cancel.set()
        await asyncio.to_thread(self._render_thread.shutdown, wait=True, cancel_futures=True)

    async def run(self) -> None:
        """Render queued shares one after the other; runs until cancelled."""
        self._loop = asyncio.get_running_loop()
        while True:
            await self._render(await self._queue.get())

    async def _render(self, share_id: str) -> None:
        """Start, render and end one share; a step that cannot be recorded is tried again.

        The queue waits meanwhile: the next share's steps would need the same audit log.
        """
        start = await self._retried(share_id, _START_WAITS, lambda: self._start(share_id))
        if start is None:
            return
        ending = start if isinstance(start, _Ending) else await self._run_job(start)
        if ending is not None:
            await self._retried(share_id, _END_WAITS, lambda: self._finish(share_id, ending))

    async def _retried(self, share_id: str, waits: str, step: Callable[[], Awaitable[_T]]) -> _T:
        """``step()``, tried again every `RETRY_AFTER_FAILURE` seconds until it works.

        A step fails when what it records cannot be written (the audit log or the share
        database, on a full disk), and then it has not happened. Given up, it would leave
        the share ``approved`` or ``rendering`` for ever, its clips held; so it waits, and
        the share's ``error`` says what for (``waits``) until it works.
        """
        failing = False
        while True:
            try:
                done = await step()
            except Exception as err:  # whatever it was, the share must not hang
                if not failing:  # one traceback, not one per try
                    _LOGGER.exception(
                        "Share %s: %s; trying again every %g s",
                        share_id,
                        waits,
                        RETRY_AFTER_FAILURE,
                    )
                failing = True
                self._note(
                    share_id, f"{waits} ({err}); trying again every {RETRY_AFTER_FAILURE:g} s"
                )
            else:
                if failing:
                    _LOGGER.info("Share %s: the render goes on", share_id)
                return done
            await asyncio.sleep(RETRY_AFTER_FAILURE)

    def _note(self, share_id: str, note: str) -> None:
        """Show why ``share_id``'s render waits (in memory: a restart renders it again)."""
        share = self._book.find(share_id)
        if share is None or share.state not in _QUEUED or share.error == note:
            return
        share = share.changed(error=note)
        self._book.keep_in_memory(share)
        self._book.publish(share)

    def _segments(self, share: Share, clips: Sequence[ClipInfo]) -> tuple[Segment, ...]:
        ordered = sorted(
            (c for c in clips if c.camera in share.cameras),
            key=lambda c: (share.cameras.index(c.camera), c.start),
        )
        return tuple(
            Segment(
                camera=clip.camera,
                path=clip.path,
                clip_start=clip.start,
                keep_from=max(clip.start, share.start),
                keep_until=min(clip.end, share.end),
                masks=self._privacy_masks[clip.camera],
            )
            for clip in ordered
            if clip.end > share.start and clip.start < share.end
        )

    async def _start(self, share_id: str) -> RenderJob | _Ending | None:
        """Mark ``share_id`` rendering; what to render, how it ended already, or None.

        None: the share is no longer to be rendered (revoked, or gone).
        """
        book = self._book
        async with book.lock:
            share = book.find(share_id)
            if share is None or share.state not in _QUEUED:
                return None
            now = await book.now()
            self._stepped[share_id] = book.stepped
            clips = await book.clips_of(share)
            redact = share.decision.redact if share.decision else True
            if share.state is ShareState.APPROVED:
                share = share.moved(ShareState.RENDERING, progress=0.0, error=None)
                await book.append(
                    "render_start", share_id=share.id, clips=[c.id for c in clips], redact=redact
                )
                await book.save(share)
            else:  # resumed, or tried again: a note of a failed try no longer applies
                share = share.changed(error=None)
                book.keep_in_memory(share)
        book.publish(share)
        # A camera taken out of the configuration since the request: its privacy masks
        # are unknown, and footage is never released without them.
        gone = [camera for camera in share.cameras if camera not in self._privacy_masks]
        if gone:
            listed = ", ".join(map(repr, gone))
            named = f"camera {listed} is" if len(gone) == 1 else f"cameras {listed} are"
            return _Ending(ShareState.FAILED, f"rendering failed: {named} no longer configured")
        # The link's end is fixed now, so the watermark can name it.
        hours = share.link_ttl_hours or self._settings.link_ttl_hours
        return RenderJob(
            share_id=share_id,
            segments=self._segments(share, clips),
            output=book.folder / export_name(share_id),
            redact_faces=redact,
            recipient=share.requester,
            link_expires=now + timedelta(hours=hours),
        )

    async def _run_job(self, job: RenderJob) -> _Ending | None:
        """Render ``job`` in the render thread; how it ended, or None when it was revoked."""
        share_id = job.share_id
        stepped = self._stepped.pop(share_id, self._book.stepped)
        cancel = threading.Event()
        self._cancel[share_id] = cancel
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._render_thread, self._renderer, job, self._progress_callback(share_id), cancel
            )
        except RenderCancelledError:
            return None
        except Exception as err:
            _LOGGER.exception("Rendering share %s failed", share_id)
            return _Ending(ShareState.FAILED, f"rendering failed: {err}")
        finally:
            self._cancel.pop(share_id, None)
        if result.frames == 0:
            return _Ending(ShareState.EMPTY, "no footage in the window")
        try:
            digest = await asyncio.to_thread(file_sha256, job.output)
        except OSError as err:  # revoked meanwhile (the file purged), or unreadable
            return _Ending(ShareState.FAILED, f"rendering failed: cannot read the export: {err}")
        assert job.link_expires is not None
        return _Ending(
            ShareState.READY,
            rendered=_Rendered(result, digest, job.output.name, job.link_expires, stepped),
        )

    async def _finish(self, share_id: str, ending: _Ending) -> None:
        """Record how ``share_id``'s render ended, and move it there."""
        book = self._book
        async with book.lock:
            share = book.find(share_id)
            if share is None:  # forgotten meanwhile: it ended long ago
                return
            new = share
            if share.state is ShareState.RENDERING:
                if ending.rendered is not None:
                    new = await self._ready(share, ending.rendered)
                else:
                    new = share.moved(ending.state, progress=None, error=ending.error)
                    await book.append(
                        "render", share_id=share_id, result=str(ending.state), error=ending.error
                    )
                    await book.save(new)
                    await book.end(new, str(ending.state))
            elif share.state not in HOLDING:
                # Revoked meanwhile: whatever was written must not stay, and its purge is
                # audited like any other.
                await book.purge_export(share, str(share.state))
        # Also when nothing moved now: a try that failed may have moved it unannounced.
        book.publish(new)
        _LOGGER.info("Share %s is %s", share_id, new.state)

    async def _ready(self, share: Share, rendered: _Rendered) -> Share:
        """Sign a rendered share and give it its link (the caller holds the lock)."""
        book = self._book
        result, file = rendered.result, rendered.file
        # A step of the clock during the render moves the link's end as it would have
        # moved a ready link's (the watermark keeps the time it was drawn with).
        await book.now()
        link_expires = rendered.link_expires + (book.stepped - rendered.stepped)
        token = new_token()
        new = share.moved(
            ShareState.READY,
            progress=1.0,
            token_hash=token_hash(token),
            link_expires=link_expires,
            file=file,
            error=None,
        )
        record = await book.append(
            "render",
            share_id=share.id,
            result="ready",
            frames=result.frames,
            seconds=round(result.seconds, 3),
            size=result.size,
            faces=result.faces,
            sha256=rendered.digest,
            link_expires=iso(link_expires),
        )
        if self.signer is not None:
            manifest = self.manifest(new, result, rendered.digest, record["seq"])
            try:
                await asyncio.to_thread(self.signer.write, book.folder / file, manifest)
            except OSError as err:
                _LOGGER.error("Cannot sign share %s: %s", share.id, err)  # noqa: TRY400
                failed = share.moved(
                    ShareState.FAILED, progress=None, error=f"the export cannot be signed: {err}"
                )
                await book.append("render", share_id=share.id, result="failed", error=failed.error)
                await book.save(failed)
                await book.end(failed.changed(file=file), "failed")
                return failed
            await book.append(
                "signed", share_id=share.id, key=self.signer.fingerprint, audit_seq=record["seq"]
            )
        await book.save(new)
        book.give_link(new, token)
        book.wake.set()  # a new link lifetime for the timers
        return new

    def manifest(
        self, share: Share, result: RenderResult, digest: str, audit_seq: int
    ) -> dict[str, Any]:
        """What the signature of ``share``'s export states (docs/sharing.md, "Signed exports")."""
        decision = share.decision
        assert decision is not None, "only an approved share is rendered"
        assert share.link_expires is not None
        return {
            "file": {"name": f"doorstep-{share.id}.mp4", "sha256": digest, "size": result.size},
            "share_id": share.id,
            "cameras": list(share.cameras),
            "start": iso(share.start),
            "end": iso(share.end),
            "reason": share.reason,
            "recipient": share.requester,
            "requested_at": iso(share.created),
            "approver": decision.by,
            "approvers": [*(approval.by for approval in share.approvals), decision.by],
            "approved_via": decision.via,
            "approved_at": iso(decision.at),
            "link_expires": iso(share.link_expires),
            "redactions": {
                "privacy_masks": {
                    camera: len(self._privacy_masks.get(camera, ())) for camera in share.cameras
                },
                "faces_blurred": decision.redact,
                "faces_found": result.faces,
            },
            "audit_seq": audit_seq,
            "signed_at": iso(self._book.clock()),
            "kind": share.kind,
            "legal": share.legal.payload() if share.legal else None,
        }

    def _progress_callback(self, share_id: str) -> Callable[[float], None]:
        loop = self._loop
        assert loop is not None

        def report(fraction: float) -> None:
            loop.call_soon_threadsafe(self._progress, share_id, fraction)

        return report

    def _progress(self, share_id: str, fraction: float) -> None:
        share = self._book.find(share_id)
        if share is None or share.state is not ShareState.RENDERING:
            return
        fraction = round(min(1.0, max(0.0, fraction)), 2)
        if fraction < 1.0 and fraction - (share.progress or 0.0) < PROGRESS_STEP:
            return
        share = share.changed(progress=fraction)
        self._book.keep_in_memory(share)
        self._book.publish(share)


def _lower_priority() -> None:
    """Nice the calling thread.

    On Linux the nice value is per thread, and the encoder threads it starts inherit it.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RENDER_NICE)
    except (OSError, AttributeError):
        _LOGGER.debug("Cannot lower the render thread's priority")
