#!/usr/bin/env python3
# ruff: noqa: PLC0415 - tests.support imports once the checkout is on sys.path
"""Scale: one bridge with many busy cameras, and two bridges on one broker.

Every camera is a 1080p15 main stream (recorded by stream copy) plus a 640x360 detect
stream, served over RTSP by the project's GStreamer test server from a 20 s loop in which
someone walks through for 6 s, so every camera records a clip every loop. While all of
them are busy, doorbell presses go to random cameras a few times a second. Measured on the
real ``doorstep-bridge run`` process:

  CPU       the bridge process's CPU (all its threads) as % of one core, and per camera
            as a ratio to decoding one detect stream in its own process (the floor)
  RSS       the bridge's peak resident memory
  ring      button press -> ``<b>/<cam>/ring`` on the broker: p50 / p99 / max
  clip      a clip's end -> its ``<b>/<cam>/clip`` message: median / max
  cameras   how many cameras published a clip after the presses (all of them should)

The camera server runs in its own process; its CPU is shown apart (it is the cameras).

    .venv/bin/python bench/scale.py [--cameras 16 32] [--seconds 45] [--bridges 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
import json
import os
from pathlib import Path
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from _support import bridge, free_port, mosquitto, percentile
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Traffic:
    """What one MQTT client saw: ring and clip messages with their arrival times."""

    rings: queue.Queue[tuple[str, float]] = field(default_factory=queue.Queue)
    clip_delays: list[float] = field(default_factory=list)
    clip_cameras: set[str] = field(default_factory=set)
    measuring: bool = False

    def on_message(self, _client: object, _userdata: object, msg: paho.MQTTMessage) -> None:
        arrived = time.time()
        parts = msg.topic.split("/")
        if parts[-1] == "ring":
            self.rings.put((parts[-2], time.perf_counter()))
        elif parts[-1] == "clip" and msg.payload and not msg.retain and self.measuring:
            clip = json.loads(msg.payload)
            end = datetime.fromisoformat(clip["end"]).timestamp()
            self.clip_delays.append(arrived - end)
            self.clip_cameras.add(clip["camera"])


@contextlib.contextmanager
def clients(port: int, base_topics: list[str]) -> Iterator[tuple[paho.Client, Traffic]]:
    """A button (sender) and a client subscribed to every bridge's ring and clip topics."""
    traffic = Traffic()
    subscribed = threading.Event()
    receiver = paho.Client(CallbackAPIVersion.VERSION2)
    topics = [(f"{base}/+/{leaf}", 1) for base in base_topics for leaf in ("ring", "clip")]
    receiver.on_connect = lambda c, *_: c.subscribe(topics)
    receiver.on_subscribe = lambda *_: subscribed.set()
    receiver.on_message = traffic.on_message
    receiver.connect("127.0.0.1", port)
    receiver.loop_start()
    subscribed.wait(10)
    sender = paho.Client(CallbackAPIVersion.VERSION2)
    sender.connect("127.0.0.1", port)
    sender.loop_start()
    try:
        yield sender, traffic
    finally:
        for client in (sender, receiver):
            client.loop_stop()
            client.disconnect()


def camera_config(url: str) -> dict[str, Any]:
    return {
        "source": f"{url}/main",
        "detect_source": f"{url}/sub",
        "record": {"pre_roll": 5.0, "post_roll": 5.0},
        "doorbell": {"debounce": 0},
    }


def bridge_config(mqtt_port: int, base: str, names: list[str], url: str) -> dict[str, Any]:
    return {
        "mqtt": {"port": mqtt_port, "base_topic": base},
        "http": {"port": free_port()},
        "cameras": {name: camera_config(url) for name in names},
    }


def decode_floor(url: str, seconds: float) -> float:
    """CPU share of one core that decoding one detect stream costs (bench/pipeline.py)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/pipeline.py"), "--worker", "decode", f"{url}/sub",
         str(seconds)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    share: float = result["cpu"] / result["wall"]
    return share


def press_and_measure(
    client: paho.Client,
    traffic: Traffic,
    targets: list[tuple[str, str]],
    seconds: float,
    pids: list[int],
) -> dict[str, Any]:
    """Press random doorbells for ``seconds``, then let the clips end; CPU, memory, latency.

    A press also starts or extends a clip, so clip delays are taken after the presses stop,
    when only the walkers in the footage (every camera, every 20 s) start and end clips.
    """
    rng = random.Random(1)
    latencies: list[float] = []
    lost = 0
    peak = dict.fromkeys(pids, 0.0)
    cpu0 = {pid: cpu_seconds(pid) for pid in pids}
    wall0 = time.monotonic()
    while time.monotonic() - wall0 < seconds:
        base, camera = rng.choice(targets)
        sent = time.perf_counter()
        client.publish(f"{base}/{camera}/ring/set", b"", qos=1)
        try:
            while True:
                seen, arrived = traffic.rings.get(timeout=5)
                if seen == camera:
                    latencies.append((arrived - sent) * 1000)
                    break
        except queue.Empty:
            lost += 1
        for pid in pids:
            peak[pid] = max(peak[pid], rss_mb(pid))
        time.sleep(0.25 + rng.random() * 0.1)
    time.sleep(8)  # the last presses' post-rolls end
    traffic.measuring = True
    clips_from = time.monotonic()
    while time.monotonic() - clips_from < 30:  # a loop and a half of the footage
        for pid in pids:
            peak[pid] = max(peak[pid], rss_mb(pid))
        time.sleep(1)
    traffic.measuring = False
    wall = time.monotonic() - wall0
    return {
        "cpu": {pid: (cpu_seconds(pid) - cpu0[pid]) / wall for pid in pids},
        "rss": peak,
        "latencies": latencies,
        "lost": lost,
    }


def run(cameras: int, bridges: int, url: str, server_pid: int, seconds: float) -> dict[str, Any]:
    """One configuration: ``bridges`` bridges sharing ``cameras`` cameras and one broker."""
    with contextlib.ExitStack() as stack:
        mqtt_port = stack.enter_context(mosquitto())
        bases = [f"doorstep{i + 1}" if bridges > 1 else "doorstep" for i in range(bridges)]
        names = [f"cam{i + 1:02d}" for i in range(cameras)]
        share = [names[i::bridges] for i in range(bridges)]
        processes = [
            stack.enter_context(bridge(bridge_config(mqtt_port, base, part, url)))
            for base, part in zip(bases, share, strict=True)
        ]
        client, traffic = stack.enter_context(clients(mqtt_port, bases))
        time.sleep(10)  # connect every camera, fill the pre-rolls
        targets = [(base, name) for base, part in zip(bases, share, strict=True) for name in part]
        pids = [p.pid for p in processes]
        result = press_and_measure(client, traffic, targets, seconds, [*pids, server_pid])
        alive = all(p.poll() is None for p in processes)
    return {
        "bridge_cpu": [result["cpu"][pid] for pid in pids],
        "bridge_rss": [result["rss"][pid] for pid in pids],
        "server_cpu": result["cpu"][server_pid],
        "latencies": result["latencies"],
        "lost": result["lost"],
        "clip_delays": traffic.clip_delays,
        "clip_cameras": len(traffic.clip_cameras),
        "alive": alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--bridges", type=int, default=2, help="also run this many bridges")
    parser.add_argument("--seconds", type=float, default=45.0)
    args = parser.parse_args()

    from tests.support.media import write_h264
    from tests.support.servers import SYSTEM_PYTHON, rtsp_available

    if why := rtsp_available():
        raise SystemExit(f"cannot run: {why}")
    with tempfile.TemporaryDirectory() as folder:
        media = Path(folder)
        print("encoding fixtures (1080p15 3 Mbit/s main, 640x360 0.5 Mbit/s sub)...", flush=True)
        common = {"fps": 15, "seconds": 20, "gop": 30, "motion": (8, 14), "preset": "veryfast",
                  "noise": 3}  # fmt: skip
        main_file = write_h264(media / "main.mp4", width=1920, height=1080, bitrate=3_000_000,
                               **common)  # fmt: skip
        sub_file = write_h264(media / "sub.mp4", width=640, height=360, bitrate=500_000,
                              **common)  # fmt: skip
        port = free_port()
        server = subprocess.Popen(
            [SYSTEM_PYTHON, str(ROOT / "tests/support/rtsp_server.py"), "--port", str(port),
             "--mount", f"/main={main_file.path}", "--mount", f"/sub={sub_file.path}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            while not server.stdout.readline().startswith("READY"):
                if server.poll() is not None:
                    raise SystemExit("the RTSP test server did not start")
            threading.Thread(target=server.stdout.read, daemon=True).start()
            url = f"rtsp://127.0.0.1:{port}"
            floor = decode_floor(url, 10.0)
            runs = [(n, 1) for n in args.cameras]
            if args.bridges > 1:
                runs.append((max(args.cameras), args.bridges))
            results = []
            for cameras, bridges in runs:
                print(f"running {cameras} cameras on {bridges} bridge(s)...", flush=True)
                results.append((cameras, bridges, run(cameras, bridges, url, server.pid,
                                                      args.seconds)))  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=10)

    print()
    print(f"floor: decoding one 640x360 detect stream = {floor * 100:.1f}% of a core")
    print(
        f"window: {args.seconds:.0f} s of presses every 0.25-0.35 s, then 38 s without;"
        " a walker crosses every camera every 20 s"
    )
    print()
    head = (f"{'cameras':>7} {'bridges':>7} {'CPU % core':>10} {'per cam/floor':>13} "
            f"{'RSS MB':>7} {'ring p50':>8} {'p99':>7} {'max':>7} {'lost':>4} "
            f"{'clip med':>8} {'max':>6} {'clips from':>10} {'cams srv CPU':>12}")  # fmt: skip
    print(head)
    for cameras, bridges, r in results:
        cpu = sum(r["bridge_cpu"])
        lat = r["latencies"] or [float("nan")]
        delays = r["clip_delays"] or [float("nan")]
        print(
            f"{cameras:>7} {bridges:>7} {cpu * 100:>9.0f}% {cpu / cameras / floor:>12.2f}x "
            f"{sum(r['bridge_rss']):>7.0f} {statistics.median(lat):>6.1f}ms "
            f"{percentile(lat, 99):>5.1f}ms {max(lat):>5.1f}ms {r['lost']:>4} "
            f"{statistics.median(delays):>7.2f}s {max(delays):>5.2f}s "
            f"{r['clip_cameras']:>4}/{cameras:<5} {r['server_cpu'] * 100:>11.0f}%"
            + ("" if r["alive"] else "  A BRIDGE DIED")
        )
    print()
    print("targets: 16 cameras on one bridge; ring p99 <= 10 ms; clip <= 1 s after its end")


if __name__ == "__main__":
    main()
