"""The `sharing` config section: limits and requester tokens."""

from __future__ import annotations

import pytest

from doorstep_bridge.config import parse_config
from doorstep_bridge.exceptions import ConfigError


def _config(**sharing: object) -> dict[str, object]:
    return {
        "cameras": {"front_door": {"source": "rtsp://192.0.2.10/stream"}},
        "sharing": sharing,
    }


def test_short_requester_token_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(requester_tokens={"Neighbour Alice": "1234"}))
    message = str(info.value)
    assert "requester_tokens" in message
    assert "at least 16 characters" in message
    assert "1234" not in message  # the token itself is never echoed


def test_long_requester_token_is_accepted() -> None:
    token = "a-long-random-token-for-requests"
    config = parse_config(_config(requester_tokens={"Neighbour Alice": token}))
    assert config.sharing.requester_tokens == (("Neighbour Alice", token),)
