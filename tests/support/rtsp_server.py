#!/usr/bin/python3
"""A local RTSP camera for tests and the demo: loops H.264 MP4 files without re-encoding.

Runs with Debian's own python3 (it has the GStreamer bindings, the venv does not)::

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --file main.mp4
    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 \
        --mount /main=main1080.mp4 --mount /sub=sub360.mp4

``--file X`` serves X at ``/stream``. Each file is demuxed once into memory; every
client gets its own media that starts at the first keyframe and loops forever,
paced in real time. Prints ``READY rtsp://127.0.0.1:PORT`` once listening.
Requires: python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,bad}.
"""

from __future__ import annotations

import argparse
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)


def load_access_units(path: str) -> tuple[list[bytes], str, float]:
    """Demux an MP4 into H.264 byte-stream access units; returns (units, caps, fps)."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{path}" ! qtdemux ! h264parse config-interval=-1 ! '
        "video/x-h264,stream-format=byte-stream,alignment=au ! "
        "appsink name=sink sync=false emit-signals=false"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    units: list[bytes] = []
    caps = None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        caps = caps or sample.get_caps()
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            units.append(bytes(info.data))
            buffer.unmap(info)
    pipeline.set_state(Gst.State.NULL)
    if caps is None or not units:
        raise SystemExit(f"{path}: no H.264 video found")
    structure = caps.get_structure(0)
    ok, num, den = structure.get_fraction("framerate")
    fps = num / den if ok and num else 15.0
    caps_str = (
        "video/x-h264,stream-format=byte-stream,alignment=au,"
        f"width={structure.get_value('width')},height={structure.get_value('height')},"
        f"framerate={num}/{den}"
    )
    return units, caps_str, fps


class LoopFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    """One looping media per client, fed from memory."""

    def __init__(self, units: list[bytes], caps: str, fps: float) -> None:
        super().__init__()
        self.units, self.caps, self.fps = units, caps, fps
        self.set_launch(
            "( appsrc name=src is-live=true do-timestamp=true format=time ! h264parse ! "
            "rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        self.set_shared(False)
        self.connect("media-configure", self.on_configure)

    def on_configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        source = media.get_element().get_child_by_name("src")
        source.set_property("caps", Gst.Caps.from_string(self.caps))
        stop = threading.Event()
        media.connect("unprepared", lambda *_: stop.set())
        threading.Thread(target=self.pump, args=(source, stop), daemon=True).start()

    def pump(self, source: object, stop: threading.Event) -> None:
        period = 1.0 / self.fps
        started, index = time.monotonic(), 0
        while not stop.is_set():
            data = self.units[index % len(self.units)]
            result = source.emit("push-buffer", Gst.Buffer.new_wrapped(data))
            if result != Gst.FlowReturn.OK:
                # FLUSHING happens around rtsp-media's prepare/seek: restart at the keyframe.
                time.sleep(0.05)
                started, index = time.monotonic(), 0
                continue
            index += 1
            delay = started + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def main() -> None:
    parser = argparse.ArgumentParser(description="Loop H.264 MP4 files over RTSP.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--file", help="serve this file at /stream")
    parser.add_argument("--mount", action="append", default=[], help="/path=file.mp4")
    args = parser.parse_args()
    mounts = list(args.mount)
    if args.file:
        mounts.append(f"/stream={args.file}")
    if not mounts:
        parser.error("give --file or at least one --mount")
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    points = server.get_mount_points()
    for mount in mounts:
        path, _, filename = mount.partition("=")
        points.add_factory(path, LoopFactory(*load_access_units(filename)))
    server.attach(None)
    print(f"READY rtsp://{args.host}:{args.port}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
