#!/usr/bin/python3
"""A local RTSP camera for tests and the demo: loops H.264 MP4 files without re-encoding.

Runs with Debian's own python3 (it has the GStreamer bindings, the venv does not)::

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --file main.mp4
    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 \
        --mount /main=main1080.mp4 --mount /sub=sub360.mp4

``--file X`` serves X at ``/stream``. Each file is demuxed once into memory; every
client gets its own media that starts at the first keyframe and loops forever,
paced in real time. Pictures are stamped as cameras stamp them: the RTP timestamp
is when the picture is shown, which goes back now and then in a file with
B-frames. ``--no-rate`` leaves ``a=framerate`` out of the session description. ``--jpeg /path`` adds a Motion-JPEG test pattern (a camera that
does not send H.264). ``--auth basic|digest --user U --password P`` asks clients
for credentials, as most cameras do. Prints ``READY rtsp://127.0.0.1:PORT`` once
listening.
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
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)


def load_access_units(path: str) -> tuple[list[tuple[bytes, int]], str, float]:
    """Demux an MP4 into H.264 byte-stream access units; returns (units, caps, fps).

    Each unit comes with how much later than it is sent it is shown (its presentation
    time minus its decoding time, in nanoseconds): 0 but for frames that B-frames
    reorder.
    """
    pipeline = Gst.parse_launch(
        f'filesrc location="{path}" ! qtdemux ! h264parse config-interval=-1 ! '
        "video/x-h264,stream-format=byte-stream,alignment=au ! "
        "appsink name=sink sync=false emit-signals=false"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    units: list[tuple[bytes, int]] = []
    caps = None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        caps = caps or sample.get_caps()
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            shown_later = 0
            if Gst.CLOCK_TIME_NONE not in (buffer.pts, buffer.dts):
                shown_later = max(0, buffer.pts - buffer.dts)
            units.append((bytes(info.data), shown_later))
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

    def __init__(
        self, units: list[tuple[bytes, int]], caps: str, fps: float, *, say_rate: bool = True
    ) -> None:
        super().__init__()
        self.units, self.caps, self.fps = units, caps, fps
        # The session description's a=framerate comes from the caps' frame rate (h264parse
        # reads it from the stream): a rate of 0/1 leaves it out, as many cameras do.
        unsaid = "" if say_rate else 'capssetter caps="video/x-h264,framerate=(fraction)0/1" ! '
        self.set_launch(
            "( appsrc name=src is-live=true format=time ! h264parse ! "
            f"{unsaid}rtph264pay name=pay0 pt=96 config-interval=-1 )"
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
            data, shown_later = self.units[index % len(self.units)]
            buffer = Gst.Buffer.new_wrapped(data)
            # Stamped as a camera stamps: decoded now, shown at its presentation time
            # (the RTP timestamp is the presentation time; B-frames go back in it).
            now = source.get_current_running_time()
            if now == Gst.CLOCK_TIME_NONE:
                now = 0  # queued before the media plays: its first picture
            buffer.dts = now
            buffer.pts = now + shown_later
            result = source.emit("push-buffer", buffer)
            if result != Gst.FlowReturn.OK:
                # FLUSHING happens around rtsp-media's prepare/seek: restart at the keyframe.
                time.sleep(0.05)
                started, index = time.monotonic(), 0
                continue
            index += 1
            delay = started + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)


class JpegFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    """A live Motion-JPEG test pattern (RTP payload type 26)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_launch(
            "( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=240,"
            "framerate=10/1 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
        )
        self.set_shared(False)


def require_auth(
    server: GstRtspServer.RTSPServer,
    factories: list[GstRtspServer.RTSPMediaFactory],
    method: str,
    user: str,
    password: str,
) -> None:
    """Only ``user`` with ``password`` may play, by Basic or Digest authentication."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    if method == "digest":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(user, password, token)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    role = Gst.Structure.from_string(
        "viewer,media.factory.access=(boolean)true,media.factory.construct=(boolean)true"
    )[0]
    for factory in factories:
        factory.add_role_from_structure(role)


def main() -> None:
    parser = argparse.ArgumentParser(description="Loop H.264 MP4 files over RTSP.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--file", help="serve this file at /stream")
    parser.add_argument("--mount", action="append", default=[], help="/path=file.mp4")
    parser.add_argument("--jpeg", action="append", default=[], help="/path for MJPEG")
    parser.add_argument("--auth", choices=("basic", "digest"))
    parser.add_argument("--no-rate", action="store_true", help="no a=framerate (as many cameras)")
    parser.add_argument("--user", default="viewer")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    mounts = list(args.mount)
    if args.file:
        mounts.append(f"/stream={args.file}")
    if not mounts and not args.jpeg:
        parser.error("give --file, --jpeg or at least one --mount")
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    points = server.get_mount_points()
    factories: list[GstRtspServer.RTSPMediaFactory] = []
    for mount in mounts:
        path, _, filename = mount.partition("=")
        factories.append(LoopFactory(*load_access_units(filename), say_rate=not args.no_rate))
        points.add_factory(path, factories[-1])
    for path in args.jpeg:
        factories.append(JpegFactory())
        points.add_factory(path, factories[-1])
    if args.auth:
        require_auth(server, factories, args.auth, args.user, args.password)
    server.attach(None)
    print(f"READY rtsp://{args.host}:{args.port}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
