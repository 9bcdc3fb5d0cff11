#!/usr/bin/python3
"""An RTSP camera for the benches: serves, live, the H.264 access units it reads on stdin.

Runs with Debian's own python3 (it has the GStreamer bindings, the venv does not)::

    producer | /usr/bin/python3 bench/rtsp_clock.py --port 8554 --width 1280 --height 720 --fps 15

The producer (``bench/live_browser.py``) encodes the demo camera with its frame clock and
writes each access unit as a 4-byte big-endian length, a flags byte (1 = keyframe) and
the H.264 byte stream. Every RTSP client gets the same live units from the next keyframe
on, timestamped as they arrive: what a real camera does, with a clock in the picture.
Prints ``READY rtsp://127.0.0.1:PORT/clock`` once listening. Ends when stdin ends.
"""

from __future__ import annotations

import argparse
import struct
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)

HEADER = struct.Struct(">IB")


class Clients:
    """The appsrc of every playing client, each waiting for a keyframe first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sources: dict[object, bool] = {}  # appsrc -> has started (seen a keyframe)

    def add(self, source: object) -> None:
        with self.lock:
            self.sources[source] = False

    def remove(self, source: object) -> None:
        with self.lock:
            self.sources.pop(source, None)

    def push(self, data: bytes, keyframe: bool) -> None:
        with self.lock:
            targets = []
            for source, started in self.sources.items():
                if started or keyframe:
                    self.sources[source] = True
                    targets.append(source)
        for source in targets:
            source.emit("push-buffer", Gst.Buffer.new_wrapped(data))


class LiveFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    """One media per client, fed with the live units."""

    def __init__(self, clients: Clients, caps: str) -> None:
        super().__init__()
        self.clients, self.caps = clients, caps
        self.set_launch(
            "( appsrc name=src is-live=true do-timestamp=true format=time ! h264parse ! "
            "rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        self.set_shared(False)
        self.connect("media-configure", self.on_configure)

    def on_configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        source = media.get_element().get_child_by_name("src")
        source.set_property("caps", Gst.Caps.from_string(self.caps))
        self.clients.add(source)
        media.connect("unprepared", lambda *_: self.clients.remove(source))


def read_units(clients: Clients, loop: GLib.MainLoop) -> None:
    """Forward stdin's access units to the clients; quit when stdin ends."""
    stream = sys.stdin.buffer
    while True:
        header = stream.read(HEADER.size)
        if len(header) < HEADER.size:
            break
        size, flags = HEADER.unpack(header)
        data = stream.read(size)
        if len(data) < size:
            break
        clients.push(data, bool(flags & 1))
    loop.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve live H.264 from stdin over RTSP.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--fps", type=int, required=True)
    args = parser.parse_args()
    caps = (
        "video/x-h264,stream-format=byte-stream,alignment=au,"
        f"width={args.width},height={args.height},framerate={args.fps}/1"
    )
    clients = Clients()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory("/clock", LiveFactory(clients, caps))
    server.attach(None)
    loop = GLib.MainLoop()
    threading.Thread(target=read_units, args=(clients, loop), daemon=True).start()
    print(f"READY rtsp://127.0.0.1:{args.port}/clock", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
