"""The live stream with a real demo camera: shared decode, masks, open only while watched."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
import threading
import time
from typing import Any

import av
import numpy as np
import pytest

from doorstep_bridge.camera.demo import DemoSource, read_clock
from doorstep_bridge.camera.pipeline import open_source
from doorstep_bridge.camera.rtsp import BATCH_INTERVAL, RtspSource
from doorstep_bridge.camera.sources import Source
from doorstep_bridge.config import CameraSettings, parse_config
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.live import stream as live_stream
from doorstep_bridge.live.stream import (
    LIVE_BATCH_INTERVAL,
    VIEWER_QUEUE,
    LiveFrame,
    LiveStream,
    Viewer,
    open_live_source,
)
from doorstep_bridge.packets import EncodedPacket
from tests.support.media import write_h264
from tests.support.mjpeg_client import decode_jpeg
from tests.support.servers import rtsp_available, rtsp_server

DEMO = "demo://?period=600&fps=10&width=320&height=180&clock=1"
#: A mask over the top-left corner, in main-stream pixels (640 x 360 below).
MASK = [[0, 0], [160, 0], [160, 120], [0, 120]]


def camera(tmp_path: Path, **settings: Any) -> CameraSettings:
    raw = {"cameras": {"front_door": {"source": DEMO, "live": {"linger": 0}, **settings}}}
    return parse_config(raw, tmp_path).cameras["front_door"]


async def until(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Wait for ``condition`` (a safety deadline only: nothing here measures time)."""
    for _ in range(round(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def frames(viewer: Viewer, count: int) -> list[LiveFrame]:
    return [await asyncio.wait_for(viewer.next_frame(), 20) for _ in range(count)]


async def test_the_source_is_open_only_while_someone_watches(tmp_path: Path) -> None:
    stream = LiveStream(camera(tmp_path))
    assert not stream.running
    assert stream.sources_opened == 0
    async with stream.watch() as viewer:
        await frames(viewer, 3)
        assert stream.running
        assert stream.sources_open == 1
    await until(lambda: not stream.running, "the source closed after the last viewer left")
    assert stream.sources_open == 0
    assert stream.sources_opened == 1
    async with stream.watch() as viewer:  # a new viewer opens it again
        await frames(viewer, 1)
        assert stream.sources_open == 1
    await until(lambda: not stream.running, "closed again")
    assert stream.sources_opened == 2
    await stream.close()


async def test_frames_advance_and_two_viewers_share_one_decode(tmp_path: Path) -> None:
    stream = LiveStream(camera(tmp_path))
    async with stream.watch() as first, stream.watch() as second:
        pairs = [await asyncio.gather(*(frames(v, 1) for v in (first, second))) for _ in range(8)]
        assert stream.sources_opened == 1
    seen_first = [one[0] for one, _ in pairs]
    # Both got the very same encoded frames: the camera was decoded and encoded once.
    assert all(one[0] is other[0] for one, other in pairs)
    sequences = [frame.sequence for frame in seen_first]
    assert sequences == sorted(set(sequences))
    clocks = [read_clock(decode_jpeg(frame.jpeg)) for frame in seen_first]
    assert None not in clocks
    assert len(set(clocks)) == len(clocks), "the picture itself advances"
    await stream.close()


async def test_a_slow_viewer_keeps_two_frames_and_drops_the_rest(tmp_path: Path) -> None:
    stream = LiveStream(camera(tmp_path))
    async with stream.watch() as fast, stream.watch() as stalled:
        await frames(fast, 20)
        assert stalled.queued <= VIEWER_QUEUE
        assert stalled.dropped >= 20 - VIEWER_QUEUE - 2
        newest = await stalled.next_frame()
        assert newest.sequence >= 18, "a slow viewer gets recent frames, not old ones"
    await stream.close()


def masked_corner(image: np.ndarray[Any, Any], width: int, height: int) -> np.ndarray[Any, Any]:
    """The masked rectangle (a quarter by a third of the frame), 2 px inside its edges."""
    return image[2 : height // 3 - 2, 2 : width // 4 - 2]


async def test_the_masked_area_is_black_in_every_frame(tmp_path: Path) -> None:
    main = "demo://?period=8&fps=10&width=640&height=360&clock=1"
    stream = LiveStream(camera(tmp_path, source=main, privacy_masks=[MASK]))
    async with stream.watch() as viewer:
        for frame in await frames(viewer, 15):
            image = decode_jpeg(frame.jpeg)
            assert image.shape[:2] == (360, 640)
            assert int(masked_corner(image, 640, 360).max()) <= 24
            assert float(image[200:, 300:].mean()) > 40, "the rest of the picture is there"
    await stream.close()


async def test_masks_are_scaled_onto_the_detect_stream(tmp_path: Path) -> None:
    main = "demo://?period=600&fps=10&width=640&height=360"
    detect = "demo://?period=600&fps=10&width=320&height=180&clock=1"
    settings = camera(tmp_path, source=main, detect_source=detect, privacy_masks=[MASK])
    assert settings.live.source == "detect"
    stream = LiveStream(settings)
    async with stream.watch() as viewer:
        for frame in await frames(viewer, 5):
            image = decode_jpeg(frame.jpeg)
            assert image.shape[:2] == (180, 320), "the default streams the detect stream"
            assert int(masked_corner(image, 320, 180).max()) <= 24
    await stream.close()


async def test_masks_follow_a_main_stream_that_came_back_at_another_size(
    tmp_path: Path,
) -> None:
    """The owner lowers the camera's main resolution: live masks still cover the area.

    Clips take the masks in the main stream's pixels as it is now; the live view of the
    detect stream must scale them from that size, not from the one it saw first.
    """
    main = "demo://?period=600&fps=10&width=640&height=360"
    detect = "demo://?period=600&fps=10&width=320&height=180&clock=1"
    # The top-left quarter of the 640 x 360 picture (a sixteenth of a 1280 x 720 one).
    quarter = [[0, 0], [320, 0], [320, 180], [0, 180]]
    main_now = ["demo://?period=600&fps=10&width=1280&height=720"]

    def factory(url: str, on_ring: Callable[[], None] | None) -> Source:
        return open_source(main_now[0] if url == main else url, on_ring)

    settings = camera(tmp_path, source=main, detect_source=detect, privacy_masks=[quarter])
    stream = LiveStream(settings, source_factory=factory)
    async with stream.watch() as viewer:
        await frames(viewer, 1)
    await until(lambda: not stream.running, "the live view closed")
    main_now[0] = main  # the camera came back at 640 x 360
    async with stream.watch() as viewer:
        for frame in await frames(viewer, 3):
            image = decode_jpeg(frame.jpeg)
            assert int(image[2:88, 2:158].max()) <= 24, "the quarter is masked"
            assert float(image[100:, 170:].mean()) > 40, "the rest of the picture is there"
    await stream.close()


async def test_masks_follow_the_main_size_the_camera_pipeline_sees(tmp_path: Path) -> None:
    """While the pipeline reads the main stream, its size places the masks, even mid-view."""
    main = "demo://?period=600&fps=10&width=640&height=360"
    detect = "demo://?period=600&fps=10&width=320&height=180&clock=1"
    quarter = [[0, 0], [320, 0], [320, 180], [0, 180]]
    main_size: list[tuple[int, int] | None] = [(1280, 720)]
    settings = camera(tmp_path, source=main, detect_source=detect, privacy_masks=[quarter])
    stream = LiveStream(settings, main_size=lambda: main_size[0])
    async with stream.watch() as viewer:
        (first,) = await frames(viewer, 1)
        assert int(decode_jpeg(first.jpeg)[2:88, 2:158].max()) > 100, "a sixteenth only"
        main_size[0] = (640, 360)  # the main stream reconnected at another size
        await frames(viewer, VIEWER_QUEUE)  # frames made before the change
        for frame in await frames(viewer, 3):
            assert int(decode_jpeg(frame.jpeg)[2:88, 2:158].max()) <= 24, "now a quarter"
    await stream.close()
    assert stream.sources_opened == 1, "the main stream is not opened to learn its size"


async def test_live_source_main_streams_the_main_stream(tmp_path: Path) -> None:
    main = "demo://?period=600&fps=10&width=640&height=360"
    detect = "demo://?period=600&fps=10&width=320&height=180"
    settings = camera(
        tmp_path, source=main, detect_source=detect, live={"source": "main", "linger": 0}
    )
    stream = LiveStream(settings)
    async with stream.watch() as viewer:
        (frame,) = await frames(viewer, 1)
        assert (frame.width, frame.height) == (640, 360)
    await stream.close()


async def test_the_frame_rate_is_capped(tmp_path: Path) -> None:
    source = "demo://?period=600&fps=20&width=320&height=180"
    stream = LiveStream(camera(tmp_path, source=source, live={"fps": 5, "linger": 0}))
    async with stream.watch() as viewer:
        await frames(viewer, 6)
    # The camera sent 20 frames a second; every one was decoded, about a quarter encoded.
    assert stream.frames_encoded <= 8
    await stream.close()


def test_a_still_of_a_detect_stream_needs_the_main_stream_size(tmp_path: Path) -> None:
    """Masks are in main-stream pixels: without its size a detect frame cannot be masked."""
    main = "demo://?period=600&fps=10&width=640&height=360"
    settings = camera(tmp_path, source=main, detect_source=DEMO, privacy_masks=[MASK])
    stream = LiveStream(settings)
    picture = np.full((180, 320, 3), 200, np.uint8)
    frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
    with pytest.raises(CameraError, match="main stream size unknown"):
        stream.still(frame, 1.0, None)
    still = stream.still(frame, 1.0, (640, 360))
    image = decode_jpeg(still.jpeg)
    assert (still.width, still.height, still.captured) == (320, 180, 1.0)
    assert int(masked_corner(image, 320, 180).max()) <= 24
    assert int(image[100:, 100:].min()) > 150, "only the mask is filled"
    assert stream.sources_opened == 0


async def test_an_rtsp_camera_is_watched_without_batched_reads(tmp_path: Path) -> None:
    """The live connection to an RTSP camera is read every 20 ms, not in 0.2 s batches."""
    if (why := rtsp_available()) is not None:
        pytest.skip(why)
    source = open_live_source("rtsp://127.0.0.1:1/main")
    assert isinstance(source, RtspSource)
    assert source._batch_interval == LIVE_BATCH_INTERVAL < BATCH_INTERVAL
    porch = write_h264(tmp_path / "porch.mp4", width=320, height=180, fps=15, seconds=4)
    with rtsp_server({"/main": porch.path}) as url:
        settings = camera(
            tmp_path, source=f"{url}/main", privacy_masks=[[[0, 0], [80, 0], [80, 60], [0, 60]]]
        )
        stream = LiveStream(settings)
        async with stream.watch() as viewer:
            received = await frames(viewer, 5)
        await stream.close()
    assert [frame.sequence for frame in received] == [1, 2, 3, 4, 5]
    for frame in received:
        assert int(decode_jpeg(frame.jpeg)[2:58, 2:78].max()) <= 24
    assert stream.sources_opened == 1


class LateSource:
    """The demo camera read late: its first ``late`` packets were captured 3 s ago."""

    def __init__(self, url: str, late: int) -> None:
        self._source = DemoSource(url)
        self._late = late

    @property
    def description(self) -> str:
        return self._source.description

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        for index, packet in enumerate(self._source.packets(stop)):
            yield replace(packet, wall=packet.wall - 3.0) if index < self._late else packet


async def test_a_live_view_that_fell_behind_skips_to_the_next_keyframe(tmp_path: Path) -> None:
    """Frames captured more than MAX_LAG ago are not shown: the viewer sees the porch now."""
    url = "demo://?period=600&fps=10&width=320&height=180&clock=1"  # a keyframe every 2 s
    stream = LiveStream(camera(tmp_path, source=url), source_factory=lambda u, _: LateSource(u, 25))
    async with stream.watch() as viewer:
        received = await frames(viewer, 6)
    await stream.close()
    # The first keyframe is shown (late), the 19 late frames after it are skipped, the
    # keyframe at packet 20 (late too) is shown, then again 4 late ones are skipped.
    assert stream.frames_skipped >= 19 + 4
    late = [frame for frame in received if time.time() - frame.captured > 2.0]
    assert len(late) <= 2, "at most the late keyframes are shown"
    assert time.time() - received[-1].captured < 2.0


class DroppingSource:
    """The demo camera, which drops the connection after ``packets`` packets, every time."""

    def __init__(self, url: str, packets: int) -> None:
        self._source = DemoSource(url)
        self._packets = packets

    @property
    def description(self) -> str:
        return self._source.description

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        for index, packet in enumerate(self._source.packets(stop)):
            if index == self._packets:
                raise CameraError("the camera closed the connection")
            yield packet


async def test_a_camera_that_drops_now_and_then_is_back_in_view_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A wall tablet shows the porch all day: the tenth Wi-Fi blip costs what the first did.

    A connection that ran a while starts the backoff over, as the camera pipeline does
    (here "a while" is 0.2 s and the first wait 0.05 s, so the test takes seconds).
    """
    monkeypatch.setattr(live_stream, "BACKOFF_START", 0.05)
    monkeypatch.setattr(live_stream, "STABLE_AFTER", 0.2, raising=False)
    url = "demo://?period=600&fps=10&width=320&height=180"
    stream = LiveStream(
        camera(tmp_path, source=url), source_factory=lambda u, _: DroppingSource(u, 6)
    )
    async with stream.watch() as viewer:
        await until(lambda: stream.sources_opened >= 6, "six connections")
        await frames(viewer, 1)
    await stream.close()
    waits = [
        record.args[2]
        for record in caplog.records
        if "retrying" in record.getMessage() and isinstance(record.args, tuple)
    ]
    assert len(waits) >= 5
    assert set(waits) == {0.05}, "each drop after a good run waits the first backoff"
