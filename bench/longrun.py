"""Long run: one real bridge for many minutes, sampled every 30 s, to see that it stays flat.

Starts a Mosquitto on a free loopback port, a local RTSP camera looping a 640x360 video
(``tests/support/rtsp_server.py``), and ``doorstep-bridge run`` with two cameras (that RTSP
camera and the built-in ``demo://`` scene, which rings once a minute), short retention (clips
deleted after 4 minutes) and a fixed token. A client loop uses the HTTP API as the integration
does: lists clips, fetches snapshots and a clip with ``Range``, asks for shares, approves or
denies them and downloads the links. During the run the broker is stopped and started again,
and so is the camera (an outage).

Every 30 s it prints: the bridge's RSS, open descriptors, threads, asyncio tasks and live
Python objects (through a debug hook this script installs in the bridge's process: the product
has none; ``--tracemalloc`` adds traced memory, at a cost in speed and RSS), the storage's size,
the log's size, the SQLite WAL files, the audit log and the retained topics on the broker. The
client also opens the live view for a few seconds every third turn. At the end: start, end and
slope per hour of each figure (the slope over the second half, after the warm-up), the object
types that grew most and (``--tracemalloc``) the lines that allocated the most since the
warm-up. Asserts nothing.

Usage (nice: it shares the machine)::

    nice -n 10 .venv/bin/python bench/longrun.py [--minutes 25] [--keep FOLDER] [--tracemalloc]

Needs ``mosquitto``, ``mosquitto_sub``, ``ffmpeg`` and Debian's python3 with GStreamer
(``scripts/setup``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
from datetime import UTC, datetime, timedelta
import gc
import json
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import free_port, wait_listening
import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVERY = 30.0
TOKEN = "longrun-token-0123456789abcdef"
# A real street (PETS 2009 pedestrians) when ../shared is beside the checkout; otherwise
# FFmpeg's moving test pattern (motion all the time, so clips are made all the same).
VIDEO = ROOT.parent / "shared" / "data" / "motion" / "vtest.avi"
# Broker and camera outages, as minutes into the run: (start, seconds down).
BROKER_OUTAGES = ((5.0, 30.0), (12.0, 60.0), (19.0, 20.0))
CAMERA_OUTAGES = ((8.0, 45.0), (15.0, 30.0), (22.0, 60.0))


# --- the debug hook, run inside the bridge's process (``--as-bridge``) -------------------


def _grown(saved: Path) -> list[tracemalloc.StatisticDiff]:
    """The lines whose live allocations grew most since the first snapshot (kept in ``saved``)."""
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__)]
    )
    # On disk, not in memory: its traces would count as live objects.
    if not saved.exists():
        snap.dump(str(saved))
    return snap.compare_to(tracemalloc.Snapshot.load(str(saved)), "lineno")[:12]


def _run_as_bridge(out: Path, argv: list[str], *, trace: bool) -> int:
    """Run ``doorstep-bridge`` with a sampling thread that appends JSON lines to ``out``."""
    loops: list[asyncio.AbstractEventLoop] = []
    run_forever = asyncio.BaseEventLoop.run_forever

    def remember(self: asyncio.BaseEventLoop) -> None:
        loops.append(self)
        run_forever(self)

    asyncio.BaseEventLoop.run_forever = remember  # type: ignore[method-assign]
    if trace:
        tracemalloc.start(1)

    def tasks() -> dict[str, int]:
        if not loops or loops[-1].is_closed():
            return {}
        loop = loops[-1]
        done: concurrent.futures.Future[dict[str, int]] = concurrent.futures.Future()

        def count() -> None:
            names = collections.Counter(
                t.get_name().rstrip("0123456789") for t in asyncio.all_tasks(loop)
            )
            done.set_result(dict(names))

        loop.call_soon_threadsafe(count)
        return done.result(timeout=10)

    def sample(first_types: dict[str, int]) -> None:
        objects = gc.get_objects()
        types = collections.Counter(type(o).__qualname__ for o in objects)
        del objects
        if not first_types:
            first_types.update(types)
        grew = sorted(((n - first_types.get(t, 0), t) for t, n in types.items()), reverse=True)[:12]
        top: list[tracemalloc.StatisticDiff] = []
        if trace:
            top = _grown(out.with_suffix(".baseline"))
        current, _peak = tracemalloc.get_traced_memory()
        line = {
            "time": time.time(),
            "gc_objects": sum(types.values()),
            "gc_counts": gc.get_count(),
            "traced_mb": round(current / 1e6, 2),
            "threads": [t.name for t in threading.enumerate()],
            "tasks": tasks(),
            "types_grew": [(t, n) for n, t in grew if n > 0],
            "alloc_grew": [
                (str(s.traceback), round(s.size_diff / 1e3, 1), s.count_diff) for s in top
            ],
        }
        with out.open("a") as f:
            f.write(json.dumps(line) + "\n")

    def sampler() -> None:
        first_types: dict[str, int] = {}
        time.sleep(SAMPLE_EVERY * 2)  # warm-up: caches, the first clips, imports
        while True:
            with contextlib.suppress(Exception):
                sample(first_types)
            time.sleep(SAMPLE_EVERY)

    threading.Thread(target=sampler, name="longrun-sampler", daemon=True).start()
    from doorstep_bridge.__main__ import main  # noqa: PLC0415 - after the hook

    sys.argv = ["doorstep-bridge", *argv]
    return main()


# --- the helpers the run drives -------------------------------------------------------


class Restartable:
    """A child process that can be stopped and started again with the same command."""

    def __init__(self, command: list[str], log: Path, port: int) -> None:
        self.command, self.log, self.port = command, log, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=log)
        wait_listening(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


def api(port: int, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data = response.read()
        kind = response.headers.get("Content-Type", "")
        return json.loads(data) if kind.startswith("application/json") else data


class Client:
    """The HTTP API as Home Assistant uses it, in a loop; counts what it did."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.counts: collections.Counter[str] = collections.Counter()
        self.stop = threading.Event()
        self.pending: list[str] = []

    def run(self) -> None:
        turn = 0
        while not self.stop.wait(5.0):
            turn += 1
            try:
                self._once(turn)
            except urllib.error.HTTPError as err:  # e.g. 503 for the live view of a camera down
                self.counts[f"HTTP {err.code} {urllib.parse.urlsplit(err.url).path}"] += 1
            except (urllib.error.URLError, OSError, ValueError) as err:
                self.counts[f"error {type(err).__name__}"] += 1

    def _watch_live(self, camera: str, seconds: float) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/cameras/{camera}/live.mjpeg",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        until = time.monotonic() + seconds
        with urllib.request.urlopen(request, timeout=30) as response:
            while time.monotonic() < until and response.read(16384):
                pass
        self.counts["live view"] += 1

    def _once(self, turn: int) -> None:
        clips = api(self.port, "/api/clips?limit=20")["clips"]
        self.counts["list"] += 1
        if clips:
            clip = clips[turn % len(clips)]["id"]
            api(self.port, f"/api/clips/{clip}/snapshot")
            api(self.port, f"/api/clips/{clip}/video", headers={"Range": "bytes=0-65535"})
            self.counts["snapshot+range"] += 1
        api(self.port, "/api/info")
        if turn % 3 == 0:  # a dashboard opens the live view for a few seconds, then leaves
            self._watch_live("yard" if turn % 2 else "front_door", seconds=3.0)
        if turn % 12 == 0:  # a share a minute: ask for the last two minutes of the yard
            end = datetime.now(UTC) - timedelta(seconds=20)
            state = api(
                self.port,
                "/api/share-requests",
                {
                    "requester": "Neighbour",
                    "cameras": ["yard"],
                    "start": (end - timedelta(minutes=2)).isoformat(),
                    "end": end.isoformat(),
                    "reason": "long run",
                },
            )
            decision = "approve" if turn % 24 == 0 else "deny"
            api(
                self.port,
                f"/api/shares/{state['id']}/decision",
                {"decision": decision, "by": "owner", "via": "ui", "redact": turn % 48 == 0},
            )
            self.counts[f"share {decision}"] += 1
            if decision == "approve":
                self.pending.append(state["id"])
        for share in list(self.pending):
            state = api(self.port, f"/api/shares/{share}")
            if state["state"] == "ready":
                api(self.port, state["link"] + "?raw=1")
                self.counts["link download"] += 1
                self.pending.remove(share)
            elif state["state"] not in {"approved", "rendering"}:
                self.counts[f"share {state['state']}"] += 1
                self.pending.remove(share)


# --- sampling from outside ------------------------------------------------------------


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def _retained(port: int, base: str) -> int:
    result = subprocess.run(
        ["mosquitto_sub", "-p", str(port), "-t", f"{base}/#", "-t", "homeassistant/#",
         "--retained-only", "-W", "2", "-F", "%t"],
        capture_output=True, check=False,
    )  # fmt: skip
    return len(result.stdout.splitlines())


def outside(pid: int, storage: Path, log: Path, broker: int) -> dict[str, Any]:
    proc = Path(f"/proc/{pid}")
    status = dict(
        line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line
    )
    fds: collections.Counter[str] = collections.Counter()
    for fd in (proc / "fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            fds[
                target.split(":", maxsplit=1)[0] if ":" in target else Path(target).suffix or target
            ] += 1
    files = [p for p in storage.rglob("*") if p.is_file()]
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "fds": sum(fds.values()),
        "fd_kinds": dict(fds),
        "threads_os": int(status["Threads"]),
        "storage_mb": _size(files) / 1e6,
        "files": len(files),
        "mp4": sum(1 for p in files if p.suffix == ".mp4"),
        "log_kb": log.stat().st_size / 1e3,
        "wal_kb": _size([p for p in files if p.name.endswith("-wal")]) / 1e3,
        "audit_kb": _size([p for p in files if "audit" in p.parts]) / 1e3,
        "retained": _retained(broker, "doorstep"),
    }


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mx) * (v - my) for t, v in points) / den * 3600


# --- the run ----------------------------------------------------------------------------


def main() -> int:  # noqa: PLR0912, PLR0915 - one script, start to end
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--keep", type=Path, help="folder to keep the data and logs in")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also trace Python allocations in the bridge (slower; adds to its RSS)",
    )
    parser.add_argument("--as-bridge", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.as_bridge:
        return _run_as_bridge(args.as_bridge, rest, trace=args.tracemalloc)

    folder = args.keep or Path(tempfile.mkdtemp(prefix="doorstep-longrun-"))
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / "yard.mp4"
    if not video.exists():
        if VIDEO.is_file():
            source = ["-i", str(VIDEO)]
        else:
            print(f"{VIDEO} not found: the camera loops FFmpeg's test pattern instead")
            source = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=10:duration=60"]
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", *source, "-vf", "scale=640:360", "-r", "10",
             "-c:v", "libx264", "-preset", "veryfast", "-g", "20", "-bf", "0",
             "-pix_fmt", "yuv420p", str(video)],
            check=True,
        )  # fmt: skip
    broker_port, camera_port, http_port = free_port(), free_port(), free_port()
    (folder / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
    )
    broker = Restartable(
        ["mosquitto", "-c", str(folder / "mosquitto.conf")], folder / "mosquitto.log", broker_port
    )
    camera = Restartable(
        ["/usr/bin/python3", str(ROOT / "tests/support/rtsp_server.py"),
         "--port", str(camera_port), "--file", str(video)],
        folder / "camera.log", camera_port,
    )  # fmt: skip
    storage = folder / "data"
    config = {
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "base_topic": "doorstep"},
        "http": {"host": "127.0.0.1", "port": http_port, "token": TOKEN},
        "storage": {"path": str(storage), "retention_days": 4 / 1440},
        "cameras": {
            "yard": {
                "source": f"rtsp://127.0.0.1:{camera_port}/stream",
                "detect_fps": 5,
                "record": {"pre_roll": 3, "post_roll": 5, "max_length": 60},
            },
            "front_door": {
                "source": "demo://?period=60&fps=5&width=640&height=360",
                "detect_fps": 5,
                "record": {"pre_roll": 3, "post_roll": 5},
            },
        },
        "sharing": {"decision_timeout_minutes": 2},
    }
    (folder / "doorstep.yaml").write_text(yaml.safe_dump(config))
    hook, log = folder / "hook.jsonl", folder / "bridge.log"
    hook.unlink(missing_ok=True)
    hook.with_suffix(".baseline").unlink(missing_ok=True)
    broker.start()
    camera.start()
    with log.open("ab") as out:
        bridge = subprocess.Popen(
            [sys.executable, __file__, "--as-bridge", str(hook),
             *(["--tracemalloc"] if args.tracemalloc else []),
             "run", "--config", str(folder / "doorstep.yaml")],
            stdout=out, stderr=out,
        )  # fmt: skip
    wait_listening(http_port, timeout=60)
    client = Client(http_port)
    threading.Thread(target=client.run, daemon=True).start()

    started = time.monotonic()
    events = sorted(
        [(at * 60, "broker down", secs) for at, secs in BROKER_OUTAGES]
        + [(at * 60, "camera down", secs) for at, secs in CAMERA_OUTAGES]
    )
    ups: list[tuple[float, Restartable]] = []
    rows: list[dict[str, Any]] = []
    next_sample = 0.0
    print(
        f"{'min':>5} {'rss MB':>7} {'fds':>4} {'thr':>4} {'tasks':>5} {'objects':>8} "
        f"{'traced':>7} {'data MB':>7} {'mp4':>4} {'log kB':>7} {'wal kB':>7} "
        f"{'audit kB':>8} {'ret':>4}"
    )
    try:
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            while events and events[0][0] <= elapsed:
                _, what, secs = events.pop(0)
                part = broker if what.startswith("broker") else camera
                part.stop()
                ups.append((elapsed + secs, part))
                print(f"# {elapsed / 60:.1f} min: {what} for {secs:.0f} s")
            for up in [u for u in ups if u[0] <= elapsed]:
                up[1].start()
                ups.remove(up)
            if elapsed >= next_sample:
                next_sample += SAMPLE_EVERY
                row = {"t": elapsed, **outside(bridge.pid, storage, log, broker_port)}
                inside = hook.read_text().splitlines() if hook.exists() else []
                if inside:
                    last = json.loads(inside[-1])
                    row["tasks"] = sum(last["tasks"].values())
                    row["objects"] = last["gc_objects"]
                    row["traced_mb"] = last["traced_mb"]
                rows.append(row)
                print(
                    f"{elapsed / 60:5.1f} {row['rss_mb']:7.1f} {row['fds']:4d} "
                    f"{row['threads_os']:4d} {row.get('tasks', '-')!s:>5} "
                    f"{row.get('objects', '-')!s:>8} {row.get('traced_mb', '-')!s:>7} "
                    f"{row['storage_mb']:7.1f} {row['mp4']:4d} {row['log_kb']:7.1f} "
                    f"{row['wal_kb']:7.1f} {row['audit_kb']:8.1f} {row['retained']:4d}",
                    flush=True,
                )
            time.sleep(1.0)
    finally:
        client.stop.set()
        for _, part in ups:
            part.start()
        bridge.terminate()
        bridge.wait(timeout=60)
        camera.stop()
        broker.stop()

    print(f"\nclient: {dict(client.counts)}")
    half = [r for r in rows if r["t"] >= rows[-1]["t"] / 2]
    print(f"{'figure':>10} {'start':>9} {'end':>9} {'slope/h (2nd half)':>19}")
    for key in ("rss_mb", "fds", "threads_os", "tasks", "objects", "traced_mb", "storage_mb",
                "mp4", "log_kb", "wal_kb", "audit_kb", "retained"):  # fmt: skip
        have = [r for r in rows if key in r]
        if have:
            points = [(r["t"], float(r[key])) for r in half if key in r]
            print(f"{key:>10} {have[0][key]:9.1f} {have[-1][key]:9.1f} {slope(points):19.2f}")
    inside = hook.read_text().splitlines() if hook.exists() else []
    if inside:
        last = json.loads(inside[-1])
        print(f"\ntasks: {last['tasks']}\nthreads: {collections.Counter(last['threads'])}")
        print("object types that grew since the warm-up:")
        for name, grew in last["types_grew"]:
            print(f"  {grew:+8d} {name}")
        print("lines that allocated the most since the warm-up (kB, blocks):")
        for where, kb, count in last["alloc_grew"]:
            print(f"  {kb:+9.1f} {count:+7d} {where}")
    print(f"fds at the end: {rows[-1]['fd_kinds']}")
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
