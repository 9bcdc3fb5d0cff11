"""A parcel on a running bridge and a real Mosquitto: the message, then its picture, masked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import threading

import cv2
import numpy as np
import pytest

from doorstep_bridge.keys import CAMERAS
from tests.bridge.bridge_runner import bridge_config, run_bridge
from tests.bridge.conftest import Broker, Listener
from tests.bridge.live.test_stream import until

pytestmark = pytest.mark.slow

PACKAGE = "doorstep/front_door/package"
SNAPSHOT = "doorstep/front_door/snapshot"


async def test_a_parcel_is_followed_by_the_masked_frame_that_saw_it(
    mqtt_broker: Broker, mqtt_listener: object, tmp_path: Path
) -> None:
    listener: Listener = mqtt_listener(PACKAGE, SNAPSHOT)  # type: ignore[operator]
    camera = {
        "source": "demo://?period=600&fps=5&width=320&height=180",
        "motion": {"zones": {"doorstep": [[0, 100], [100, 100], [100, 180], [0, 180]]}},
        "privacy_masks": [[[160, 0], [320, 0], [320, 180], [160, 180]]],  # the right half
    }
    config = bridge_config(mqtt_broker, tmp_path / "bridge", cameras={"front_door": camera})
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        manager = bridge.app[CAMERAS]
        await until(lambda: manager.status("front_door").online, "front_door online")
        await asyncio.sleep(0.5)
        # No picture before the parcel: only the start's clear (a new storage folder
        # has no clip with a picture).
        assert [(t, p) for t, p, _r in listener.drain()] == [(SNAPSHOT, b"")]
        pipeline = manager.pipeline("front_door")
        # What the tracker does on the detect thread when the zone changed for good.
        tracker = pipeline.detection.packages
        assert tracker is not None
        worker = threading.Thread(target=tracker._on_change, args=("delivered",))
        worker.start()
        worker.join()
        payload = json.loads(await asyncio.to_thread(listener.wait_for, PACKAGE))
        jpeg = await asyncio.to_thread(listener.wait_for, SNAPSHOT)
    assert (payload["camera"], payload["type"]) == ("front_door", "delivered")
    assert set(payload) == {"camera", "type", "time"}
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (180, 320)
    assert int(image[4:176, 164:316].max()) <= 8  # masked pixels never published
    assert float(image[:, :150].std()) > 5
