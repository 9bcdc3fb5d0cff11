"""Cost of the motion core per frame, side by side with a baseline on the same frames.

Frames are real H.264: a clip (../shared/data/motion/vtest.avi, PETS 2009 pedestrians,
when present; otherwise synthetic people-sized blobs over a textured scene) is scaled to
1280x720 and 1920x1080, encoded with libx264 and decoded with PyAV. Each measured step
starts from the decoder's output frame, so the cost includes getting its luma plane.

    ours      luma_plane(frame) + detector.detect(luma)          (one thread)
    resize    luma_plane(frame) + cv2.resize to the same grid    (the floor: touching the frame)

Each step is timed (CPU time of the thread) on every frame right after the decoder
produced it, as in the camera pipeline; a round is one pass over the
clip with a fresh detector, rounds alternate between the two steps so that a noisy
machine hits both alike, and the figures are medians over rounds of the mean cost.
Frigate's ImprovedMotionDetector costs about 545 us per frame on this kind of machine
(shared/reference/media.md); the target is <= 180 us at 720p.

Also checks phantom motion: a still frame encoded for 30 s with libx264 (GOP 2 s, so the
encoder's keyframe "breathing" is in it) must give no motion after the first second.

    .venv/bin/python bench/motion.py [--frames 60] [--rounds 7]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
import io
from pathlib import Path
import statistics
import time
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.motion import MotionGate, create_detector
from doorstep_bridge.motion.detector import grid_factor
from doorstep_bridge.motion.luma import luma_plane
from doorstep_bridge.motion.settings import MotionSettings

VTEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "motion" / "vtest.avi"
SIZES = ((1280, 720), (1920, 1080))
_WARMUP = 5


def source_gray(count: int) -> tuple[list[npt.NDArray[np.uint8]], str]:
    """`count` grey frames of a real scene (or a synthetic one without shared data)."""
    if VTEST.is_file():
        cap = cv2.VideoCapture(str(VTEST))
        frames: list[npt.NDArray[np.uint8]] = []
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), np.uint8))
        return frames, "vtest.avi (PETS 2009, people walking)"
    rng = np.random.default_rng(7)
    noise = rng.integers(40, 200, (288, 384), dtype=np.uint8)
    scene = np.asarray(cv2.GaussianBlur(noise, (0, 0), 3), np.uint8)
    frames = []
    for i in range(count):
        frame = scene.copy()
        for k in range(4):
            x = (40 * k + 3 * i) % 360
            cv2.rectangle(frame, (x, 60 + 50 * k), (x + 18, 110 + 50 * k), 30 + 50 * k, -1)
        frames.append(frame)
    return frames, "synthetic blobs (no ../shared/data)"


def encode(gray: list[npt.NDArray[np.uint8]], size: tuple[int, int], fps: int = 5) -> bytes:
    """Scale and encode with libx264: the stream a camera would send."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23", "g": str(2 * fps)}
        for g in gray:
            big = cv2.resize(g, size, interpolation=cv2.INTER_LINEAR)
            bgr = np.asarray(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR), np.uint8)
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def decoded(data: bytes) -> Iterator[Any]:
    """Decode one frame at a time, as the camera pipeline does."""
    with av.open(io.BytesIO(data), "r") as inp:
        inp.streams.video[0].thread_type = "NONE"
        yield from inp.decode(video=0)


def timed_round(data: bytes, make_step: Callable[[], Callable[[Any], object]]) -> float:
    """Median cost of one step on each frame right after the decoder produced it."""
    step = make_step()
    costs = []
    for i, frame in enumerate(decoded(data)):
        # CPU time of this thread: time the machine spends on other processes (it is
        # shared) does not count, cache misses after the decoder ran do.
        start = time.thread_time_ns()
        step(frame)
        if i >= _WARMUP:  # the first frames learn the background
            costs.append(time.thread_time_ns() - start)
    return statistics.mean(costs) / 1e3


def bench_size(data: bytes, size: tuple[int, int], rounds: int) -> tuple[float, float, str]:
    width, height = size
    factor = grid_factor(width, height)
    grid = (width // factor, height // factor)

    def ours() -> Callable[[Any], object]:
        detector = create_detector(width, height, MotionSettings())
        return lambda frame: detector.detect(luma_plane(frame))

    def resize() -> Callable[[Any], object]:
        return lambda frame: cv2.resize(luma_plane(frame), grid, interpolation=cv2.INTER_LINEAR)

    a, b = [], []
    for _ in range(rounds):  # alternate, so that machine noise hits both alike
        a.append(timed_round(data, ours))
        b.append(timed_round(data, resize))
    return statistics.median(a), statistics.median(b), f"{grid[0]}x{grid[1]}"


def still_scene(
    gray: npt.NDArray[np.uint8], size: tuple[int, int], fps: int, seconds: int
) -> bytes:
    return encode([gray] * (fps * seconds), size, fps)


def phantom(gray: npt.NDArray[np.uint8], fps: int) -> tuple[int, float | None, int]:
    """Moving frames after the first second, last moving time, motion ON events."""
    size = (1280, 720)
    data = still_scene(gray, size, fps, 30)
    settings = MotionSettings()
    detector = create_detector(*size, settings, fps=fps)
    gate = MotionGate(settings.frames_to_start, settings.off_delay)
    late, last, ons = 0, None, 0
    for i, frame in enumerate(decoded(data)):
        moving = detector.detect(luma_plane(frame)).moving
        now = i / fps
        if moving:
            last = now
            late += now > 1.0
        ons += gate.update(moving, now) is True
    return late, last, ons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames per size (default 60)")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (default 7)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    gray, what = source_gray(args.frames)
    print(f"scene: {what}, {len(gray)} frames; one thread; medians of {args.rounds} rounds")
    print(f"{'size':<10}{'scene':<8}{'grid':>9}{'ours us':>9}{'resize us':>11}{'ratio':>7}")
    for size in SIZES:
        busy = encode(gray, size)
        quiet = still_scene(gray[0], size, 5, max(2, len(gray) // 5))
        for label, data in (("busy", busy), ("quiet", quiet)):
            ours, base, grid = bench_size(data, size, args.rounds)
            print(
                f"{size[0]}x{size[1]:<5}{label:<8}{grid:>9}{ours:>9.0f}{base:>11.0f}"
                f"{ours / base:>7.2f}"
            )
    print("reference: Frigate ImprovedMotionDetector ~545 us/frame (media.md); target <= 180 us")
    for fps in (5, 15):
        late, last, ons = phantom(gray[0], fps)
        print(
            f"phantom motion, still scene 30 s libx264 at {fps} fps: {late} moving frames after"
            f" 1 s, last at {last if last is not None else '-'} s, motion ON {ons} times"
        )


if __name__ == "__main__":
    main()
