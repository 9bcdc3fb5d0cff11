"""What the share workflow needs from the clip store (``recording.store.ClipStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from doorstep_bridge.models import ClipInfo


class ClipSource(Protocol):
    """The clip store as sharing sees it: find clips, hold them from retention."""

    def clips_between(
        self, cameras: Sequence[str], start: datetime, end: datetime
    ) -> list[ClipInfo]:
        """Finished clips of `cameras` overlapping [start, end], oldest first."""
        ...

    def hold(self, share_id: str, clip_ids: Sequence[str]) -> None:
        """Keep these clips from retention until `release(share_id)`."""
        ...

    def release(self, share_id: str) -> None:
        """Drop every hold of `share_id`."""
        ...
