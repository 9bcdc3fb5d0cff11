"""The `cameras.<cam>.motion` section: defaults and validation of every key."""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol

from doorstep_bridge.motion.settings import MOTION_SCHEMA, MotionSettings, motion_settings


def test_empty_section_gives_the_defaults() -> None:
    assert motion_settings(MOTION_SCHEMA({})) == MotionSettings()


def test_every_key_is_read() -> None:
    raw = {
        "sensitivity": 0.7,
        "min_area": 0.01,
        "frames_to_start": 3,
        "off_delay": 10,
        "still_hold": 30,
        "lighting_compensation": False,
        "masks": [[[0, 0], [100, 0], [100, 50]]],
        "zones": {"path": [[0, 0], [50, 0], [50, 50]], "step": [[60, 60], [90, 60], [90, 90]]},
    }
    settings = motion_settings(MOTION_SCHEMA(raw))
    assert settings == MotionSettings(
        sensitivity=0.7,
        min_area=0.01,
        frames_to_start=3,
        off_delay=10.0,
        still_hold=30.0,
        lighting_compensation=False,
        masks=(((0, 0), (100, 0), (100, 50)),),
        zones=(
            ("path", ((0, 0), (50, 0), (50, 50))),
            ("step", ((60, 60), (90, 60), (90, 90))),
        ),
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sensitivity", 1.5),
        ("sensitivity", "high"),
        ("min_area", -0.1),
        ("frames_to_start", 0),
        ("frames_to_start", 1.5),
        ("off_delay", -1),
        ("still_hold", True),
        ("still_hold", 601),
        ("lighting_compensation", "yes"),
        ("masks", [[[0, 0], [1, 1]]]),
        ("zones", []),
        ("zones", {"path": [[0, 0], [1, 1]]}),
        ("zones", {"": [[0, 0], [5, 0], [5, 5]]}),
    ],
)
def test_bad_values_are_refused_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(vol.Invalid) as info:
        MOTION_SCHEMA({key: value})
    assert key in str(info.value)
