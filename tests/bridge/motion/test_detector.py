"""The motion detector on synthetic frames: what a user would see as motion or not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from doorstep_bridge.motion import MotionResult, create_detector
from doorstep_bridge.motion.settings import MotionSettings
from tests.bridge.motion.conftest import (
    Frame,
    Run,
    paste,
    person,
    porch,
    still,
    u8,
    walk,
    with_noise,
)


def test_still_noisy_scene_never_moves(rng: np.random.Generator) -> None:
    run = Run()
    assert run.feed(still(porch(), rng, 60)) == [False] * 60


def test_person_walking_in_is_motion_from_the_first_frame_in_view(
    rng: np.random.Generator,
) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    figure = person(90, 30)
    # Enters from the left edge, 12 px per frame.
    moving = run.feed(walk(img, rng, list(range(-20, 200, 12)), 120, figure))
    assert all(moving), moving
    x1, y1, x2, y2 = run.results[-1].boxes[0]
    x = -20 + 12 * (len(moving) - 1)
    assert x1 <= x + 2
    assert x2 >= x + 28
    assert y1 <= 122
    assert y2 >= 208
    assert 0.02 < run.results[-1].area < 0.2


def test_motion_stops_once_the_person_has_left(rng: np.random.Generator) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    run.feed(walk(img, rng, list(range(20, 330, 15)), 120, person(90, 30)))
    after = run.feed(still(img, rng, 20))
    # Nothing is left behind where the person stood or walked.
    assert after[8:] == [False] * 12, after


def test_object_in_view_at_start_leaves_no_ghost(rng: np.random.Generator) -> None:
    img = porch()
    parked = paste(img, person(90, 60, seed=3), 200, 100)
    # A long still_hold: only the ghost check can clear what the object uncovers.
    run = Run(settings=MotionSettings(still_hold=60.0))
    run.feed(still(parked, rng, 5))
    # It drives away: the revealed wall is not "motion" for long (under 2 s at 5 fps).
    leaving = run.feed(walk(img, rng, [215, 240, 270, 300, 330], 100, person(90, 60, seed=3)))
    after = run.feed(still(img, rng, 20))
    assert any(leaving)
    assert after[8:] == [False] * 12, after


def test_stopped_object_is_reported_then_becomes_scenery(rng: np.random.Generator) -> None:
    img = porch()
    run = Run(settings=MotionSettings(still_hold=3.0))  # 15 frames at 5 fps
    run.feed(still(img, rng, 10))
    figure = person(90, 40, seed=5)
    run.feed(walk(img, rng, [-30, 0, 30, 60], 110, figure))
    parked = paste(img, figure, 60, 110)
    standing = run.feed(still(parked, rng, 40))
    assert all(standing[:12]), standing
    assert standing[-10:] == [False] * 10, standing


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (lambda f: u8(cv2.convertScaleAbs(f, alpha=1.5, beta=0)), "auto exposure x1.5"),
        (lambda f: u8(cv2.convertScaleAbs(f, alpha=0.5, beta=10)), "dusk: exposure halves"),
        (
            lambda f: np.clip(255.0 * (f / 255.0) ** 0.6, 0, 255).astype(np.uint8),
            "IR switch: tone curve",
        ),
        (lambda f: u8(cv2.convertScaleAbs(f, alpha=1.0, beta=70)), "lightning flash"),
        (lambda f: u8(cv2.convertScaleAbs(f, alpha=1.2, beta=110)), "flash saturating the view"),
        (
            lambda f: np.clip(f * np.linspace(1.6, 0.9, f.shape[1])[None, :], 0, 255).astype(
                np.uint8
            ),
            "headlights from the left",
        ),
    ],
)
def test_sudden_lighting_change_is_not_motion(
    rng: np.random.Generator, change: object, name: str
) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    assert callable(change)
    relit = change(img)
    moving = run.feed(still(relit, rng, 10)) + run.feed(still(img, rng, 10))
    assert not any(moving), (name, moving)


def _beam(img: Frame, centre: float) -> Frame:
    """Headlights: a bright vertical band (up to 1.7x, saturating) centred at x."""
    x = np.arange(img.shape[1])[None, :]
    gain = 1.0 + 0.7 * np.exp(-(((x - centre) / 35.0) ** 2))
    return u8(np.clip(img * gain, 0, 255))


def test_headlights_sweeping_across_are_not_motion(rng: np.random.Generator) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    sweep = [with_noise(_beam(img, x), rng) for x in range(-40, 380, 15)]
    assert run.feed(sweep + still(img, rng, 10)) == [False] * (len(sweep) + 10)


def test_visitor_walking_in_while_headlights_sweep_is_motion(rng: np.random.Generator) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    figure = person(90, 30)
    xs = list(range(20, 200, 12))
    frames = [with_noise(_beam(paste(img, figure, x, 120), 15 * i), rng) for i, x in enumerate(xs)]
    assert all(run.feed(frames))


def test_lighting_compensation_can_be_turned_off(rng: np.random.Generator) -> None:
    img = porch()
    run = Run(settings=MotionSettings(lighting_compensation=False))
    run.feed(still(img, rng, 10))
    assert run.feed([u8(cv2.convertScaleAbs(img, alpha=1.5, beta=0))])[0]


def test_person_filling_the_frame_is_motion_even_as_exposure_adapts(
    rng: np.random.Generator,
) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    close = paste(img, person(230, 220, seed=9), 50, 5)
    # The camera brightens its exposure as the dark figure fills the view.
    frames = [with_noise(u8(cv2.convertScaleAbs(close, alpha=1.3, beta=0)), rng) for _ in range(3)]
    assert all(run.feed(frames))


def test_motion_inside_a_mask_is_ignored(rng: np.random.Generator) -> None:
    img = porch()
    street = ((160, 0), (320, 0), (320, 240), (160, 240))
    run = Run(settings=MotionSettings(masks=(street,)))
    run.feed(still(img, rng, 10))
    figure = person(90, 30)
    assert not any(run.feed(walk(img, rng, list(range(180, 300, 12)), 120, figure)))
    assert all(run.feed(walk(img, rng, list(range(20, 120, 12)), 120, figure)))
    assert all(box[2] <= 175 for result in run.results[-5:] for box in result.boxes)


def test_masks_are_in_detect_stream_pixels_on_large_frames(rng: np.random.Generator) -> None:
    img = u8(cv2.resize(porch(), (1280, 720)))
    right = ((640, 0), (1280, 0), (1280, 720), (640, 720))
    run = Run(1280, 720, MotionSettings(masks=(right,)))
    run.feed(still(img, rng, 8))
    figure = person(270, 90)
    assert not any(run.feed(walk(img, rng, list(range(700, 1100, 40)), 360, figure)))
    moving = run.feed(walk(img, rng, list(range(100, 450, 40)), 360, figure))
    assert all(moving)
    assert all(0 <= b[0] < b[2] <= 1280 and 0 <= b[1] < b[3] <= 720 for b in run.results[-1].boxes)


def test_with_zones_only_motion_inside_a_zone_counts(rng: np.random.Generator) -> None:
    img = porch()
    path = ("path", ((0, 0), (160, 0), (160, 240), (0, 240)))
    run = Run(settings=MotionSettings(zones=(path,)))
    run.feed(still(img, rng, 10))
    figure = person(90, 30)
    # The street (right half) is outside every zone; the path (left half) is a zone.
    assert not any(run.feed(walk(img, rng, list(range(180, 300, 12)), 120, figure)))
    assert all(run.feed(walk(img, rng, list(range(20, 120, 12)), 120, figure)))


def test_masks_apply_inside_zones(rng: np.random.Generator) -> None:
    img = porch()
    whole = ("garden", ((0, 0), (320, 0), (320, 240), (0, 240)))
    bush = ((0, 0), (160, 0), (160, 240), (0, 240))
    run = Run(settings=MotionSettings(zones=(whole,), masks=(bush,)))
    run.feed(still(img, rng, 10))
    figure = person(90, 30)
    assert not any(run.feed(walk(img, rng, list(range(20, 120, 12)), 120, figure)))
    assert all(run.feed(walk(img, rng, list(range(180, 280, 12)), 120, figure)))


def test_small_changes_are_filtered_by_min_area(rng: np.random.Generator) -> None:
    img = porch()
    leaf = person(6, 6, seed=4)  # 36 px: 0.05 % of the frame
    frames = walk(img, rng, list(range(40, 100, 3)), 60, leaf)
    assert not any(Run().feed(still(img, rng, 5) + frames)[5:])
    sensitive = Run(settings=MotionSettings(min_area=0.0002))
    assert any(sensitive.feed(still(img, rng, 5) + frames)[5:])


def test_one_frame_flicker_is_not_motion(rng: np.random.Generator) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    drop = paste(img, person(12, 12, seed=6), 100, 50)  # rain drop on the lens, one frame
    moving = run.feed([with_noise(drop, rng), *still(img, rng, 5)])
    assert not any(moving)


def test_sensitivity_sets_the_contrast_that_counts(rng: np.random.Generator) -> None:
    img = porch()

    def shadowed(x: int) -> Frame:
        # A figure only 14 grey levels darker than what it passes in front of.
        out = img.astype(np.int16)
        out[100:190, x : x + 30] -= 14
        return with_noise(np.clip(out, 0, 255).astype(np.uint8), rng)

    def seen(sensitivity: float) -> bool:
        run = Run(settings=MotionSettings(sensitivity=sensitivity))
        run.feed(still(img, rng, 10))
        return any(run.feed([shadowed(x) for x in range(40, 160, 10)]))

    assert seen(0.9)
    assert not seen(0.3)


def test_still_hold_is_in_seconds_whatever_the_frame_rate(rng: np.random.Generator) -> None:
    img = porch()
    figure = person(90, 40, seed=5)
    parked = paste(img, figure, 60, 110)
    for fps in (5.0, 10.0):
        run = Run(settings=MotionSettings(still_hold=2.0), fps=fps)
        run.feed(still(img, rng, 10))
        run.feed(walk(img, rng, [-30, 0, 30, 60], 110, figure))
        standing = run.feed(still(parked, rng, int(5 * fps)))
        held = standing.index(False) if False in standing else len(standing)
        # Held for still_hold once the picture has settled (about a second).
        assert 2.0 * fps <= held <= 3.5 * fps, (fps, standing)


def test_padded_luma_plane_view_is_accepted(rng: np.random.Generator) -> None:
    img = porch()
    padded = np.zeros((240, 352), np.uint8)  # decoder rows are often wider than the frame
    detector = create_detector(320, 240, MotionSettings())
    for frame in [*still(img, rng, 8), *walk(img, rng, [40, 60, 80], 120, person(90, 30))]:
        padded[:, :320] = frame
        result = detector.detect(padded[:, :320])
    assert isinstance(result, MotionResult)
    assert result.moving


def test_frames_of_the_wrong_size_are_refused() -> None:
    detector = create_detector(320, 240, MotionSettings())
    with pytest.raises(ValueError, match="320x240"):
        detector.detect(np.zeros((240, 321), np.uint8))


def test_reset_forgets_the_scene(rng: np.random.Generator) -> None:
    run = Run()
    run.feed(still(porch(seed=0), rng, 5))
    run.detector.reset()
    # A different scene after a stream restart is learnt afresh, not reported as motion.
    assert run.feed(still(porch(seed=1), rng, 10)) == [False] * 10


def test_large_frames_are_analysed_on_a_small_grid_small_ones_as_they_are() -> None:
    assert create_detector(320, 240, MotionSettings()).grid_size == (320, 240)
    assert create_detector(192, 256, MotionSettings()).grid_size == (192, 256)
    assert create_detector(640, 360, MotionSettings()).grid_size == (160, 90)
    assert create_detector(1280, 720, MotionSettings()).grid_size == (160, 90)
    # Wider frames: fewer rows, so that no more of the frame is read than at 1280x720.
    assert create_detector(1920, 1080, MotionSettings()).grid_size == (106, 60)
    assert create_detector(3840, 2160, MotionSettings()).grid_size == (80, 45)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_min_area_is_a_share_of_the_picture_at_every_size(
    rng: np.random.Generator, size: tuple[int, int]
) -> None:
    """Objects are judged by their share of the picture, whatever grid the size gets."""
    width, height = size
    img = u8(cv2.resize(porch(), size))
    area = width * height * MotionSettings().min_area

    def seen(share_of_min_area: float) -> list[bool]:
        side = round(np.sqrt(area * share_of_min_area))
        figure = person(side, side, seed=4)
        # Across the door, half its size per frame.
        xs = [width // 3 + i * side // 2 for i in range(8)]
        run = Run(width, height)
        run.feed(still(img, rng, 8))
        return run.feed(walk(img, rng, xs, height // 3, figure))

    # A bird a quarter of min_area big is never motion; a cat one and a half times
    # min_area is, from its second frame in view (small regions must persist).
    assert not any(seen(0.25))
    assert all(seen(1.5)[1:])


def test_boxes_are_in_frame_pixels_on_large_frames(rng: np.random.Generator) -> None:
    img = u8(cv2.resize(porch(), (1920, 1080)))
    run = Run(1920, 1080)
    run.feed(still(img, rng, 8))
    figure = person(400, 120)
    run.feed(walk(img, rng, list(range(300, 700, 60)), 500, figure))
    x1, y1, x2, y2 = run.results[-1].boxes[0]
    # The figure is at x 660..780, y 500..900; boxes are within a grid cell (18 px).
    assert x1 <= 662
    assert x2 >= 768
    assert y1 <= 512
    assert y2 >= 880


def test_long_still_hold_is_honoured(rng: np.random.Generator) -> None:
    img = porch()
    figure = person(90, 40, seed=5)
    parked = paste(img, figure, 60, 110)
    run = Run(settings=MotionSettings(still_hold=60.0))  # 300 frames at 5 fps
    run.feed(still(img, rng, 10))
    run.feed(walk(img, rng, [-30, 0, 30, 60], 110, figure))
    standing = run.feed(still(parked, rng, 340))
    held = standing.index(False) if False in standing else len(standing)
    assert 300 <= held <= 330, held
    assert not any(standing[held:])


def test_rain_is_not_motion_but_a_visitor_in_the_rain_is(rng: np.random.Generator) -> None:
    img = porch()

    def rainy(frame: Frame) -> Frame:
        out = frame.astype(np.int16)
        for _ in range(40):  # streaks of a few pixels, somewhere else in every frame
            x, y = int(rng.integers(0, 318)), int(rng.integers(0, 232))
            out[y : y + 8, x : x + 2] += 60
        return with_noise(np.clip(out, 0, 255).astype(np.uint8), rng)

    run = Run()
    run.feed([rainy(img) for _ in range(40)])
    assert not any(run.feed([rainy(img) for _ in range(40)]))
    figure = person(90, 30)
    visitor = [rainy(paste(img, figure, x, 120)) for x in range(20, 200, 12)]
    assert all(run.feed(visitor))


def test_camera_shaking_by_a_pixel_is_not_motion(rng: np.random.Generator) -> None:
    img = porch()
    run = Run()
    run.feed(still(img, rng, 10))
    shifts = [(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (0, 0)] * 3
    shaken = [with_noise(np.roll(img, shift, axis=(1, 0)), rng) for shift in shifts]
    assert not any(run.feed(shaken))
