"""The camera manager reports a camera's person state on the bus, starting from OFF."""

from __future__ import annotations

from pathlib import Path

import pytest

from doorstep_bridge.camera.manager import CameraManager
from doorstep_bridge.config import parse_config
from doorstep_bridge.events import EventBus, PersonChanged
from doorstep_bridge.recording.store import ClipStore
from tests.bridge.camera.conftest import CountingGate, Recorded, stand_in_detector

pytestmark = pytest.mark.slow

DEMO = "demo://?period=600&fps=5&width=320&height=180"


async def test_person_state_reaches_the_bus(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    config = parse_config(
        {
            "storage": {"path": str(storage)},
            "cameras": {
                "front_door": {"source": DEMO, "person": {"enabled": True}},
                "garden": {"source": DEMO},
            },
        }
    )
    store = ClipStore(config.storage.path)
    store.open()
    bus = EventBus()
    recorded = Recorded(bus)
    recorded.watch(PersonChanged)
    manager = CameraManager(
        config.cameras,
        config.storage,
        bus,
        store,
        lambda _: None,
        detector_factory=stand_in_detector,
        gate_factory=CountingGate,
    )
    await manager.start()
    try:
        first = await recorded.wait(PersonChanged, timeout=10)
        assert (first.camera, first.active) == ("front_door", False)
        watcher = manager._pipelines["front_door"].detection.person
        assert watcher is not None
        assert manager._pipelines["garden"].detection.person is None
        watcher._set(active=True)  # what a check that found someone does, on its thread
        seen = await recorded.wait(PersonChanged, lambda e: e.active, timeout=10)
        assert seen.camera == "front_door"
    finally:
        await manager.stop()
        store.close()
    assert {e.camera for e in recorded.of(PersonChanged)} == {"front_door"}
