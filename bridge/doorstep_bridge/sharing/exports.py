"""Exports: render approved shares, one at a time, and give the ready ones a link.

Renders run in one thread of their own at a lower CPU priority, so a long
export never delays live recording, rings or the event loop's workers. Progress
is reported from that thread to the loop with ``call_soon_threadsafe``; a
revocation stops a render at its next frame through a ``threading.Event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
import logging
import os
import threading
from typing import Any, TypeAlias

from doorstep_bridge.models import ClipInfo, iso
from doorstep_bridge.sharing.book import ShareBook, unlink
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
from doorstep_bridge.sharing.state import Share, ShareState
from doorstep_bridge.validation import Polygon

_LOGGER = logging.getLogger(__name__)

#: Progress is published in steps of this much.
PROGRESS_STEP = 0.05
#: Nice value of the render thread.
RENDER_NICE = 10

Renderer: TypeAlias = Callable[[RenderJob, Callable[[float], None], threading.Event], RenderResult]


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
            share_id = await self._queue.get()
            try:
                await self._render(share_id)
            except Exception:
                _LOGGER.exception("Rendering share %s failed", share_id)

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

    async def _render(self, share_id: str) -> None:
        book = self._book
        async with book.lock:
            share = book.find(share_id)
            if share is None or share.state not in (ShareState.APPROVED, ShareState.RENDERING):
                return
            clips = await book.clips_of(share)
            segments = self._segments(share, clips)
            redact = share.decision.redact if share.decision else True
            if share.state is ShareState.APPROVED:
                share = share.moved(ShareState.RENDERING, progress=0.0)
                await book.append(
                    "render_start", share_id=share.id, clips=[c.id for c in clips], redact=redact
                )
                await book.save(share)
        book.publish(share)
        cancel = threading.Event()
        self._cancel[share_id] = cancel
        output = book.folder / f"{share_id}.mp4"
        # The link's end is fixed now, so the watermark can name it.
        hours = share.link_ttl_hours or self._settings.link_ttl_hours
        expires = book.clock() + timedelta(hours=hours)
        job = RenderJob(
            share_id=share_id,
            segments=segments,
            output=output,
            redact_faces=redact,
            recipient=share.requester,
            link_expires=expires,
        )
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._render_thread, self._renderer, job, self._progress_callback(share_id), cancel
            )
        except RenderCancelledError:
            return
        except Exception as err:
            _LOGGER.exception("Rendering share %s failed", share_id)
            await self._finish(share_id, ShareState.FAILED, error=f"rendering failed: {err}")
            return
        finally:
            self._cancel.pop(share_id, None)
        if result.frames == 0:
            await self._finish(share_id, ShareState.EMPTY, error="no footage in the window")
            return
        digest = await asyncio.to_thread(file_sha256, output)
        await self._finish(
            share_id,
            ShareState.READY,
            result=result,
            digest=digest,
            file=output.name,
            expires=expires,
        )

    async def _finish(
        self,
        share_id: str,
        state: ShareState,
        *,
        error: str | None = None,
        result: RenderResult | None = None,
        digest: str | None = None,
        file: str | None = None,
        expires: datetime | None = None,
    ) -> None:
        book = self._book
        async with book.lock:
            share = book.existing(share_id)
            if share.state is not ShareState.RENDERING:
                # Revoked meanwhile: whatever was written must not stay.
                if file:
                    await asyncio.to_thread(unlink, book.folder / file)
                return
            if state is ShareState.READY:
                assert result is not None
                assert digest is not None
                assert file is not None
                assert expires is not None
                new = await self._ready(share, result, digest, file, expires)
            else:
                new = share.moved(state, progress=None, error=error)
                await book.append("render", share_id=share_id, result=str(state), error=error)
                await book.save(new)
                await book.end(new, str(state))
        book.publish(new)
        _LOGGER.info("Share %s is %s", share_id, new.state)

    async def _ready(
        self, share: Share, result: RenderResult, digest: str, file: str, expires: datetime
    ) -> Share:
        """Sign a rendered share and give it its link (the caller holds the lock)."""
        book = self._book
        token = new_token()
        new = share.moved(
            ShareState.READY,
            progress=1.0,
            token_hash=token_hash(token),
            link_expires=expires,
            file=file,
        )
        record = await book.append(
            "render",
            share_id=share.id,
            result="ready",
            frames=result.frames,
            seconds=round(result.seconds, 3),
            size=result.size,
            faces=result.faces,
            sha256=digest,
            link_expires=iso(expires),
        )
        if self.signer is not None:
            manifest = self.manifest(new, result, digest, record["seq"])
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
        self._book.keep_progress(share)
        self._book.publish(share)


def _lower_priority() -> None:
    """Nice the calling thread.

    On Linux the nice value is per thread, and the encoder threads it starts inherit it.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RENDER_NICE)
    except (OSError, AttributeError):
        _LOGGER.debug("Cannot lower the render thread's priority")
