"""The live routes of the running bridge: token, MJPEG frames, the still, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from doorstep_bridge.camera.demo import clock_age_ms, read_clock
from doorstep_bridge.camera.pipeline import Detection
from doorstep_bridge.http import live as live_routes
from doorstep_bridge.http.live import FIRST_STILL_WAIT, STILL_MAX_AGE
from doorstep_bridge.keys import CAMERAS, LIVE
from doorstep_bridge.live.stream import MJPEG_CONTENT_TYPE, VIEWER_QUEUE
from doorstep_bridge.packets import EncodedPacket
from tests.bridge.bridge_runner import RunningBridge, bridge_config, run_bridge
from tests.bridge.conftest import Broker
from tests.bridge.live.test_stream import until
from tests.support.mjpeg_client import decode_jpeg, mjpeg_parts

DEMO = "demo://?period=600&fps=10&width=320&height=180&clock=1"


def cameras(source: str = DEMO, **extra: object) -> dict[str, object]:
    return {
        "cameras": {
            "front_door": {
                "source": source,
                "privacy_masks": [[[0, 0], [80, 0], [80, 60], [0, 60]]],
                "live": {"linger": 0, "max_viewers": 2},
            },
            **extra,
        }
    }


async def online(bridge: RunningBridge, camera: str = "front_door") -> None:
    await until(lambda: bridge.app[CAMERAS].status(camera).online, f"{camera} online")


async def test_live_routes_need_the_api_token(mqtt_broker: Broker, tmp_path: Path) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        for path in ("live.mjpeg", "live.jpg"):
            url = f"{bridge.url}/api/cameras/front_door/{path}"
            async with bridge.session.get(url) as response:
                assert response.status == 401
            bad = {"Authorization": "Bearer not-the-token-at-all"}
            async with bridge.session.get(url, headers=bad) as response:
                assert response.status == 401
        assert bridge.app[LIVE].stream("front_door").sources_opened == 0


async def test_mjpeg_streams_masked_frames_that_advance(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        url = f"{bridge.url}/api/cameras/front_door/live.mjpeg"
        clocks: list[int | None] = []
        async with bridge.session.get(url, headers=bridge.auth) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == MJPEG_CONTENT_TYPE
            assert response.headers["Cache-Control"] == "no-store"
            async for jpeg in mjpeg_parts(response):
                image = decode_jpeg(jpeg)
                assert int(image[2:58, 2:78].max()) <= 24, "the masked corner is black"
                clocks.append(read_clock(image))
                if len(clocks) == 10:
                    break
        assert None not in clocks
        assert len(set(clocks)) == len(clocks), "every part is a new picture"
        stream = bridge.app[LIVE].stream("front_door")
        await until(lambda: not stream.running, "the source closed when the client left")


async def test_the_still_is_the_latest_masked_frame(mqtt_broker: Broker, tmp_path: Path) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        url = f"{bridge.url}/api/cameras/front_door/live.jpg"
        async with bridge.session.get(url, headers=bridge.auth) as response:
            assert response.status == 200
            assert response.content_type == "image/jpeg"
            captured = float(response.headers["X-Doorstep-Captured"])
            image = decode_jpeg(await response.read())
        assert image.shape[:2] == (180, 320)
        assert int(image[2:58, 2:78].max()) <= 24
        drawn = read_clock(image)
        assert drawn is not None
        assert clock_age_ms(drawn, time.time()) < STILL_MAX_AGE * 1000, "a picture of now"
        assert time.time() - captured < STILL_MAX_AGE


async def test_a_still_asked_as_the_camera_comes_online_waits_for_its_first_frame(
    mqtt_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A camera is online from its first packet; its first frame is analysed after that (it
    waits for a keyframe; a busy machine lags). A still asked in between waits for that frame,
    up to FIRST_STILL_WAIT, rather than failing a dashboard opened as the bridge starts."""
    feed = Detection.feed
    lagged: set[int] = set()

    def first_frame_lags(detection: Detection, packet: EncodedPacket) -> None:
        if id(detection) not in lagged:
            lagged.add(id(detection))
            time.sleep(1.5)  # on the camera's reader thread, after it reported online
        feed(detection, packet)

    monkeypatch.setattr(Detection, "feed", first_frame_lags)
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        detection = bridge.app[CAMERAS].pipeline("front_door").detection
        assert detection.latest is None, "asked before the first frame was analysed"
        url = f"{bridge.url}/api/cameras/front_door/live.jpg"
        # A wait shorter than the lag ends in the refusal, with its reason.
        monkeypatch.setattr(live_routes, "FIRST_STILL_WAIT", 0.2)
        async with bridge.session.get(url, headers=bridge.auth) as response:
            assert response.status == 503
            assert (await response.json())["reason"] == "no_recent_frame"
        monkeypatch.setattr(live_routes, "FIRST_STILL_WAIT", FIRST_STILL_WAIT)
        assert detection.latest is None, "still asked before the first frame was analysed"
        async with bridge.session.get(url, headers=bridge.auth) as response:
            assert response.status == 200, await response.text()
            image = decode_jpeg(await response.read())
        assert detection.latest is not None
        assert int(image[2:58, 2:78].max()) <= 24, "masked"
        assert read_clock(image) is not None
        assert bridge.app[LIVE].stream("front_door").sources_opened == 0


async def test_a_still_opens_no_camera_and_starts_no_live_session(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    """Stills come from the frames the pipeline decodes for motion: a dashboard that refreshes
    its picture never opens a second connection to the camera nor a live encoder."""
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        detection = bridge.app[CAMERAS].pipeline("front_door").detection
        await until(lambda: detection.latest is not None, "the pipeline analysed a frame")
        stream = bridge.app[LIVE].stream("front_door")
        url = f"{bridge.url}/api/cameras/front_door/live.jpg"
        clocks = []
        for _ in range(5):
            async with bridge.session.get(url, headers=bridge.auth) as response:
                assert response.status == 200
                clocks.append(read_clock(decode_jpeg(await response.read())))
            await asyncio.sleep(0.3)
        assert None not in clocks
        assert len(set(clocks)) > 1, "each still is the pipeline's newest frame"
        assert (stream.sources_opened, stream.frames_encoded, stream.viewers) == (0, 0, 0)
        assert not stream.running


async def test_while_someone_watches_the_still_is_their_frame(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        stream = bridge.app[LIVE].stream("front_door")
        live = await bridge.session.get(
            f"{bridge.url}/api/cameras/front_door/live.mjpeg", headers=bridge.auth
        )
        try:
            parts = mjpeg_parts(live)
            seen = [await anext(parts)]
            async with bridge.session.get(
                f"{bridge.url}/api/cameras/front_door/live.jpg", headers=bridge.auth
            ) as response:
                assert response.status == 200
                jpeg = await response.read()
            seen += [await anext(parts) for _ in range(VIEWER_QUEUE + 1)]
            # The very JPEG the viewer was sent: no encode of its own, no second source.
            assert jpeg in seen
            assert (stream.sources_opened, stream.viewers) == (1, 1)
        finally:
            live.close()


async def test_without_recent_frames_the_still_is_refused(
    mqtt_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Motion detection off: nothing is decoded, so there is no picture of now (503)."""
    monkeypatch.setattr(live_routes, "STILL_MAX_AGE", 0.3)
    config = cameras()
    # No clip either: a clip being written would still have frames decoded for its snapshot.
    config["cameras"]["front_door"]["record"] = {"enabled": False}  # type: ignore[index]
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **config)) as bridge:
        await online(bridge)
        manager = bridge.app[CAMERAS]
        await until(lambda: manager.pipeline("front_door").detection.latest is not None, "a frame")
        manager.set_switch("front_door", "motion_detection", False)
        await asyncio.sleep(1.0)
        async with bridge.session.get(
            f"{bridge.url}/api/cameras/front_door/live.jpg", headers=bridge.auth
        ) as response:
            assert response.status == 503
            assert (await response.json())["reason"] == "no_recent_frame"
        assert bridge.app[LIVE].stream("front_door").sources_opened == 0


async def test_a_still_of_the_detect_stream_has_the_masks_scaled(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    """Masks are in main-stream pixels (640x360); the still is the 320x180 detect stream."""
    camera = {
        "front_door": {
            "source": "demo://?period=600&fps=10&width=640&height=360",
            "detect_source": DEMO,
            "privacy_masks": [[[0, 0], [160, 0], [160, 120], [0, 120]]],
        }
    }
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, cameras=camera)) as bridge:
        await online(bridge)
        detection = bridge.app[CAMERAS].pipeline("front_door").detection
        await until(lambda: detection.latest is not None, "the detect stream analysed")
        async with bridge.session.get(
            f"{bridge.url}/api/cameras/front_door/live.jpg", headers=bridge.auth
        ) as response:
            assert response.status == 200
            image = decode_jpeg(await response.read())
        assert image.shape[:2] == (180, 320)
        assert int(image[2:58, 2:78].max()) <= 24, "the mask, halved, is black"
        assert float(image[70:170, 100:300].mean()) > 60, "the rest of the porch is there"
        assert bridge.app[LIVE].stream("front_door").sources_opened == 0


async def test_unknown_offline_and_crowded_cameras_are_refused(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    broken = {"back_door": {"source": str(tmp_path / "missing.mp4")}}
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras(**broken))) as bridge:
        await online(bridge)
        async with bridge.session.get(
            f"{bridge.url}/api/cameras/garage/live.mjpeg", headers=bridge.auth
        ) as response:
            assert response.status == 404
        async with bridge.session.get(
            f"{bridge.url}/api/cameras/back_door/live.jpg", headers=bridge.auth
        ) as response:
            assert response.status == 503
            assert (await response.json())["reason"] == "camera_offline"
        url = f"{bridge.url}/api/cameras/front_door/live.mjpeg"
        first = await bridge.session.get(url, headers=bridge.auth)
        second = await bridge.session.get(url, headers=bridge.auth)
        try:
            assert (first.status, second.status) == (200, 200)
            async with bridge.session.get(url, headers=bridge.auth) as third:
                assert third.status == 503
                body = await third.json()
                assert body["reason"] == "too_many_viewers"
                assert body["error"] == (
                    "camera front_door has 2 live viewers already"
                    " (cameras.front_door.live.max_viewers)"
                ), "names the setting to raise"
        finally:
            first.close()
            second.close()


async def test_head_opens_no_camera_and_sends_no_body(mqtt_broker: Broker, tmp_path: Path) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        for path, content_type in (("live.mjpeg", MJPEG_CONTENT_TYPE), ("live.jpg", "image/jpeg")):
            url = f"{bridge.url}/api/cameras/front_door/{path}"
            async with bridge.session.head(url, headers=bridge.auth) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == content_type
                assert await response.read() == b""
        async with bridge.session.head(
            f"{bridge.url}/api/cameras/garage/live.mjpeg", headers=bridge.auth
        ) as response:
            assert response.status == 404
        assert bridge.app[LIVE].stream("front_door").sources_opened == 0


async def test_viewers_that_leave_free_their_place(mqtt_broker: Broker, tmp_path: Path) -> None:
    """Clients that hang up give their place back: the next ones are let in (2 at most here)."""
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        url = f"{bridge.url}/api/cameras/front_door/live.mjpeg"
        stream = bridge.app[LIVE].stream("front_door")
        for _ in range(3):
            gone = [await bridge.session.get(url, headers=bridge.auth) for _ in range(2)]
            assert [response.status for response in gone] == [200, 200]
            for response in gone:
                response.close()  # hang up without reading on
            await until(lambda: stream.viewers == 0, "the places of clients who left are free")
        async with bridge.session.get(
            f"{bridge.url}/api/cameras/front_door/live.jpg", headers=bridge.auth
        ) as response:
            assert response.status == 200


async def test_a_viewer_that_stops_reading_gives_its_place_back(
    mqtt_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone that left the Wi-Fi mid-stream keeps its connection open and reads nothing:
    once no frame gets through for WRITE_TIMEOUT, its place is free and the camera closed."""
    monkeypatch.setattr(live_routes, "WRITE_TIMEOUT", 1.0)
    # Larger frames fill the stalled connections' socket buffers sooner.
    config = cameras(DEMO.replace("width=320&height=180", "width=1280&height=720"))
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **config)) as bridge:
        await online(bridge)
        stream = bridge.app[LIVE].stream("front_door")
        host, port = bridge.url.removeprefix("http://").split(":")
        request = (
            f"GET /api/cameras/front_door/live.mjpeg HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {bridge.token}\r\n\r\n"
        ).encode()
        stalled = []
        for _ in range(2):  # every place (max_viewers: 2)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # full at once
            sock.connect((host, int(port)))
            sock.sendall(request)  # and never reads
            stalled.append(sock)
        try:
            await until(lambda: stream.viewers == 2, "both stalled viewers let in")
            # Before, the bridge waited on their writes for ever: every newcomer was refused
            # (too_many_viewers) and the camera was decoded and encoded for nobody.
            # (Their socket buffers fill first: a few seconds of frames.)
            await until(lambda: stream.viewers == 0, "stalled viewers give their places", 90)
            async with bridge.session.get(
                f"{bridge.url}/api/cameras/front_door/live.mjpeg", headers=bridge.auth
            ) as response:
                assert response.status == 200
                assert b"--" in await response.content.readexactly(64)
        finally:
            for sock in stalled:
                sock.close()


async def test_stopping_the_bridge_ends_the_streams(mqtt_broker: Broker, tmp_path: Path) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, **cameras())) as bridge:
        await online(bridge)
        response = await bridge.session.get(
            f"{bridge.url}/api/cameras/front_door/live.mjpeg", headers=bridge.auth
        )
        parts = mjpeg_parts(response)
        await anext(parts)
        stream = bridge.app[LIVE].stream("front_door")
    # The bridge stopped: the stream ended (the client sees the end of the body).
    assert not stream.running
    assert stream.viewers == 0
    response.close()
    await asyncio.sleep(0)


@contextmanager
def one_client_mjpeg_camera() -> Iterator[tuple[str, list[int]]]:
    """An MJPEG camera that serves one client at a time, as ESP32-CAM's stream server does.

    Yields its URL and the list of connections it served (one entry each).
    """
    ok, encoded = cv2.imencode(".jpg", np.full((180, 320, 3), 128, np.uint8))
    assert ok
    jpeg = encoded.tobytes()
    served: list[int] = []
    done = threading.Event()

    class Camera(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(1)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=fb")
            self.end_headers()
            head = f"--fb\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            try:
                while not done.wait(0.1):
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
            except OSError:
                pass

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Camera)  # one request at a time
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream", served
    finally:
        done.set()
        server.shutdown()
        server.server_close()


async def test_a_one_client_mjpeg_camera_is_watched_over_the_bridge_connection(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    """The live view shares the bridge's connection to an MJPEG camera.

    Many MJPEG cameras (ESP32-CAM and other small ones) serve one client at a time: a
    second connection for the live view would never get a picture.
    """
    with one_client_mjpeg_camera() as (url, served):
        config = {"cameras": {"front_door": {"source": url, "live": {"linger": 0}}}}
        async with run_bridge(bridge_config(mqtt_broker, tmp_path, **config)) as bridge:
            await online(bridge)
            live = f"{bridge.url}/api/cameras/front_door/live.mjpeg"
            async with bridge.session.get(live, headers=bridge.auth) as response:
                assert response.status == 200
                pictures = 0
                async for jpeg in mjpeg_parts(response):
                    assert decode_jpeg(jpeg).shape[:2] == (180, 320)
                    pictures += 1
                    if pictures == 5:
                        break
            assert bridge.app[CAMERAS].status("front_door").online
        assert len(served) == 1, "one connection to the camera, for everything"
