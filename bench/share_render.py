"""Benchmark: render a 30 s 1080p share with redaction; CPU seconds per second of video.

Writes a 30 s 1080p15 H.264 clip — real footage of people walking in a hall
(``vtest.avi`` from ../shared/data/motion, scaled up; a synthetic textured scene
when that is absent) with a face photograph walking across it — then renders it
as a share with a privacy mask, three ways, side by side in one process:

* decode only (the floor: what reading the clip costs),
* export with masks + watermark, faces not blurred (approver chose no redaction),
* export with masks + watermark + face detection and blur (the default).

CPU time is the process's (all threads: libx264 and the decoder use several).
Run: ``.venv/bin/python bench/share_render.py [--seconds 30] [--fps 15]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import importlib.util
from pathlib import Path
import tempfile
import threading
import time
from typing import Any

import av
import cv2
import numpy as np

from doorstep_bridge.sharing.render import RenderJob, Segment, render

WIDTH, HEIGHT = 1920, 1080
MASK = ((0, 0), (500, 0), (500, 300), (0, 300))
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _face() -> Any:
    spec = importlib.util.find_spec("skimage")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "data" / "astronaut.png"
        if path.is_file():
            return cv2.imread(str(path))
    messi = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")
    if messi.is_file():
        return cv2.imread(str(messi))
    raise SystemExit("no face photograph: install scikit-image (dev extra)")


def _backgrounds() -> Iterator[Any]:
    """Frames of real footage at 1080p, looping; or a textured still with sensor noise."""
    footage = Path(__file__).resolve().parents[2] / "shared" / "data" / "motion" / "vtest.avi"
    if footage.is_file():
        print(f"scene: {footage} scaled to {WIDTH}x{HEIGHT}")
        while True:
            with av.open(str(footage)) as container:
                for frame in container.decode(video=0):
                    yield cv2.resize(frame.to_ndarray(format="bgr24"), (WIDTH, HEIGHT))
    print("scene: synthetic texture (../shared/data/motion/vtest.avi not found)")
    rng = np.random.default_rng(3)
    texture = rng.integers(0, 255, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    scene = cv2.GaussianBlur(cv2.resize(texture, (WIDTH, HEIGHT)), (0, 0), 6)
    while True:
        yield scene + rng.integers(0, 4, scene.shape, dtype=np.uint8)


def write_scene(path: Path, seconds: int, fps: int) -> None:
    face = cv2.resize(_face(), (400, 400))
    backgrounds = _backgrounds()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(seconds * fps):
            image: Any = next(backgrounds).copy()
            x = 200 + (index * 6) % (WIDTH - 600)
            image[500:900, x : x + 400] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _measure(work: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--fps", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        print(f"writing a {args.seconds} s {WIDTH}x{HEIGHT}@{args.fps} test clip ...")
        write_scene(clip, args.seconds, args.fps)
        segment = Segment("front_door", clip, T0, T0, T0 + timedelta(seconds=args.seconds), (MASK,))

        def decode() -> None:
            with av.open(str(clip)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    frame.to_ndarray()

        results: dict[str, tuple[float, float]] = {"decode only": _measure(decode)}
        for name, redact in (("export, no face blur", False), ("export, faces blurred", True)):
            job = RenderJob("s_BENCHBENCH", (segment,), Path(folder) / f"{redact}.mp4", redact)
            outcome: list[object] = []

            def run(job: RenderJob = job, outcome: list[object] = outcome) -> None:
                outcome.append(render(job, lambda _p: None, threading.Event()))

            results[name] = _measure(run)
            print(f"  {name}: {outcome[0]}")
        print(f"\n{args.seconds} s of {WIDTH}x{HEIGHT}@{args.fps}")
        print(f"{'':24} {'wall s':>8} {'CPU s':>8} {'CPU s / video s':>16} {'x decode':>9}")
        floor = results["decode only"][1]
        for name, (wall, cpu) in results.items():
            print(f"{name:24} {wall:8.1f} {cpu:8.1f} {cpu / args.seconds:16.2f} {cpu / floor:9.1f}")


if __name__ == "__main__":
    main()
