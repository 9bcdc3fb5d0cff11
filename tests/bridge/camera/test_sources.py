"""Camera sources: RTSP, MJPEG, files and the demo deliver clean, whole, keyframe-first packets."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
import itertools
from pathlib import Path
import threading

import av
import pytest

from doorstep_bridge.camera.demo import DemoOptions, DemoSource
from doorstep_bridge.camera.rtsp import RtspSource
from doorstep_bridge.camera.sources import (
    CLOCK_SETTLE,
    AccessUnits,
    AvSource,
    PacketClock,
    Unit,
)
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.urls import redact_url
from tests.bridge.conftest import free_port
from tests.support.media import Footage, encode_annexb, write_mjpeg_frames
from tests.support.servers import mjpeg_server, refusing_http_server, rtsp_server


def take(source: object, count: int) -> list[EncodedPacket]:
    stop = threading.Event()
    packets: list[EncodedPacket] = []
    stream = source.packets(stop)  # type: ignore[attr-defined]
    for packet in stream:
        packets.append(packet)
        if len(packets) == count:
            break
    stop.set()
    stream.close()
    return packets


def decode_each(packets: list[EncodedPacket]) -> list[int]:
    """How many frames each packet decodes to (a whole access unit gives exactly one)."""
    decoder = av.CodecContext.create(packets[0].stream.codec, "r")
    return [len(decoder.decode(av.Packet(packet.data))) for packet in packets]


def test_clock_repairs_missing_timestamps_and_stays_monotonic() -> None:
    clock = PacketClock(Fraction(1, 90000), 15.0, now=lambda: 1000.0)
    stamped = [
        clock.stamp(None, None),  # the first IDR after connecting, no pts (media.md)
        clock.stamp(6000, None),
        clock.stamp(12000, 12000),
    ]
    clock.restart()  # a looping file starts over at 0
    stamped += [clock.stamp(0, 0), clock.stamp(6000, 6000)]
    pts = [p for p, _, _ in stamped]
    assert pts == sorted(set(pts))
    assert pts[3] == pts[2] + 6000
    assert all(dts <= p for p, dts, _ in stamped)


@pytest.mark.parametrize(
    "timestamps",
    [[0] * 6, [90000, 96000, 102000, 0, 6000, 12000]],
    ids=["repeated", "set back"],
)
def test_timestamps_that_do_not_move_on_go_on_a_frame_at_a_time(timestamps: list[int]) -> None:
    # Moved on by one tick each, the frames of a camera that repeats its timestamp fell
    # within microseconds: its clips played about 6000 times too fast (15 fps, 1/90000 s).
    now = 1000.0
    clock = PacketClock(Fraction(1, 90000), 15.0, now=lambda: now)
    stamped = []
    for ticks in timestamps:
        stamped.append(clock.stamp(ticks, ticks))
        now += 1 / 15
    steps = [b[0] - a[0] for a, b in itertools.pairwise(stamped)]
    assert all(step == 6000 for step in steps), steps  # a frame, as they were captured
    walls = [wall for _, _, wall in stamped]
    assert walls[-1] - walls[0] == pytest.approx(5 / 15, abs=1e-6)


@pytest.mark.parametrize("step", [3 * 3600.0, -3600.0], ids=["set forward", "set back"])
def test_frames_timed_on_arrival_go_on_evenly_when_the_wall_clock_steps(step: float) -> None:
    # MJPEG has no timestamps of its own. Timed by the wall clock, NTP setting it forward
    # put a gap of hours into a clip, and a clock set back left every later frame of the
    # run a nominal frame apart, however fast the camera really sent them.
    wall, steady = 1_000_000.0, 50.0
    clock = PacketClock(
        Fraction(1, 90000), 25.0, now=lambda: wall, arrival=True, steady=lambda: steady
    )
    stamped = []
    for index in range(20):
        if index == 10:
            wall += step  # NTP sets the clock between two frames
        stamped.append(clock.stamp(None, None))
        wall, steady = wall + 0.1, steady + 0.1  # a 10 fps camera
    steps = [b[0] - a[0] for a, b in itertools.pairwise(stamped)]
    assert steps == [9000] * 19  # a tenth of a second each, across the step too
    # Capture times follow the step at once, as an RTSP camera's do (the clip index and
    # retention follow it from there).
    walls = [wall for _, _, wall in stamped]
    assert walls[9] == pytest.approx(1_000_000.9)
    assert walls[10] == pytest.approx(1_000_001.0 + step)
    assert walls[-1] - walls[10] == pytest.approx(0.9)


class Arrivals:
    """Packets of a 15 fps camera as a reader gets them, on a simulated clock."""

    def __init__(self, ppm: float = 0.0) -> None:
        self.now = 1_000_000.0
        self.clock = PacketClock(Fraction(1, 90000), 15.0, now=lambda: self.now)
        self.rate = 1.0 + ppm / 1e6  # the camera's clock against ours
        self.captured = self.now

    def read(self, frames: int, late: Callable[[int], float] = lambda _: 0.0) -> list[float]:
        """Read ``frames`` frames, frame i arriving ``late(i)`` after its capture.

        Returns how much later than its capture estimate each frame arrived.
        """
        lateness = []
        for index in range(frames):
            ticks = round((self.captured - 1_000_000.0) * self.rate * 90000)
            self.now = self.captured + late(index)
            _, _, wall = self.clock.stamp(ticks, ticks)
            lateness.append(self.now - wall)
            self.captured += 1 / 15
        return lateness


@pytest.mark.parametrize("ppm", [-300.0, 300.0], ids=["slow", "fast"])
def test_a_camera_clock_that_drifts_stays_close_to_ours(ppm: float) -> None:
    # 300 ppm: a second every hour. Left alone, the estimate would end up two seconds
    # off, and a live view skips frames it takes for more than a second old.
    arrivals = Arrivals(ppm)
    lateness = arrivals.read(4 * 3600 * 15, late=lambda i: 0.02 * (i % 3))
    assert max(abs(value) for value in lateness) < CLOCK_SETTLE + 0.05


def test_a_reader_that_stalls_sees_its_packets_as_late() -> None:
    # A live view that fell behind must see it to skip ahead: a stall moves no estimate.
    arrivals = Arrivals(-300.0)
    arrivals.read(15 * 600)
    stall = arrivals.read(23, late=lambda i: 1.5 - i / 15)  # 1.5 s behind, then caught up
    after = arrivals.read(15 * 60)
    assert stall[0] > 1.4
    assert max(abs(value) for value in after) < CLOCK_SETTLE + 0.05


def test_an_estimate_anchored_on_a_late_first_packet_is_corrected() -> None:
    # The first packet after connecting came 0.8 s late; the rest are prompt.
    arrivals = Arrivals()
    lateness = arrivals.read(15 * 60, late=lambda i: 0.8 if i == 0 else 0.0)
    assert all(abs(value) < 0.01 for value in lateness[1:])


def test_split_pictures_are_joined_into_access_units() -> None:
    sps = b"\x00\x00\x00\x01\x67\x42"
    idr_first = b"\x00\x00\x00\x01\x65\x88\x01"  # first_mb_in_slice = 0 (top bit set)
    idr_next = b"\x00\x00\x00\x01\x65\x40\x02"  # a later slice of the same picture
    p_frame = b"\x00\x00\x00\x01\x41\x9a\x03"
    joiner = AccessUnits()
    out = joiner.push(Unit(sps + idr_first, None, None, keyframe=True))
    out += joiner.push(Unit(sps + idr_next, 0, 0, keyframe=True))
    out += joiner.push(Unit(p_frame, 6000, 6000, keyframe=False))
    assert len(out) == 1
    assert out[0].data == sps + idr_first + sps + idr_next
    assert out[0].pts == 0  # taken from the part that had it
    assert out[0].keyframe


def test_file_source_loops_like_a_camera(footage_file: Footage) -> None:
    frames = round(footage_file.seconds * footage_file.fps)
    source = AvSource(str(footage_file.path), realtime=False)
    packets = take(source, frames * 2 + 5)
    assert packets[0].keyframe
    pts = [p.pts for p in packets]
    assert pts == sorted(set(pts))  # monotonic across the loop
    assert sum(p.keyframe for p in packets) == 2 * frames // footage_file.gop + 1
    assert packets[0].stream.width == 320


def test_a_percent_encoded_file_url_opens_the_file(footage_file: Footage, tmp_path: Path) -> None:
    spaced = tmp_path / "front door.mp4"
    spaced.write_bytes(footage_file.path.read_bytes())
    packets = take(AvSource(spaced.as_uri(), realtime=False), 3)  # file:///.../front%20door.mp4
    assert packets[0].keyframe
    assert packets[0].stream.width == 320


def test_missing_file_is_a_camera_error(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="no such file"):
        take(AvSource(str(tmp_path / "nope.mp4")), 1)


def test_rtsp_source_gives_whole_pictures_from_a_keyframe(rtsp_ok: None, porch: Footage) -> None:
    with rtsp_server({"/main": porch.path}) as url:
        packets = take(AvSource(f"{url}/main"), 40)
    assert packets[0].keyframe
    assert packets[0].stream.codec == "h264"
    assert (packets[0].stream.width, packets[0].stream.height) == (640, 360)
    assert decode_each(packets) == [1] * 40
    pts = [p.pts for p in packets]
    assert pts == sorted(set(pts))


def test_rtsp_credentials_never_appear_in_errors() -> None:
    source = AvSource("rtsp://admin:hunter2secret@127.0.0.1:9/stream")
    with pytest.raises(CameraError) as caught:
        take(source, 1)
    assert "hunter2secret" not in str(caught.value)
    assert "hunter2secret" not in source.description


def test_mjpeg_source(tmp_path: Path) -> None:
    for index, jpeg in enumerate(write_mjpeg_frames(10, 320, 240)):
        (tmp_path / f"{index:03d}.jpg").write_bytes(jpeg)
    with mjpeg_server(tmp_path, fps=20) as url:
        packets = take(AvSource(url), 8)
    assert all(p.keyframe and p.stream.codec == "mjpeg" for p in packets)
    assert (packets[0].stream.width, packets[0].stream.height) == (320, 240)
    assert all(p.data[:2] == b"\xff\xd8" for p in packets)
    walls = [p.wall for p in packets]
    assert walls == sorted(walls)


def test_a_file_whose_pictures_change_size_says_each_new_size(tmp_path: Path) -> None:
    """What FFmpeg reads (H.264 over RTSPS, files) follows a size change like the RTSP client."""
    pictures = encode_annexb(320, 180, 20) + encode_annexb(640, 360, 20)
    path = tmp_path / "resized.h264"
    path.write_bytes(b"".join(pictures))
    packets = take(AvSource(str(path), loop=False, realtime=False), len(pictures) - 1)
    said = [(packet.stream.width, packet.stream.height) for packet in packets]
    assert said[0] == (320, 180)
    assert said[-1] == (640, 360)
    assert said.index((640, 360)) == 20, "from the first picture of the new size on"


def test_demo_source_draws_a_visitor_who_rings() -> None:
    rings: list[int] = []
    source = DemoSource("demo://?period=4&fps=10&width=320&height=180", lambda: rings.append(1))
    packets = take(source, 35)
    assert packets[0].keyframe
    assert packets[0].stream.codec == "h264"
    assert decode_each(packets) == [1] * 35
    assert rings == [1]  # the press at 75 % of the 4 s period


def test_demo_options_are_validated() -> None:
    assert DemoOptions.from_url("demo://").period == 60
    for bad in ("demo://?period=1", "demo://?fps=x", "demo://?colour=red"):
        with pytest.raises(CameraError):
            DemoOptions.from_url(bad)


@pytest.fixture(scope="module")
def footage_file(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    from tests.support.media import write_h264

    path = tmp_path_factory.mktemp("src") / "small.mp4"
    return write_h264(path, width=320, height=180, fps=10, seconds=3, gop=10)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:SECRET@192.0.2.1:554/s", "rtsp://***@192.0.2.1:554/s"),
        ("rtsp://admin:SECRET@[2001:db8::1]:554/s", "rtsp://***@[2001:db8::1]:554/s"),
        (
            "http://192.0.2.2/video.mjpg?user=admin&pwd=SECRET",
            "http://192.0.2.2/video.mjpg?user=admin&pwd=***",
        ),
        (
            "http://192.0.2.2/cgi-bin/mjpg?USER=admin&PASS=SECRET&res=1",
            "http://192.0.2.2/cgi-bin/mjpg?USER=admin&PASS=***&res=1",
        ),
        (
            "http://192.0.2.2/v.cgi?Password=SECRET;channel=1&passwd=SECRET",
            "http://192.0.2.2/v.cgi?Password=***;channel=1&passwd=***",
        ),
        (
            (
                "https://cam.local/s?token=SECRET&key=SECRET&auth=SECRET&sig=SECRET&signature=SECRET"
                "&secret=SECRET&apikey=SECRET&api_key=SECRET&access_token=SECRET&fps=5"
            ),
            (
                "https://cam.local/s?token=***&key=***&auth=***&sig=***&signature=***"
                "&secret=***&apikey=***&api_key=***&access_token=***&fps=5"
            ),
        ),
        (  # XMEye cameras put the login in the path
            "rtsp://192.0.2.3:554/user=admin_password=SECRET_channel=1_stream=0.sdp",
            "rtsp://192.0.2.3:554/user=admin_password=***_channel=1_stream=0.sdp",
        ),
        ("rtsp://192.0.2.3/s?pwd=", "rtsp://192.0.2.3/s?pwd=***"),
        ("/videos/door.mp4", "/videos/door.mp4"),
        ("demo://?period=600&fps=10", "demo://?period=600&fps=10"),
        (
            "http://192.0.2.2/video.mjpg?user=admin&monkey=1",
            "http://192.0.2.2/video.mjpg?user=admin&monkey=1",
        ),
    ],
)
def test_every_credential_in_a_camera_url_is_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "SECRET" not in AvSource(url).description


def test_a_password_in_the_query_never_appears_in_source_errors() -> None:
    with refusing_http_server() as base:
        source = AvSource(f"{base}/video.mjpg?user=admin&pwd=SECRET")
        with pytest.raises(CameraError) as refused:
            take(source, 1)
    assert "401" in str(refused.value) or "Unauthorized" in str(refused.value)
    assert "pwd=***" in str(refused.value)
    assert "SECRET" not in str(refused.value)
    rtsp = RtspSource(f"rtsp://127.0.0.1:{free_port()}/s?pwd=SECRET", fallback=source)
    with pytest.raises(CameraError) as unreachable:
        take(rtsp, 1)
    assert "SECRET" not in str(unreachable.value)
    assert "SECRET" not in rtsp.description
