"""``scripts/demo`` ends with everything it started, whichever way it is stopped.

Its services run in sessions of their own, out of reach of the terminal: the demo must
stop them when its output pipe breaks (``scripts/demo | cat`` then Ctrl-C), when its
terminal closes (SIGHUP) and, through its watchdog, when it is killed outright.
"""

from __future__ import annotations

from collections.abc import Iterator
import io
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.e2e import demo
from tests.e2e.servers import ROOT, free_port, listening, missing_parts

#: Generous: a loaded 2-core machine starts Home Assistant slowly.
READY_TIMEOUT = 300.0
#: How long the demo may take to stop everything (Home Assistant saves on SIGTERM).
EXIT_TIMEOUT = 150.0
#: After the demo is gone: none of its services may outlive it by more than this.
GONE_TIMEOUT = 30.0


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Is ``pid`` a live process (not a zombie waiting for its reaper)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after waiting up to ``timeout`` s for them to end."""
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    return alive


class _Demo:
    """A demo started with its stdout to a pipe (as in ``scripts/demo | cat``)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.folder = folder
        self.errors = folder.parent / f"demo-stderr-{self.port}-{time.monotonic_ns()}.log"
        self.services: list[int] = []
        env = {**os.environ, "DEMO_DIR": str(folder), "DEMO_HA_PORT": str(self.port)}
        with self.errors.open("wb") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.demo"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )

    def read_until(self, needle: str) -> None:
        """Read its output until a line holds ``needle`` (in a thread: readline may block)."""
        seen: list[str] = []
        result: list[bool] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                seen.append(line)
                if needle in line:
                    result.append(True)
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT)
        if not result:
            pytest.fail(
                f"no {needle!r} from the demo:\n{''.join(seen)[-3000:]}\n"
                f"{self.errors.read_text(errors='replace')[-3000:]}"
            )

    def wait_ready(self) -> None:
        """Read its output until the login banner; then note the services it started."""
        self.read_until("Ctrl-C stops everything")
        names = {"mosquitto", "doorstep-bridge", "hass"}
        for pid in _children(self.process.pid):
            with_args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
            if any(Path(arg.decode()).name in names for arg in with_args[:2]):
                self.services.append(pid)
        assert len(self.services) == 3, self.services

    def close(self) -> None:
        """Whatever the test found: nothing of this demo keeps running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.services:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def started_demo(tmp_path: Path) -> Iterator[_Demo]:
    why = missing_parts()
    if why is not None:
        pytest.skip(why)
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc to find the demo's services")
    running = _Demo(tmp_path / "demo")
    try:
        running.wait_ready()
        yield running
    finally:
        running.close()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_demo_stops_everything_when_its_output_is_gone(
    started_demo: _Demo, signum: signal.Signals
) -> None:
    # `scripts/demo | cat`, then Ctrl-C (or the terminal closes): the reader is gone first.
    assert started_demo.process.stdout is not None
    started_demo.process.stdout.close()
    started_demo.process.send_signal(signum)
    try:
        started_demo.process.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("the demo did not stop")
    assert _wait_gone(started_demo.services, GONE_TIMEOUT) == []
    assert not listening(started_demo.port)
    assert not (started_demo.folder / "run.json").exists()
    errors = started_demo.errors.read_text(errors="replace")
    assert "Traceback" not in errors, errors
    assert started_demo.process.returncode == 0, errors


@pytest.mark.slow
def test_a_killed_demo_leaves_nothing_running(started_demo: _Demo) -> None:
    started_demo.process.kill()
    started_demo.process.wait()
    assert _wait_gone(started_demo.services, GONE_TIMEOUT + 30) == []
    assert not listening(started_demo.port)

    # Its run file names a demo that is gone: while the next one starts (on the same port,
    # free again), the commands say it is starting instead of using the dead one's addresses.
    assert (started_demo.folder / "run.json").exists()
    again = _Demo(started_demo.folder, started_demo.port)
    try:
        again.read_until("starting Mosquitto")
        ring = subprocess.run(
            [sys.executable, "-m", "tests.e2e.demo", "ring"],
            cwd=ROOT,
            env={**os.environ, "DEMO_DIR": str(started_demo.folder)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ring.returncode == 1
        assert f"still starting (pid {again.process.pid})" in ring.stderr, ring.stderr
        again.wait_ready()
        again.process.send_signal(signal.SIGINT)
        assert again.process.wait(timeout=EXIT_TIMEOUT) == 0
        assert _wait_gone(again.services, GONE_TIMEOUT) == []
    finally:
        again.close()


def test_lines_said_from_two_threads_stay_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    class SlowStream(io.StringIO):
        """A terminal that gives other threads every chance to write in between."""

        def write(self, text: str) -> int:
            time.sleep(0.0005)
            return super().write(text)

    stream = SlowStream()
    monkeypatch.setattr(sys, "stdout", stream)
    start = threading.Barrier(2)

    def talk(name: str) -> None:
        start.wait()
        for n in range(100):
            demo.say(f"{name} line {n}")

    threads = [threading.Thread(target=talk, args=(name,)) for name in ("alpha", "omega")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 200
    for line in lines:
        assert re.fullmatch(r"\d\d:\d\d:\d\d  (alpha|omega) line \d+", line), line


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "80 80", ""])
def test_a_bad_port_is_refused_in_one_line(tmp_path: Path, port: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.demo"],
        cwd=ROOT,
        env={**os.environ, "DEMO_DIR": str(tmp_path / "demo"), "DEMO_HA_PORT": port},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "demo: DEMO_HA_PORT must be a port number (1-65535)\n"
    assert result.stdout == ""
    assert not (tmp_path / "demo").exists()  # nothing started, nothing written
