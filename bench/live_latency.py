"""Live view: glass-to-glass latency, CPU and memory per viewer, ring latency while watched.

Run: ``.venv/bin/python bench/live_latency.py`` (about 3 minutes on 2 cores).

1. Latency. The demo camera (``clock=1``) draws the time into every frame as a
   strip of blocks; the client decodes each JPEG it receives and subtracts that
   time from the arrival time. Paths, side by side:
   (a) the bridge's MJPEG straight, (b) the same relayed by Home Assistant's own
   relay function (``homeassistant.helpers.aiohttp_client.async_aiohttp_proxy_stream``,
   what ``camera_proxy_stream`` runs for a Doorstep camera) in a small aiohttp
   server, so the proxy's overhead is measured without starting Home Assistant.
   Both include the demo's H.264 encode and the bridge's decode, mask and JPEG
   encode: the latency a camera adds before its first byte is not included.
2. CPU of a live stream at 360p (a detect stream), 720p and 1080p (15 fps H.264 with sensor noise,
   10 fps out), masked and unmasked, with 1 and 4 viewers, as a ratio to decoding
   that stream once (the floor every camera pays for motion detection).
3. Memory: the bridge's RSS with 1 and with 16 MJPEG clients, 8 of them not reading.
4. Ring latency (bench/ring_latency.py's method) while two viewers watch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
import resource
import statistics
import sys
import tempfile
import threading
import time
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
import av

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bridge")]

from _support import bridge, free_port, mosquitto, percentile  # noqa: E402
from ring_latency import BUTTON, RING, measure  # noqa: E402
from tests.support.media import write_h264  # noqa: E402
from tests.support.mjpeg_client import decode_jpeg, mjpeg_parts  # noqa: E402

from doorstep_bridge.camera.demo import clock_age_ms, read_clock  # noqa: E402
from doorstep_bridge.camera.sources import AvSource  # noqa: E402
from doorstep_bridge.config import parse_config  # noqa: E402
from doorstep_bridge.live.stream import LiveStream  # noqa: E402

TARGET_P95_MS = 500.0
DEMO = "demo://?period=600&fps=15&width=1280&height=720&clock=1"


async def latencies(url: str, headers: dict[str, str], frames: int) -> list[float]:
    """Milliseconds from the frame clock to arrival, for ``frames`` received JPEGs."""
    samples: list[float] = []
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        assert response.status == 200, response.status
        async for jpeg in mjpeg_parts(response):
            arrived = time.time()
            drawn = read_clock(decode_jpeg(jpeg))
            if drawn is not None:
                samples.append(float(clock_age_ms(drawn, arrived)))
            if len(samples) >= frames:
                return samples
    return samples


async def ha_relay(upstream: str, headers: dict[str, str]) -> tuple[web.AppRunner, str]:
    """A server relaying the bridge's MJPEG with Home Assistant's own proxy function."""
    from homeassistant.helpers.aiohttp_client import async_aiohttp_proxy_stream  # noqa: PLC0415 - only this part needs Home Assistant

    session = aiohttp.ClientSession()
    hass = SimpleNamespace(is_running=True)  # all the function reads of Home Assistant

    async def relay(request: web.Request) -> web.StreamResponse:
        async with session.get(upstream, headers=headers) as response:
            return await async_aiohttp_proxy_stream(
                hass,  # type: ignore[arg-type]
                request,
                response.content,
                response.headers.get("Content-Type"),
            )

    async def close_session(_app: web.Application) -> None:
        await session.close()

    app = web.Application()
    app.router.add_get("/stream", relay)
    app.on_cleanup.append(close_session)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/stream"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def memory_per_viewer(url: str, headers: dict[str, str], pid: int) -> tuple[int, int]:
    """(RSS with one reading client, RSS with 16 clients of which 8 never read), KiB."""
    async with aiohttp.ClientSession() as session:
        first = await session.get(url, headers=headers)
        parts = mjpeg_parts(first)
        for _ in range(30):
            await anext(parts)
        one = rss_kib(pid)
        others = [await session.get(url, headers=headers) for _ in range(15)]
        readers = [mjpeg_parts(r) for r in others[:7]]
        for _ in range(60):  # 4 s at 15 fps: the 8 stalled clients' buffers fill up
            await anext(parts)
            for reader in readers:
                await anext(reader)
        many = rss_kib(pid)
        for response in [first, *others]:
            response.close()
    return one, many


def report(name: str, samples: list[float]) -> float:
    p95 = percentile(samples, 95)
    print(
        f"  {name:<40} p50 {statistics.median(samples):6.0f} ms   p95 {p95:6.0f} ms"
        f"   max {max(samples):6.0f} ms   (n={len(samples)})"
    )
    return p95


async def bridge_figures(frames: int, presses: int) -> None:
    with mosquitto() as mqtt_port:
        http_port = free_port()
        token = "bench-live-token-0123456789"
        config = {
            "mqtt": {"port": mqtt_port},
            "http": {"port": http_port, "token": token},
            "cameras": {
                "front_door": {
                    "source": DEMO,
                    "doorbell": {"topic": BUTTON, "payload": {"action": "single"}, "debounce": 0},
                    "privacy_masks": [[[0, 0], [320, 0], [320, 180], [0, 180]]],
                    "live": {"fps": 15, "max_viewers": 32, "linger": 0},
                }
            },
        }
        with bridge(config) as process:
            url = f"http://127.0.0.1:{http_port}/api/cameras/front_door/live.mjpeg"
            auth = {"Authorization": f"Bearer {token}"}
            await asyncio.sleep(2.0)  # the camera comes online
            await latencies(url, auth, 15)  # warm-up: the source opens
            print(f"Glass-to-glass latency, demo camera 1280x720 15 fps, masked, {frames} frames:")
            direct = report("(a) bridge MJPEG", await latencies(url, auth, frames))
            runner, relay_url = await ha_relay(url, auth)
            try:
                relayed = report(
                    "(b) through HA's camera proxy relay", await latencies(relay_url, {}, frames)
                )
            finally:
                await runner.cleanup()
            for name, p95 in (("(a)", direct), ("(b)", relayed)):
                verdict = "meets" if p95 <= TARGET_P95_MS else "MISSES"
                print(f"  {name} p95 {p95:.0f} ms {verdict} the {TARGET_P95_MS:.0f} ms target")

            one, many = await memory_per_viewer(url, auth, process.pid)
            print(
                f"Memory: bridge RSS {one / 1024:.0f} MiB with 1 viewer, {many / 1024:.0f} MiB "
                f"with 16 (8 stalled): {(many - one) / 15:.0f} KiB per extra viewer"
            )

            stop = asyncio.Event()

            async def watch() -> None:
                async with aiohttp.ClientSession() as session, session.get(url, headers=auth) as r:
                    async for _jpeg in mjpeg_parts(r):
                        if stop.is_set():
                            return

            watchers = [asyncio.create_task(watch()) for _ in range(2)]
            await asyncio.sleep(1.0)
            measure(mqtt_port, 5, BUTTON, RING)  # warm-up
            rings = await asyncio.to_thread(measure, mqtt_port, presses, BUTTON, RING)
            stop.set()
            await asyncio.gather(*watchers, return_exceptions=True)
            print(
                f"Ring latency while 2 viewers watch: p50 {statistics.median(rings):.2f} ms"
                f"   p99 {percentile(rings, 99):.2f} ms   (n={len(rings)})"
            )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def decode_once_cpu(path: Path, seconds: float) -> float:
    """Share of a core spent reading and decoding the file once, in real time."""
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    decoder: Any = None
    start = cpu_seconds()
    timer.start()
    for packet in AvSource(str(path)).packets(stop):
        if decoder is None:
            decoder = av.CodecContext.create(packet.stream.codec, "r")
            decoder.thread_count = 1
        for frame in decoder.decode(av.Packet(packet.data)):
            frame.to_ndarray(format="bgr24")  # what any use of a frame costs
    return (cpu_seconds() - start) / seconds


async def live_cpu(
    path: Path, size: tuple[int, int], masked: bool, viewers: int, seconds: float
) -> float:
    """Share of a core spent by a live stream of the file with ``viewers`` reading it."""
    camera: dict[str, Any] = {"source": str(path), "live": {"linger": 0, "source": "main"}}
    if masked:
        half_w, half_h = size[0] // 2, size[1] // 2  # a quarter of the picture
        camera["privacy_masks"] = [[[0, 0], [half_w, 0], [half_w, half_h], [0, half_h]]]
    settings = parse_config({"cameras": {"cam": camera}}, Path("/tmp")).cameras["cam"]
    stream = LiveStream(settings)
    watchers = [stream.join() for _ in range(viewers)]
    await watchers[0].next_frame()
    start = cpu_seconds()
    deadline = time.monotonic() + seconds

    async def read(viewer: Any) -> None:
        while time.monotonic() < deadline:
            await viewer.next_frame()

    await asyncio.gather(*(read(v) for v in watchers))
    used = (cpu_seconds() - start) / seconds
    for viewer in watchers:
        viewer.close()
    await stream.close()
    return used


async def cpu_figures(seconds: float) -> None:
    print(f"CPU (share of one core, {seconds:.0f} s each; H.264 15 fps in, JPEG 10 fps out):")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((640, 360), (1280, 720), (1920, 1080)):
            footage = write_h264(
                Path(tmp) / f"{height}.mp4", width=width, height=height, fps=15, seconds=10,
                motion=(2.0, 8.0), noise=4.0,
            )  # fmt: skip
            base = decode_once_cpu(footage.path, seconds)
            print(f"  {height}p decode once (the floor):        {base * 100:5.1f} %")
            for masked in (False, True):
                for viewers in (1, 4):
                    used = await live_cpu(footage.path, (width, height), masked, viewers, seconds)
                    label = (
                        f"{height}p live, {'masked' if masked else 'unmasked'}, {viewers} viewer(s)"
                    )
                    print(f"  {label:<40} {used * 100:5.1f} %   {used / base:4.1f}x decode")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--cpu-seconds", type=float, default=8.0)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")
    asyncio.run(bridge_figures(args.frames, args.presses))
    asyncio.run(cpu_figures(args.cpu_seconds))


if __name__ == "__main__":
    main()
