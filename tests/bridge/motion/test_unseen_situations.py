"""Three situations the public labelled views do not show, each on a synthetic clip.

A visitor who waits long enough to become background and then leaves; a shadow
sweeping across a textured road; a slow change of light (dusk, auto exposure) at a
camera's own frame rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.bridge.motion.conftest import (
    SHADOW_XS,
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


def test_background_uncovered_by_a_visitor_who_waited_is_not_motion_for_long(
    rng: np.random.Generator,
) -> None:
    img = porch()
    # Mid-grey clothes: the visitor's outline against the porch is faint.
    figure = faint_figure()
    run = Run()
    # Waits for longer than still_hold (10 s): becomes part of the scene.
    standing = arrive_and_wait(run, img, rng, figure)
    assert not any(standing[-10:])
    # Leaves slowly (2 px a frame), out of the picture on the right.
    leaving = run.feed(walk(img, rng, list(range(92, 340, 2)), 110, figure))
    after = run.feed(still(img, rng, 30))
    assert any(leaving)
    # Once the visitor is out of view (x >= 320), at most a second (5 frames) of motion.
    gone = leaving[(320 - 92) // 2 + 1 :] + after
    assert not any(gone[5:]), gone


def test_visitor_who_waited_then_leaves_is_motion_while_leaving(rng: np.random.Generator) -> None:
    img = porch()
    figure = person(90, 35, seed=5)
    run = Run()
    arrive_and_wait(run, img, rng, figure)
    leaving = run.feed(walk(img, rng, list(range(100, 300, 10)), 110, figure))
    assert all(leaving), leaving
    assert not any(run.feed(still(img, rng, 20))[5:])


@pytest.mark.parametrize("darker", [0.5, 0.7])
def test_shadow_sweeping_across_a_textured_road_is_not_motion(
    rng: np.random.Generator, darker: float
) -> None:
    # 15 px a frame (a car at walking pace seen from the porch); the car is out of view.
    run, moving = swept_by_shadow(rng, darker)
    inside = [m for x, m in zip(SHADOW_XS, moving, strict=True) if 0 <= x <= 320 - 140]
    assert not any(inside), moving
    assert sum(moving) <= 2, moving
    assert not any(run.feed(still(road(), rng, 10)))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("darker", [0.3, 0.5, 0.7])
def test_shadow_entering_the_picture_never_turns_motion_on(seed: int, darker: float) -> None:
    # The region a shadow makes grows for several frames as it enters: each step is
    # judged as it comes, not by the verdict on the smaller region before it.
    _, moving = swept_by_shadow(np.random.default_rng(seed), darker)
    assert turned_on(moving, 5.0) == [], moving


@pytest.mark.parametrize("level", [40, 70])
def test_dark_object_on_the_shadow_s_path_is_motion(rng: np.random.Generator, level: int) -> None:
    img = road()
    run = Run()
    run.feed(still(img, rng, 10))
    moving = run.feed(dark_object_sweep(img, rng, level))
    assert all(moving[1:]), moving


def test_dark_textured_object_on_the_shadow_s_path_is_motion(rng: np.random.Generator) -> None:
    img = road()
    run = Run()
    run.feed(still(img, rng, 10))
    car = person(60, 140, seed=7)
    moving = run.feed(walk(img, rng, list(range(-100, 320, 15)), 120, car))
    assert all(moving[1:]), moving


@pytest.mark.parametrize("fps", [5, 15])
@pytest.mark.parametrize("factor", [0.6, 1.4])
def test_slow_change_of_light_never_turns_motion_on(
    rng: np.random.Generator, fps: int, factor: float
) -> None:
    run = Run(1280, 720, fps=fps)
    moving = run.feed(dusk_clip(hd_porch(), rng, fps, factor))
    assert turned_on(moving, fps) == [], moving
    assert sum(moving) <= 1, moving


@pytest.mark.parametrize("fps", [5, 15])
def test_visitor_walking_in_during_dusk_is_found_at_once(
    rng: np.random.Generator, fps: int
) -> None:
    img = hd_porch()
    figure = person(270, 100, seed=2)
    run = Run(1280, 720, fps=fps)
    run.feed(still(img, rng, 3 * fps))
    # The visitor steps in halfway through the ramp, 120 px a second.
    moving = run.feed(with_noise(f, rng) for f in ramp(img, fps, 0.6)[:fps])
    seen = run.feed(entering_during_ramp(img, figure, rng, fps, 0.6))
    assert not any(moving)
    assert True in seen[:3], seen
    assert all(seen[seen.index(True) :]), seen
