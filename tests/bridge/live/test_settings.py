"""The `cameras.<cam>.live` config section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from doorstep_bridge.config import parse_config
from doorstep_bridge.exceptions import ConfigError
from doorstep_bridge.live.settings import LiveSettings


def parse(live: Any) -> LiveSettings:
    raw = {"cameras": {"front_door": {"source": "demo://", "live": live}}}
    return parse_config(raw, Path("/tmp")).cameras["front_door"].live


def test_defaults_and_values() -> None:
    defaults = parse_config({"cameras": {"front_door": {"source": "demo://"}}}, Path("/tmp"))
    assert defaults.cameras["front_door"].live == LiveSettings()
    assert LiveSettings().source == "detect"
    assert parse({"source": "main", "fps": 15, "max_viewers": 2, "quality": 70, "linger": 0}) == (
        LiveSettings(source="main", fps=15, max_viewers=2, quality=70, linger=0)
    )


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        ({"source": "sub"}, "cameras.front_door.live.source: expected detect or main"),
        ({"fps": 0}, "cameras.front_door.live.fps: expected a number >= 0.5"),
        ({"max_viewers": 0}, "cameras.front_door.live.max_viewers"),
        ({"quality": 101}, "cameras.front_door.live.quality"),
        ({"webrtc": True}, "cameras.front_door.live.webrtc: unknown key"),
    ],
)
def test_bad_values_name_the_key(live: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(live)
    assert any(problem.startswith(expected) for problem in info.value.problems), info.value.problems
