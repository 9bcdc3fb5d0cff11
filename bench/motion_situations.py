"""The motion core in three situations the labelled views do not show (issue #18).

Synthetic clips, the same as in tests/bridge/motion/test_unseen_situations.py, with
more variants and several noise seeds; prints what a user would see:

    uncovered  a visitor who waits past still_hold, then leaves (slowly, 2 px a frame):
               moving frames once they are out of view
    shadow     a car's soft shadow (out of view: the car is not) sweeping across a
               textured road, 30 % to 70 % darker: moving frames and motion-ON
               transitions; a dark object on the same path: share of frames found
    dusk       light -40 % and +40 % over 2 s at 1280x720, at 5 and 15 fps: moving
               frames and motion-ON transitions; a visitor stepping in during the
               ramp: frames until found

    .venv/bin/python bench/motion_situations.py [--seeds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bridge.motion.conftest import (
    Run,
    arrive_and_wait,
    dark_object_sweep,
    dusk_clip,
    entering_during_ramp,
    faint_figure,
    hd_porch,
    person,
    porch,
    ramp,
    road,
    still,
    swept_by_shadow,
    turned_on,
    walk,
    with_noise,
)


def uncovered(seed: int) -> int:
    rng = np.random.default_rng(seed)
    img = porch()
    figure = faint_figure()
    run = Run()
    arrive_and_wait(run, img, rng, figure)
    xs = list(range(92, 340, 2))
    leaving = run.feed(walk(img, rng, xs, 110, figure))
    after = run.feed(still(img, rng, 60))
    gone = [m for x, m in zip(xs, leaving, strict=True) if x >= 320] + after
    return sum(gone)


def shadow(seed: int, darker: float) -> tuple[int, int, int]:
    _, moving = swept_by_shadow(np.random.default_rng(seed), darker)
    return sum(moving), len(moving), len(turned_on(moving, 5.0))


def dark_object(seed: int, level: int) -> float:
    rng = np.random.default_rng(seed)
    img = road()
    run = Run()
    run.feed(still(img, rng, 10))
    moving = run.feed(dark_object_sweep(img, rng, level))
    return sum(moving) / len(moving)


def dusk(seed: int, fps: int, factor: float) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    run = Run(1280, 720, fps=fps)
    moving = run.feed(dusk_clip(hd_porch(), rng, fps, factor))
    return sum(moving), len(turned_on(moving, fps))


def walker_in_dusk(seed: int, fps: int) -> int | None:
    rng = np.random.default_rng(seed)
    img = hd_porch()
    figure = person(270, 100, seed=2)
    run = Run(1280, 720, fps=fps)
    run.feed(still(img, rng, 3 * fps))
    run.feed([with_noise(f, rng) for f in ramp(img, fps, 0.6)[:fps]])
    seen = run.feed(entering_during_ramp(img, figure, rng, fps, 0.6))
    return seen.index(True) if True in seen else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds per case (default 3)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    seeds = range(args.seeds)
    print(f"{args.seeds} noise seeds per case; figures per seed")
    print(
        "uncovered: moving frames after the visitor is out of view:", [uncovered(s) for s in seeds]
    )
    for darker in (0.3, 0.4, 0.5, 0.6, 0.7):
        rows = [shadow(s, darker) for s in seeds]
        print(
            f"shadow {darker:.0%} darker: moving frames {[r[0] for r in rows]} of {rows[0][1]},"
            f" motion ON {[r[2] for r in rows]} times"
        )
    for level in (40, 70):
        print(
            f"dark flat object (grey {level}) on the same path: share of frames found",
            [f"{dark_object(s, level):.2f}" for s in seeds],
        )
    for fps in (5, 15):
        for factor in (0.6, 1.4):
            rows2 = [dusk(s, fps, factor) for s in seeds]
            print(
                f"light {factor - 1:+.0%} over 2 s at {fps} fps: moving frames"
                f" {[r[0] for r in rows2]}, motion ON {[r[1] for r in rows2]} times"
            )
        print(
            f"visitor stepping in during the ramp at {fps} fps: found after",
            [walker_in_dusk(s, fps) for s in seeds],
            "frames in view",
        )


if __name__ == "__main__":
    main()
