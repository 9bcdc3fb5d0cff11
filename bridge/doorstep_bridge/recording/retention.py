"""Retention: delete old clips, keep the store under its size cap, keep room on the disk.

- Clips are deleted once they ended longer ago than the period of their kind
  (``storage.retention.ring`` / ``person`` / ``motion`` / ``manual``;
  ``storage.retention_days`` for a kind not listed there). A ``person`` clip is a
  motion clip during which person detection saw someone (the store's sightings).
- With ``storage.max_size_gb``, the oldest clips go until the store fits.
- Before each new clip, when the disk has less than ``min_free_bytes`` free, the
  oldest clips go until it has (a full disk must not stop the doorbell's clips) —
  but only clips older than ``MIN_AGE_FOR_SPACE``, and only when they can cover
  the whole shortfall. When something else filled the disk, deleting the clip
  history would not help: nothing is deleted and the problem is reported instead.
- A clip held by an active share is never deleted. Every deletion is logged and
  recorded in the store's ``events`` table.
- Each run also retries the repairs a full disk put off at start (the store logs them).
- Before any of that, a step of the wall clock (NTP setting a stale clock) moves the
  times of the clips this run recorded before it (:meth:`ClipStore.follow_clock`):
  a visit recorded at a 1970 clock is not 56 years old. While the index cannot take
  that, nothing is deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import logging
import shutil
import threading
from typing import TYPE_CHECKING

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.models import ClipInfo, utcnow
from doorstep_bridge.recording.settings import CLIP_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from doorstep_bridge.recording.settings import StorageSettings
    from doorstep_bridge.recording.store import ClipStore

_LOGGER = logging.getLogger(__name__)

#: Free space kept for new clips unless told otherwise (a few minutes of 1080p).
DEFAULT_MIN_FREE_BYTES = 256 * 1024 * 1024
_BATCH = 100
#: Clips younger than this are never deleted to free disk space.
MIN_AGE_FOR_SPACE = timedelta(hours=1)


class Retention:
    """Applies the storage limits to a clip store (thread-safe, blocking).

    Args:
        store: The clip store.
        settings: ``storage`` settings (the retention periods, max_size_gb).
        min_free_bytes: Disk space to keep free for new clips.
        free_bytes: Measures free disk space (injectable for tests).
        now: Current time (injectable for tests).
        on_delete: Called after each deletion with the clip and why (the audit log).
        on_repair: Called with each clip a run repaired (it is listed from now on).
        on_step: Called with the ids of the clips whose times followed a step of the
            wall clock (their announcements are out of date).
    """

    def __init__(
        self,
        store: ClipStore,
        settings: StorageSettings,
        *,
        min_free_bytes: int | None = None,
        free_bytes: Callable[[], int] | None = None,
        now: Callable[[], datetime] = utcnow,
        on_delete: Callable[[ClipInfo, str], None] | None = None,
        on_repair: Callable[[ClipInfo], None] | None = None,
        on_step: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._store = store
        self._on_step = on_step
        self._on_delete = on_delete
        self._on_repair = on_repair
        self._settings = settings
        self.min_free_bytes = DEFAULT_MIN_FREE_BYTES if min_free_bytes is None else min_free_bytes
        self._free_bytes = free_bytes or (lambda: shutil.disk_usage(store.root).free)
        self._now = now
        self._lock = threading.Lock()
        #: Why the last :meth:`make_room` could not free enough space, or None.
        self.problem: str | None = None
        # Said once while the disk stays too full: make_room runs before every clip
        # attempt, every 2 s while recording waits for room.
        self._problem_said = False
        # A step the index could not take: said once until it can.
        self._step_failing = False

    def follow_clock(self) -> None:
        """Move the times of this run's clips by a step of the wall clock, if it stepped."""
        with self._lock:
            self._follow_clock()

    def _follow_clock(self) -> bool:
        """Follow a step of the wall clock; False while the index cannot take it.

        Clips stamped before the step must not be judged by the stamp: until they
        have moved, nothing may be deleted for its age or as the oldest.
        """
        try:
            followed = self._store.follow_clock()
        except StorageError as err:
            if not self._step_failing:
                _LOGGER.error("Retention deletes nothing until the clock step is followed: %s", err)  # noqa: TRY400
                self._step_failing = True
            return False
        self._step_failing = False
        if followed is None:
            return True
        step, moved = followed
        _LOGGER.warning(
            "The system clock stepped by %+.0f s; the times of %d clip(s) recorded since the"
            " bridge started moved with it, so retention and the clip lists go by the real time",
            step.total_seconds(),
            len(moved),
        )
        if moved and self._on_step is not None:
            self._on_step(moved)
        return True

    def run(self) -> list[ClipInfo]:
        """Delete expired clips, then the oldest while the store is over its size cap.

        Then, with whatever room that made, clips a full disk kept from being
        repaired at start are repaired.
        """
        with self._lock:
            if not self._follow_clock():
                return []
            deleted = self._expired()
            if self._settings.max_size_gb is not None:
                cap = int(self._settings.max_size_gb * 1024**3)
                # Clips a share holds are kept whatever the cap, so they do not count: when
                # they alone were over it, every other clip went, the newest visit too, at
                # every run until the share ended. They come under the cap once released.
                deleted += self._shrink(
                    lambda: self._store.usage(held=False)[0] > cap,
                    f"store over max_size_gb ({self._settings.max_size_gb:g})",
                )
        for clip in self._store.retry_repairs():
            if self._on_repair is not None:
                self._on_repair(clip)
        return deleted

    def make_room(self) -> list[ClipInfo]:
        """Free ``min_free_bytes`` on the disk by deleting the oldest clips, if they can.

        Only clips older than ``MIN_AGE_FOR_SPACE`` and held by no share count.
        When they cannot cover the whole shortfall, none is deleted and
        :attr:`problem` says why.
        """
        with self._lock:
            # Also right before a new clip is indexed: a clip stamped after a step must not
            # be moved by it as well.
            followed = self._follow_clock()
            free = self._free()
            shortfall = self.min_free_bytes - free
            self.problem = None
            if shortfall <= 0:
                self._problem_said = False
                return []
            if not followed:
                self.problem = (
                    "disk almost full, and the clip times could not follow a step of the"
                    " system clock (see the log); nothing was deleted"
                )
                return []
            chosen: list[ClipInfo] = []
            covered = 0
            before = self._now() - MIN_AGE_FOR_SPACE
            while covered < shortfall:
                batch = self._store.deletable(before=before, limit=_BATCH, offset=len(chosen))
                for clip in batch:
                    chosen.append(clip)
                    covered += clip.size
                    if covered >= shortfall:
                        break
                if len(batch) < _BATCH:
                    break
            mib = 1024 * 1024
            if covered < shortfall:
                self.problem = (
                    f"disk almost full ({free / mib:.1f} MiB free,"
                    f" {self.min_free_bytes / mib:.1f} MiB wanted) and the clips older than"
                    f" {MIN_AGE_FOR_SPACE.total_seconds() / 3600:g} h cannot free enough;"
                    " nothing was deleted: free space on the disk"
                )
                if not self._problem_said:
                    _LOGGER.error("Retention: %s", self.problem)
                    self._problem_said = True
                else:
                    _LOGGER.debug("Retention: %s", self.problem)
                return []
            self._problem_said = False
            why = f"disk has less than {self.min_free_bytes // mib} MiB free"
            return [clip for clip in chosen if self._delete(clip, why)]

    def _free(self) -> int:
        try:
            return self._free_bytes()
        except OSError:
            return self.min_free_bytes  # unknown: do not delete on a guess

    def _expired(self) -> list[ClipInfo]:
        deleted: list[ClipInfo] = []
        for kind in CLIP_KINDS:
            days = self._settings.retention.days(kind)
            before = self._now() - timedelta(days=days)
            why = f"{kind} clip older than {days:g} days"
            while True:
                batch = self._store.deletable(before=before, reason=kind, limit=_BATCH)
                removed = [clip for clip in batch if self._delete(clip, why)]
                deleted += removed
                if len(batch) < _BATCH or not removed:
                    break
        longest = max(self._settings.retention.payload().values())
        self._store.forget_sightings(self._now() - timedelta(days=longest + 1))
        return deleted

    def _shrink(self, too_big: Callable[[], bool], why: str) -> list[ClipInfo]:
        deleted: list[ClipInfo] = []
        while too_big():
            batch = self._store.deletable(limit=1)
            if not batch or not self._delete(batch[0], why):
                if not batch:
                    _LOGGER.warning("Retention: %s, but every remaining clip is held", why)
                break
            deleted.append(batch[0])
        return deleted

    def _delete(self, clip: ClipInfo, why: str) -> bool:
        if self._store.delete(clip.id, why) is None:
            return False
        _LOGGER.info(
            "Retention deleted clip %s (%s, %s): %s", clip.id, clip.camera, clip.start, why
        )
        if self._on_delete is not None:
            try:
                self._on_delete(clip, why)
            except Exception:
                _LOGGER.exception("Could not record the deletion of clip %s", clip.id)
        return True
