"""Link serving: check a link token, audit the download, name the file to send."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doorstep_bridge.sharing.book import ShareBook
from doorstep_bridge.sharing.decisions import ShareDecisions
from doorstep_bridge.sharing.links import token_hash, valid_token
from doorstep_bridge.sharing.repeats import Entry
from doorstep_bridge.sharing.signing import SIGNATURE_SUFFIX, signature_path
from doorstep_bridge.sharing.state import (
    Share,
    ShareGoneError,
    ShareLimitError,
    ShareNotFoundError,
    ShareState,
)
from doorstep_bridge.text import clean_text

#: Downloads of a share that is no longer available answer 410, others 404.
GONE = frozenset({ShareState.EXPIRED, ShareState.REVOKED})


@dataclass(frozen=True, slots=True)
class Download:
    """A download the link allows: the file, the name to offer, and when to stop sending it."""

    path: Path
    filename: str
    #: Set when the share is revoked or expires: a transfer under way is cut off then.
    withdrawn: asyncio.Event

    @property
    def signature(self) -> Path:
        """The export's signature file (docs/sharing.md, "Signed exports")."""
        return signature_path(self.path)

    @property
    def signature_filename(self) -> str:
        """The name to offer for the signature: the export's, plus the suffix."""
        return self.filename + SIGNATURE_SUFFIX


class ShareDownloads:
    """Answers share links.

    Args:
        book: The shares.
        decisions: Expires a link found past its lifetime before answering it.
    """

    def __init__(self, book: ShareBook, decisions: ShareDecisions) -> None:
        self._book = book
        self._decisions = decisions

    async def download(
        self, token: str, client: str | None, agent: str | None, **details: Any
    ) -> Download:
        """Check a link token and audit the download before it is served.

        Raises:
            ShareNotFoundError: Not a token of any share (404).
            ShareGoneError: Expired or revoked (410).
            ShareLimitError: Too many different clients on the link this minute (429).
            AuditError: The audit log cannot be written: nothing is served (503).
        """
        book = self._book
        if not valid_token(token):
            raise ShareNotFoundError("no such share link")
        # Client details come from request headers: kept as valid text whatever was sent.
        client, agent = _clean_or_none(client), _clean_or_none(agent)
        details = {
            key: clean_text(value) if isinstance(value, str) else value
            for key, value in details.items()
        }
        # The file is part of who asked, so a summed burst still tells the video
        # from the page and the signature (the report counts video downloads).
        who: Entry = (
            ("client", client),
            ("agent", agent),
            ("via", details.get("via")),
            ("file", details.get("file")),
        )
        if "method" in details:
            who += (("method", details["method"]),)
        # Under the lock, as decisions and expiries are: a revoke or an expiry cannot slip
        # in between the check and the audit record, so a download is only ever recorded
        # (and served) while the share is ready, and the log has it before the revoke.
        async with book.lock:
            return await self._check_and_audit(token, client, agent, who, details)

    async def _check_and_audit(
        self,
        token: str,
        client: str | None,
        agent: str | None,
        who: Entry,
        details: dict[str, Any],
    ) -> Download:
        """The body of :meth:`download` (the caller holds the lock)."""
        book = self._book
        now = await book.now()  # first: it may move the link's end
        share = book.by_token_hash(token_hash(token))
        if share is None:
            raise ShareNotFoundError("no such share link")
        if share.state is ShareState.READY and share.link_expires and now >= share.link_expires:
            await self._decisions.expire(share, "the link reached its lifetime")
            share = book.existing(share.id)
        fields = {"share_id": share.id, "client": client, "agent": agent, **details}
        if share.state in GONE:
            await self._refused(share, who, fields)
            raise ShareGoneError(f"this share link was {share.state}")
        if share.state is not ShareState.READY or share.file is None:
            raise ShareNotFoundError("no such share link")
        # The first requests of each client are written before a byte is sent; a burst
        # of further ones (a player's Range requests, a script) is summed. A client new
        # to a link that already wrote its share of records is refused: counted, it would
        # be served without a record naming it.
        if not await book.append_repeatable(
            "download", ("share_id", share.id), who, refuse_new=True, **fields
        ):
            await self._refused(share, who, fields, "too many clients")
            raise ShareLimitError(
                "too many different clients on this link in the last minute; try again in a minute"
            )
        return Download(
            path=book.folder / share.file,
            filename=f"doorstep-{share.id}.mp4",
            withdrawn=book.withdrawn(share.id),
        )

    async def _refused(
        self, share: Share, who: Entry, fields: dict[str, Any], reason: str | None = None
    ) -> None:
        """Audit a refused request on a link (summed in a burst, as downloads are)."""
        record: dict[str, Any] = {"state": str(share.state), **fields}
        if reason is not None:
            record["reason"] = reason
        await self._book.append_repeatable(
            "download_refused", ("share_id", share.id), who, **record
        )


def _clean_or_none(text: str | None) -> str | None:
    return None if text is None else clean_text(text)
