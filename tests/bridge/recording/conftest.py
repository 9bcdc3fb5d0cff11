"""Fixtures for the recording tests: real H.264 footage encoded with PyAV/libx264."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.store import ClipStore
from tests.support.media import Footage, file_packets, write_h264


@pytest.fixture(scope="session")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    """8 s of 640x360 at 15 fps, a keyframe every second, something walks by at 3-5 s."""
    path = tmp_path_factory.mktemp("footage") / "porch.mp4"
    return write_h264(path, width=640, height=360, fps=15, seconds=8, gop=15, motion=(3.0, 5.0))


@pytest.fixture(scope="session")
def packets(footage: Footage) -> list[EncodedPacket]:
    """The footage as the bridge's sources deliver it (wall time = 1.7e9 + pts)."""
    return file_packets(footage.path)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def store(storage: Path) -> Iterator[ClipStore]:
    """An open clip store in ``storage``, closed after the test."""
    clip_store = ClipStore(storage)
    clip_store.open()
    yield clip_store
    clip_store.close()
