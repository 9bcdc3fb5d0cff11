"""Every complete bridge config in the docs passes ``doorstep-bridge check``.

A fence's info string says what a YAML block is: ``yaml`` is a complete bridge
config (loaded here with ``load_config``, as ``check`` does), ``yaml fragment`` a
part of one (valid YAML whose top-level keys are bridge keys), and ``yaml
homeassistant`` Home Assistant configuration (valid YAML only). A block with no
such word fails, so a new example is never left untested by accident. And the
configuration reference has a row for every ``sharing`` key.
"""

from __future__ import annotations

from pathlib import Path
import re

import pytest
import yaml

from doorstep_bridge.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```(yaml[^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
KINDS = ("yaml", "yaml fragment", "yaml homeassistant")
#: The top-level keys of a bridge config (docs/configuration.md).
BRIDGE_KEYS = {"name", "mqtt", "http", "storage", "cameras", "sharing"}


def _blocks() -> list[tuple[str, str, str]]:
    """(where, kind, text) of every YAML block of the docs and the README."""
    found: list[tuple[str, str, str]] = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{document.relative_to(ROOT)}:{line}", match[1].strip(), match[2]))
    return found


BLOCKS = _blocks()
COMPLETE = [(where, text) for where, kind, text in BLOCKS if kind == "yaml"]


def test_every_block_says_what_it_is() -> None:
    unmarked = [f"{where}: ```{kind}" for where, kind, _ in BLOCKS if kind not in KINDS]
    assert unmarked == [], f"mark each YAML block as one of {KINDS}"


def test_there_are_complete_examples() -> None:
    assert len(COMPLETE) >= 2, COMPLETE


@pytest.mark.parametrize(("where", "text"), COMPLETE, ids=[where for where, _ in COMPLETE])
def test_complete_example_is_valid(where: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "doorstep.yaml"
    path.write_text(text, encoding="utf-8")
    # Raises ConfigError with one line per problem, as `check` prints them.
    load_config(path)


@pytest.mark.parametrize(
    ("where", "kind", "text"),
    [block for block in BLOCKS if block[1] != "yaml"],
    ids=[where for where, kind, _ in BLOCKS if kind != "yaml"],
)
def test_fragment_is_yaml(where: str, kind: str, text: str) -> None:
    data = yaml.safe_load(text)
    assert isinstance(data, dict), where
    if kind == "yaml fragment":
        assert set(data) <= BRIDGE_KEYS, f"{where}: not a part of a bridge config"


def test_every_sharing_key_has_a_row_in_the_configuration_reference() -> None:
    from doorstep_bridge.sharing.settings import SHARING_SCHEMA

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text.split("## `sharing`", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert {str(key) for key in SHARING_SCHEMA.schema} - rows == set()
