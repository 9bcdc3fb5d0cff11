"""Instructions per frame of the motion core, counted by valgrind's callgrind.

Time on a shared machine varies from run to run by tens of percent; the number of
instructions a frame costs does not (a few per mille). Each detector runs twice under
`valgrind --tool=callgrind` on the same frames, once for N frames and once for 2N
after the same set-up and warm-up; the difference divided by N is its cost per frame,
without Python's start-up, imports and the set-up, which both runs share.

    ours      doorstep_bridge's detector on the luma plane (what the bridge feeds it)
    frigate   Frigate's ImprovedMotionDetector, from a Frigate checkout (--frigate DIR,
              the repository's root), default settings, fed I420 frames as Frigate
              feeds it; its imports of Frigate's config and camera packages are
              replaced by the default values they hold (no Frigate install needed)

The frames are ../shared/data/motion/vtest.avi (PETS 2009 pedestrians, the busy case)
scaled to each size, or synthetic blobs without the shared data; "still" repeats the
first frame. Needs valgrind (apt-get install valgrind).

    .venv/bin/python bench/motion_instructions.py [--frames 20] [--frigate DIR]
                                                  [--sizes 640x360 1280x720 1920x1080]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
from types import ModuleType, SimpleNamespace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

_WARMUP = 5
TARGET = 600_000  # instructions per 1280x720 frame (issue #18: >= 6.5x fewer than Frigate)
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _frames(size: tuple[int, int], count: int, scene: str) -> list[npt.NDArray[np.uint8]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from motion import source_gray  # noqa: PLC0415 (the sibling bench script)

    gray, _ = source_gray(count)
    if scene == "still":
        gray = [gray[0]] * count
    return [np.asarray(cv2.resize(g, size, interpolation=cv2.INTER_LINEAR), np.uint8) for g in gray]


def _frigate_module(root: Path) -> ModuleType:
    """Frigate's improved_motion.py, its Frigate imports stubbed with what they provide."""
    stubs = {
        "frigate": SimpleNamespace(),
        "frigate.camera": SimpleNamespace(PTZMetrics=object),
        "frigate.config": SimpleNamespace(MotionConfig=object),
        "frigate.config.config": SimpleNamespace(RuntimeMotionConfig=object),
        "frigate.motion": SimpleNamespace(MotionDetector=object),
        # frigate/util/image.py: grab_cv2_contours takes the contours out of
        # findContours' result (OpenCV 4 gives (contours, hierarchy)).
        "frigate.util.image": SimpleNamespace(grab_cv2_contours=lambda cnts: cnts[0]),
    }
    for name, stub in stubs.items():
        sys.modules.setdefault(name, stub)  # type: ignore[arg-type]
    path = root / "frigate" / "motion" / "improved_motion.py"
    spec = importlib.util.spec_from_file_location("frigate_improved_motion", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frigate_detector(root: Path, size: tuple[int, int]) -> Any:
    """Frigate's detector with the defaults of frigate/config/camera/motion.py."""
    width, height = size
    config = SimpleNamespace(
        enabled=True,
        threshold=30,
        lightning_threshold=0.8,
        skip_motion_threshold=None,
        improve_contrast=True,
        contour_area=10,
        delta_alpha=0.2,
        frame_alpha=0.01,
        frame_height=100,
        rasterized_mask=np.full((height, width), 255, np.uint8),
    )
    module = _frigate_module(root)
    return module.ImprovedMotionDetector((height, width), config, fps=5)


def child(detector: str, frames: int, data: str, root: str) -> None:
    """Run under callgrind: set up, warm up, then detect on `frames` frames.

    The frames come from a file the parent wrote: decoding video is multi-threaded,
    and its instruction count differs from run to run by more than a frame costs.
    """
    cv2.setNumThreads(1)
    gray = list(np.load(data))
    size = (gray[0].shape[1], gray[0].shape[0])
    if detector == "frigate":
        det = _frigate_detector(Path(root), size)
        width, height = size
        chroma = np.full((height // 2, width), 128, np.uint8)
        inputs: list[Any] = [np.ascontiguousarray(np.vstack((g, chroma))) for g in gray]
        step = det.detect
    else:
        from doorstep_bridge.motion import create_detector  # noqa: PLC0415
        from doorstep_bridge.motion.settings import MotionSettings  # noqa: PLC0415

        ours = create_detector(size[0], size[1], MotionSettings())
        inputs = gray
        step = ours.detect
    for frame in inputs[: _WARMUP + frames]:
        step(frame)


def instructions(detector: str, frames: int, data: Path, root: str) -> int:
    """Instructions per frame: the runs of N and 2N frames, their difference over N."""
    totals = []
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for n in (frames, 2 * frames):
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            detector,
            str(n),
            str(data),
            root,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        found = _COLLECTED.search(done.stderr)
        if done.returncode or found is None:
            raise RuntimeError(f"callgrind run failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) // frames


def _size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        detector, frames, data, root = sys.argv[2:6]
        child(detector, int(frames), data, root)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="N (default 30)")
    parser.add_argument("--frigate", type=Path, default=None, help="a Frigate checkout's root")
    parser.add_argument(
        "--sizes", nargs="+", default=["640x360", "1280x720", "1920x1080"], help="WxH"
    )
    parser.add_argument("--scenes", nargs="+", default=["busy", "still"])
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install valgrind)")
        return
    detectors = ["ours"] + (["frigate"] if args.frigate else [])
    root = str(args.frigate or "")
    print(f"instructions per frame (callgrind; runs of {args.frames} and {2 * args.frames} frames)")
    print(f"{'size':<11}{'scene':<7}" + "".join(f"{d:>12}" for d in detectors))
    ours: dict[tuple[str, str], int] = {}
    for scene in args.scenes:
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(tmp) / "frames.npy"
                np.save(data, np.stack(_frames(_size(size), _WARMUP + 2 * args.frames, scene)))
                row = {d: instructions(d, args.frames, data, root) for d in detectors}
            ours[(size, scene)] = row["ours"]
            ratio = f"   {row['frigate'] / row['ours']:.1f}x fewer" if args.frigate else ""
            print(f"{size:<11}{scene:<7}" + "".join(f"{row[d]:>12,}" for d in detectors) + ratio)
    for scene in args.scenes:
        hd, fhd = ours.get(("1280x720", scene)), ours.get(("1920x1080", scene))
        if hd is not None:
            verdict = "met" if hd <= TARGET else "NOT met"
            line = f"target, {scene}: 1280x720 {hd:,} <= {TARGET:,}: {verdict}"
            if fhd is not None:
                line += f"; 1920x1080 {fhd / hd:.2f}x the 1280x720 figure"
            print(line)


if __name__ == "__main__":
    main()
