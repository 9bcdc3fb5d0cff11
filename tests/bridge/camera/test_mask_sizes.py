"""Privacy masks that no longer fit the camera's frames are said, at every start."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from doorstep_bridge.camera.mask_sizes import FILE_NAME, MaskSizes, outside_the_frame
from doorstep_bridge.events import MaskProblem
from tests.bridge.camera.test_manager import running
from tests.support.media import write_h264

WINDOW = ((0, 0), (300, 0), (300, 200), (0, 200))
LOGGER = "doorstep_bridge.camera.mask_sizes"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


def test_masks_drawn_for_another_size_are_said_at_every_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = tmp_path / FILE_NAME
    MaskSizes(path).seen("front_door", [WINDOW], (1920, 1080))
    assert warnings(caplog) == []
    assert json.loads(path.read_text())["front_door"]["size"] == [1920, 1080]

    # The owner set the camera to 4K: the same pixels are now another part of the porch.
    for _start in range(2):
        sizes = MaskSizes(path)
        sizes.seen("front_door", [WINDOW], (3840, 2160))
        sizes.seen("front_door", [WINDOW], (3840, 2160))  # a reconnection: said once a run
    assert warnings(caplog) == 2 * [
        (
            "Camera front_door now sends 3840x2160 frames, but its privacy masks were drawn while it"
            " sent 1920x1080: masks are in pixels, so they now cover another part of the picture"
            " and what they hid may be recorded. Look at a snapshot, then redraw"
            " cameras.front_door.privacy_masks in 3840x2160 pixels (the bridge then takes them as"
            " drawn for that size) or set the camera back to 1920x1080"
        )
    ]

    # Redrawn for 4K: taken as drawn for it, and nothing more is said.
    caplog.clear()
    redrawn = ((0, 0), (600, 0), (600, 400), (0, 400))
    MaskSizes(path).seen("front_door", [redrawn], (3840, 2160))
    MaskSizes(path).seen("front_door", [redrawn], (3840, 2160))
    assert warnings(caplog) == []
    assert json.loads(path.read_text())["front_door"]["size"] == [3840, 2160]


def test_each_camera_keeps_its_own_size(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    sizes = MaskSizes(tmp_path / FILE_NAME)
    sizes.seen("front_door", [WINDOW], (1280, 720))
    sizes.seen("garden", [WINDOW], (640, 360))
    sizes.seen("front_door", [WINDOW], (1280, 720))
    assert warnings(caplog) == []
    sizes.seen("garden", [WINDOW], (1280, 720))
    assert len(warnings(caplog)) == 1
    assert warnings(caplog)[0].startswith("Camera garden now sends 1280x720 frames")


def test_a_mask_wholly_outside_the_frame_hides_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    beyond = ((1400, 100), (1900, 100), (1900, 500))  # drawn on a 1080p snapshot
    generous = ((1100, 0), (1400, 0), (1400, 300), (1100, 300))  # past the edge: fine
    assert outside_the_frame([WINDOW, beyond, generous], (1280, 720)) == [2]
    problem = MaskSizes(tmp_path / FILE_NAME).seen("porch", [WINDOW, beyond, generous], (1280, 720))
    assert problem == "privacy mask(s) 2 lie wholly outside the 1280x720 frames"
    assert warnings(caplog) == [
        (
            "Camera porch sends 1280x720 frames, but its privacy mask(s) 2 lie wholly outside them"
            " and hide nothing: masks are in the main stream's pixels. Redraw"
            " cameras.porch.privacy_masks on a snapshot of this camera"
        )
    ]


def test_a_damaged_file_is_started_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    path = tmp_path / FILE_NAME
    path.write_text('{"front_door": {"masks": ', encoding="utf-8")
    MaskSizes(path).seen("front_door", [WINDOW], (1280, 720))
    assert [line.split(" (")[0] for line in warnings(caplog)] == [f"Cannot read {path}"]
    assert json.loads(path.read_text())["front_door"]["size"] == [1280, 720]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_camera_without_masks_keeps_no_size(tmp_path: Path) -> None:
    MaskSizes(tmp_path / FILE_NAME).seen("front_door", [], (1280, 720))
    assert not (tmp_path / FILE_NAME).exists()


@pytest.mark.slow
async def test_a_camera_set_to_another_resolution_is_said(
    tmp_path: Path, storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Real cameras (video files) through the bridge's camera manager, restarted."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    small = write_h264(tmp_path / "small.mp4", width=640, height=360, seconds=2)
    large = write_h264(tmp_path / "large.mp4", width=1280, height=720, seconds=2)
    mask = [list(point) for point in WINDOW]

    async def run(footage: Path, masks: list[Any]) -> str | None:
        """The problem the bridge announces (for Home Assistant) once the camera is up."""
        camera = {"source": str(footage), "privacy_masks": masks}
        async with running(storage, {"front_door": camera}) as (_, recorded, _):
            event = await recorded.wait(MaskProblem)
        assert event.camera == "front_door"
        problem: str | None = event.problem
        return problem

    assert await run(small.path, [mask]) is None
    assert warnings(caplog) == []
    drawn_for_small = (
        "the privacy masks were drawn while the camera sent 640x360 frames; it now sends 1280x720"
    )
    assert await run(large.path, [mask]) == drawn_for_small
    assert len(warnings(caplog)) == 1
    assert "now sends 1280x720 frames" in warnings(caplog)[0]
    assert "were drawn while it sent 640x360" in warnings(caplog)[0]
    # Redrawn for the new size: the problem is cleared, and nothing more is said.
    assert await run(large.path, [[[2 * x, 2 * y] for x, y in mask]]) is None
    assert len(warnings(caplog)) == 1
