"""The bridge's modules import downwards only, and never in a loop.

Read from the source with ``ast``: nothing is imported (see
``tests/support/layering.py`` for what counts as an import: all of them,
including ``TYPE_CHECKING`` and function-level ones). A module may import from
its own layer or a lower one; a new module must be given a layer here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.layering import find_loop, import_graph, layer_index, upward_imports

BRIDGE = Path(__file__).resolve().parents[2] / "bridge" / "doorstep_bridge"
PACKAGE = "doorstep_bridge"

LAYERS: tuple[frozenset[str], ...] = (
    # 0. What everything stands on: the error tree, the shared records and the event
    #    bus, value checks, durable writes, SQLite opened even on a full disk, URL
    #    redaction, encoded packets, the bridge's identity on disk, the one place that
    #    builds MQTT topics, frame conversions, and telling steps of the wall clock.
    frozenset({"__init__", "exceptions", "models", "events", "validation", "files", "urls", "text"})
    | frozenset({"clock"})
    | frozenset({"wal"})
    | frozenset({"packets", "identity", "mqtt.topics", "mqtt.payloads", "convert"})
    | frozenset({"camera", "http", "live", "mqtt", "recording", "sharing"})  # empty packages
    | frozenset({"detect"}),
    # 1. Settings, validated at the edge into frozen dataclasses: each feature's own,
    #    and `config`, which reads the file and composes them.
    frozenset({"motion.settings", "recording.settings", "sharing.settings", "live.settings"})
    | frozenset({"detect.settings"})
    | frozenset({"config"}),
    # 2. Parts of one concern each: motion scoring, clip writing and storage, camera
    #    sources, the broker client, the audit log, the share record and its database,
    #    rendering and redaction.
    frozenset({"motion", "motion.types", "motion.lighting", "motion.gate", "motion.luma"})
    | frozenset({"motion.detector", "motion.scoring"})
    | frozenset({"recording.masks", "recording.buffer", "recording.writer"})
    | frozenset({"recording.snapshots", "recording.store", "recording.recorder"})
    | frozenset({"recording.retention"})
    | frozenset({"camera.sources", "camera.rtsp", "camera.demo", "camera.switches"})
    | frozenset({"camera.mask_sizes"})
    | frozenset({"mqtt.ignored", "mqtt.client"})
    | frozenset({"sharing.audit", "sharing.state", "sharing.database", "sharing.links"})
    | frozenset({"sharing.clips", "sharing.repeats", "sharing.fields", "sharing.redact"})
    | frozenset({"sharing.render", "sharing.signing", "sharing.report", "sharing.faces"})
    | frozenset({"egress"})
    | frozenset({"detect.hog", "detect.person", "detect.packages", "detect.ssdlite"})
    | frozenset({"detect.privacy"})
    # The HA OS add-on's options turned into a config.
    | frozenset({"addon"}),
    # 3. The long-lived services, plain classes: cameras, live view, doorbell, what
    #    goes out to and comes in from MQTT, and the share workflow.
    frozenset({"camera.pipeline", "camera.manager", "live.stream", "doorbell"})
    | frozenset({"mqtt.publisher", "mqtt.commands"})
    | frozenset({"sharing.book", "sharing.requests", "sharing.exports", "sharing.decisions"})
    | frozenset({"sharing.downloads", "sharing.service"}),
    # 4. The typed app keys that name every service.
    frozenset({"keys"}),
    # 5. The HTTP edge: handlers read the services from the app keys.
    frozenset({"http.auth", "http.body", "http.errors", "http.throttle", "http.server"})
    | frozenset({"http.routes", "http.clips", "http.live", "http.shares", "http.switches"})
    | frozenset({"http.audit", "http.recipient", "http.announce", "http.ranges"}),
    # 6. The composition root (start-up and shutdown), the application and the command line.
    frozenset({"lifecycle", "app", "__main__"}),
)
#: The only modules that read or write the app keys: the root and the HTTP edge.
KEY_READERS = frozenset({"lifecycle", "app"})


def _graph() -> dict[str, set[str]]:
    graph, _ = import_graph(BRIDGE, PACKAGE, recursive=True)
    return graph


def test_every_module_has_a_layer() -> None:
    layer_of = layer_index(LAYERS)
    assert sum(len(modules) for modules in LAYERS) == len(layer_of), "a module in two layers"
    graph = _graph()
    assert set(graph) - set(layer_of) == set(), "give the new module a layer in LAYERS"
    assert set(layer_of) - set(graph) == set(), "a layer names a module that is gone"


def test_no_import_loop() -> None:
    assert find_loop(_graph()) is None


def test_no_upward_import() -> None:
    assert upward_imports(_graph(), layer_index(LAYERS)) == []


def test_only_the_root_and_the_http_edge_read_app_keys() -> None:
    readers = {module for module, targets in _graph().items() if "keys" in targets}
    assert readers - KEY_READERS - {m for m in readers if m.startswith("http.")} == set()


def _write(directory: Path, sources: dict[str, str]) -> Path:
    for name, source in sources.items():
        path = directory / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return directory


@pytest.mark.parametrize(
    "import_line",
    [
        "from doorstep_bridge.keys import CAMERAS",
        "from doorstep_bridge import keys",
        "import doorstep_bridge.keys",
        "from .. import keys",
        "from ..keys import CAMERAS",
        "if TYPE_CHECKING:\n    from doorstep_bridge.keys import CAMERAS",
        "def late():\n    from doorstep_bridge.keys import CAMERAS",
    ],
)
def test_the_checks_see_every_import_form(tmp_path: Path, import_line: str) -> None:
    """A camera part importing the app keys is both upward and, here, a loop."""
    graph, _ = import_graph(
        _write(
            tmp_path,
            {
                "__init__": "",
                "camera.__init__": "",
                "camera.sources": f"{import_line}\n",
                "keys": "from doorstep_bridge.camera.sources import open_source\n",
                "files": "import os\n",
            },
        ),
        PACKAGE,
        recursive=True,
    )
    assert graph == {
        "__init__": set(),
        "camera": set(),
        "camera.sources": {"keys"},
        "keys": {"camera.sources"},
        "files": set(),
    }
    assert find_loop(graph) == ["camera.sources", "keys", "camera.sources"]
    assert upward_imports(graph, layer_index(LAYERS)) == ["camera.sources (2) -> keys (4)"]


def test_a_loop_within_one_layer_is_found(tmp_path: Path) -> None:
    graph, _ = import_graph(
        _write(
            tmp_path,
            {
                "sharing.__init__": "",
                "sharing.requests": "from .book import ShareBook\n",
                "sharing.book": "from doorstep_bridge.sharing.exports import ShareExports\n",
                "sharing.exports": "from doorstep_bridge.sharing import requests\n",
            },
        ),
        PACKAGE,
        recursive=True,
    )
    assert upward_imports(graph, layer_index(LAYERS)) == []
    assert find_loop(graph) == [
        "sharing.book",
        "sharing.exports",
        "sharing.requests",
        "sharing.book",
    ]
