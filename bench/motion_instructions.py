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

With --by-function, it prints instead where our detector's instructions go, per frame, at
the first size and scene given: the inclusive count of each of its Python functions and
of each OpenCV function it calls. Python 3.12's perf trampoline gives every Python
function its own address for callgrind to count, and each OpenCV function is called
through a Python wrapper of its own name (the wrapper adds about 1,000 instructions per
call to the figures; the total is counted as above, without wrappers).

    .venv/bin/python bench/motion_instructions.py [--frames 30] [--frigate DIR]
                                                  [--sizes 640x360 1280x720 1920x1080]
                                                  [--scenes busy still] [--by-function]
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
_BY_FUNCTION = "DOORSTEP_BENCH_BY_FUNCTION"  # set for the child: name functions for callgrind
TARGET = 600_000  # instructions per 1280x720 frame (issue #18: >= 6.5x fewer than Frigate)
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
# A line of callgrind_annotate --inclusive=yes for code without symbols: count, address.
_UNNAMED = re.compile(r"^\s*([\d,]+)\s.*\?\?\?:0x([0-9a-f]+)\s")
_MOTION_MODULES = ("detector", "lighting", "scoring")


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

        if os.environ.get(_BY_FUNCTION):
            _name_functions()
        ours = create_detector(size[0], size[1], MotionSettings())
        inputs = gray
        step = ours.detect
    for frame in inputs[: _WARMUP + frames]:
        step(frame)


def _name_functions() -> None:
    """Give each Python function and each OpenCV function the motion core calls an address.

    The perf trampoline runs every Python function through code of its own, listed in
    /tmp/perf-PID.map; OpenCV's module is replaced, in the motion modules only, by one of
    Python wrappers named cv2.<function>.
    """
    wrapped = ModuleType("cv2")
    for name in dir(cv2):
        value = getattr(cv2, name)
        if callable(value) and not isinstance(value, type) and not name.startswith("_"):
            space: dict[str, Any] = {"call": value}
            exec(f"def {name}(*args, **kwargs):\n    return call(*args, **kwargs)", space)
            value = space[name]
            # The trampoline's map names code objects: name the wrapper's code after it.
            value.__code__ = value.__code__.replace(co_qualname=f"cv2.{name}")
        setattr(wrapped, name, value)
    for module in _MOTION_MODULES:
        sys.modules[f"doorstep_bridge.motion.{module}"].cv2 = wrapped  # type: ignore[attr-defined]
    sys.activate_stack_trampoline("perf")  # Python 3.12 and later, on Linux


def _callgrind(cmd: list[str], env: dict[str, str], out: str) -> tuple[int, dict[str, int]]:
    """Run one child under callgrind: its total, and with --by-function each function's count."""
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    with subprocess.Popen(
        valgrind + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        _, stderr = proc.communicate()
    found = _COLLECTED.search(stderr)
    if proc.returncode or found is None:
        raise RuntimeError(f"callgrind run failed: {' '.join(cmd)}\n{stderr[-2000:]}")
    counts: dict[str, int] = {}
    perf_map = Path(f"/tmp/perf-{proc.pid}.map")  # where Python writes it
    if out != "/dev/null" and perf_map.is_file():
        names = {}
        for line in perf_map.read_text().splitlines():
            address, _, name = line.split(" ", 2)
            names[int(address, 16)] = name.removeprefix("py::").split(":")[0]
        perf_map.unlink()
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in annotated.splitlines():
            hit = _UNNAMED.match(line)
            if hit and int(hit.group(2), 16) in names:
                name = names[int(hit.group(2), 16)]
                counts[name] = counts.get(name, 0) + int(hit.group(1).replace(",", ""))
    return int(found.group(1)), counts


def by_function(frames: int, data: Path) -> None:
    """Print the instructions per frame of each function of our detector (see module docs)."""
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    total = instructions("ours", frames, data, "")
    counted: list[dict[str, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (frames, 2 * frames):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "ours", str(n)]
            out = str(Path(tmp) / f"callgrind.{n}")
            named = dict(env, **{_BY_FUNCTION: "1"})
            counted.append(_callgrind([*cmd, str(data), ""], named, out)[1])
    per_frame = {
        name: (counted[1].get(name, 0) - counted[0].get(name, 0)) // frames
        for name in counted[0].keys() | counted[1].keys()
    }
    print(f"total (no wrappers, no trampoline): {total:,} per frame")
    print(f"{'inclusive':>12}  function (Python: detector's; cv2.*: OpenCV, through a wrapper)")
    for name, count in sorted(per_frame.items(), key=lambda item: -item[1]):
        if count >= 1000:
            print(f"{count:>12,}  {name}")


def instructions(detector: str, frames: int, data: Path, root: str) -> int:
    """Instructions per frame: the runs of N and 2N frames, their difference over N."""
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop(_BY_FUNCTION, None)
    script = [sys.executable, str(Path(__file__).resolve()), "--child", detector]
    totals = [
        _callgrind([*script, str(n), str(data), root], env, "/dev/null")[0]
        for n in (frames, 2 * frames)
    ]
    return (totals[1] - totals[0]) // frames


def _size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        detector, frames, frames_path, root = sys.argv[2:6]
        child(detector, int(frames), frames_path, root)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="N (default 30)")
    parser.add_argument("--frigate", type=Path, default=None, help="a Frigate checkout's root")
    parser.add_argument(
        "--sizes", nargs="+", default=["640x360", "1280x720", "1920x1080"], help="WxH"
    )
    parser.add_argument("--scenes", nargs="+", choices=["busy", "still"], default=["busy", "still"])
    parser.add_argument(
        "--by-function", action="store_true", help="where ours spends them (first size, scene)"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install valgrind)")
        return
    if args.by_function:
        if not hasattr(sys, "activate_stack_trampoline"):
            print("skipped: --by-function needs Python 3.12 or later on Linux (perf trampoline)")
            return
        size, scene = args.sizes[0], args.scenes[0]
        print(
            f"our detector at {size}, {scene} (callgrind; runs of {args.frames} and "
            f"{2 * args.frames} frames)"
        )
        with tempfile.TemporaryDirectory() as tmp:
            frames_file = Path(tmp) / "frames.npy"
            np.save(frames_file, np.stack(_frames(_size(size), _WARMUP + 2 * args.frames, scene)))
            by_function(args.frames, frames_file)
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
