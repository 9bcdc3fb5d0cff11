"""The egress guard: the bridge process connects to what its config names, nothing else.

A :func:`sys.addaudithook` hook sees every socket the process's Python code
opens towards the network (``socket.connect``, ``socket.sendto``,
``socket.sendmsg``) and every name it looks up (``socket.getaddrinfo``,
``socket.gethostbyname``...), on every thread: the MQTT client, the RTSP client,
the camera probes, and any library or plug-in loaded into the process. While a
guard is active, a connection to an address the policy does not allow, or a
lookup of a name it does not know, is refused before it happens: the call raises
:class:`EgressRefusedError` (a `PermissionError`, which callers treat as a
connection that failed) and the guard reports it (``on_blocked``).

What is allowed (built by the composition root from the config): the broker
(its host and port), each camera's host (any port: RTSP media may use other
ports of the camera) and the bridge's own HTTP address (a client of its own API
in the same process). Local (``AF_UNIX``) sockets are not network egress.
Accepting connections (the HTTP server) is inbound and never checked.

The hook cannot see what native code does on its own sockets (FFmpeg opening an
``http://`` MJPEG source through PyAV, for instance); docs/privacy.md shows the
systemd recipe that closes the rest of the process in the kernel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
import errno
import ipaddress
import logging
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any
import weakref

from doorstep_bridge.models import iso, utcnow

_LOGGER = logging.getLogger(__name__)

#: Seconds a name's addresses are trusted before it is looked up again.
RESOLVE_TTL = 300.0
#: Shortest time between two look-ups of an allowed name on a miss.
RESOLVE_RETRY = 30.0
#: Names that are never looked up to check a connection (they mean "any local address").
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared, never bound
#: Modules skipped when naming who tried to connect (the plumbing, not the culprit).
_PLUMBING = frozenset({"doorstep_bridge.egress"})


class EgressRefusedError(PermissionError):
    """The egress guard refused a connection or a name look-up."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A destination the config allows: a host, and one port or any (None)."""

    host: str
    port: int | None = None


@dataclass(frozen=True, slots=True)
class Blocked:
    """One refused attempt.

    Attributes:
        action: ``connect`` (or ``send``, a datagram) or ``resolve`` (a name look-up).
        destination: ``address:port`` or the name looked up.
        caller: ``module:function`` of the code that tried (libraries skipped).
        thread: The thread's name.
        time: When.
    """

    action: str
    destination: str
    caller: str
    thread: str
    time: datetime

    def payload(self) -> dict[str, str]:
        """JSON for the audit log and MQTT."""
        return {
            "action": self.action,
            "destination": self.destination,
            "caller": self.caller,
            "thread": self.thread,
            "at": iso(self.time),
        }


def _literal(host: str) -> str | None:
    """The address in canonical form when `host` is an IP literal, else None."""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def _name(host: str) -> str:
    """A host name as compared: lower case, without the root's trailing dot."""
    return host.lower().rstrip(".")


def _resolve(name: str) -> frozenset[str]:
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return frozenset()
    return frozenset(
        address for info in infos if (address := _literal(str(info[4][0]))) is not None
    )


#: The addresses of "any address" (the bridge's own server): itself, over loopback.
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


class EgressPolicy:
    """Which names may be looked up and which addresses reached (thread-safe).

    Endpoints given as addresses are read once. Those given as names are looked up
    when a connection needs them, and again after :data:`RESOLVE_TTL`; on a miss,
    again at once when the process has looked the name up itself since (it found a
    new address: the broker or a camera moved), else at most once per
    :data:`RESOLVE_RETRY`.

    Args:
        endpoints: What the config allows.
        resolve: Looks a name up into IP addresses (injectable for tests).
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        resolve: Callable[[str], frozenset[str]] = _resolve,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = tuple(dict.fromkeys(endpoints))
        self._resolve = resolve
        self._clock = clock
        fixed: list[tuple[frozenset[str], int | None]] = []
        named: list[tuple[str, int | None]] = []
        for endpoint in self.endpoints:
            address = _literal(endpoint.host)
            if endpoint.host in _WILDCARDS:
                fixed.append((_LOOPBACK, endpoint.port))
            elif address is not None:
                fixed.append((frozenset({address}), endpoint.port))
            else:
                named.append((_name(endpoint.host), endpoint.port))
        self._fixed = tuple(fixed)
        self._named = tuple(named)
        self._names = frozenset(name for name, _ in named)
        self._lock = threading.Lock()
        self._resolved: dict[str, tuple[float, frozenset[str]]] = {}
        #: Allowed names the process looked up since the policy last did.
        self._looked_up: set[str] = set()

    def allows_name(self, host: str | None) -> bool:
        """Whether `host` may be looked up (IP literals and "any address" need no DNS)."""
        if host is None or host in _WILDCARDS or _literal(host) is not None:
            return True
        name = _name(host)
        if name not in self._names:
            return False
        with self._lock:
            self._looked_up.add(name)
        return True

    def allows(self, host: str, port: int) -> bool:
        """Whether a connection to `host` (a name or an address) and `port` is allowed."""
        address = _literal(host)
        if address is None:
            name = _name(host)
            return any(n == name and p in (None, port) for n, p in self._named)
        if any(p in (None, port) and address in a for a, p in self._fixed):
            return True
        return any(
            p in (None, port) and address in self._addresses(n, refresh=False)
            for n, p in self._named
        ) or any(
            p in (None, port) and address in self._addresses(n, refresh=True)
            for n, p in self._named
        )

    def knows(self, host: str) -> bool:
        """Whether `host` is, or resolves to, the address of an allowed endpoint."""
        address = _literal(host)
        if address is None:
            return host in _WILDCARDS or _name(host) in self._names
        return any(address in a for a, _ in self._fixed) or any(
            address in self._addresses(n, refresh=False) for n, _ in self._named
        )

    def _addresses(self, name: str, *, refresh: bool) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._resolved.get(name)
            # On a miss (refresh), a name the process has looked up since may have moved.
            moved = refresh and name in self._looked_up
        limit = RESOLVE_RETRY if refresh else RESOLVE_TTL
        if cached is not None and not moved and now - cached[0] < limit:
            return cached[1]
        addresses = self._resolve(name)  # an allowed name: the hook lets it through
        with self._lock:
            self._resolved[name] = (now, addresses)
            self._looked_up.discard(name)
        return addresses


def _caller(frame: FrameType | None) -> str:
    """``module:function`` of the first frame outside the standard library and plumbing."""
    first: str | None = None
    while frame is not None:
        module = str(frame.f_globals.get("__name__", "?"))
        where = f"{module}:{frame.f_code.co_name}"
        if first is None and module != "socket" and module not in _PLUMBING:
            first = where
        top = module.split(".", 1)[0]
        if top not in sys.stdlib_module_names and module not in _PLUMBING:
            return where
        frame = frame.f_back
    return first or "?"


class EgressGuard:
    """Refuses what its policy does not allow while it is active; reports each refusal.

    Args:
        policy: What is allowed.
        on_blocked: Called with each refusal, on the thread that tried (keep it
            short and free of network calls: hand it to the event loop).
    """

    def __init__(self, policy: EgressPolicy, on_blocked: Callable[[Blocked], None]) -> None:
        self.policy = policy
        self._on_blocked = on_blocked
        self._lock = threading.Lock()
        self.blocked = 0
        #: Sockets this process bound (its own servers, paho's self-pipe): a connection to
        #: one of them is the process talking to itself, not egress.
        self._bound: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def _to_itself(self, host: str, port: int) -> bool:
        address = _literal(host)
        if address is None or not ipaddress.ip_address(address).is_loopback:
            return False
        with self._lock:
            bound = list(self._bound)
        for sock in bound:
            try:
                if sock.getsockname()[1] == port:
                    return True
            except OSError:  # closed meanwhile
                continue
        return False

    def check(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook's work for one ``socket.*`` event.

        Raises:
            EgressRefusedError: The policy does not allow it.
        """
        if event == "socket.bind":
            if isinstance(args[0], socket.socket):
                with self._lock:
                    self._bound.add(args[0])
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[1]
            if not isinstance(sock, socket.socket) or sock.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                return
            if not isinstance(address, tuple) or len(address) < 2:
                return  # sendmsg on a connected socket (checked at connect)
            host, port = str(address[0]), int(address[1])
            if not self.policy.allows(host, port) and not self._to_itself(host, port):
                action = "connect" if event == "socket.connect" else "send"
                self._refuse(action, f"{host}:{port}" if ":" not in host else f"[{host}]:{port}")
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
            host = args[0]
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            if not self.policy.allows_name(host):
                self._refuse("resolve", str(host))
        elif event == "socket.gethostbyaddr" and not self.policy.knows(str(args[0])):
            self._refuse("resolve", str(args[0]))

    def _refuse(self, action: str, destination: str) -> None:
        blocked = Blocked(
            action=action,
            destination=destination,
            caller=_caller(sys._getframe(1)),  # noqa: SLF001 - the frames that tried
            thread=threading.current_thread().name,
            time=utcnow(),
        )
        with self._lock:
            self.blocked += 1
        try:
            self._on_blocked(blocked)
        except Exception:  # noqa: BLE001 - reporting must not let the connection through
            sys.stderr.write(f"egress guard: cannot report {blocked}\n")
        raise EgressRefusedError(
            errno.EACCES,
            f"egress guard: {action} {destination} is not allowed by the config"
            " (only the broker and the cameras)",
        )


#: The guard in force (None: everything passes); read by the hook on every event.
_active: EgressGuard | None = None
_installed = False
_install_lock = threading.Lock()


def _hook(event: str, args: tuple[Any, ...]) -> None:
    guard = _active
    if guard is not None and event.startswith("socket."):
        guard.check(event, args)


# Debuggers and coverage may follow the hook (CPython suspends tracing in audit hooks
# unless they ask for it).
_hook.__cantrace__ = True  # type: ignore[attr-defined]


def activate(guard: EgressGuard) -> None:
    """Put `guard` in force for the whole process (the hook is added once, for good).

    Raises:
        RuntimeError: Another guard is in force.
    """
    global _active, _installed  # noqa: PLW0603 - one hook per process, by design
    with _install_lock:
        if _active is not None and _active is not guard:
            raise RuntimeError("another egress guard is in force")
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
        _active = guard


def deactivate(guard: EgressGuard) -> None:
    """Lift `guard` (audit hooks cannot be removed: the hook stays and lets all pass)."""
    global _active  # noqa: PLW0603 - one hook per process, by design
    with _install_lock:
        if _active is guard:
            _active = None


#: Seconds between two audit records of the same refusal (the same caller and destination).
AUDIT_INTERVAL = 60.0
#: Destinations of one caller audited one by one per interval; beyond, one summary.
AUDIT_DESTINATIONS = 10
#: Seconds between two publications of the count (a burst is one message).
PUBLISH_INTERVAL = 1.0


class EgressReporter:
    """Takes refusals from any thread to the event loop: counted, published, audited.

    The first refusal of a caller and destination is audited at once; repeats are
    summed into one record per :data:`AUDIT_INTERVAL` (``count``), so a plug-in that
    retries in a loop cannot flood the log. A caller that tries more than
    :data:`AUDIT_DESTINATIONS` destinations in an interval (a scan) gets one summary
    record for the rest (``count`` refusals to ``destinations`` places, the last one
    named). The count is published at once, then at most once per :data:`PUBLISH_INTERVAL`.

    Args:
        loop: The event loop.
        audit: Appends one audit record (blocking; run on a worker thread).
        publish: Publishes :meth:`report` (on the loop).
        interval: Seconds between two records of the same refusal.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        audit: Callable[[dict[str, Any]], object],
        publish: Callable[[dict[str, Any]], None],
        interval: float = AUDIT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self._audit = audit
        self._publish = publish
        self._interval = interval
        self._clock = clock
        self.count = 0
        self.last: Blocked | None = None
        self._written: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], tuple[Blocked, int]] = {}
        #: Per caller, the destinations beyond AUDIT_DESTINATIONS this interval.
        self._scanned: dict[str, set[str]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._published = -PUBLISH_INTERVAL
        self._publish_later: asyncio.TimerHandle | None = None
        #: The newest audit write; each one waits for the one before it.
        self._last_write: asyncio.Task[None] | None = None

    def blocked(self, blocked: Blocked) -> None:
        """A refusal, from whichever thread tried (the guard's ``on_blocked``)."""
        self._loop.call_soon_threadsafe(self._on_loop, blocked)

    def report(self) -> dict[str, Any]:
        """``{"blocked": n, "last": {...} or None}``: what ``<b>/bridge/egress`` carries."""
        return {"blocked": self.count, "last": None if self.last is None else self.last.payload()}

    def _on_loop(self, blocked: Blocked) -> None:
        self.count += 1
        self.last = blocked
        self._publish_soon()
        now = self._clock()
        key = (blocked.caller, blocked.destination)
        written = self._written.get(key)
        if written is not None and now - written < self._interval:
            self._sum(key, blocked)
        elif self._recent_destinations(blocked.caller, now) >= AUDIT_DESTINATIONS:
            self._scanned.setdefault(blocked.caller, set()).add(blocked.destination)
            self._sum((blocked.caller, ""), blocked)
        else:
            self._write(key, blocked, 1)

    def _recent_destinations(self, caller: str, now: float) -> int:
        return sum(
            1
            for (who, _), written in self._written.items()
            if who == caller and now - written < self._interval
        )

    def _sum(self, key: tuple[str, str], blocked: Blocked) -> None:
        _, repeats = self._pending.get(key, (blocked, 0))
        self._pending[key] = (blocked, repeats + 1)
        if self._flush is None:
            self._flush = self._loop.call_later(self._interval, self.flush)

    def _publish_soon(self) -> None:
        if self._publish_later is not None:
            return  # already due: it will carry this refusal too
        wait = self._published + PUBLISH_INTERVAL - self._loop.time()
        if wait <= 0:
            self._publish_now()
        else:
            self._publish_later = self._loop.call_later(wait, self._publish_now)

    def _publish_now(self) -> None:
        self._publish_later = None
        self._published = self._loop.time()
        self._publish(self.report())

    def flush(self) -> None:
        """Audit the repeats summed so far."""
        self._flush = None
        pending, self._pending = self._pending, {}
        scanned, self._scanned = self._scanned, {}
        now = self._clock()
        # What is older than an interval no longer holds back a record: forget it.
        self._written = {k: t for k, t in self._written.items() if now - t < self._interval}
        for key, (blocked, repeats) in pending.items():
            self._write(key, blocked, repeats, len(scanned.get(key[0], ())) if not key[1] else 0)

    def _write(
        self, key: tuple[str, str], blocked: Blocked, count: int, destinations: int = 0
    ) -> None:
        """One audit record; ``destinations`` > 0: a summary of that many places."""
        if not destinations:
            self._written[key] = self._clock()
        _LOGGER.warning(
            "Egress guard refused %s %s from %s (thread %s)%s%s",
            blocked.action,
            blocked.destination,
            blocked.caller,
            blocked.thread,
            f", {count} times since the last report" if count > 1 else "",
            f", {destinations} destinations in all" if destinations > 1 else "",
        )
        record = {**blocked.payload(), "count": count}
        if destinations:
            record["destinations"] = destinations
        previous = self._last_write

        async def write() -> None:
            if previous is not None:  # in order: one record after the other
                await asyncio.gather(previous, return_exceptions=True)
            await asyncio.to_thread(self._audit, record)

        task = self._loop.create_task(write())
        self._last_write = task
        task.add_done_callback(self._written_done)

    def _written_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("Cannot audit a refused connection: %s", task.exception())

    async def close(self) -> None:
        """Audit what is pending and wait for the records to be written."""
        await asyncio.sleep(0)  # take the refusals other threads handed over just before
        if self._flush is not None:
            self._flush.cancel()
        if self._publish_later is not None:
            self._publish_later.cancel()  # the bridge is going offline; the count restarts
        self.flush()
        if self._last_write is not None:
            await asyncio.gather(self._last_write, return_exceptions=True)
