"""The integration's modules import downwards only, and never in a loop.

Read from the source with ``ast``: nothing is imported. Every import of one of
the integration's own modules counts, wherever it is, including the ones under
``if TYPE_CHECKING:`` (an annotation that names a higher module still ties the
lower one to it) and the ones inside functions (a late import hides a loop, it
does not remove it). A module may import from its own layer or a lower one; a
new module must be given a layer here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.layering import find_loop, layer_index, upward_imports
from tests.support.layering import import_graph as package_import_graph

INTEGRATION = Path(__file__).resolve().parents[3] / "custom_components" / "doorstep"
PACKAGE = "custom_components.doorstep"

LAYERS: tuple[frozenset[str], ...] = (
    # 0. The wire and the HA version differences: what everything else stands on.
    frozenset({"const", "protocol", "api", "compat"}),
    # 1. Pure helpers of one concern each: notification wording, the bridge-to-HA
    #    error table, nonce bookkeeping, audit records waiting for the bridge, presses rung.
    frozenset({"notifications", "errors", "prompts", "backlog", "rung"}),
    # 2. The bridge's state as HA sees it.
    frozenset({"coordinator"}),
    # 3. What happens to share requests: decisions and phone approvals.
    frozenset({"decisions", "approvals"}),
    # 4. The typed runtime data that bundles layers 2 and 3, and lookups over it.
    frozenset({"data", "helpers"}),
    # 5. What HA calls: the entity base and the platforms; actions, views, the media
    #    browser, diagnostics and the logbook.
    frozenset({"entity", "binary_sensor", "button", "camera", "event", "image", "sensor", "switch"})
    | frozenset({"services", "media_source", "views", "diagnostics", "logbook"})
    | frozenset({"device_trigger"})
    | frozenset({"websocket", "panel"}),
    # 6. Setup and the config flow, which wire the rest together.
    frozenset({"__init__", "config_flow"}),
)
#: The wire modules could be a library of their own; the wording is pure text.
WITHOUT_HOME_ASSISTANT = frozenset({"const", "protocol", "api", "notifications"})


def _layer_of() -> dict[str, int]:
    return layer_index(LAYERS)


def import_graph(directory: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """For each module of ``directory``: the sibling modules and the packages it imports."""
    return package_import_graph(directory, PACKAGE)


def test_every_module_has_a_layer() -> None:
    graph, _ = import_graph(INTEGRATION)
    layer_of = _layer_of()
    assert sum(len(modules) for modules in LAYERS) == len(layer_of), "a module in two layers"
    assert set(graph) - set(layer_of) == set(), "give the new module a layer in LAYERS"
    assert set(layer_of) - set(graph) == set(), "a layer names a module that is gone"


def test_no_import_loop() -> None:
    graph, _ = import_graph(INTEGRATION)
    assert find_loop(graph) is None


def test_no_upward_import() -> None:
    graph, _ = import_graph(INTEGRATION)
    assert upward_imports(graph, _layer_of()) == []


def test_wire_and_wording_without_home_assistant() -> None:
    _, packages = import_graph(INTEGRATION)
    for module in sorted(WITHOUT_HOME_ASSISTANT):
        assert "homeassistant" not in packages[module], module


def _write(directory: Path, sources: dict[str, str]) -> Path:
    for name, source in sources.items():
        (directory / f"{name}.py").write_text(source)
    return directory


@pytest.mark.parametrize(
    "import_line",
    [
        "from .coordinator import DoorstepCoordinator",
        "from . import coordinator",
        "import custom_components.doorstep.coordinator",
        "from custom_components.doorstep.coordinator import DoorstepCoordinator",
        "if TYPE_CHECKING:\n    from .coordinator import DoorstepCoordinator",
        "def late():\n    from .coordinator import DoorstepCoordinator",
    ],
)
def test_the_checks_see_every_import_form(tmp_path: Path, import_line: str) -> None:
    """A wire module importing the coordinator is both upward and, here, a loop."""
    graph, _ = import_graph(
        _write(
            tmp_path,
            {
                "api": f"{import_line}\n",
                "coordinator": "from .api import DoorstepApiClient\n",
                "const": "import logging\n",
            },
        )
    )
    assert graph == {"api": {"coordinator"}, "coordinator": {"api"}, "const": set()}
    assert find_loop(graph) == ["api", "coordinator", "api"]
    assert upward_imports(graph, _layer_of()) == ["api (0) -> coordinator (2)"]


def test_a_loop_within_one_layer_is_found(tmp_path: Path) -> None:
    graph, _ = import_graph(
        _write(
            tmp_path,
            {
                "decisions": "from .approvals import ApprovalManager\n",
                "approvals": "from .prompts import PromptBook\n",
                "prompts": "from .decisions import ShareDecisions\n",
            },
        )
    )
    assert upward_imports(graph, _layer_of()) == ["prompts (1) -> decisions (3)"]
    assert find_loop(graph) == ["approvals", "prompts", "decisions", "approvals"]
    graph["prompts"] = set()
    graph["approvals"] = {"decisions"}
    assert find_loop(graph) == ["approvals", "decisions", "approvals"]
    assert upward_imports(graph, _layer_of()) == []
