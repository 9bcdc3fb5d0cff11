"""What the motion detector's false positives on the labelled views are.

Runs the detector over each labelled view of ../shared/data/motion (views.json, or
--views tuned|held-out as in bench/motion_eval.py) with the scoring tool's own rules
(score.py: its frame selection, warm-up, temporal ROI and K), and prints every frame it
counts as a false positive: a flagged frame whose ground truth has no motion pixel
(255). For each it shows the boxes, how many pixels the ground truth marks "unknown"
(170: CDnet draws a ring of it around every moving object) and "shadow" (50), and the
motion pixels of the scored frames around it. It then sorts them: frames where part of
an object is in view, labelled only "unknown", and the rest. Without the shared data
folder it says so and exits 0.

    .venv/bin/python bench/motion_false_positives.py [--stride 1 3] [--views public]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import importlib.util
import json
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.motion import create_for_scoring
from doorstep_bridge.motion.types import Box

sys.path.insert(0, str(Path(__file__).resolve().parent))
from motion_eval import DATA, views_manifest  # the sibling bench script

MOTION, UNKNOWN, SHADOW = 255, 170, 50  # ground-truth grey levels (score.py)
_CONTEXT = 3  # scored frames shown on each side of a false positive


@dataclass(frozen=True, slots=True)
class Scored:
    """One scored frame: its number, motion and unknown/shadow pixels, and the boxes."""

    number: int
    motion: int
    unknown: int
    shadow: int
    boxes: list[Box]


def _score_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("motion_score", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scored_frames(score: ModuleType, view: dict[str, Any], root: Path, stride: int) -> list[Scored]:
    """The frames score.py scores for a view at a stride, with the detector's boxes."""
    seq = root / view["path"]
    crop = view["crop"]

    def images(folder: str) -> list[str]:
        found = (str(p) for p in (seq / folder).iterdir())
        return [p for p in found if p.lower().endswith(score.IMG_EXT)]

    inputs = sorted(images("input"), key=score.frame_number)
    truths = {score.frame_number(p): p for p in images("groundtruth")}
    first = score.crop_img(cv2.imread(inputs[0], cv2.IMREAD_COLOR), crop)
    height, width = first.shape[:2]
    first_n, last_n = score.frame_number(inputs[0]), score.frame_number(inputs[-1])
    roi_a, roi_b = score.read_temporal_roi(str(seq), first_n, last_n)
    detect = create_for_scoring(width, height)
    frames: list[Scored] = []
    run = 0
    for path in inputs:
        n = score.frame_number(path)
        if n > roi_b:
            break
        if (n - first_n) % stride:
            continue
        frame = score.crop_img(cv2.imread(path, cv2.IMREAD_COLOR), crop)
        boxes = detect(np.ascontiguousarray(frame))
        run += 1
        if n < roi_a or run <= 10 or n not in truths:  # score.py's default warm-up
            continue
        truth: npt.NDArray[np.uint8] = score.crop_img(
            cv2.imread(truths[n], cv2.IMREAD_GRAYSCALE), crop
        )
        frames.append(
            Scored(
                n,
                int(np.count_nonzero(truth == MOTION)),
                int(np.count_nonzero(truth == UNKNOWN)),
                int(np.count_nonzero(truth == SHADOW)),
                boxes,
            )
        )
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"data folder (default {DATA})")
    parser.add_argument("--views", choices=("public", "tuned", "held-out"), default="public")
    parser.add_argument("--stride", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    manifest = args.data / "views.json"
    if not (args.data / "score.py").is_file() or not manifest.is_file():
        print(f"skipped: no labelled motion data at {args.data} (score.py + views.json)")
        return 0
    score = _score_module(args.data / "score.py")
    public = json.loads(manifest.read_text())
    chosen = public if args.views == "public" else views_manifest(public, args.views)
    views = [v for v in chosen["sequences"] if (args.data / v["path"]).is_dir()]
    for stride in args.stride:
        print(f"\n##### stride {stride}: {args.views} views")
        negatives = false = with_unknown = 0
        for view in views:
            frames = scored_frames(score, view, args.data, stride)
            for i, frame in enumerate(frames):
                if frame.motion:
                    continue
                negatives += 1
                if not frame.boxes:
                    continue
                false += 1
                with_unknown += frame.unknown > 0
                around = " ".join(
                    f"{f.number}:{f.motion}{'*' if f.boxes else ''}"
                    for f in frames[max(0, i - _CONTEXT) : i + _CONTEXT + 1]
                )
                print(
                    f"{view['name']:<14} frame {frame.number:>5}  unknown {frame.unknown:>4}"
                    f"  shadow {frame.shadow:>4}  boxes {frame.boxes}\n"
                    f"{'':<14} motion pixels of the frames around (* flagged): {around}"
                )
        # score.py leaves out frames with 0 < motion < K ("ambiguous"); those are not
        # false positives there either, and are left out here: only motion == 0 counts.
        print(
            f"false positives: {false} of {negatives} frames without motion pixels; "
            f"{with_unknown} with part of an object labelled only unknown; "
            f"without those: {false - with_unknown} of {negatives - with_unknown}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
