#!/usr/bin/env python3
# ruff: noqa: PLC0415 - workers import only what they measure (RSS figures depend on it)
"""Camera pipeline cost: bridge CPU per camera as a ratio to decoding its detect stream.

One 1080p15 H.264 camera served over RTSP (the project's GStreamer test server):
the bridge detects motion on a 640x360 substream and records the main stream.
Measured in the same run, side by side:

  decode   a process that only decodes the 640x360 detect stream (the floor), read
           with FFmpeg's RTSP demuxer as PyAV opens it
  decode*  the same read with the bridge's own RTSP client (for reference: how much of
           the difference is reading rather than the rest of the pipeline)
  idle     the camera pipeline (CameraManager), watching: detect + motion core + the
           pre-roll buffer, no clip being written (nothing moves in its motion zone)
  bridge   the same, recording by stream copy the whole time
  m-idle   idle with a privacy mask
  m-rec    recording the whole time with a privacy mask (decode, mask, libx264)
  memory   RSS of a bridge process with 2 cameras recording and a 5 s pre-roll

and the delay from the end of a clip's post-roll to the published clip, for an
unmasked and a masked camera (a 2 s clip after a full 5 s pre-roll), with how much
pre-roll each clip holds.

Targets: bridge ≤ 1.3x decode; masked idle ≤ 1.5x decode; clip published ≤ 1 s
after its post-roll; RSS < 150 MB with 2 cameras.

    .venv/bin/python bench/pipeline.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
import json
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _timed_decode(frames: Iterator[Any], seconds: float) -> dict[str, Any]:
    """CPU and wall time of taking ``frames`` for ``seconds``, after 15 frames to settle."""
    count = 0
    started: tuple[float, float] | None = None
    for frame in frames:
        frame.planes[0]  # the luma plane, as the pipeline reads it
        count += 1
        if started is None and count >= 15:
            started = (time.monotonic(), time.process_time())
        if started is not None and time.monotonic() - started[0] >= seconds:
            break
    assert started is not None
    wall = time.monotonic() - started[0]
    cpu = time.process_time() - started[1]
    return {"cpu": cpu, "wall": wall, "frames": count, "rss_mb": rss_mb()}


def worker_decode(url: str, seconds: float) -> dict[str, Any]:
    """The floor: decode the detect stream, read with FFmpeg's RTSP demuxer."""
    import av

    from doorstep_bridge.camera.sources import RTSP_OPTIONS

    with av.open(url, options=dict(RTSP_OPTIONS)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        frames = (f for packet in container.demux(stream) for f in packet.decode())
        return _timed_decode(frames, seconds)


def worker_decode_own(url: str, seconds: float) -> dict[str, Any]:
    """The floor again, read with the bridge's RTSP client instead of FFmpeg's."""
    import threading

    import av

    from doorstep_bridge.camera.pipeline import open_source

    decoder = av.CodecContext.create("h264", "r")
    decoder.thread_count = 1
    stop = threading.Event()
    packets = open_source(url).packets(stop)
    frames = (f for packet in packets for f in decoder.decode(av.Packet(packet.data)))
    try:
        return _timed_decode(frames, seconds)
    finally:
        stop.set()
        packets.close()


async def _bridge(
    cameras: dict[str, Any], seconds: float, storage: str, *, record: bool
) -> dict[str, Any]:
    from doorstep_bridge.camera.manager import CameraManager
    from doorstep_bridge.config import parse_config
    from doorstep_bridge.events import ClipFinished, EventBus
    from doorstep_bridge.recording.store import ClipStore

    config = parse_config({"storage": {"path": storage}, "cameras": cameras})
    store = ClipStore(config.storage.path)
    store.open()
    bus = EventBus()
    clips: list[Any] = []
    bus.subscribe(ClipFinished, clips.append)
    manager = CameraManager(config.cameras, config.storage, bus, store, lambda _: None)
    await manager.start()
    await asyncio.sleep(3.0)  # connect, fill the pre-roll
    if record:
        for name in cameras:
            manager.record(name, seconds + 30)  # record all the time while measuring
    await asyncio.sleep(1.0)
    wall0, cpu0 = time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    rss = rss_mb()
    online = all(manager.status(name).online for name in cameras)
    recording = all(manager.status(name).recording_clip for name in cameras)
    await manager.stop()
    usage = store.usage()
    store.close()
    return {
        "cpu": cpu,
        "wall": wall,
        "rss_mb": rss,
        "online": online,
        "recording": recording,
        "clips": len(clips),
        "bytes": usage[0],
    }


async def _latency(cameras: dict[str, Any], storage: str) -> dict[str, Any]:
    """Seconds from the end of a clip's post-roll to its ClipFinished event, three times.

    Each clip is a 2 s "record now" after a full 5 s pre-roll: the shortest clip
    there is, so a masked camera has the least time to work off its pre-roll.
    """
    from doorstep_bridge.camera.manager import CameraManager
    from doorstep_bridge.config import parse_config
    from doorstep_bridge.events import ClipFinished, EventBus
    from doorstep_bridge.recording.store import ClipStore

    config = parse_config({"storage": {"path": storage}, "cameras": cameras})
    store = ClipStore(config.storage.path)
    store.open()
    bus = EventBus()
    finished: asyncio.Queue[tuple[float, ClipFinished]] = asyncio.Queue()
    bus.subscribe(ClipFinished, lambda event: finished.put_nowait((time.monotonic(), event)))
    manager = CameraManager(config.cameras, config.storage, bus, store, lambda _: None)
    await manager.start()
    await asyncio.sleep(6.0)  # connect, fill the 5 s pre-roll
    name = next(iter(cameras))
    manager.set_switch(name, "motion_detection", on=False)  # only our clips
    latencies, pre_rolls = [], []
    for _ in range(3):
        started, wall = time.monotonic(), time.time()
        manager.record(name, 2.0)
        done, event = await asyncio.wait_for(finished.get(), 30)
        latencies.append(done - (started + 2.0))
        pre_rolls.append(wall - event.clip.start.timestamp())
        await asyncio.sleep(0.5)
    await manager.stop()
    store.close()
    return {"latencies": latencies, "pre_rolls": pre_rolls}


def worker_bridge(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as storage:
        if spec.get("latency"):
            return asyncio.run(_latency(spec["cameras"], storage))
        return asyncio.run(
            _bridge(spec["cameras"], spec["seconds"], storage, record=spec.get("record", True))
        )


def run_worker(args: list[str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def camera(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": f"{url}/main",
        "detect_source": f"{url}/sub",
        "record": {"pre_roll": 5.0, "post_roll": 5.0, "max_length": 3600},
        **extra,
    }


#: A privacy mask over the top-left of the 1080p picture (800x500 pixels).
MASK = [[0, 0], [800, 0], [800, 500], [0, 500]]
#: A motion zone (detect-stream pixels) where the fixture's walker never goes: the
#: idle runs detect motion on every frame as usual, but no clip starts.
QUIET_ZONE = {"corner": [[0, 0], [120, 0], [120, 60], [0, 60]]}


def bridge_run(cameras: dict[str, Any], seconds: float, *, record: bool = True) -> dict[str, Any]:
    spec = {"cameras": cameras, "seconds": seconds, "record": record}
    return run_worker(["bridge", json.dumps(spec)])


def measure(url: str, seconds: float) -> dict[str, dict[str, Any]]:
    """Every run of the table, one after the other against the same RTSP server."""
    idle = camera(url, motion={"zones": QUIET_ZONE})
    idle_masked = camera(url, motion={"zones": QUIET_ZONE}, privacy_masks=[MASK])
    masked = camera(url, privacy_masks=[MASK])
    two = {"front_door": camera(url), "back_door": camera(url)}
    latency = {"cameras": {"front_door": camera(url)}, "latency": True}
    latency_masked = {"cameras": {"front_door": masked}, "latency": True}
    return {
        "decode": run_worker(["decode", f"{url}/sub", str(seconds)]),
        "decode*": run_worker(["decode_own", f"{url}/sub", str(seconds)]),
        "idle": bridge_run({"front_door": idle}, seconds, record=False),
        "bridge": bridge_run({"front_door": camera(url)}, seconds),
        "m-idle": bridge_run({"front_door": idle_masked}, seconds, record=False),
        "m-rec": bridge_run({"front_door": masked}, seconds),
        "memory": bridge_run(two, min(seconds, 10.0)),
        "latency": run_worker(["bridge", json.dumps(latency)]),
        "latency_masked": run_worker(["bridge", json.dumps(latency_masked)]),
    }


NOTES = {
    "decode": "the floor: decode the detect stream",
    "decode*": "the same, read with the bridge's RTSP client (for reference)",
    "idle": "bridge, no clip being written",
    "bridge": "bridge, recording by copy the whole time",
    "m-idle": "privacy mask, no clip being written",
    "m-rec": "privacy mask, recording (decode + mask + libx264) the whole time",
    "memory": "two cameras recording by copy, 5 s pre-roll",
}


def report(results: dict[str, dict[str, Any]]) -> None:
    floor = results["decode"]["cpu"] / results["decode"]["wall"]
    print()
    print(f"{'run':8} {'CPU % of a core':>16} {'ratio to decode':>16} {'RSS MB':>8}  notes")
    for name, note in NOTES.items():
        r = results[name]
        share = r["cpu"] / r["wall"]
        notes = note
        if "online" in r:
            notes += (
                f" (online={r['online']} recording={r['recording']} clips={r['clips']}"
                f" recorded={r['bytes'] / 1e6:.1f} MB)"
            )
        print(f"{name:8} {share * 100:15.1f}% {share / floor:15.2f}x {r['rss_mb']:8.0f}  {notes}")

    def ratio(name: str) -> float:
        return float(results[name]["cpu"] / results[name]["wall"] / floor)

    print()
    print(f"bridge / decode = {ratio('bridge'):.2f}x (target <= 1.3x)")
    print(f"masked idle / decode = {ratio('m-idle'):.2f}x (target <= 1.5x)")
    print(f"masked recording / decode = {ratio('m-rec'):.2f}x (paid only while a clip is written)")
    print(f"RSS with 2 cameras, 5 s pre-roll = {results['memory']['rss_mb']:.0f} MB (target < 150)")
    for name in ("latency", "latency_masked"):
        values = ", ".join(f"{v:.2f}" for v in results[name]["latencies"])
        pre = ", ".join(f"{v:.1f}" for v in results[name]["pre_rolls"])
        print(
            f"post-roll end -> clip published ({name}): {values} s (target <= 1 s);"
            f" pre-roll in the clip: {pre} s (configured 5 s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind = args.worker[0]
        if kind == "decode":
            result = worker_decode(args.worker[1], float(args.worker[2]))
        elif kind == "decode_own":
            result = worker_decode_own(args.worker[1], float(args.worker[2]))
        else:
            result = worker_bridge(json.loads(args.worker[1]))
        print(json.dumps(result))
        return

    from tests.support.media import write_h264
    from tests.support.servers import rtsp_available, rtsp_server

    why = rtsp_available()
    if why:
        raise SystemExit(f"cannot run: {why}")
    with tempfile.TemporaryDirectory() as folder:
        media = Path(folder)
        # Like a camera: constant bitrate (3 Mbit/s main, 0.5 Mbit/s sub), 2 s GOP, and
        # sensor noise so that the picture is never perfectly still.
        print("encoding fixtures (1080p15 3 Mbit/s main, 640x360 0.5 Mbit/s sub)...", flush=True)
        main_file = write_h264(
            media / "main.mp4",
            width=1920,
            height=1080,
            fps=15,
            seconds=20,
            gop=30,
            motion=(8, 14),
            preset="veryfast",
            noise=3,
            bitrate=3_000_000,
        )
        sub_file = write_h264(
            media / "sub.mp4",
            width=640,
            height=360,
            fps=15,
            seconds=20,
            gop=30,
            motion=(8, 14),
            preset="veryfast",
            noise=3,
            bitrate=500_000,
        )
        seconds = args.seconds
        with rtsp_server({"/main": main_file.path, "/sub": sub_file.path}) as url:
            results = measure(url, seconds)
    report(results)


if __name__ == "__main__":
    main()
