"""The RTSP client: RTP/H.264 depacketizing, SDP, authentication, and real cameras.

The real camera is the project's GStreamer RTSP server (H.264 from an MP4, a
Motion-JPEG test pattern, Basic and Digest authentication). A small scripted
server covers what GStreamer will not do on demand: keep-alives, an answer in
the middle of the video data, a session the camera ends, a stream that stalls.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
import itertools
from pathlib import Path
import socket
import threading
import time
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from doorstep_bridge.camera import rtsp
from doorstep_bridge.camera.pipeline import open_source
from doorstep_bridge.camera.rtsp import (
    RETRY_OWN_CLIENT,
    Authenticator,
    DecodeTimes,
    H264Depacketizer,
    RtspSession,
    RtspSource,
    Target,
    Unsupported,
    parse_sdp,
)
from doorstep_bridge.camera.sources import AvSource
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.writer import ClipWriter
from tests.bridge.camera.test_sources import decode_each, take
from tests.support.media import Footage, encode_annexb, write_h264
from tests.support.servers import rtsp_server

SPS = b"\x67\x42\xc0\x1e\xda\x02\x80\xbf"
PPS = b"\x68\xce\x3c\x80"
IDR = b"\x65\x88\x84" + bytes(range(200))
P_SLICE = b"\x41\x9a\x02" + bytes(50)


def rtp(
    seq: int,
    timestamp: int,
    payload: bytes,
    *,
    marker: bool = False,
    payload_type: int = 96,
    csrc: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | csrc
    header = bytes([first, (0x80 if marker else 0) | payload_type])
    header += seq.to_bytes(2) + timestamp.to_bytes(4) + (1234).to_bytes(4)
    header += bytes(4 * csrc)
    if extension is not None:
        header += b"\xbe\xde" + (len(extension) // 4).to_bytes(2) + extension
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    return header + payload + tail


def fu_a(nal: bytes, size: int) -> list[bytes]:
    """Split a NAL unit into FU-A payloads of at most ``size`` bytes of data."""
    indicator = (nal[0] & 0xE0) | 28
    body = nal[1:]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for index, chunk in enumerate(chunks):
        header = nal[0] & 0x1F
        header |= 0x80 if index == 0 else 0
        header |= 0x40 if index == len(chunks) - 1 else 0
        out.append(bytes([indicator, header]) + chunk)
    return out


def stap_a(*nals: bytes) -> bytes:
    return b"\x18" + b"".join(len(n).to_bytes(2) + n for n in nals)


def annexb(*nals: bytes) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


class Feeder:
    """Feeds packets with running sequence numbers; collects the access units."""

    def __init__(self, depacketizer: H264Depacketizer, seq: int = 100) -> None:
        self.depacketizer = depacketizer
        self.seq = seq
        self.units: list[rtsp.AccessUnit] = []

    def picture(self, timestamp: int, *payloads: bytes, marker: bool = True) -> None:
        for index, payload in enumerate(payloads):
            last = index == len(payloads) - 1
            self.send(rtp(self.seq, timestamp, payload, marker=marker and last))

    def send(self, packet: bytes) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        self.units += self.depacketizer.push(packet)

    def skip(self) -> None:
        self.seq = (self.seq + 1) & 0xFFFF


# -- depacketizing ------------------------------------------------------------------------


def test_fragmented_keyframe_and_single_nal_pictures_become_access_units() -> None:
    feed = Feeder(H264Depacketizer(96))
    feed.picture(1000, SPS, PPS, *fu_a(IDR, 60))
    feed.picture(4000, P_SLICE)
    assert [(u.timestamp, u.keyframe) for u in feed.units] == [(1000, True), (4000, False)]
    assert feed.units[0].data == annexb(SPS, PPS, IDR)
    assert feed.units[1].data == annexb(P_SLICE)


def test_aggregated_parameter_sets_and_sdp_parameter_sets_precede_keyframes() -> None:
    feed = Feeder(H264Depacketizer(96))
    feed.picture(0, stap_a(SPS, PPS), IDR)
    assert feed.units[0].data == annexb(SPS, PPS, IDR)
    # A camera that sends parameter sets only in the SDP: each keyframe gets them.
    feed = Feeder(H264Depacketizer(96, annexb(SPS, PPS)))
    feed.picture(0, IDR)
    feed.picture(3000, P_SLICE)
    feed.picture(6000, IDR)
    assert [u.data for u in feed.units] == [
        annexb(SPS, PPS, IDR),
        annexb(P_SLICE),
        annexb(SPS, PPS, IDR),
    ]


def test_nothing_before_the_first_keyframe_and_nothing_broken_after_a_loss() -> None:
    feed = Feeder(H264Depacketizer(96))
    feed.picture(0, P_SLICE)  # joined mid-GOP: undecodable
    feed.picture(3000, SPS, PPS, IDR)
    feed.picture(6000, *fu_a(P_SLICE, 10)[:2])
    feed.skip()  # the rest of that picture is lost...
    feed.picture(6000, *fu_a(P_SLICE, 10)[3:])
    feed.picture(9000, P_SLICE)  # ...and what follows refers to it
    feed.picture(12000, SPS, PPS, IDR)
    feed.picture(15000, P_SLICE)
    assert [u.timestamp for u in feed.units] == [3000, 12000, 15000]
    assert feed.depacketizer.lost == 1


def test_a_picture_without_marker_ends_when_the_next_one_starts() -> None:
    feed = Feeder(H264Depacketizer(96))
    feed.picture(0, SPS, PPS, IDR, marker=False)
    assert feed.units == []
    feed.picture(3000, P_SLICE)
    assert [u.timestamp for u in feed.units] == [0, 3000]


def test_timestamps_keep_increasing_across_the_32_bit_wrap() -> None:
    feed = Feeder(H264Depacketizer(96), seq=65534)  # sequence numbers wrap too
    start = (1 << 32) - 3000
    for index in range(4):
        feed.picture((start + index * 3000) & 0xFFFFFFFF, IDR if index == 0 else P_SLICE)
    stamps = [u.timestamp for u in feed.units]
    assert stamps == [start, start + 3000, start + 6000, start + 9000]
    assert feed.depacketizer.lost == 0


def test_header_extension_csrc_padding_and_other_payload_types() -> None:
    depacketizer = H264Depacketizer(96)
    assert depacketizer.push(rtp(1, 0, IDR, marker=True, payload_type=97)) == ()
    (unit,) = depacketizer.push(rtp(2, 0, IDR, marker=True, csrc=2, extension=bytes(8), padding=3))
    assert unit.data == annexb(IDR)
    assert depacketizer.push(b"\x80\x60") == ()  # too short to be RTP


# -- SDP, URLs, authentication --------------------------------------------------------------

SDP = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=Session
t=0 0
a=control:*
m=audio 0 RTP/AVP 0
a=control:trackID=0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sps},{pps};profile-level-id=42c01e
a=framerate:15
a=control:trackID=1
"""


def test_sdp_gives_the_video_track_with_its_parameter_sets() -> None:
    sdp = SDP.format(sps=base64.b64encode(SPS).decode(), pps=base64.b64encode(PPS).decode())
    track = parse_sdp(sdp, "rtsp://cam/live/")
    assert track.control == "rtsp://cam/live/trackID=1"
    assert (track.codec, track.payload_type, track.clock_rate, track.fps) == ("H264", 96, 90000, 15)
    assert track.parameter_sets == annexb(SPS, PPS)
    absolute = sdp.replace("a=control:trackID=1", "a=control:rtsp://cam/other/track1")
    assert parse_sdp(absolute, "rtsp://cam/live").control == "rtsp://cam/other/track1"
    h265 = sdp.replace("H264/90000", "H265/90000")
    assert parse_sdp(h265, "rtsp://cam/live").codec == "H265"
    with pytest.raises(Unsupported, match="no video track"):
        parse_sdp("v=0\r\nm=audio 0 RTP/AVP 0\r\n", "rtsp://cam/")


def test_credentials_leave_the_url() -> None:
    target = Target.parse("rtsp://admin:p%40ss%3Aword@192.168.1.20/Streaming/101?x=1")
    assert target.url == "rtsp://192.168.1.20/Streaming/101?x=1"
    assert (target.host, target.port, target.user, target.password) == (
        "192.168.1.20",
        554,
        "admin",
        "p@ss:word",
    )
    assert Target.parse("rtsp://[fe80::1]:8554/s").url == "rtsp://[fe80::1]:8554/s"


def test_digest_answer_matches_rfc_2617(monkeypatch: pytest.MonkeyPatch) -> None:
    # The worked example of RFC 2617 section 3.5.
    monkeypatch.setattr(rtsp.os, "urandom", lambda _n: bytes.fromhex("0a4f113b"))
    auth = Authenticator("Mufasa", "Circle Of Life")
    assert auth.challenge(
        'Basic realm="x"\nDigest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = auth.header("GET", "/dir/index.html")
    assert header is not None
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "nc=00000001" in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


def test_digest_with_unquoted_values_is_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 2617 writes algorithm unquoted, and cameras write qop and the nonce so too. Read as
    # empty, "algorithm=MD5" made the offer look unsupported: the camera was reported as
    # refusing the password (auth_failed) when it was right.
    monkeypatch.setattr(rtsp.os, "urandom", lambda _n: bytes.fromhex("0a4f113b"))
    auth = Authenticator("Mufasa", "Circle Of Life")
    assert auth.challenge(
        'Digest realm="testrealm@host.com", qop=auth, algorithm=MD5, '
        'nonce=dcd98b7102dd2f0e8b11d0f600bfb0c093, opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = auth.header("GET", "/dir/index.html")
    assert header is not None
    assert 'response="6629fae49393a05397450978507c4ef1"' in header  # as with quoted values
    assert "qop=auth" in header


def test_basic_when_that_is_all_the_camera_offers() -> None:
    auth = Authenticator("admin", "secret")
    assert auth.challenge('Basic realm="IP Camera"')
    assert auth.header("DESCRIBE", "rtsp://cam/") == "Basic YWRtaW46c2VjcmV0"
    assert not Authenticator("a", "b").challenge('Negotiate realm="x"')


# -- a real camera (GStreamer) -------------------------------------------------------------------


def test_h264_camera_gives_whole_decodable_pictures(rtsp_ok: None, porch: Footage) -> None:
    with rtsp_server({"/main": porch.path}) as url:
        source = RtspSource(f"{url}/main", fallback=AvSource(f"{url}/main"))
        packets = take(source, 40)
    first = packets[0]
    assert first.keyframe
    assert (first.stream.codec, first.stream.width, first.stream.height) == ("h264", 640, 360)
    assert first.stream.fps == pytest.approx(15, abs=0.5)
    assert decode_each(packets) == [1] * 40
    pts = [p.pts for p in packets]
    assert pts == sorted(set(pts))
    # The server stamps frames as it sends them (some jitter); 15 fps on average.
    assert (pts[-1] - pts[0]) / 39 == pytest.approx(6000, rel=0.1)
    walls = [p.wall for p in packets]
    assert walls == sorted(walls)
    assert walls[-1] - walls[0] == pytest.approx(39 / 15, abs=0.2)


@pytest.mark.parametrize("masked", [False, True], ids=["copied", "masked"])
def test_a_camera_with_b_frames_says_its_size_and_records(
    rtsp_ok: None, tmp_path: Path, masked: bool
) -> None:
    """High profile with B-frames, as some cameras send: the decoder holds the first
    picture back, and the size was read as 0x0, so every clip failed ("Invalid argument")."""
    footage = write_h264(tmp_path / "b.mp4", width=640, height=360, fps=15, seconds=4, b_frames=2)
    with rtsp_server({"/main": footage.path}) as url:
        source = RtspSource(f"{url}/main", fallback=AvSource(f"{url}/main"))
        packets = take(source, 45)
    first = packets[0]
    assert (first.stream.width, first.stream.height) == (640, 360)
    masks = MaskSet([((0, 0), (100, 0), (100, 100))] if masked else [])
    writer = ClipWriter(tmp_path / "clip.partial.mp4", first.stream, masks)
    for packet in packets:
        writer.write(packet)
    writer.close()
    with av.open(str(tmp_path / "clip.partial.mp4")) as clip:
        sizes = [(frame.width, frame.height) for frame in clip.decode(video=0)]
    assert sizes == [(640, 360)] * len(packets)


#: One frame at 15 fps on RTP's 90 kHz clock.
FRAME = 6000


def _sent(shown: list[int], start: int = 900_000) -> list[int]:
    """RTP timestamps of pictures sent in this order, given as the frame each is shown at."""
    return [start + index * FRAME for index in shown]


@pytest.mark.parametrize(
    ("shown", "reorder"),
    [
        ([0, 1, 2, 3, 4, 5, 6, 7], 0),  # no B-frames: decoded when shown
        ([0, 3, 1, 2, 6, 4, 5, 9, 7, 8], 1),  # I P B B
        ([0, 4, 2, 1, 3, 8, 6, 5, 7], 2),  # B-frames that B-frames refer to (a pyramid)
    ],
    ids=["none", "IPBB", "pyramid"],
)
def test_decode_times_go_forward_and_never_pass_the_showing_time(
    shown: list[int], reorder: int
) -> None:
    times = _sent(shown)
    derive = DecodeTimes(FRAME, times[:4])
    decoded = [derive(pts) for pts in times]
    assert derive.reorder == reorder
    assert all(later > earlier for earlier, later in itertools.pairwise(decoded))
    assert all(dts <= pts for dts, pts in zip(decoded, times, strict=True))
    if not reorder:
        assert decoded == times


def test_decode_times_follow_a_deeper_reordering_and_a_jump_of_the_camera_clock() -> None:
    derive = DecodeTimes(FRAME)  # nothing learnt beforehand
    for pts in _sent([0, 1, 2, 3]):
        assert derive(pts) == pts
    # A reordering deeper than any seen: followed from then on (one picture is shown out
    # of place, once: its decoding time cannot go back).
    times = _sent([7, 5, 4, 6, 11, 9, 8, 10])
    decoded = [derive(pts) for pts in times]
    assert derive.reorder == 2
    assert all(later > earlier for earlier, later in itertools.pairwise(decoded[3:]))
    assert all(dts <= pts for dts, pts in zip(decoded, times, strict=True))
    # The camera's clock set back an hour: times start over there, the reordering kept.
    back = _sent([0, 3, 1, 2], start=900_000 - 3600 * 90_000)
    assert [derive(pts) for pts in back] == [
        back[0] - 2 * FRAME,
        back[0] - FRAME,
        back[0],
        back[2],
    ]


def _gray(frame: av.VideoFrame) -> npt.NDArray[np.int16]:
    return np.asarray(frame.to_ndarray(format="gray"), np.int16)


@pytest.mark.parametrize("masked", [False, True], ids=["copied", "masked"])
@pytest.mark.parametrize("say_rate", [True, False], ids=["rate in SDP", "rate not said"])
def test_a_camera_with_b_frames_records_its_pictures_in_order_and_in_time(
    rtsp_ok: None,
    tmp_path: Path,
    masked: bool,
    say_rate: bool,
) -> None:
    # RTP stamps each picture with when it is shown; with B-frames a camera sends
    # pictures out of that order, so the times go back. Taken as decoding times, they
    # were pushed forward a frame at a time: a clip played twice as long as filmed,
    # with pictures out of order, and a camera that did not say its frame rate was
    # taken for 5 fps (the step from its first picture to the next one sent).
    fps = 15
    footage = write_h264(
        tmp_path / "b.mp4", width=320, height=180, fps=fps, seconds=4, b_frames=2, motion=(0, 4)
    )
    with av.open(str(footage.path)) as container:
        filmed = [_gray(frame) for frame in container.decode(video=0)]
    with rtsp_server({"/main": footage.path}, say_rate=say_rate) as url:
        source = RtspSource(f"{url}/main", fallback=AvSource(f"{url}/main"))
        packets = take(source, 45)
    assert packets[0].stream.fps == pytest.approx(fps, abs=0.5)
    masks = MaskSet([((0, 0), (40, 0), (40, 40))] if masked else [])
    writer = ClipWriter(tmp_path / "clip.partial.mp4", packets[0].stream, masks)
    for packet in packets:
        writer.write(packet)
    writer.close()
    with av.open(str(tmp_path / "clip.partial.mp4")) as clip:
        decoded = [(_gray(frame), float(frame.time or 0.0)) for frame in clip.decode(video=0)]
    shown = sorted(decoded, key=lambda picture: picture[1])  # as a player shows them

    # Each picture of the clip is the picture filmed right after the one before (the
    # last may follow B-frames the clip ends before), one frame later.
    which = [int(np.argmin([np.abs(picture - f).mean() for f in filmed])) for picture, _ in shown]
    assert which[:-1] == list(range(which[0], which[0] + len(which) - 1)), which
    assert which[-1] > which[-2]
    times = [time for _, time in shown]
    steps = np.diff(times[:-1])
    assert steps == pytest.approx([1 / fps] * len(steps), abs=0.03), times
    assert len(shown) >= len(packets) - 3


@pytest.mark.parametrize("method", ["basic", "digest"])
def test_cameras_that_ask_for_a_password(rtsp_ok: None, porch: Footage, method: str) -> None:
    password = "hunter2 secret/€"
    quoted = "hunter2%20secret%2F%E2%82%AC"
    with rtsp_server({"/main": porch.path}, auth=(method, "viewer", password)) as url:
        host = url.removeprefix("rtsp://")
        good = f"rtsp://viewer:{quoted}@{host}/main"
        packets = take(RtspSource(good, fallback=AvSource(good)), 5)
        assert decode_each(packets) == [1] * 5
        for bad, why in (
            (f"rtsp://viewer:wrong@{host}/main", "user or password refused"),
            (f"{url}/main", "wants a user and password"),
        ):
            source = RtspSource(bad, fallback=AvSource(bad))
            with pytest.raises(CameraError, match=why) as caught:
                take(source, 1)
            assert "wrong" not in str(caught.value)


def test_a_camera_without_h264_is_read_by_ffmpeg(rtsp_ok: None) -> None:
    with rtsp_server({}, jpeg=("/jpeg",)) as url:
        source = RtspSource(f"{url}/jpeg", fallback=AvSource(f"{url}/jpeg"))
        packets = take(source, 5)
        assert all(p.stream.codec == "mjpeg" for p in packets)
        assert all(p.data[:2] == b"\xff\xd8" for p in packets)
        assert take(source, 2)[0].stream.codec == "mjpeg"  # straight to FFmpeg next time


@contextmanager
def redirecting_camera(location: str) -> Iterator[str]:
    """An RTSP address (an NVR, a relay) that answers every DESCRIBE "302, go there"."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                pending = bytearray()
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    pending += chunk
                    while b"\r\n\r\n" in pending:
                        end = pending.index(b"\r\n\r\n") + 4
                        request = pending[:end].decode()
                        del pending[:end]
                        cseq = request.split("CSeq: ")[1].split()[0]
                        if request.startswith("OPTIONS"):
                            extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY\r\n"
                            head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
                        else:
                            head = (
                                f"RTSP/1.0 302 Moved Temporarily\r\nCSeq: {cseq}\r\n"
                                f"Location: {location}\r\n"
                            )
                        conn.sendall(f"{head}Content-Length: 0\r\n\r\n".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"rtsp://127.0.0.1:{listener.getsockname()[1]}/front"
    finally:
        listener.close()
        thread.join(5)


def test_a_camera_address_that_redirects_is_followed(rtsp_ok: None, porch: Footage) -> None:
    """FFmpeg follows RTSP redirects, so the bridge hands such a camera to it."""
    with rtsp_server({"/main": porch.path}) as url, redirecting_camera(f"{url}/main") as moved:
        source = open_source(moved)
        assert decode_each(take(source, 5)) == [1] * 5


class CountingSource:
    """A source that counts how often it was opened."""

    def __init__(self, source: AvSource) -> None:
        self._source = source
        self.opened = 0

    @property
    def description(self) -> str:
        return self._source.description

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        self.opened += 1
        yield from self._source.packets(stop)


def test_after_an_answer_it_cannot_take_it_tries_its_own_client_again_later(
    rtsp_ok: None, porch: Footage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One odd answer (a camera still booting) must not hand the camera to FFmpeg for good.
    answers = iter([Unsupported("no video track in the stream description")])
    real_open = RtspSession.open

    def open_once_odd(session: RtspSession) -> Any:
        odd = next(answers, None)
        if odd is not None:
            raise odd
        return real_open(session)

    monkeypatch.setattr(RtspSession, "open", open_once_odd)
    now = [1000.0]
    with rtsp_server({"/main": porch.path}) as url:
        ffmpeg = CountingSource(AvSource(f"{url}/main"))
        source = RtspSource(f"{url}/main", fallback=ffmpeg, clock=lambda: now[0])
        take(source, 2)
        take(source, 2)
        assert ffmpeg.opened == 2  # FFmpeg for a while
        now[0] += RETRY_OWN_CLIENT
        assert decode_each(take(source, 5)) == [1] * 5
        assert ffmpeg.opened == 2  # then its own client again


def test_unreachable_camera_is_a_camera_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    url = f"rtsp://admin:hunter2secret@127.0.0.1:{port}/stream"
    with pytest.raises(CameraError, match="cannot connect") as caught:
        take(RtspSource(url, fallback=AvSource(url)), 1)
    assert "hunter2secret" not in str(caught.value)


# -- what a scripted camera can show -----------------------------------------------------


class ScriptedCamera:
    """Answers the setup, then runs ``play(conn, requests)`` with the connection."""

    def __init__(self, session_timeout: int = 60) -> None:
        self.session_timeout = session_timeout
        self.requests: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{self.port}/live"

    def answer(self, conn: socket.socket, request: str, body: str = "", extra: str = "") -> None:
        cseq = next(
            line.split(":", 1)[1].strip()
            for line in request.split("\r\n")
            if line.lower().startswith("cseq:")
        )
        head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        conn.sendall(head.encode() + body.encode())

    def read_request(self, conn: socket.socket, pending: bytearray) -> str:
        while b"\r\n\r\n" not in pending:
            chunk = conn.recv(4096)
            if not chunk:
                raise ConnectionError
            pending += chunk
        end = pending.index(b"\r\n\r\n") + 4
        request = pending[:end].decode()
        del pending[:end]
        self.requests.append(request.split(" ", 1)[0])
        return request

    def setup(self, conn: socket.socket, pending: bytearray) -> None:
        sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n"
        for method in ("OPTIONS", "DESCRIBE", "SETUP", "PLAY"):
            request = self.read_request(conn, pending)
            assert request.startswith(method)
            extra = {
                "OPTIONS": "Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n",
                "DESCRIBE": f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n",
                "SETUP": "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                f"Session: 12345678;timeout={self.session_timeout}\r\n",
                "PLAY": "Session: 12345678\r\n",
            }[method]
            self.answer(conn, request, sdp if method == "DESCRIBE" else "", extra)

    @staticmethod
    def frame(channel: int, payload: bytes) -> bytes:
        return b"$" + bytes([channel]) + len(payload).to_bytes(2) + payload

    @contextmanager
    def running(self, play: object) -> Iterator[ScriptedCamera]:
        def serve() -> None:
            conn, _ = self.listener.accept()
            with conn:
                pending = bytearray()
                try:
                    self.setup(conn, pending)
                    play(self, conn, pending)  # type: ignore[operator]
                except (ConnectionError, OSError):
                    pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.listener.close()
            thread.join(10)


def test_keepalives_and_answers_between_video_packets() -> None:
    def play(camera: ScriptedCamera, conn: socket.socket, pending: bytearray) -> None:
        seq = 0
        conn.sendall(camera.frame(0, rtp(seq, 0, SPS)) + camera.frame(0, rtp(seq + 1, 0, PPS)))
        seq = 2
        started = time.monotonic()
        while time.monotonic() - started < 3.5:
            picture = IDR if seq == 2 else P_SLICE
            conn.sendall(
                camera.frame(1, b"\x80\xc8" + bytes(26))  # RTCP: ignored
                + camera.frame(0, rtp(seq, seq * 3000, picture, marker=True))
            )
            seq += 1
            conn.settimeout(0.1)
            try:
                request = camera.read_request(conn, pending)
            except TimeoutError:
                continue
            # The answer lands between two video packets, split across writes.
            data = f"RTSP/1.0 200 OK\r\nCSeq: {request.split('CSeq: ')[1].split()[0]}\r\n"
            conn.sendall(camera.frame(0, rtp(seq, seq * 3000, P_SLICE, marker=True)))
            conn.sendall(data.encode())
            conn.sendall(b"Content-Length: 0\r\n\r\n")
            seq += 1

    camera = ScriptedCamera(session_timeout=2)
    with camera.running(play):
        session = RtspSession(camera.url, open_timeout=5, read_timeout=5)
        track = session.open()
        assert track.control == f"{camera.url}/track1"
        stop = threading.Event()
        units = []
        started = time.monotonic()
        for unit in session.access_units(stop):
            units.append(unit)
            if time.monotonic() - started > 3:
                break
        session.close()
    assert units[0].keyframe
    stamps = [u.timestamp for u in units]
    assert stamps == sorted(set(stamps))
    assert len(units) >= 20
    # Session timeout 2 s: a keep-alive every second.
    assert camera.requests.count("GET_PARAMETER") >= 2


def test_a_stalled_camera_and_a_closed_session_are_errors() -> None:
    def stall(camera: ScriptedCamera, conn: socket.socket, _pending: bytearray) -> None:
        conn.sendall(camera.frame(0, rtp(0, 0, SPS + b"", marker=False)))
        time.sleep(3)

    camera = ScriptedCamera()
    with camera.running(stall):
        session = RtspSession(camera.url, open_timeout=5, read_timeout=1)
        session.open()
        with pytest.raises(CameraError, match="no data for 1 s"):
            list(session.access_units(threading.Event()))
        session.close()

    def hang_up(_camera: ScriptedCamera, conn: socket.socket, _pending: bytearray) -> None:
        conn.sendall(b"RTSP/1.0 454 Session Not Found\r\nCSeq: 9\r\n\r\n")
        time.sleep(1)

    camera = ScriptedCamera()
    with camera.running(hang_up):
        session = RtspSession(camera.url, open_timeout=5, read_timeout=5)
        session.open()
        with pytest.raises(CameraError, match="ended the session"):
            list(session.access_units(threading.Event()))
        session.close()


def test_a_camera_that_changes_its_resolution_mid_stream_says_its_new_size() -> None:
    """The owner changes the resolution; the camera goes on in the same session.

    Privacy masks are placed from the size the source reports: it must be the new one.
    """
    pictures = encode_annexb(320, 180, 20) + encode_annexb(640, 360, 20)

    def play(camera: ScriptedCamera, conn: socket.socket, _pending: bytearray) -> None:
        seq = 0
        for index, unit in enumerate(pictures):
            nals = [nal.rstrip(b"\x00") for nal in unit.split(b"\x00\x00\x01")]
            nals = [nal for nal in nals if nal]
            for number, nal in enumerate(nals):
                chunks = [nal] if len(nal) < 1200 else fu_a(nal, 1200)
                for part, chunk in enumerate(chunks):
                    last = number == len(nals) - 1 and part == len(chunks) - 1
                    conn.sendall(camera.frame(0, rtp(seq, index * 6000, chunk, marker=last)))
                    seq += 1
        time.sleep(3)

    camera = ScriptedCamera()
    with camera.running(play):
        source = RtspSource(camera.url, fallback=AvSource(camera.url))
        packets = take(source, len(pictures) - 1)
    decoder: Any = av.CodecContext.create("h264", "r")
    decoder.thread_count = 1  # each picture out of the decode call that got it
    sizes = [
        ((frame.width, frame.height), (packet.stream.width, packet.stream.height))
        for packet in packets
        for frame in decoder.decode(av.Packet(packet.data))
    ]
    assert (640, 360) in [shown for shown, _ in sizes], "the camera did switch"
    assert all(shown == said for shown, said in sizes), "each packet says its picture's size"


class DahuaLikeCamera(ScriptedCamera):
    """A camera whose stream address has a query, as Dahua's and Amcrest's do.

    Its ``Content-Base`` is the address with a ``/`` after the query, and it takes
    SETUP only at that base with the track's control appended (what FFmpeg, live555
    and GStreamer send); any other address is a stream it does not have.
    """

    def __init__(self) -> None:
        super().__init__()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam/realmonitor?channel=1&subtype=0"
        self.setup_urls: list[str] = []

    def setup(self, conn: socket.socket, pending: bytearray) -> None:
        sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n"
        for method in ("OPTIONS", "DESCRIBE", "SETUP", "PLAY"):
            request = self.read_request(conn, pending)
            assert request.startswith(method)
            if method == "SETUP":
                self.setup_urls.append(request.split(" ")[1])
                if self.setup_urls[-1] != f"{self.url}/trackID=0":
                    cseq = request.split("CSeq: ")[1].split()[0]
                    conn.sendall(f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n".encode())
                    return
            extra = {
                "OPTIONS": "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n",
                "DESCRIBE": f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n",
                "SETUP": "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 99\r\n",
                "PLAY": "Session: 99\r\n",
            }[method]
            self.answer(conn, request, sdp if method == "DESCRIBE" else "", extra)


class NoFallback:
    """The FFmpeg reader, which must not be needed."""

    description = "ffmpeg"

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        raise AssertionError("handed to FFmpeg")


def test_a_stream_address_with_a_query_gets_its_track_set_up() -> None:
    """``rtsp://…/cam/realmonitor?channel=1&subtype=0``: the usual Dahua/Amcrest address."""

    def play(camera: ScriptedCamera, conn: socket.socket, _pending: bytearray) -> None:
        conn.sendall(b"".join(camera.frame(0, rtp(n, 0, nal)) for n, nal in enumerate((SPS, PPS))))
        for seq in range(2, 40):
            picture = IDR if seq == 2 else P_SLICE
            conn.sendall(camera.frame(0, rtp(seq, seq * 6000, picture, marker=True)))
            time.sleep(0.02)
        time.sleep(2)

    camera = DahuaLikeCamera()
    with camera.running(play):
        packets = take(RtspSource(camera.url, fallback=NoFallback()), 3)
    assert camera.setup_urls == [f"{camera.url}/trackID=0"]
    assert packets[0].keyframe


def test_cameras_get_the_right_reader() -> None:
    assert isinstance(open_source("rtsp://user:pw@192.0.2.10/stream1"), RtspSource)
    # TLS is left to FFmpeg, as are files and MJPEG over HTTP.
    assert isinstance(open_source("rtsps://192.0.2.10/stream1"), AvSource)
    assert isinstance(open_source("http://192.0.2.11/video.mjpg"), AvSource)
