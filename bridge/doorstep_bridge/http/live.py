"""Live view routes: a masked MJPEG stream and the latest masked frame of a camera.

Both are under ``/api/``, so the token middleware admits only the API token
(Home Assistant's integration): the live view is never reachable without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web

from doorstep_bridge.camera.pipeline import Detection
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.http.auth import shown
from doorstep_bridge.keys import CAMERAS, CONFIG, LIVE
from doorstep_bridge.live.stream import (
    MJPEG_CONTENT_TYPE,
    MJPEG_START,
    LiveFrame,
    LiveUnavailableError,
    Viewer,
)

_LOGGER = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: How long a request waits for the camera's first frame (opening RTSP takes 0.1 to 2 s).
FIRST_FRAME_TIMEOUT = 10.0
#: How often a stream waiting for a picture checks that its client is still there.
CLIENT_CHECK_INTERVAL = 1.0
#: A client that takes longer than this to take one frame is not watching (a phone that
#: left the Wi-Fi mid-stream, whose connection stays open): its stream ends, freeing its
#: viewer place and, when it was the last, the camera's live session.
WRITE_TIMEOUT = 10.0
#: A still is refused when the pipeline's newest frame is older than this (seconds): motion
#: detection is off (nothing is decoded) or the detect stream stalled.
STILL_MAX_AGE = 3.0
#: A camera is online from its first packet, but its pipeline decodes nothing before a
#: keyframe (and a detect stream may come up after the main one): a still asked then waits
#: this long for the first analysed frame, so a dashboard opened just after the bridge or
#: the camera came up gets a picture, not an error.
FIRST_STILL_WAIT = 3.0
#: How often that wait looks for the first frame (the pipeline decodes on its own thread).
FIRST_STILL_POLL = 0.05
#: Frames are never cached by a browser or a proxy: each request is "now".
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def install(app: web.Application) -> web.RouteTableDef:
    """End live streams early at shutdown; returns the live routes.

    The hub itself is started and stopped by the composition root (`lifecycle`).
    """
    # aiohttp types its signals for aiosignal 1.3; with 1.4 mypy misreads the callback type.
    app.on_shutdown.append(_end_viewers)  # type: ignore[arg-type]
    return routes


async def _end_viewers(app: web.Application) -> None:
    """At shutdown, end the streams in flight so the server need not wait for them."""
    if (hub := app.get(LIVE)) is not None:
        await hub.close()


def _unavailable(reason: str, message: str) -> web.Response:
    return web.json_response(
        {"error": message, "reason": reason}, status=503, headers={"Retry-After": "5"}
    )


def _refusal(request: web.Request) -> web.Response | None:
    """The answer for an unknown or offline camera; None when it can be watched."""
    camera = request.match_info["camera"]
    if camera not in request.app[CONFIG].cameras:
        return web.json_response({"error": f"unknown camera {shown(camera)}"}, status=404)
    manager = request.app.get(CAMERAS)
    if manager is not None and not manager.status(camera).online:
        return _unavailable("camera_offline", f"camera {camera} is offline")
    return None


def _head(request: web.Request, content_type: str) -> web.Response:
    """A HEAD answers with headers only and opens no camera: a stream has no end to send."""
    if (refused := _refusal(request)) is not None:
        return refused
    return web.Response(headers={"Content-Type": content_type, **_NO_STORE})


async def _first_frame(request: web.Request) -> tuple[Viewer, LiveFrame] | web.Response:
    """Join the camera's live stream and wait for a frame, or the answer refusing it."""
    if (refused := _refusal(request)) is not None:
        return refused
    camera = request.match_info["camera"]
    try:
        viewer = request.app[LIVE].stream(camera).join()
    except LiveUnavailableError as err:
        return _unavailable(err.reason, str(err))
    try:
        async with asyncio.timeout(FIRST_FRAME_TIMEOUT):
            frame = await viewer.next_frame()
    except LiveUnavailableError as err:
        viewer.close()
        return _unavailable(err.reason, str(err))
    except TimeoutError:
        viewer.close()
        return _unavailable("source_failed", f"camera {camera} sent no picture in time")
    except BaseException:
        viewer.close()
        raise
    return viewer, frame


async def _next_while_connected(request: web.Request, viewer: Viewer) -> LiveFrame:
    """The viewer's next frame; ConnectionResetError as soon as its client has gone.

    A client that leaves is otherwise noticed only by the next write, which never comes
    while the camera sends nothing: its viewer slot would stay taken.
    """
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client left")
        try:
            async with asyncio.timeout(CLIENT_CHECK_INTERVAL):
                return await viewer.next_frame()
        except TimeoutError:
            continue


async def _first_decoded(detection: Detection) -> tuple[Any, float] | None:
    """The pipeline's newest analysed frame, waiting for its first while detection is on.

    With motion detection off nothing is decoded, so there is nothing to wait for.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_STILL_WAIT):
            # The frame comes on the camera's reader thread and a switch may turn detection
            # off meanwhile: polling is simpler than an event both would have to set.
            while detection.latest is None and detection.enabled:  # noqa: ASYNC110
                await asyncio.sleep(FIRST_STILL_POLL)
    return detection.latest


@routes.get("/api/cameras/{camera}/live.jpg", allow_head=False)
async def live_jpeg(request: web.Request) -> web.Response:
    """The latest masked frame as a JPEG, made from a frame the bridge decoded already.

    While someone watches, the frame the viewers got last; otherwise the newest frame
    the camera pipeline analysed for motion (its detect stream), masked and encoded
    now. A still never opens the camera nor starts a live session: a dashboard that
    refreshes its picture every few seconds costs one JPEG encode each time.
    """
    if (refused := _refusal(request)) is not None:
        return refused
    camera = request.match_info["camera"]
    stream = request.app[LIVE].stream(camera)
    frame = stream.latest
    if frame is None:
        manager = request.app.get(CAMERAS)
        pipeline = manager.pipeline(camera) if manager is not None else None
        decoded = await _first_decoded(pipeline.detection) if pipeline is not None else None
        if pipeline is None or decoded is None or time.time() - decoded[1] > STILL_MAX_AGE:
            return _unavailable("no_recent_frame", f"camera {camera} has no recent picture")
        try:
            frame = await asyncio.to_thread(
                stream.still, decoded[0], decoded[1], pipeline.main_size
            )
        except CameraError as err:
            return _unavailable("source_failed", f"camera {camera}: {err}")
    return web.Response(body=frame.jpeg, content_type="image/jpeg", headers=_headers(frame))


@routes.head("/api/cameras/{camera}/live.jpg")
async def live_jpeg_head(request: web.Request) -> web.Response:
    """Headers of the still, without opening the camera."""
    return _head(request, "image/jpeg")


@routes.head("/api/cameras/{camera}/live.mjpeg")
async def live_mjpeg_head(request: web.Request) -> web.Response:
    """Headers of the stream, without opening the camera."""
    return _head(request, MJPEG_CONTENT_TYPE)


@routes.get("/api/cameras/{camera}/live.mjpeg", allow_head=False)
async def live_mjpeg(request: web.Request) -> web.StreamResponse:
    """The masked live stream, ``multipart/x-mixed-replace`` (one JPEG per part)."""
    opened = await _first_frame(request)
    if isinstance(opened, web.Response):
        return opened
    viewer, frame = opened
    try:
        response = web.StreamResponse(headers={"Content-Type": MJPEG_CONTENT_TYPE, **_NO_STORE})
        await response.prepare(request)
        async with asyncio.timeout(WRITE_TIMEOUT):
            await response.write(MJPEG_START)
        while True:
            async with asyncio.timeout(WRITE_TIMEOUT):
                await response.write(frame.part)
            frame = await _next_while_connected(request, viewer)
    except (LiveUnavailableError, ConnectionError):
        pass  # the bridge is stopping or the client left: the stream just ends
    except TimeoutError:
        # A write cut short leaves the stream mid-part: the connection goes with it.
        _LOGGER.info(
            "A live viewer of camera %s took no frame for %g s: its stream is ended",
            request.match_info["camera"],
            WRITE_TIMEOUT,
        )
        if request.transport is not None:
            request.transport.close()
    finally:
        viewer.close()
    return response


def _headers(frame: LiveFrame) -> dict[str, Any]:
    return {**_NO_STORE, "X-Doorstep-Captured": f"{frame.captured:.3f}"}
