"""Why a camera is down: each failure becomes a status on /api/info and `<b>/<cam>/status`.

Real cameras on loopback: the GStreamer RTSP server asking for a password (401) and
without the asked path (404), an HTTP camera answering 401 and 404, and a port where
nothing listens (refused). The bridge runs whole, against a real Mosquitto.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import socket
import threading
from typing import Any

import av
import cv2
import numpy as np
import pytest

from doorstep_bridge.camera import sources
from doorstep_bridge.camera.pipeline import CameraPipeline, PipelineHooks
from doorstep_bridge.camera.rtsp import RtspSession, RtspSource
from doorstep_bridge.camera.sources import (
    AvSource,
    SourceError,
    av_error_status,
    failure_status,
    os_error_status,
    probe_host,
)
from doorstep_bridge.config import parse_config
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.models import StreamStatus
from doorstep_bridge.recording.recorder import Recorder, RecorderHooks
from doorstep_bridge.recording.store import ClipStore
from tests.bridge.bridge_runner import bridge_config, run_bridge
from tests.bridge.camera.conftest import CountingGate, FrameDifference
from tests.bridge.conftest import Broker, Listener, free_port
from tests.support.media import Footage
from tests.support.servers import answering_http_server, rtsp_server

PASSWORD = "hunter2secret"


@pytest.fixture
def http_camera() -> Iterator[str]:
    """An HTTP camera: 401 under /private, 404 anywhere else."""
    with answering_http_server(lambda path: 401 if path.startswith("/private") else 404) as url:
        yield url


def fail(source: Any) -> CameraError:
    """The error a source raises on its first read."""
    stop = threading.Event()
    with pytest.raises(CameraError) as caught:
        next(iter(source.packets(stop)))
    return caught.value


# -- classification ------------------------------------------------------------------------


def test_socket_errors_become_refused_or_unreachable() -> None:
    assert os_error_status(ConnectionRefusedError(111, "Connection refused")) == "refused"
    assert os_error_status(TimeoutError()) == "unreachable"
    assert os_error_status(socket.gaierror(-2, "Name or service not known")) == "unreachable"
    assert os_error_status(OSError(113, "No route to host")) == "unreachable"
    assert os_error_status(OSError(104, "Connection reset by peer")) == "error"


def test_ffmpeg_errors_become_statuses() -> None:
    def av_error(code: int) -> BaseException:
        try:
            av.error.err_check(-code)
        except av.FFmpegError as err:
            return err
        raise AssertionError("no error")

    # FFmpeg's HTTP error codes: FFERRTAG(0xF8, '4', '0', '1') and so on.
    def tag(a: str, b: str, c: str) -> int:
        return 0xF8 | ord(a) << 8 | ord(b) << 16 | ord(c) << 24

    assert av_error_status(av_error(tag("4", "0", "1"))) == "auth_failed"
    assert av_error_status(av_error(tag("4", "0", "3"))) == "auth_failed"
    assert av_error_status(av_error(tag("4", "0", "4"))) == "not_found"
    assert av_error_status(av_error(111)) == "refused"  # ECONNREFUSED
    assert av_error_status(av_error(110)) == "unreachable"  # ETIMEDOUT
    assert av_error_status(av.error.ExitError(-1414092869, "Immediate exit requested")) == (
        "unreachable"
    )
    assert av_error_status(av_error(5)) == "error"  # EIO says nothing
    assert av_error_status(ValueError()) == "error"
    assert failure_status(CameraError("no reason given")) == "error"


def test_the_probe_tells_a_wrong_name_from_a_closed_port_from_a_live_host() -> None:
    unknown = probe_host("rtsp://admin:pw@camera.invalid/stream")
    assert unknown is not None
    assert unknown.status == "unreachable"
    assert "camera.invalid" in str(unknown)
    port = free_port()
    refused = probe_host(f"http://127.0.0.1:{port}/video")
    assert refused is not None
    assert refused.status == "refused"
    assert str(refused) == f"cannot connect to 127.0.0.1:{port}: connection refused"
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert probe_host(f"http://127.0.0.1:{listening.getsockname()[1]}/") is None
    assert probe_host("file:///nothing") is None
    bad = probe_host("http://127.0.0.1:99999/")
    assert bad is not None
    assert bad.status == "error"


def test_a_name_that_does_not_resolve_is_unreachable_through_ffmpeg_too() -> None:
    error = fail(AvSource(f"http://user:{PASSWORD}@camera.invalid/video.mjpg"))
    assert failure_status(error) == "unreachable"
    assert "cannot resolve the camera's host camera.invalid" in str(error)
    assert PASSWORD not in str(error)


def test_http_cameras_401_and_404(http_camera: str) -> None:
    denied = fail(AvSource(f"{http_camera}/private/video.mjpg?pwd={PASSWORD}"))
    assert failure_status(denied) == "auth_failed"
    assert PASSWORD not in str(denied)
    missing = fail(AvSource(f"{http_camera}/nothing.mjpg"))
    assert failure_status(missing) == "not_found"


@pytest.fixture
def stalling_camera() -> Iterator[str]:
    """An HTTP camera on 127.0.0.1: ``/stall`` sends three JPEGs, then nothing, and stays
    connected; ``/hang`` accepts the connection and never answers."""
    ok, encoded = cv2.imencode(".jpg", np.full((90, 160, 3), 128, np.uint8))
    assert ok
    jpeg = encoded.tobytes()
    done = threading.Event()

    class Camera(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/stall"):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=b")
                self.end_headers()
                head = f"--b\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                for _ in range(3):
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
            done.wait(30)  # connected, silent

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        done.set()
        server.shutdown()
        server.server_close()


def test_an_http_camera_that_stalls_or_never_answers_says_so(
    stalling_camera: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg's "Immediate exit requested" is its own timeout: the owner reads what happened."""
    monkeypatch.setattr(sources, "OPEN_TIMEOUT", 2.0)
    monkeypatch.setattr(sources, "READ_TIMEOUT", 1.0)
    stop = threading.Event()
    packets = AvSource(f"{stalling_camera}/stall.mjpg").packets(stop)
    with pytest.raises(CameraError) as stalled:
        for _ in packets:
            pass
    assert str(stalled.value) == f"{stalling_camera}/stall.mjpg: no data for 1 s"
    assert failure_status(stalled.value) == "no_video"
    silent = fail(AvSource(f"{stalling_camera}/hang.mjpg"))
    assert str(silent) == f"cannot open {stalling_camera}/hang.mjpg: no answer from the camera"
    assert failure_status(silent) == "unreachable"


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    assert failure_status(fail(AvSource(str(tmp_path / "gone.mp4")))) == "not_found"


def test_a_file_without_video_has_no_video(tmp_path: Path) -> None:
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame(format="s16", layout="mono", samples=800)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
    assert failure_status(fail(AvSource(str(path)))) == "no_video"


def test_rtsp_cameras_401_404_and_refused(rtsp_ok: None, porch: Footage) -> None:
    with rtsp_server({"/main": porch.path}, auth=("digest", "viewer", "right")) as url:
        host = url.removeprefix("rtsp://")
        for source_url, status in (
            (f"rtsp://viewer:{PASSWORD}@{host}/main", "auth_failed"),
            (f"{url}/main", "auth_failed"),  # no user given at all
            (f"rtsp://viewer:right@{host}/nothing", "not_found"),
        ):
            error = fail(RtspSource(source_url, fallback=AvSource(source_url)))
            assert failure_status(error) == status, str(error)
            assert PASSWORD not in str(error)
    refused_url = f"rtsp://viewer:{PASSWORD}@127.0.0.1:{free_port()}/main"
    error = fail(RtspSource(refused_url, fallback=AvSource(refused_url)))
    assert failure_status(error) == "refused"
    assert PASSWORD not in str(error)


class AnsweringCamera:
    """An RTSP camera on loopback answering each method with a fixed status (None: silence)."""

    def __init__(self, answers: dict[str, tuple[int, str, str] | None]) -> None:
        self.answers = answers
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{self.listener.getsockname()[1]}/live"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    pending += chunk
                head, _, pending = pending.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                cseq = next(line.split(":")[1].strip() for line in lines if line.startswith("CSeq"))
                answer = self.answers.get(lines[0].split(" ")[0], (200, "OK", ""))
                if answer is None:
                    conn.recv(4096)  # say nothing until the client gives up
                    return
                code, reason, extra = answer
                conn.sendall(
                    f"RTSP/1.0 {code} {reason}\r\nCSeq: {cseq}\r\n{extra}"
                    "Content-Length: 0\r\n\r\n".encode()
                )

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


@pytest.mark.parametrize(
    ("answers", "status", "said"),
    [
        ({"DESCRIBE": (403, "Forbidden", "")}, "auth_failed", "403 Forbidden"),
        (
            {"DESCRIBE": (401, "Unauthorized", 'WWW-Authenticate: NTLM realm="cam"\r\n')},
            "auth_failed",
            "unsupported authentication scheme",
        ),
        ({"DESCRIBE": (500, "Internal Server Error", "")}, "error", "500"),
        ({"DESCRIBE": None}, "unreachable", "no answer from the camera"),
    ],
)
def test_what_an_rtsp_camera_answers_becomes_a_status(
    answers: dict[str, tuple[int, str, str] | None], status: str, said: str
) -> None:
    camera = AnsweringCamera(answers)
    session = RtspSession(camera.url, open_timeout=0.5, read_timeout=1.0)
    try:
        with pytest.raises(SourceError) as caught:
            session.open()
    finally:
        session.close()
        camera.close()
    assert caught.value.status == status
    assert said in str(caught.value)
    assert PASSWORD not in str(caught.value)


# -- the pipeline reports changes only -------------------------------------------------------


class ScriptedSource:
    """Fails with each given error in turn, then stops the pipeline."""

    description = "rtsp://***@camera/stream"

    def __init__(self, errors: list[Exception | None], stop: threading.Event) -> None:
        self.errors = errors
        self.stop = stop

    def packets(self, stop: Any) -> Any:
        if not self.errors:
            self.stop.set()
            raise CameraError("stopped")
        error = self.errors.pop(0)
        if error is None:
            return  # the stream ends without saying why
        raise error
        yield  # a generator, like the real sources


class NoWait(threading.Event):
    def wait(self, timeout: float | None = None) -> bool:
        return self.is_set()


def run_scripted(
    storage: Path, errors: list[Exception | None]
) -> tuple[CameraPipeline, list[tuple[StreamStatus, str | None]]]:
    """A pipeline whose main source fails with ``errors`` in turn; the statuses reported."""
    reported: list[tuple[StreamStatus, str | None]] = []
    store = ClipStore(storage)
    store.open()
    settings = parse_config(
        {"cameras": {"front_door": {"source": "rtsp://camera/stream"}}}, storage
    ).cameras["front_door"]
    recorder = Recorder(
        "front_door",
        settings.record,
        store,
        (),
        RecorderHooks(lambda _c: None, lambda _j: None, lambda _e: None),
    )
    stop = NoWait()
    source = ScriptedSource(errors, stop)
    pipeline = CameraPipeline(
        settings,
        recorder,
        FrameDifference,
        CountingGate,
        PipelineHooks(
            on_motion=lambda _a: None,
            on_availability=lambda _o: None,
            on_status=lambda status, detail: reported.append((status, detail)),
        ),
        source_factory=lambda _url, _ring: source,
    )
    assert pipeline.status == ("connecting", None)
    pipeline._stop = stop
    pipeline._run("main", source)
    recorder.close()
    store.close()
    return pipeline, reported


def test_the_pipeline_reports_each_new_reason_once(storage: Path) -> None:
    refused = SourceError("cannot connect: connection refused", StreamStatus.REFUSED)
    pipeline, reported = run_scripted(
        storage,
        [
            refused,
            refused,
            SourceError("user or password refused (401)", StreamStatus.AUTH_FAILED),
            RuntimeError("a bug"),
        ],
    )
    assert reported == [
        ("refused", "cannot connect: connection refused"),
        ("auth_failed", "user or password refused (401)"),
        ("error", "RuntimeError"),
    ]
    assert pipeline.status == ("error", "RuntimeError")


def test_a_stream_that_ends_without_a_reason_is_an_error_not_the_last_reason(
    storage: Path,
) -> None:
    pipeline, reported = run_scripted(
        storage,
        [SourceError("user or password refused (401)", StreamStatus.AUTH_FAILED), None],
    )
    assert reported == [
        ("auth_failed", "user or password refused (401)"),
        ("error", "stopped"),
    ]
    assert pipeline.status == ("error", "stopped")


# -- the whole bridge: /api/info and MQTT ------------------------------------------------------


async def test_reasons_reach_api_info_and_mqtt(  # noqa: PLR0917 - fixtures
    rtsp_ok: None,
    porch: Footage,
    http_camera: str,
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
) -> None:
    listener = mqtt_listener("doorstep/+/status", "doorstep/+/available")
    with rtsp_server({"/main": porch.path}, auth=("basic", "viewer", "right")) as url:
        host = url.removeprefix("rtsp://")
        cameras = {
            "wrong_password": f"rtsp://viewer:{PASSWORD}@{host}/main",
            "wrong_path": f"rtsp://viewer:right@{host}/mian",
            "nothing_there": f"rtsp://viewer:{PASSWORD}@127.0.0.1:{free_port()}/main",
            "http_denied": f"{http_camera}/private/video.mjpg?pwd={PASSWORD}",
            "good": f"rtsp://viewer:right@{host}/main",
        }
        expected = {
            "wrong_password": "auth_failed",
            "wrong_path": "not_found",
            "nothing_there": "refused",
            "http_denied": "auth_failed",
            "good": "online",
        }
        config = bridge_config(
            mqtt_broker,
            tmp_path / "data",
            cameras={name: {"source": source} for name, source in cameras.items()},
        )
        async with run_bridge(config) as bridge:
            published: dict[str, dict[str, Any]] = {}
            # (the default demo camera "front_door" is there too)
            while {n: published[n]["status"] for n in expected if n in published} != expected:
                try:
                    topic, payload, _retained = await asyncio.to_thread(
                        listener.messages.get, True, 30
                    )
                except Exception:
                    pytest.fail(f"statuses so far: {published}")
                if topic.endswith("/status"):
                    published[topic.split("/")[1]] = json.loads(payload)
            async with bridge.session.get(f"{bridge.url}/api/info", headers=bridge.auth) as r:
                info = (await r.json())["cameras"]
    for name, status in expected.items():
        assert info[name]["status"] == status, name
        assert info[name]["status_detail"] == published[name]["detail"]
        assert info[name]["online"] is (status == "online")
        assert set(published[name]) == {"status", "detail", "since"}
    assert info["good"]["status_detail"] is None
    assert "401" in info["wrong_password"]["status_detail"]
    assert "404" in info["wrong_path"]["status_detail"]
    assert "Connection refused" in info["nothing_there"]["status_detail"]
    assert PASSWORD not in json.dumps(info)
    assert PASSWORD not in json.dumps(published)
