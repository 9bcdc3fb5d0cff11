"""Doorstep bridge: a local-only, privacy-first smart doorbell service for Home Assistant."""

import os

__version__ = "0.1.0"
#: Version of the MQTT/HTTP protocol spoken with the Home Assistant integration.
PROTOCOL_VERSION = 1

# OpenCV's worker threads spin (sched_yield) for a while after each parallel call, in
# case more work comes. The bridge makes a few small OpenCV calls per video frame, so on
# a small home server that spinning cost more CPU than the calls (bench/pipeline.py).
# These are read once, when cv2 is first imported: this package's import comes first.
# A value set in the environment wins.
os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER", "0")
os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN", "0")

__all__ = ["PROTOCOL_VERSION", "__version__"]
