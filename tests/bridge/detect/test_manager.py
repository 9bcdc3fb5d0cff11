"""The camera manager reports a camera's person state (from OFF) and its parcels on the bus."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from doorstep_bridge.camera.manager import CameraManager
from doorstep_bridge.config import parse_config
from doorstep_bridge.events import EventBus, PackageChanged, PersonChanged, SnapshotTaken
from doorstep_bridge.recording.store import ClipStore
from tests.bridge.camera.conftest import CountingGate, Recorded, stand_in_detector

pytestmark = pytest.mark.slow

DEMO = "demo://?period=600&fps=5&width=320&height=180"
#: The garden camera's privacy mask: the right half of the picture.
MASK = [[160, 0], [320, 0], [320, 180], [160, 180]]


async def test_person_and_parcels_reach_the_bus(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    config = parse_config(
        {
            "storage": {"path": str(storage)},
            "cameras": {
                "front_door": {"source": DEMO, "person": {"enabled": True}},
                "garden": {
                    "source": DEMO,
                    "motion": {"zones": {"doorstep": [[0, 100], [100, 100], [100, 180], [0, 180]]}},
                    "privacy_masks": [MASK],
                },
            },
        }
    )
    store = ClipStore(config.storage.path)
    store.open()
    bus = EventBus()
    recorded = Recorded(bus)
    recorded.watch(PersonChanged, PackageChanged, SnapshotTaken)
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
        # The recorder knows too: a motion clip from now on is a person clip.
        assert manager._pipelines["front_door"].recorder._person is True
        assert manager._pipelines["garden"].recorder._person is False
        garden = manager._pipelines["garden"]
        assert garden.detection.packages is not None
        assert manager._pipelines["front_door"].detection.packages is None
        # Nothing recorded, nothing pictured yet: only the start's clears (no clip has a
        # picture in a new storage folder).
        assert {(e.camera, e.jpeg) for e in recorded.of(SnapshotTaken)} == {
            ("front_door", b""),
            ("garden", b""),
        }
        garden.detection.packages._on_change("delivered")  # what the tracker does
        parcel = await recorded.wait(PackageChanged, timeout=10)
        assert (parcel.camera, parcel.change) == ("garden", "delivered")
        # The frame that saw the parcel becomes the camera's snapshot, masked.
        picture = await recorded.wait(SnapshotTaken, lambda e: bool(e.jpeg), timeout=10)
    finally:
        await manager.stop()
        store.close()
    assert {e.camera for e in recorded.of(PersonChanged)} == {"front_door"}
    assert picture.camera == "garden"
    image = cv2.imdecode(np.frombuffer(picture.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (180, 320)
    assert int(image[4:176, 164:316].max()) <= 8  # the masked half is filled
    assert float(image[:, :150].std()) > 5  # the rest is the picture
    assert [e.camera for e in recorded.of(SnapshotTaken) if e.jpeg] == ["garden"]
