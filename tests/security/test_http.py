"""Attacks on the HTTP API of a real bridge process: idle sockets, bad bytes, a fuzz.

Each test runs the bridge as users run it and reads its log afterwards: answers must be
4xx with a short JSON error (never 5xx), and the log must stay short, free of tracebacks
and free of secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import json
from pathlib import Path
import re
import socket
import subprocess
import sys
import time

import pytest

from doorstep_bridge.app import create_app
from doorstep_bridge.config import load_config
from tests.bridge.conftest import Listener
from tests.security.bridge_process import (
    API_TOKEN,
    REQUESTER_TOKEN,
    SECRETS,
    BridgeProcess,
    bridge_process,
    broker_at,
    get,
)
from tests.security.fuzz_http import FuzzTarget, app_routes, fuzz_requests, run_fuzz, send
from tests.security.soak import record, scaled

SHARE_TOKENS = ("sEcReT-share-token-0c1d2e3f4a5b6c7d8e9f",)

#: Every route the bridge has, as the bridge's own router lists them.
PROTECTED = ("/api/info", "/api/clips", "/api/shares", "/api/clips/abc", "/api/shares/abc")


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    """One bridge for the fast tests, started with a low soft descriptor limit."""
    tmp_path = tmp_path_factory.mktemp("http")
    with (
        broker_at(tmp_path) as broker,
        bridge_process(tmp_path, broker, descriptors=(1024, 4096)) as running,
    ):
        yield running


def assert_clean_log(log: str, *, max_lines: int) -> None:
    """No secret, no traceback, and at most `max_lines` lines."""
    for secret in (*SECRETS, *SHARE_TOKENS):
        assert secret not in log, f"a secret reached the log:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-3000:]
    lines = log.splitlines()
    assert len(lines) <= max_lines, f"{len(lines)} log lines:\n" + "\n".join(lines[-40:])


def raw_request(bridge: BridgeProcess, *lines: bytes, body: bytes = b"") -> bytes:
    head = b"\r\n".join(lines)
    return head + b"\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


class LogWindow:
    """The part of the bridge's log written since the window opened."""

    def __init__(self, bridge: BridgeProcess) -> None:
        self._bridge = bridge
        self._start = len(bridge.log())

    def text(self) -> str:
        # Let the bridge flush what the last answers caused.
        assert get(f"{self._bridge.url}/api/health")[0] == 200
        return self._bridge.log()[self._start :]


def test_soft_descriptor_limit_is_raised_to_the_hard_limit(bridge: BridgeProcess) -> None:
    limits = Path(f"/proc/{bridge.process.pid}/limits").read_text(encoding="utf-8")
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert line.split()[3:5] == ["4096", "4096"], line


def test_non_utf8_headers_give_4xx_json_never_500(bridge: BridgeProcess) -> None:
    window = LogWindow(bridge)
    token = API_TOKEN.encode()
    cases: list[tuple[bytes, list[bytes]]] = []
    for path in PROTECTED:
        cases.append((b"GET " + path.encode() + b" HTTP/1.1", [b"Authorization: Bearer \xff"]))
        cases.append(
            (b"GET " + path.encode() + b" HTTP/1.1", [b"Authorization: Bearer \xed\xa0\x80"])
        )
    for header in (
        b"User-Agent",
        b"Range",
        b"X-Doorstep-Client-Address",
        b"X-Doorstep-Client-Agent",
    ):
        cases.extend(
            (
                b"GET " + path + b" HTTP/1.1",
                [b"Authorization: Bearer " + token, header + b": " + bad],
            )
            for bad in (b"\xff", b"\xed\xa0\x80", b"bytes=\xff-")
            for path in (b"/api/clips/abc/video", b"/share/" + SHARE_TOKENS[0].encode())
        )
    for first, headers in cases:
        answer = send(bridge.host, bridge.port, raw_request(bridge, first, *headers))
        assert 400 <= answer.status < 500, (first, headers, answer)
        assert set(json.loads(answer.body)) == {"error"}, (first, headers, answer.body)
    # At most one short line per bad request (and no traceback, no token).
    assert_clean_log(window.text(), max_lines=len(cases))


def test_malformed_request_lines_never_log_the_token(bridge: BridgeProcess) -> None:
    window = LogWindow(bridge)
    token = API_TOKEN.encode()
    bad_lines = [
        b"Authorization: Bearer " + token + b"\x01",
        b"Authorization Bearer " + token,
        b"Authorization: Bearer " + token + b"\x00tail",
        b"X-Token\x7f: " + token,
        b"Authorization: Bearer " + token + b"\r",
    ]
    for line in bad_lines:
        for path in (b"/api/info", b"/share/" + SHARE_TOKENS[0].encode()):
            answer = send(
                bridge.host, bridge.port, raw_request(bridge, b"GET " + path + b" HTTP/1.1", line)
            )
            assert answer.status == 400, (line, answer)
            assert "error" in json.loads(answer.body)
    for start in (
        b"GET /api/info?t=" + token + b"\xff HTTP/1.1",
        b"G\x01T /share/" + SHARE_TOKENS[0].encode() + b" HTTP/1.1",
    ):
        answer = send(bridge.host, bridge.port, raw_request(bridge, start))
        assert answer.status == 400, (start, answer)
    assert_clean_log(window.text(), max_lines=len(bad_lines) * 2 + 2)


def test_a_flood_of_malformed_requests_logs_a_few_lines(bridge: BridgeProcess) -> None:
    window = LogWindow(bridge)
    for number in range(200):
        request = raw_request(bridge, b"GET /api/info HTTP/1.1", b"Bad\x01Header: %d" % number)
        assert send(bridge.host, bridge.port, request).status == 400
    log = window.text()
    assert_clean_log(log, max_lines=5)


def test_http_fuzz_every_route(bridge: BridgeProcess) -> None:
    config = load_config(bridge.storage.parent / "doorstep.yaml")
    routes = app_routes(create_app(config))
    assert len({route.path for route in routes}) >= 14  # the router is read, not a hand list
    window = LogWindow(bridge)
    target = FuzzTarget(
        routes=routes,
        api_token=API_TOKEN,
        other_tokens=(REQUESTER_TOKEN,),
        share_tokens=SHARE_TOKENS,
        cameras=tuple(config.cameras),
    )
    count = scaled(2_000, 12_000)
    report = run_fuzz(
        bridge.host, bridge.port, fuzz_requests(target, count=count, seed=13), learn=target
    )
    log = window.text()
    record(
        "http fuzz",
        routes=len({route.path for route in routes}),
        requests=report.sent,
        server_errors=len(report.server_errors),
        not_json=len(report.not_json),
        no_answer=len(report.no_answer),
        secrets_in_log=sum(log.count(secret) for secret in (*SECRETS, *SHARE_TOKENS)),
        tracebacks=log.count("Traceback"),
        log_lines=len(log.splitlines()),
        alive=bridge.alive(),
    )
    assert report.sent == count
    assert not report.server_errors, report.server_errors[:5]
    assert not report.not_json, report.not_json[:5]
    assert not report.no_answer, report.no_answer[:5]
    assert bridge.alive()
    # Accepted requests (a share request, a ring) log one INFO line each, as they should;
    # what must stay bounded is what bad requests leave: at most one line per 100 requests.
    assert_clean_log(log, max_lines=60 + count // 100)
    problems = [line for line in log.splitlines() if " INFO " not in line]
    assert len(problems) <= 60, "\n".join(problems[-40:])


@pytest.mark.slow
def test_connections_that_never_finish_a_request_are_closed(bridge: BridgeProcess) -> None:
    """Silent, trickled headers, trickled body: the bridge ends each, none is kept."""
    silent = socket.create_connection((bridge.host, bridge.port))
    slow_head = socket.create_connection((bridge.host, bridge.port))
    slow_head.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")
    slow_body = socket.create_connection((bridge.host, bridge.port))
    slow_body.sendall(
        b"POST /api/cameras/front_door/record HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + API_TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    trickle = {slow_head: b"X-Slow: 1\r\n", slow_body: b" "}
    received = {silent: b"", slow_head: b"", slow_body: b""}
    open_sockets = set(received)
    # The bridge gives up after 15 s (headers) and 30 s (body); 120 s bounds the test.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for sock in received:
            if sock not in open_sockets:
                continue
            sock.settimeout(0.3)
            try:
                data = sock.recv(4096)
                closed = data == b""
                received[sock] += data
            except TimeoutError:
                closed = False
            except ConnectionResetError:
                closed = True
            if closed:
                open_sockets.discard(sock)
                sock.close()
            elif sock in trickle:
                with contextlib.suppress(OSError):
                    sock.sendall(trickle[sock])  # trickling does not keep it open
        if not open_sockets:
            break
    for sock in open_sockets:
        sock.close()
    assert not open_sockets, "the bridge kept a connection with no complete request open"
    assert received[silent] == b""
    assert received[slow_body].startswith(b"HTTP/1.1 408 "), received[slow_body]
    assert json.loads(received[slow_body].partition(b"\r\n\r\n")[2]) == {"error": "Request Timeout"}


@contextlib.contextmanager
def idle_sockets(host: str, port: int, count: int) -> Iterator[int]:
    """Open up to `count` connections that send nothing; yields how many connected."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.settimeout(2)
            try:
                sock.connect((host, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        yield len(sockets)
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.slow
def test_idle_sockets_at_1024_descriptors_stop_neither_api_nor_ring_nor_recording(
    tmp_path: Path,
) -> None:
    with (
        broker_at(tmp_path) as broker,
        bridge_process(tmp_path, broker, descriptors=(1024, 1024)) as bridge,
    ):
        listener = Listener(broker, ["doorstep/front_door/ring", "doorstep/front_door/clip"])
        try:
            with idle_sockets(bridge.host, bridge.port, 1100) as opened:
                assert opened >= 1000
                status, body = get(f"{bridge.url}/api/info", headers=bridge.auth, timeout=30)
                assert status == 200, body
                answered = status
                assert json.loads(body)["cameras"]["front_door"]["online"] is True
                listener.publish("doorstep/front_door/ring/set", "press")
                ring = json.loads(listener.wait_for("doorstep/front_door/ring", timeout=30))
                # (An empty payload is the start-up clear of a camera without clips.)
                while not (payload := listener.wait_for("doorstep/front_door/clip", timeout=60)):
                    pass
                clip = json.loads(payload)
                assert clip["camera"] == "front_door"
                assert clip["reason"] == "ring"
                assert ring["camera"] == "front_door"
            assert bridge.alive()
            status, body = get(f"{bridge.url}/api/clips", headers=bridge.auth, timeout=30)
            assert status == 200
            assert any(item["id"] == clip["id"] for item in json.loads(body)["clips"])
        finally:
            listener.close()
        log = bridge.log()
    record(
        "descriptor exhaustion",
        limit=1024,
        idle_sockets=opened,
        api_status=answered,
        rang=ring["camera"] == "front_door",
        clips_recorded=len(json.loads(body)["clips"]),
        too_many_open_files=log.count("Too many open files"),
        tracebacks=log.count("Traceback"),
        log_lines=len(log.splitlines()),
    )
    assert "Too many open files" not in log
    assert_clean_log(log, max_lines=40)
    assert not re.search(r"(?m)^.{400,}$", log), "a log line longer than 400 characters"


_ACCEPT_CHILD = """
import asyncio, logging, os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
from doorstep_bridge.http.server import accept_error_handler
from doorstep_bridge.http.throttle import LogThrottle

logging.basicConfig(level=logging.INFO, stream=sys.stderr)


async def main():
    loop = asyncio.get_running_loop()
    if sys.argv[1] == "bridge":
        loop.set_exception_handler(accept_error_handler(LogThrottle(logging.getLogger("http"))))
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    hoard = []
    try:
        while True:
            hoard.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    print(server.sockets[0].getsockname()[1], flush=True)
    # asyncio retries accept() once a second: 4 s is 4 attempts.
    await asyncio.sleep(4)


asyncio.run(main())
"""


def _accept_under_exhaustion(handler: str) -> str:
    """Run an event loop out of descriptors with `handler`, connect once; its log."""
    process = subprocess.Popen(
        [sys.executable, "-c", _ACCEPT_CHILD, handler],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        _, stderr = process.communicate(timeout=60)
    return stderr.decode()


@pytest.mark.slow
def test_accept_failing_for_want_of_descriptors_logs_one_line() -> None:
    plain = _accept_under_exhaustion("asyncio")
    assert plain.count("Traceback") >= 2  # asyncio alone: a traceback per retry
    guarded = _accept_under_exhaustion("bridge")
    assert "Traceback" not in guarded, guarded
    assert guarded.count("Cannot accept HTTP connections: Too many open files") == 1, guarded
    assert len(guarded.splitlines()) == 1, guarded
