"""The HTTP server: bounded connections, timeouts, and short log lines for bad requests.

aiohttp on its own keeps a connection that never sends a request open forever,
answers unparsable requests in plain text, and logs each one with a traceback
that quotes the raw header line (an ``Authorization`` line included). Here:

- at most ``max_connections`` connections are open, derived from the process's
  descriptor limit so that recording always has descriptors left; at the cap a
  newcomer replaces the oldest connection that is waiting for a request, else the
  one whose client has read none of its answer for longest (past
  ``write_stall_timeout``), and is closed at once when every connection is busy;
- a connection is read only while at most ``MOST_QUEUED_REQUESTS`` requests wait
  behind the one being answered, so a client that pipelines requests and never
  reads the answers holds a few parsed requests and at most one socket read;
- a connection must complete its first request's headers within
  ``request_header_timeout``; between requests it may idle ``keepalive_timeout``
  (aiohttp then also closes it when the next request's headers are incomplete);
- a request aiohttp cannot parse gets a JSON 400 and at most one short log
  line per kind and minute, never the raw bytes;
- ``accept()`` failures (out of descriptors) give one log line a minute, not a
  traceback a second.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import errno
import logging
import os
import resource
import signal
import socket
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler

from doorstep_bridge.config import Config
from doorstep_bridge.exceptions import ListenError
from doorstep_bridge.http.throttle import LogThrottle

_LOGGER = logging.getLogger(__name__)

#: Descriptors kept for everything but HTTP: the broker, audit log, index, threads…
BASE_RESERVE = 128
#: … and per camera: its stream, clip, snapshot and thumbnail files, decoders.
CAMERA_RESERVE = 32
#: A home bridge serves Home Assistant and a few browsers; more is an attack.
MOST_CONNECTIONS = 512
FEWEST_CONNECTIONS = 16
#: The soft descriptor limit is raised towards the hard one, up to this.
MOST_DESCRIPTORS = 65536
#: Requests parsed ahead of the one being answered; past this a connection is not read
#: until its handler takes the next one (aiohttp itself would read and queue every
#: pipelined request at once, with no bound).
MOST_QUEUED_REQUESTS = 2

#: Short, byte-free descriptions of aiohttp's parser errors (most specific first).
_PARSE_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.LineTooLong, "request line or header too long"),
    (http_exceptions.InvalidURLError, "invalid characters in the URL"),
    (http_exceptions.BadHttpMethod, "invalid HTTP method"),
    (http_exceptions.BadStatusLine, "malformed request line"),
    (http_exceptions.InvalidHeader, "malformed header"),
    (http_exceptions.TransferEncodingError, "malformed body framing"),
    (http_exceptions.ContentLengthError, "malformed body framing"),
    (http_exceptions.BadHttpMessage, "malformed header"),
)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How many connections the HTTP server holds and for how long.

    Attributes:
        max_connections: Open connections at most; see :func:`limits_for`.
        request_header_timeout: Seconds a new connection has to send its first
            request's headers.
        keepalive_timeout: Seconds a connection may idle between requests.
        max_line_size: Longest request line, in bytes.
        max_field_size: Longest header line, in bytes.
        shutdown_timeout: Seconds requests in flight get to finish at stop.
        write_stall_timeout: Seconds an answer may wait unsent, its client reading none
            of it, before a newcomer at the cap may replace the connection.
    """

    max_connections: int
    request_header_timeout: float = 15.0
    keepalive_timeout: float = 60.0
    max_line_size: int = 8190
    max_field_size: int = 8190
    shutdown_timeout: float = 10.0
    write_stall_timeout: float = 5.0


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (at most 65,536); returns (before, now).

    An unlimited soft limit counts as 65,536.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MOST_DESCRIPTORS, MOST_DESCRIPTORS
    target = MOST_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard, MOST_DESCRIPTORS)
    if soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as err:
        _LOGGER.warning("Cannot raise the open-files limit from %d: %s", soft, err)
        return soft, soft
    return soft, target


def limits_for(descriptors: int, cameras: int) -> ServerLimits:
    """Limits that leave `descriptors` room for `cameras` cameras to record."""
    spare = descriptors - BASE_RESERVE - CAMERA_RESERVE * cameras
    return ServerLimits(max_connections=max(FEWEST_CONNECTIONS, min(MOST_CONNECTIONS, spare)))


class ConnectionGuard:
    """Admits connections up to the cap, replacing idle ones when it is reached."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self._open: dict[GuardedRequestHandler, None] = {}  # insertion order = age
        self.throttle = LogThrottle(_LOGGER)

    def admit(self, connection: GuardedRequestHandler) -> bool:
        """Take `connection` in, replacing an idle or stalled one at the cap; False if none."""
        if len(self._open) >= self.limits.max_connections:
            victim, stalled = self._victim()
            if victim is None:
                self.throttle.log(
                    logging.WARNING,
                    "full",
                    "Refusing HTTP connections: all %d are busy with requests",
                    self.limits.max_connections,
                )
                return False
            if stalled:
                self.throttle.log(
                    logging.WARNING,
                    "stalled",
                    "HTTP connections at the limit (%d): closing ones whose client reads "
                    "no answer for newcomers",
                    self.limits.max_connections,
                )
            else:
                self.throttle.log(
                    logging.WARNING,
                    "evict",
                    "HTTP connections at the limit (%d): closing idle ones for newcomers",
                    self.limits.max_connections,
                )
            self.release(victim)
            victim.evict()
        self._open[connection] = None
        return True

    def release(self, connection: GuardedRequestHandler) -> None:
        """Forget a closed connection."""
        self._open.pop(connection, None)

    def _victim(self) -> tuple[GuardedRequestHandler | None, bool]:
        """The connection a newcomer replaces, and whether it is a stalled one.

        Oldest that never completed a request first, then oldest idle between requests,
        then the one whose answer its client has left unread longest, past
        ``write_stall_timeout``.

        A stalled connection is replaced only when a newcomer needs its place, rather
        than cut by a write deadline of its own: a deadline would have to tell ordinary
        answers from those that legitimately sit unread (a browser's ``<video>`` stops
        reading a share's video for as long as it plays what it buffered; the live
        stream has its own 10 s limit), while below the cap a stalled connection costs
        only its place and bounded memory (a few parsed requests, one socket read, the
        unsent answer). Every busy connection is looked at, which starts its clock.
        """
        idle = None
        stuck = None
        longest = self.limits.write_stall_timeout
        for connection in self._open:
            if connection.waiting_for_request:
                if not connection.served_a_request:
                    return connection, False
                if idle is None:
                    idle = connection
                continue
            stalled = connection.write_stalled_for()
            if stalled >= longest:
                stuck, longest = connection, stalled
        if idle is not None:
            return idle, False
        return stuck, stuck is not None


class _RequestQueue(deque[Any]):
    """aiohttp's queue of parsed requests, which tells its connection when one is taken.

    aiohttp's ``start()`` takes each request with ``popleft()`` (3.11 to 3.14 checked),
    so this is the one place to learn that there is room for another without overriding
    aiohttp's request loop.
    """

    def __init__(self, taken: Callable[[], None]) -> None:
        super().__init__()
        self._taken = taken

    def popleft(self) -> Any:
        item = super().popleft()
        self._taken()
        return item


#: A transport without flow control (or closing) raises these: nothing to pause or resume.
_NO_FLOW_CONTROL = (AttributeError, NotImplementedError, RuntimeError)


def _pause(transport: asyncio.Transport) -> None:
    with contextlib.suppress(*_NO_FLOW_CONTROL):
        transport.pause_reading()


def _resume(transport: asyncio.Transport) -> None:
    with contextlib.suppress(*_NO_FLOW_CONTROL):
        transport.resume_reading()


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP/1.1 protocol with admission, flow control, deadlines and JSON errors."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._admitted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._messages = _RequestQueue(self._request_taken)
        # Bytes read but not yet given to the parser (from `_unread_from` on), and whether
        # reading is paused for them or for a full queue.
        self._unread = b""
        self._unread_from = 0
        self._holding = False
        self._refill: asyncio.Handle | None = None
        # aiohttp drops `transport` at force_close; a socket still flushing an answer
        # nobody reads stays open, so the guard keeps its own reference.
        self._link: asyncio.Transport | None = None
        # Since when the answer waiting to be sent has not shrunk, and its size then.
        self._stall: tuple[float, int] | None = None

    @property
    def served_a_request(self) -> bool:
        """True once the first request (or unparsable attempt) was read."""
        return self._request_count > 0

    @property
    def waiting_for_request(self) -> bool:
        """True while no request is being handled (before the first, between requests)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    @property
    def queued_requests(self) -> int:
        """Requests parsed and waiting behind the one being answered."""
        return len(self._messages)

    @property
    def unparsed_bytes(self) -> int:
        """Bytes read from the client and held back from the parser."""
        return len(self._unread) - self._unread_from

    def write_stalled_for(self) -> float:
        """Seconds an answer has waited unsent with its client taking none of it; else 0.

        Only while nothing more is being written can a buffer that does not shrink mean
        a client that does not read: while the transport has the handler wait (its buffer
        is full; the clock starts then), or while the connection is closing. Any byte the
        client takes restarts the clock; a look that finds no clock starts one.
        """
        link = self._link
        unsent = self._unsent()
        if link is None or unsent == 0 or not (self.writing_paused or link.is_closing()):
            self._stall = None
            return 0.0
        now = self._loop.time()
        if self._stall is None or unsent < self._stall[1]:
            self._stall = (now, unsent)
            return 0.0
        since, _size = self._stall
        self._stall = (since, unsent)
        return now - since

    def evict(self) -> None:
        """Close at once for a newcomer; an answer still unsent is dropped.

        A plain close would wait for that answer to be sent, for ever when its client
        reads nothing, keeping the descriptor (and, until then, the guard's count).
        """
        link = self._link
        if link is not None and self._unsent():
            link.abort()
        self.force_close()

    def _unsent(self) -> int:
        link = self._link
        return 0 if link is None else link.get_write_buffer_size()

    def pause_writing(self) -> None:
        """The transport's buffer is full: start the stall clock (see `write_stalled_for`)."""
        super().pause_writing()
        if self._stall is None:
            self._stall = (self._loop.time(), self._unsent())

    def resume_writing(self) -> None:
        """The client took part of the answer: it is not stalled."""
        super().resume_writing()
        self._stall = None

    def data_received(self, data: bytes) -> None:
        """Parse only while few requests are queued; hold back the rest and stop reading.

        aiohttp parses every request in what it is given and queues them all, reading on:
        a client pipelining requests it never reads the answers to would make it hold
        them without bound. Here bytes reach the parser while fewer than
        ``MOST_QUEUED_REQUESTS`` wait; the rest is kept (at most one socket read, as
        reading pauses then) until the handler takes the next request.
        """
        if not data:  # aiohttp (3.12+) re-parsing what its own flow control held back
            super().data_received(data)
            return
        if self._unread_from < len(self._unread):
            # A read slipped in while paused (aiohttp resumed for a body): keep the order.
            self._unread = self._unread[self._unread_from :] + data
        else:
            self._unread = data
        self._unread_from = 0
        self._parse_unread()

    def _request_taken(self) -> None:
        # Parse the next one from the loop, not right away: aiohttp answers queued requests
        # one after another without yielding, so a client pipelining small requests would
        # otherwise keep the event loop (and the cameras and MQTT with it) for a whole read.
        if self._holding and self._refill is None:
            self._refill = self._loop.call_soon(self._refill_queue)

    def _refill_queue(self) -> None:
        self._refill = None
        if self._holding:
            self._parse_unread()

    def _parse_unread(self) -> None:
        buffer, start, end = self._unread, self._unread_from, len(self._unread)
        while start < end and self.transport is not None:
            room = MOST_QUEUED_REQUESTS - len(self._messages)
            if room <= 0:
                break
            # A request's headers end with a line feed, so a piece holding `room` of them
            # completes `room` requests at most.
            cut = start
            for _ in range(room):
                cut = buffer.find(b"\n", cut) + 1
                if not cut:
                    cut = end
                    break
            super().data_received(buffer if start == 0 and cut == end else buffer[start:cut])
            start = cut
        if start >= end or self.transport is None:
            self._unread, self._unread_from = b"", 0
        else:
            self._unread_from = start
        if self.transport is None:
            self._holding = False
        elif start < end or len(self._messages) >= MOST_QUEUED_REQUESTS:
            self._holding = True
            _pause(self.transport)
        elif self._holding:
            self._holding = False
            # Not while aiohttp holds reading for a request body (both flags are aiohttp's).
            if not getattr(self, "_reading_paused", False) and not getattr(
                self, "_buffer_paused", False
            ):
                _resume(self.transport)

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        """Resume as aiohttp asks (a request body was read), unless holding requests back."""
        super().resume_reading(*args, **kwargs)
        if self._holding and self.transport is not None:
            _pause(self.transport)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection and start its first-request deadline, or reset it at once."""
        if not self._guard.admit(self):
            # Reset rather than close: no handler task, no TIME_WAIT, the descriptor goes now.
            assert isinstance(transport, asyncio.Transport)
            transport.abort()
            return
        self._admitted = True
        assert isinstance(transport, asyncio.Transport)
        self._link = transport
        super().connection_made(transport)
        self._deadline = self._loop.call_later(
            self._guard.limits.request_header_timeout, self._first_request_overdue
        )

    def connection_lost(self, exc: BaseException | None) -> None:
        """Forget the connection (a refused one was never handed to aiohttp)."""
        if not self._admitted:
            return
        self._guard.release(self)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._link = None
        self._unread, self._unread_from, self._holding = b"", 0, False
        if self._refill is not None:
            self._refill.cancel()
            self._refill = None
        super().connection_lost(exc)

    def _first_request_overdue(self) -> None:
        self._deadline = None
        if not self.served_a_request:
            self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A short JSON answer and one throttled log line, never the raw request."""
        del message  # aiohttp's text quotes the raw bytes
        if status >= 500:
            summary = "internal error; see the bridge's log"
            # Called from aiohttp's `except` block: the traceback is the bug's.
            self._guard.throttle.log(
                logging.ERROR,
                f"500:{type(exc).__name__}",
                "HTTP request failed: %s",
                type(exc).__name__,
                exc_info=exc is not None,
            )
        else:
            problem = _describe(exc)
            summary = f"malformed HTTP request: {problem}"
            self._guard.throttle.log(
                logging.WARNING,
                f"bad:{problem}",
                "Refused a malformed HTTP request from %s (%s)",
                request.remote,
                problem,
            )
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was partly sent; cannot send an error instead")
        response = web.json_response({"error": summary}, status=status)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """Log the server's own unexpected failures: one throttled line each, no traceback."""
        text = str(args[0]) if args else "error"
        error = kwargs.get("exc_info")
        kind = type(error).__name__ if isinstance(error, BaseException) else ""
        self._guard.throttle.log(
            logging.ERROR, f"aiohttp:{text}:{kind}", "HTTP server: %s %s", text, kind
        )


def _describe(exc: BaseException | None) -> str:
    for kind, text in _PARSE_ERRORS:
        if isinstance(exc, kind):
            return text
    return "unparsable"


class GuardedSite(web.TCPSite):
    """A TCP site whose connections go through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, limits: ServerLimits) -> None:
        super().__init__(runner, host, port)
        self.guard = ConnectionGuard(limits)

    async def start(self) -> None:
        """Listen; each accepted connection is admitted (or refused) by the guard."""
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None, "the runner is set up before its sites start"
        limits = self.guard.limits
        handler_args: dict[str, Any] = {
            "loop": loop,
            "keepalive_timeout": limits.keepalive_timeout,
            "max_line_size": limits.max_line_size,
            "max_field_size": limits.max_field_size,
            "lingering_time": 2.0,
            "access_log": None,
            "logger": _LOGGER,
        }

        def connection() -> GuardedRequestHandler:
            return GuardedRequestHandler(server, self.guard, **handler_args)

        self._server = await loop.create_server(
            connection, self._host, self._port, backlog=self._backlog, reuse_address=True
        )


def accept_error_handler(
    throttle: LogThrottle,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An event-loop exception handler that turns ``accept()`` failures into one short line."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            error = context.get("exception")
            reason = error.strerror if isinstance(error, OSError) else error
            throttle.log(logging.ERROR, "accept", "Cannot accept HTTP connections: %s", reason)
            return
        loop.default_exception_handler(context)

    return handle


def listen_error(err: OSError, host: str, port: int) -> ListenError:
    """Why ``host:port`` cannot be listened on, naming the setting to change.

    Worded as the MQTT client words a broker it cannot reach.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(err, socket.gaierror):
        # Its errno is a resolver code: os.strerror(-2) says "Unknown error -2".
        return ListenError(f"Cannot listen on {where} (http.host): the host name does not resolve")
    # asyncio skips each address the system refuses as not its own (EADDRNOTAVAIL) and,
    # when none is left, says "could not bind on any address out of [...]", no reason.
    if err.errno == errno.EADDRNOTAVAIL or (
        err.errno is None and str(err).startswith("could not bind on any address")
    ):
        return ListenError(f"Cannot listen on {where} (http.host): not an address of this machine")
    # asyncio's message repeats the address; the system's reason alone is enough.
    reason = os.strerror(err.errno) if err.errno else str(err)
    key = " (http.port)" if err.errno in {errno.EADDRINUSE, errno.EACCES} else ""
    return ListenError(f"Cannot listen on {where}{key}: {reason}")


async def serve(app: web.Application, config: Config) -> None:
    """Start `app`, serve HTTP on the configured address until SIGTERM or SIGINT, stop.

    Raises:
        ListenError: The address cannot be listened on.
    """
    loop = asyncio.get_running_loop()
    before, descriptors = raise_descriptor_limit()
    if descriptors != before:
        _LOGGER.info("Open-files limit raised from %d to %d", before, descriptors)
    limits = limits_for(descriptors, len(config.cameras))
    needed = BASE_RESERVE + CAMERA_RESERVE * len(config.cameras) + FEWEST_CONNECTIONS
    if descriptors < needed:
        _LOGGER.warning(
            "The open-files limit (%d) is low for %d camera(s): raise it to at least %d "
            "(systemd: LimitNOFILE=)",
            descriptors,
            len(config.cameras),
            needed,
        )
    loop.set_exception_handler(accept_error_handler(LogThrottle(_LOGGER)))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=limits.shutdown_timeout)
    await runner.setup()
    try:
        site = GuardedSite(runner, config.http.host, config.http.port, limits)
        try:
            await site.start()
        except OSError as err:
            raise listen_error(err, config.http.host, config.http.port) from None
        _LOGGER.info(
            "HTTP API on %s:%d (at most %d connections)",
            config.http.host,
            config.http.port,
            limits.max_connections,
        )
        await stop.wait()
    finally:
        await runner.cleanup()
