"""Start the test media servers (RTSP, MJPEG) as subprocesses from tests and benches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import socket
import subprocess
import sys
import threading
import time

SUPPORT = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rtsp_available() -> str | None:
    """None when the GStreamer RTSP server can run here, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (Debian's python3 has the GStreamer bindings)"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            (
                "import gi; gi.require_version('GstRtspServer', '1.0'); "
                "from gi.repository import GstRtspServer"
            ),
        ],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return "GStreamer RTSP server bindings missing (gir1.2-gst-rtsp-server-1.0, python3-gi)"
    return None


def _wait_ready(process: subprocess.Popen[str], timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("READY"):
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError("media server did not start")


@contextmanager
def rtsp_server(
    mounts: dict[str, Path],
    port: int | None = None,
    *,
    jpeg: tuple[str, ...] = (),
    auth: tuple[str, str, str] | None = None,
    say_rate: bool = True,
) -> Iterator[str]:
    """Serve each file at its mount (``{"/main": path}``); yields ``rtsp://127.0.0.1:PORT``.

    Args:
        mounts: H.264 MP4 files by mount path.
        port: The port (default: a free one).
        jpeg: Mount paths for a Motion-JPEG test pattern.
        auth: ``(method, user, password)`` to require credentials ("basic" or "digest").
        say_rate: Whether the session description gives the frame rate.
    """
    port = port or free_port()
    args = [SYSTEM_PYTHON, str(SUPPORT / "rtsp_server.py"), "--port", str(port)]
    for mount, path in mounts.items():
        args += ["--mount", f"{mount}={path}"]
    for mount in jpeg:
        args += ["--jpeg", mount]
    if auth is not None:
        args += ["--auth", auth[0], "--user", auth[1], "--password", auth[2]]
    if not say_rate:
        args.append("--no-rate")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_ready(process, 20.0)
        yield f"rtsp://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def mjpeg_server(frames_dir: Path, fps: float = 10.0) -> Iterator[str]:
    """Serve the JPEG files of ``frames_dir`` in a loop; yields the stream URL."""
    port = free_port()
    args = [
        sys.executable,
        str(SUPPORT / "mjpeg_server.py"),
        "--port",
        str(port),
        "--fps",
        str(fps),
        str(frames_dir),
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_ready(process, 20.0)
        yield f"http://127.0.0.1:{port}/stream.mjpeg"
    finally:
        process.terminate()
        process.wait(timeout=5)


@contextmanager
def answering_http_server(status_of: Callable[[str], int]) -> Iterator[str]:
    """An HTTP camera on 127.0.0.1 answering each GET ``status_of(path)``; yields its base URL.

    No answer has a body; a 401 asks for Basic credentials.
    """

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = status_of(self.path)
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="cam"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def refusing_http_server() -> AbstractContextManager[str]:
    """An MJPEG camera on 127.0.0.1 that answers every request 401; yields its base URL."""
    return answering_http_server(lambda _path: 401)
