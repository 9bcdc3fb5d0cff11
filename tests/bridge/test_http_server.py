"""The HTTP server against clients that pipeline requests and never read the answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import errno
import socket
import time

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
import pytest

from doorstep_bridge.http import server
from doorstep_bridge.http.server import (
    GuardedRequestHandler,
    GuardedSite,
    ServerLimits,
    listen_error,
)
from tests.bridge.conftest import free_port

HEALTH = b"GET /api/health HTTP/1.1\r\nHost: bridge\r\n\r\n"
#: What asyncio reads from a socket at most at once (selector transports).
ONE_READ = 256 * 1024


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"got": len(await request.read())})


class Server:
    def __init__(self, site: GuardedSite, port: int) -> None:
        self.site = site
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def connections(self) -> list[GuardedRequestHandler]:
        return list(self.site.guard._open)

    async def pipeline(
        self, requests: bytes, receive_buffer: int = 4096
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw client that sends `requests` (without waiting for them to go out)."""
        sock = socket.socket()
        # A small receive window, so the bridge's answers back up sooner.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(requests)
        return reader, writer


async def _serve(limits: ServerLimits) -> AsyncIterator[Server]:
    app = web.Application()
    app.router.add_get("/api/health", _health)
    app.router.add_post("/api/echo", _echo)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    site = GuardedSite(runner, "127.0.0.1", port, limits)
    await site.start()
    try:
        yield Server(site, port)
    finally:
        await runner.cleanup()


@pytest.fixture
async def small_server() -> AsyncIterator[Server]:
    async for running in _serve(ServerLimits(max_connections=4, write_stall_timeout=0.5)):
        yield running


async def test_pipelined_requests_are_read_a_few_at_a_time(small_server: Server) -> None:
    """A client pipelining 2 MB of requests it never reads leaves at most a few parsed.

    aiohttp alone read and parsed all of them at once (tens of thousands of requests
    queued: 20 MB sent took the bridge from 199 to 611 MB).
    """
    sent = HEALTH * (2 * 1024 * 1024 // len(HEALTH))
    _reader, writer = await small_server.pipeline(sent)
    try:
        most_queued = most_unparsed = 0
        answered = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            for connection in small_server.connections():
                # aiohttp's queue of requests read but not yet handed to the route.
                most_queued = max(most_queued, len(connection._messages))
                most_unparsed = max(most_unparsed, getattr(connection, "unparsed_bytes", 0))
                answered = connection._request_count
        assert answered > 1000  # it did answer, and kept answering, for a while
        assert most_queued <= server.MOST_QUEUED_REQUESTS
        assert most_unparsed <= ONE_READ
        # It stopped reading: most of what was sent is still on the way.
        assert answered * len(HEALTH) < len(sent) / 2
    finally:
        writer.close()


async def test_clients_that_never_read_do_not_lock_out_another(small_server: Server) -> None:
    """At the cap, connections whose clients read no answer make room for a newcomer."""
    flood = HEALTH * (2 * 1024 * 1024 // len(HEALTH))
    attackers = [await small_server.pipeline(flood) for _ in range(4)]
    try:
        # Every place is taken by a connection stuck on answers its client does not read
        # (the state that refused every newcomer: "all 4 are busy with requests").
        started = time.monotonic()
        while True:
            connections = small_server.connections()
            if len(connections) == 4 and all(c.writing_paused for c in connections):
                break
            assert time.monotonic() - started < 20, "the flood never filled the connections"
            await asyncio.sleep(0.05)
        status: int | str = "never tried"
        started = time.monotonic()
        async with ClientSession(
            connector=TCPConnector(force_close=True), timeout=ClientTimeout(total=5)
        ) as session:
            while time.monotonic() - started < 30:
                try:
                    async with session.get(f"{small_server.url}/api/health") as response:
                        status = response.status
                        break
                except ClientError as err:  # refused while every connection is busy
                    status = repr(err)
                await asyncio.sleep(0.25)
        waited = time.monotonic() - started
        assert status == 200, f"still locked out after {waited:.1f} s: {status}"
        # A replaced connection is reset, not left to flush answers nobody reads.
        assert len(small_server.connections()) <= 4
    finally:
        for _reader, writer in attackers:
            writer.close()


async def test_pipelined_requests_are_all_answered_in_order(small_server: Server) -> None:
    """Flow control loses nothing: a pipelining client that reads gets every answer."""
    body = b"x" * 3000
    post = (
        b"POST /api/echo HTTP/1.1\r\nHost: bridge\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    count = 300
    requests = b"".join(post if i % 3 == 1 else HEALTH for i in range(count))
    reader, writer = await small_server.pipeline(requests, receive_buffer=1 << 20)
    try:
        answers = []
        for _ in range(count):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            assert head.startswith(b"HTTP/1.1 200 ")
            answers.append(await reader.readexactly(length))
        expected = [b'{"got": 3000}' if i % 3 == 1 else b'{"status": "ok"}' for i in range(count)]
        assert answers == expected
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("error", "host", "message"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "door.lan",
            "Cannot listen on door.lan:5080 (http.host): the host name does not resolve",
        ),
        # Python 3.11's asyncio passes the system's refusal on as it is.
        (
            OSError(errno.EADDRNOTAVAIL, "error while attempting to bind on address"),
            "2001:db8::7",
            "Cannot listen on [2001:db8::7]:5080 (http.host): not an address of this machine",
        ),
        (
            OSError(errno.EACCES, "error while attempting to bind on address"),
            "0.0.0.0",
            "Cannot listen on 0.0.0.0:5080 (http.port): Permission denied",
        ),
    ],
)
def test_listen_errors_name_the_setting_to_change(error: OSError, host: str, message: str) -> None:
    assert str(listen_error(error, host, 5080)) == message
