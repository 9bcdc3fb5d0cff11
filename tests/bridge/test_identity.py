"""The bridge's identity files: what a start makes of them, and what it refuses."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest
import yaml

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.identity import (
    API_TOKEN_FILE,
    BRIDGE_ID_FILE,
    MIN_TOKEN_LENGTH,
    MQTT_CLIENT_KEY_FILE,
    api_token,
    bridge_id,
    mqtt_client_id,
)
from tests.bridge.conftest import free_port


def _read(storage: Path, name: str) -> str:
    if name == BRIDGE_ID_FILE:
        return bridge_id(storage)[0]
    if name == API_TOKEN_FILE:
        return api_token(storage, None)
    return mqtt_client_id(storage, "0123456789abcdef", new_bridge=False)[0]


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        (
            BRIDGE_ID_FILE,
            (
                "save it again as UTF-8; deleting it gives the bridge a new id: Home Assistant then"
                " makes new devices and entities for it, and share links already sent stop working"
            ),
        ),
        (
            API_TOKEN_FILE,
            (
                "save it again as UTF-8, or delete it to have a new token made"
                " (Home Assistant then asks for it)"
            ),
        ),
        (
            MQTT_CLIENT_KEY_FILE,
            (
                "delete it to have a new one made (the bridge then has a new MQTT client id; presses"
                " the broker kept for the old one while the bridge was stopped are not delivered)"
            ),
        ),
    ],
)
def test_a_file_saved_as_utf16_is_named_not_a_traceback(
    tmp_path: Path, name: str, advice: str
) -> None:
    """As a Windows editor saves it over a Samba share of the storage folder."""
    path = tmp_path / name
    path.write_text("a1b2c3d4e5f6a7b8c9d0e1f2\n", encoding="utf-16")
    with pytest.raises(StorageError) as info:
        _read(tmp_path, name)
    assert str(info.value) == f"{path} is not UTF-8 text: {advice}"
    assert path.read_bytes().startswith(b"\xff\xfe")  # left as it was, for the owner to fix


@pytest.mark.parametrize("name", [BRIDGE_ID_FILE, API_TOKEN_FILE, MQTT_CLIENT_KEY_FILE])
def test_a_byte_order_mark_is_not_part_of_the_value(tmp_path: Path, name: str) -> None:
    """Notepad's "UTF-8 with BOM": the value is the text after the mark."""
    (tmp_path / name).write_text("a1b2c3d4e5f6a7b8c9d0e1f2\r\n", encoding="utf-8-sig")
    assert _read(tmp_path, name).endswith("a1b2c3d4e5f6a7b8c9d0e1f2")
    assert "\ufeff" not in _read(tmp_path, name)


def run_bridge_once(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`doorstep-bridge run` with the storage folder tmp_path/data, until it stops by itself."""
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"port": free_port()},  # never reached: the start stops before
                "http": {"port": free_port()},
                "storage": {"path": str(tmp_path / "data")},
                "cameras": {"front_door": {"source": "demo://"}},
            }
        )
    )
    return subprocess.run(
        [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_stops_with_the_file_named_when_it_is_not_utf8(tmp_path: Path) -> None:
    token = tmp_path / "data" / API_TOKEN_FILE
    token.parent.mkdir(mode=0o700)
    token.write_text("a-token-of-the-owners-own-choosing\n", encoding="utf-16")
    result = run_bridge_once(tmp_path)
    assert result.returncode == 1
    assert f"{token} is not UTF-8 text: save it again as UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


SHORT_TOKEN = (
    "{path} holds an API token of 3 characters; it needs at least 16, as http.token does:"
    " write a longer one there (and give it to Home Assistant), or delete the file to have"
    " a new one made (Home Assistant then asks for it)"
)


def test_a_short_hand_written_token_is_refused_and_kept(tmp_path: Path) -> None:
    """Not replaced: the owner's Home Assistant uses it, and would be locked out unawares."""
    path = tmp_path / API_TOKEN_FILE
    path.write_text("q7Z\n")
    with pytest.raises(StorageError) as info:
        api_token(tmp_path, None)
    assert str(info.value) == SHORT_TOKEN.format(path=path)
    assert path.read_text() == "q7Z\n"


def test_a_hand_written_token_as_long_as_http_token_needs_is_used(tmp_path: Path) -> None:
    (tmp_path / API_TOKEN_FILE).write_text("x" * MIN_TOKEN_LENGTH + "\n")
    assert api_token(tmp_path, None) == "x" * MIN_TOKEN_LENGTH
    # The configured token wins; the file is not even read.
    assert api_token(tmp_path, "configured-token-0123456789") == "configured-token-0123456789"


def test_run_stops_on_a_short_token_file_without_a_traceback(tmp_path: Path) -> None:
    token = tmp_path / "data" / API_TOKEN_FILE
    token.parent.mkdir(mode=0o700)
    token.write_text("q7Z\n")
    result = run_bridge_once(tmp_path)
    assert result.returncode == 1
    assert SHORT_TOKEN.format(path=token) in result.stderr
    assert "q7Z" not in result.stderr.replace(str(tmp_path), "")
    assert "Traceback" not in result.stderr
