"""The egress guard: what the config allows passes, anything else is refused before it leaves.

The guard runs in this test process, on real sockets: a refused connection never
reaches the network (the addresses are TEST-NET-1, 192.0.2.0/24, anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
from pathlib import Path
import socket
import threading

import pytest

from doorstep_bridge import egress
from doorstep_bridge.egress import (
    Blocked,
    EgressGuard,
    EgressPolicy,
    EgressRefusedError,
    EgressReporter,
    Endpoint,
)
from doorstep_bridge.sharing.audit import AuditLog

from .conftest import Broker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_policy_names_addresses_ports_and_lookups() -> None:
    answers = {"broker.lan": frozenset({"10.0.0.5"})}
    looked_up: list[str] = []

    def resolve(name: str) -> frozenset[str]:
        looked_up.append(name)
        return answers.get(name, frozenset())

    clock = Clock()
    policy = EgressPolicy(
        [Endpoint("broker.lan", 1883), Endpoint("192.0.2.10"), Endpoint("0.0.0.0", 5080)],
        resolve=resolve,
        clock=clock,
    )
    assert policy.allows_name("broker.lan")
    assert policy.allows_name("Broker.LAN.")
    assert policy.allows_name("192.0.2.99")  # a literal needs no DNS
    assert policy.allows_name(None)
    assert not policy.allows_name("telemetry.example.com")
    assert policy.allows("broker.lan", 1883)
    assert not policy.allows("broker.lan", 22)
    assert policy.allows("10.0.0.5", 1883)
    assert not policy.allows("10.0.0.5", 80)
    assert policy.allows("192.0.2.10", 554)  # a camera: any port
    assert not policy.allows("192.0.2.11", 554)
    assert policy.allows("127.0.0.1", 5080)  # the bridge's own API on every address
    assert not policy.allows("127.0.0.1", 5081)
    assert policy.knows("192.0.2.10")
    assert policy.knows("broker.lan")
    assert not policy.knows("192.0.2.11")
    assert looked_up == ["broker.lan"]  # once: a miss right after asks not again

    # The broker moved: a miss looks the name up again, at most once per RESOLVE_RETRY.
    answers["broker.lan"] = frozenset({"10.0.0.6"})
    clock.now += 10
    assert not policy.allows("10.0.0.6", 1883)
    clock.now += egress.RESOLVE_RETRY
    assert policy.allows("10.0.0.6", 1883)
    assert not policy.allows("10.0.0.5", 1883)


def test_a_name_the_process_looks_up_again_is_followed_at_once() -> None:
    answers = {"camera.lan": frozenset({"10.0.0.20"})}
    looked_up: list[str] = []

    def resolve(name: str) -> frozenset[str]:
        looked_up.append(name)
        return answers[name]

    clock = Clock()
    # A name written with the root's dot in the config is the same name.
    policy = EgressPolicy([Endpoint("Camera.LAN.")], resolve=resolve, clock=clock)
    assert policy.allows_name("camera.lan")
    assert policy.allows("10.0.0.20", 554)
    # The camera moved; the client looks its name up, then connects to the new address:
    # allowed at once, no refusal to wait out.
    answers["camera.lan"] = frozenset({"10.0.0.21"})
    clock.now += 1
    assert policy.allows_name("camera.lan")
    assert policy.allows("10.0.0.21", 554)
    # A miss with no look-up in between asks the name again only after RESOLVE_RETRY.
    assert not policy.allows("192.0.2.1", 554)
    assert looked_up == ["camera.lan", "camera.lan"]
    assert policy.knows("camera.lan.")
    assert not policy.knows("other.lan")


@pytest.fixture
def guard() -> Iterator[tuple[EgressGuard, list[Blocked]]]:
    refused: list[Blocked] = []
    policy = EgressPolicy([Endpoint("127.0.0.1", 1), Endpoint("192.0.2.10")])
    active = EgressGuard(policy, refused.append)
    egress.activate(active)
    try:
        yield active, refused
    finally:
        egress.deactivate(active)


def test_what_is_not_allowed_is_refused_before_it_leaves(
    guard: tuple[EgressGuard, list[Blocked]],
) -> None:
    active, refused = guard
    with pytest.raises(EgressRefusedError, match=r"connect 192\.0\.2\.1:443 is not allowed"):
        socket.create_connection(("192.0.2.1", 443), timeout=5)
    with pytest.raises(EgressRefusedError):
        socket.getaddrinfo("telemetry.example.com", 443)
    with pytest.raises(PermissionError):  # what callers catch: an OSError
        socket.gethostbyname("telemetry.example.com")
    with pytest.raises(EgressRefusedError):
        socket.gethostbyaddr("192.0.2.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(EgressRefusedError):
            udp.sendto(b"hello", ("192.0.2.1", 53))
        with pytest.raises(EgressRefusedError):
            udp.sendmsg([b"hello"], [], 0, ("192.0.2.1", 53))
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as six, pytest.raises(OSError):
        six.connect(("2001:db8::1", 443))

    assert [(b.action, b.destination) for b in refused] == [
        ("connect", "192.0.2.1:443"),
        ("resolve", "telemetry.example.com"),
        ("resolve", "telemetry.example.com"),
        ("resolve", "192.0.2.1"),
        ("send", "192.0.2.1:53"),
        ("send", "192.0.2.1:53"),
        ("connect", "[2001:db8::1]:443"),
    ]
    assert active.blocked == len(refused)
    caller = f"{__name__}:test_what_is_not_allowed_is_refused_before_it_leaves"
    assert {b.caller for b in refused} == {caller}
    assert {b.thread for b in refused} == {threading.current_thread().name}


def test_the_process_talking_to_itself_and_local_sockets_pass(
    guard: tuple[EgressGuard, list[Blocked]], tmp_path: Path
) -> None:
    _, refused = guard
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    left, right = socket.socketpair()
    left.close()
    right.close()
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(str(tmp_path / "local.sock"))
        server.listen()
        client.connect(str(tmp_path / "local.sock"))
    assert socket.getaddrinfo("192.0.2.10", 554)  # a literal: no DNS
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("192.0.2.10", 554))  # a camera: allowed (UDP: nothing is sent)
        udp.sendmsg([b""])  # on the connected socket: checked at connect
    assert refused == []
    with pytest.raises(EgressRefusedError):
        socket.getaddrinfo(b"telemetry.example.com", 443)
    assert refused[-1].destination == "telemetry.example.com"


def test_names_are_looked_up_for_real() -> None:
    policy = EgressPolicy([Endpoint("localhost", 1883)])
    assert policy.allows("127.0.0.1", 1883)
    assert not policy.allows("127.0.0.1", 1884)
    assert not EgressPolicy([Endpoint("nothing.invalid", 1883)]).allows("127.0.0.1", 1883)


def test_the_broker_passes(mqtt_broker: Broker) -> None:
    refused: list[Blocked] = []
    broker_guard = EgressGuard(
        EgressPolicy([Endpoint(mqtt_broker.host, mqtt_broker.port)]), refused.append
    )
    egress.activate(broker_guard)
    try:
        with pytest.raises(RuntimeError, match="another egress guard"):
            egress.activate(EgressGuard(EgressPolicy([]), refused.append))
        with socket.create_connection((mqtt_broker.host, mqtt_broker.port), timeout=5):
            pass
    finally:
        egress.deactivate(broker_guard)
    assert refused == []
    # Lifted: everything passes again (the hook stays, idle).
    with pytest.raises(OSError) as err:
        socket.create_connection(("127.0.0.1", 1), timeout=5)
    assert not isinstance(err.value, EgressRefusedError)


def test_a_reporter_that_fails_does_not_let_the_connection_through() -> None:
    def broken(_blocked: Blocked) -> None:
        raise RuntimeError("boom")

    active = EgressGuard(EgressPolicy([]), broken)
    egress.activate(active)
    try:
        with pytest.raises(EgressRefusedError):
            socket.create_connection(("192.0.2.1", 443), timeout=5)
    finally:
        egress.deactivate(active)
    assert active.blocked == 1


async def test_reports_are_counted_published_and_audited_without_flooding(
    tmp_path: Path,
) -> None:
    audit = AuditLog(tmp_path / "audit")
    published: list[dict[str, object]] = []
    all_in = asyncio.Event()

    def publish(report: dict[str, object]) -> None:
        published.append(report)
        if report["blocked"] == 4:
            all_in.set()

    clock = Clock()
    reporter = EgressReporter(
        asyncio.get_running_loop(),
        audit=lambda record: audit.append("connection_blocked", **record),
        publish=publish,
        interval=60.0,
        clock=clock,
    )
    active = EgressGuard(EgressPolicy([]), reporter.blocked)

    def phone_home(times: int, port: int) -> None:
        for _ in range(times):
            with contextlib.suppress(EgressRefusedError):
                socket.create_connection(("192.0.2.1", port), timeout=5)

    egress.activate(active)
    try:
        await asyncio.to_thread(phone_home, 3, 443)
        await asyncio.to_thread(phone_home, 1, 80)
    finally:
        egress.deactivate(active)
    await all_in.wait()  # the threads' reports reached the loop

    # The first at once; a burst is one message a second at most.
    counts = [p["blocked"] for p in published]
    assert counts[0] == 1
    assert counts[-1] == 4
    assert counts == sorted(set(counts))
    last = published[-1]["last"]
    assert isinstance(last, dict)
    assert last["destination"] == "192.0.2.1:80"
    assert last["caller"] == f"{__name__}:phone_home"
    clock.now += 61
    await reporter.close()  # the two repeats of 443 are summed into one record
    records = [r for r in audit.records() if r["kind"] == "connection_blocked"]
    assert [(r["destination"], r["count"]) for r in records] == [
        ("192.0.2.1:443", 1),
        ("192.0.2.1:80", 1),
        ("192.0.2.1:443", 2),
    ]
    assert records[0]["caller"] == f"{__name__}:phone_home"
    assert records[0]["action"] == "connect"


async def test_refusals_just_before_closing_are_still_audited(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit")
    reporter = EgressReporter(
        asyncio.get_running_loop(),
        audit=lambda record: audit.append("connection_blocked", **record),
        publish=lambda _report: None,
    )
    active = EgressGuard(EgressPolicy([]), reporter.blocked)
    egress.activate(active)
    try:
        for _ in range(2):
            with contextlib.suppress(EgressRefusedError):
                socket.create_connection(("192.0.2.1", 443), timeout=5)
    finally:
        egress.deactivate(active)
    await reporter.close()  # the shutdown comes before the loop took the reports
    records = [r for r in audit.records() if r["kind"] == "connection_blocked"]
    assert [(r["destination"], r["count"]) for r in records] == [
        ("192.0.2.1:443", 1),
        ("192.0.2.1:443", 1),
    ]


async def test_a_scan_of_many_destinations_is_summed(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit")
    published: list[dict[str, object]] = []
    clock = Clock()
    reporter = EgressReporter(
        asyncio.get_running_loop(),
        audit=lambda record: audit.append("connection_blocked", **record),
        publish=published.append,
        clock=clock,
    )
    active = EgressGuard(EgressPolicy([]), reporter.blocked)

    def scan() -> None:
        for last in range(1, 51):
            with contextlib.suppress(EgressRefusedError):
                socket.create_connection((f"192.0.2.{last}", 443), timeout=5)

    egress.activate(active)
    try:
        await asyncio.to_thread(scan)
    finally:
        egress.deactivate(active)
    await asyncio.sleep(0)
    assert reporter.count == 50
    assert len(published) <= 2  # the first at once, the rest a second later
    clock.now += 61
    await reporter.close()
    records = [r for r in audit.records() if r["kind"] == "connection_blocked"]
    # Ten destinations one by one, then one record for the other forty.
    assert [r["destination"] for r in records[:10]] == [f"192.0.2.{n}:443" for n in range(1, 11)]
    assert len(records) == 11
    assert (records[10]["count"], records[10]["destinations"]) == (40, 40)
    assert records[10]["destination"] == "192.0.2.50:443"
