"""Frame conversions: the same pixels as PyAV's own, and no threads behind the bridge's back."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import av
import numpy as np
import pytest

from doorstep_bridge.convert import reformat, to_ndarray

TASKS = Path("/proc/self/task")


def frames(count: int) -> list[av.VideoFrame]:
    """Distinct 640x360 yuv420p frames, as a decoder hands them out."""
    rng = np.random.default_rng(5)
    picture = rng.integers(0, 256, (360 * 3 // 2, 640), dtype=np.uint8)
    return [
        av.VideoFrame.from_ndarray(np.roll(picture, 7 * i, axis=1), format="yuv420p")
        for i in range(count)
    ]


# Run in a process of its own: threads that other tests left behind end when they do,
# and would change the count.
_COUNT_THREADS = """
import os
from tests.bridge.test_convert import frames
from doorstep_bridge.convert import reformat, to_ndarray

# The frames are kept, as a pipeline keeps its newest frame and a recorder its
# pre-roll: whatever a conversion leaves behind stays alive with them.
kept = frames(12)
before = len(os.listdir("/proc/self/task"))
images = [to_ndarray(frame, "bgr24") for frame in kept]
grays = [to_ndarray(frame, "gray") for frame in kept]
smaller = [reformat(frame, width=320, height=180, format="yuv420p") for frame in kept]
print(len(os.listdir("/proc/self/task")) - before, len(images), len(grays), len(smaller))
"""


@pytest.mark.skipif(not TASKS.is_dir(), reason="counts threads in /proc (Linux)")
def test_converting_frames_starts_no_threads() -> None:
    root = Path(__file__).resolve().parents[2]
    counted = subprocess.run(
        [sys.executable, "-c", _COUNT_THREADS],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(root), str(root / "bridge")))},
        timeout=60,
    )
    started, *converted = map(int, counted.stdout.split())
    assert converted == [12, 12, 12]
    assert started == 0, f"{started} threads started by 36 conversions"


def test_conversions_give_pyav_s_pixels() -> None:
    for frame in frames(3):
        assert np.array_equal(to_ndarray(frame, "bgr24"), frame.to_ndarray(format="bgr24"))
        assert np.array_equal(to_ndarray(frame, "gray"), frame.to_ndarray(format="gray"))
        ours = reformat(frame, width=320, height=180, format="yuv420p")
        theirs = frame.reformat(width=320, height=180, format="yuv420p")
        assert (ours.width, ours.height, ours.format.name) == (320, 180, "yuv420p")
        assert np.array_equal(ours.to_ndarray(), theirs.to_ndarray())
