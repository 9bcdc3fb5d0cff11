"""RTSP client for H.264 cameras: RTP inside the RTSP connection, read in batches.

Why not FFmpeg's RTSP demuxer: it reads each RTP packet with its own system
calls (a poll and two reads), some 1,500 calls a second for a 3 Mbit/s main
stream, and with PyAV's timeout each wait also takes Python's global lock.
A camera is read all day long, so that cost counts (bench/pipeline.py). This
client lets the kernel gather what arrives for :data:`BATCH_INTERVAL` and then
takes all of it at once: a handful of calls per batch, whatever the bitrate.
Recording and motion do not mind the 0.2 s; the doorbell does not go through here.

It speaks the part of RTSP 1.0 (RFC 2326) that cameras need: DESCRIBE with
Basic or Digest authentication, SETUP with interleaved TCP transport, PLAY,
keep-alives and TEARDOWN; and RTP for H.264 (RFC 6184: single NAL units,
STAP-A and FU-A). RTP stamps each picture with when it is shown; for cameras
that send B-frames, when it is decoded is derived (:class:`DecodeTimes`).
Streams it cannot take (another codec, a server that refuses TCP transport, an
address that redirects) raise :class:`Unsupported`, and the caller hands the
camera to FFmpeg instead.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Iterator, Sequence
import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
import hashlib
import heapq
import itertools
import logging
import os
import re
import socket
import threading
import time
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from doorstep_bridge.camera.sources import (
    OPEN_TIMEOUT,
    READ_TIMEOUT,
    PacketClock,
    SizeWatch,
    Source,
    SourceError,
    os_error_status,
    plausible_fps,
    probe_size,
)
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.models import StreamStatus
from doorstep_bridge.packets import EncodedPacket, StreamInfo
from doorstep_bridge.urls import redact_url

_LOGGER = logging.getLogger(__name__)

#: Seconds the kernel gathers data between two reads. Each wake-up of the reading
#: thread costs more than reading what arrived meanwhile (bench/pipeline.py).
BATCH_INTERVAL = 0.2
#: Receive buffer asked for: room for a batch of a 4K camera (the kernel may cap it).
RECEIVE_BUFFER = 2 * 1024 * 1024
READ_CHUNK = 1 << 19
DEFAULT_PORT = 554
#: Keep-alive period when the server does not give a session timeout (seconds).
DEFAULT_SESSION_TIMEOUT = 60.0
USER_AGENT = "doorstep-bridge"
#: After a stream this client cannot take, FFmpeg reads the camera; this many seconds
#: later this client tries again (a camera booting, a firmware update changing codec).
RETRY_OWN_CLIENT = 600.0
#: Pictures read before the first is handed on: enough to see how far a camera's
#: B-frames reorder pictures, and its frame rate when it does not say (once per
#: connection; they mostly arrive in the same read).
OPENING_PICTURES = 4
#: Deepest reordering followed: H.264 keeps at most 16 pictures for reordering.
MAX_REORDER = 16
START_CODE = b"\x00\x00\x00\x01"
_MAX_HEADER = 64 * 1024
_MAX_BODY = 1024 * 1024
_RTP_VERSION = 2
_NAL_IDR = 5
_NAL_SPS = 7
_NAL_PPS = 8
_STAP_A = 24
_FU_A = 28
_PLAIN_HEADER = 0x80  # RTP version 2: no padding, no extension, no CSRC
_FU_PAYLOAD = 14  # RTP header (12) + FU indicator + FU header


#: RTSP answers (to DESCRIBE, SETUP, PLAY) that say what is wrong with the camera's URL.
_STATUS_OF_ANSWER = {
    403: StreamStatus.AUTH_FAILED,
    404: StreamStatus.NOT_FOUND,
}


class Unsupported(CameraError):  # noqa: N818 - reads as "the stream is unsupported"
    """The stream is fine but not for this client (codec, transport); use FFmpeg."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect, and the credentials taken out of the URL."""

    url: str
    host: str
    port: int
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Target:
        """Split ``rtsp://user:pass@host:port/path`` into a credential-free URL and parts."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "rtsp" or not parts.hostname:
            raise Unsupported(f"not a plain rtsp:// URL: {parts.scheme}")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise CameraError("bad port in the camera URL") from None
        host = parts.hostname
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        clean = urlunsplit(("rtsp", netloc, parts.path or "/", parts.query, ""))
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(clean, host, port, user, password)


@dataclass(frozen=True, slots=True)
class Response:
    """An RTSP response."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """The first line and the headers (names lower-cased) of an RTSP message head."""
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            # WWW-Authenticate may come once per scheme: keep them all.
            headers[key] = f"{headers[key]}\n{value.strip()}" if key in headers else value.strip()
    return lines[0], headers


# -- authentication ---------------------------------------------------------------------


def _challenge_params(challenge: str) -> dict[str, str]:
    """The parameters of a challenge, quoted (``realm="cam"``) or not (``algorithm=MD5``)."""
    # finditer, not findall: findall gives "" for the alternative that did not match, and
    # an unquoted value (RFC 2617 writes algorithm and stale so) was read as empty.
    return {
        match["key"].lower(): match["quoted"] if match["quoted"] is not None else match["bare"]
        for match in re.finditer(
            r'(?P<key>\w+)=(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s,]*))', challenge
        )
    }


@dataclass(slots=True)
class Authenticator:
    """Answers a server's 401 challenge for every later request (Basic or Digest/MD5)."""

    user: str
    password: str
    scheme: str = ""
    params: dict[str, str] = field(default_factory=dict)
    _count: int = 0

    def challenge(self, header: str) -> bool:
        """Take the ``WWW-Authenticate`` header(s); False when no scheme is usable."""
        offers = [line.strip() for line in header.split("\n") if line.strip()]
        for wanted in ("digest", "basic"):  # Digest never sends the password itself
            for offer in offers:
                scheme, _, rest = offer.partition(" ")
                if scheme.lower() != wanted:
                    continue
                params = _challenge_params(rest)
                algorithm = params.get("algorithm", "MD5").upper()
                if wanted == "digest" and (algorithm != "MD5" or "nonce" not in params):
                    continue
                self.scheme, self.params, self._count = wanted, params, 0
                return True
        return False

    def header(self, method: str, uri: str) -> str | None:
        """The ``Authorization`` value for a request, once challenged."""
        if self.scheme == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return f"Basic {token}"
        if self.scheme != "digest":
            return None
        realm, nonce = self.params.get("realm", ""), self.params["nonce"]
        ha1 = _md5(f"{self.user}:{realm}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        fields = [
            f'username="{self.user}"',
            f'realm="{realm}"',
            f'nonce="{nonce}"',
            f'uri="{uri}"',
        ]
        qops = [q.strip() for q in self.params.get("qop", "").split(",")]
        if "auth" in qops:
            self._count += 1
            count = f"{self._count:08x}"
            cnonce = os.urandom(8).hex()
            response = _md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in self.params:
            fields.append(f'opaque="{self.params["opaque"]}"')
        fields.append("algorithm=MD5")
        return "Digest " + ", ".join(fields)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# -- SDP ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoTrack:
    """The first video track of a session description."""

    control: str
    payload_type: int
    codec: str
    clock_rate: int
    parameter_sets: bytes
    fps: float | None


def parse_sdp(sdp: str, base: str) -> VideoTrack:
    """The first video track of ``sdp``; its control URL resolved against ``base``."""
    media: list[list[str]] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
    for block in media:
        fields = block[0][2:].split()
        if len(fields) < 4 or fields[0] != "video":
            continue
        payload_type = int(fields[3])
        codec, clock_rate, fmtp, control, fps = "", 90000, "", "", None
        for line in block[1:]:
            key, _, value = line[2:].partition(":")
            if key == "rtpmap" and value.split(" ", 1)[0] == str(payload_type):
                encoding = value.split(" ", 1)[1].split("/")
                codec = encoding[0].upper()
                clock_rate = int(encoding[1]) if len(encoding) > 1 else 90000
            elif key == "fmtp" and value.split(" ", 1)[0] == str(payload_type):
                fmtp = value.split(" ", 1)[1] if " " in value else ""
            elif key == "control":
                control = value.strip()
            elif key in {"framerate", "x-framerate"}:
                try:
                    fps = float(value)
                except ValueError:
                    fps = None
        return VideoTrack(
            control=_resolve(base, control),
            payload_type=payload_type,
            codec=codec,
            clock_rate=clock_rate,
            parameter_sets=_sprop(fmtp),
            fps=fps,
        )
    raise Unsupported("no video track in the stream description")


def _resolve(base: str, control: str) -> str:
    """The URL of a track: its ``a=control`` against the session's base URL.

    A relative control is appended to the base, as FFmpeg, live555 and GStreamer do,
    not resolved as a relative URL: with a base that has a query (Dahua's and
    Amcrest's ``…/realmonitor?channel=1&subtype=0/``) that would drop the query and
    the last path segment, and such cameras know no stream there.
    """
    if not control or control == "*":
        return base
    if "://" in control:
        return control
    if control.startswith("/"):
        return urljoin(base, control)  # a path on the same server
    return (base if base.endswith("/") else base + "/") + control


def _sprop(fmtp: str) -> bytes:
    """The ``sprop-parameter-sets`` of an H.264 fmtp line as Annex B (SPS, PPS)."""
    for item in fmtp.split(";"):
        key, _, value = item.strip().partition("=")
        if key.lower() == "sprop-parameter-sets":
            out = b""
            for part in value.split(","):
                try:
                    out += START_CODE + base64.b64decode(part + "=" * (-len(part) % 4))
                except ValueError:
                    continue
            return out
    return b""


# -- RTP / H.264 ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One picture: its RTP timestamp (unwrapped), Annex B bytes, keyframe flag."""

    timestamp: int
    data: bytes
    keyframe: bool


_NONE: tuple[AccessUnit, ...] = ()


class H264Depacketizer:
    """RTP packets (RFC 6184) in, whole access units out.

    Parameter sets seen in the stream (or given from the SDP) are put in front
    of every keyframe that comes without them, so each keyframe decodes alone.
    After a lost packet nothing is returned until the next keyframe: a clip
    never gets a broken picture. Timestamps are unwrapped to keep increasing.
    """

    def __init__(self, payload_type: int, parameter_sets: bytes = b"") -> None:
        self._payload_type = payload_type
        self._sps = b""
        self._pps = b""
        for nal in parameter_sets.split(START_CODE):
            self._remember(nal)
        self._nals: list[bytes | bytearray] = []
        self._fragment: list[bytes | bytearray] | None = None
        self._keyframe = False
        self._has_sps = False
        self._timestamp: int | None = None
        self._raw_timestamp = 0
        self._raw_bytes = b""
        self._unwrapped = 0
        self._next_seq: int | None = None
        self._broken = True  # start at a keyframe
        self.lost = 0

    def _remember(self, nal: bytes | bytearray) -> None:
        if nal:
            nal = bytes(nal)
            kind = nal[0] & 0x1F
            if kind == _NAL_SPS:
                self._sps = nal
            elif kind == _NAL_PPS:
                self._pps = nal

    def push(self, packet: bytes | bytearray) -> tuple[AccessUnit, ...]:
        """Feed one RTP packet; returns the access units it completed (usually none)."""
        # Most packets are the middle of a fragmented picture (FU-A, no marker, plain
        # 12-byte header, next in sequence, same timestamp): take those in a few steps.
        fragment = self._fragment
        if (
            fragment is not None
            and packet[0] == _PLAIN_HEADER
            and packet[1] == self._payload_type
            and len(packet) > _FU_PAYLOAD
            and packet[12] & 0x1F == _FU_A
            and not packet[13] & 0xC0
            and (packet[2] << 8) | packet[3] == self._next_seq
            and packet[4:8] == self._raw_bytes
        ):
            self._next_seq = (self._next_seq + 1) & 0xFFFF
            fragment.append(packet[_FU_PAYLOAD:])
            return _NONE
        return self._push(packet)

    def _push(self, packet: bytes | bytearray) -> tuple[AccessUnit, ...]:
        if len(packet) < 12 or packet[0] >> 6 != _RTP_VERSION:
            return _NONE
        if packet[1] & 0x7F != self._payload_type:
            return _NONE
        offset = 12 + 4 * (packet[0] & 0x0F)
        if packet[0] & 0x10:  # header extension
            if len(packet) < offset + 4:
                return _NONE
            offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4])
        end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)
        if end <= offset:
            return _NONE
        seq = int.from_bytes(packet[2:4])
        self._raw_bytes = bytes(packet[4:8])
        timestamp = self._unwrap(int.from_bytes(self._raw_bytes))
        done: tuple[AccessUnit, ...] = _NONE
        if self._timestamp is not None and timestamp != self._timestamp and self._nals:
            done = self._finish()  # the marker bit of the last picture was lost or unset
        if self._next_seq is not None and seq != self._next_seq:
            self.lost += (seq - self._next_seq) & 0xFFFF
            self._drop()
        self._next_seq = (seq + 1) & 0xFFFF
        self._timestamp = timestamp
        self._payload(packet[offset:end])
        if packet[1] & 0x80:  # marker: last packet of the picture
            return done + self._finish()
        return done

    def _unwrap(self, raw: int) -> int:
        if self._timestamp is None:
            self._unwrapped = raw
        else:
            delta = (raw - self._raw_timestamp) & 0xFFFFFFFF
            self._unwrapped += delta - (1 << 32) if delta >= 1 << 31 else delta
        self._raw_timestamp = raw
        return self._unwrapped

    def _payload(self, payload: bytes | bytearray) -> None:
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._add(payload)
        elif kind == _STAP_A:
            pos = 1
            while pos + 2 <= len(payload):
                size = int.from_bytes(payload[pos : pos + 2])
                if size == 0 or pos + 2 + size > len(payload):
                    break
                self._add(payload[pos + 2 : pos + 2 + size])
                pos += 2 + size
        elif kind == _FU_A and len(payload) > 2:
            header = payload[1]
            if header & 0x80:  # start
                self._fragment = [bytes(((payload[0] & 0xE0) | (header & 0x1F),)), payload[2:]]
            elif self._fragment is not None:
                self._fragment.append(payload[2:])
            if header & 0x40 and self._fragment is not None:  # end
                self._add(b"".join(self._fragment))
                self._fragment = None
        # STAP-B, MTAP and FU-B belong to interleaved mode, which cameras do not use.

    def _add(self, nal: bytes | bytearray) -> None:
        kind = nal[0] & 0x1F
        if kind in {_NAL_SPS, _NAL_PPS}:
            self._remember(nal)
            self._has_sps = self._has_sps or kind == _NAL_SPS
        elif kind == _NAL_IDR:
            self._keyframe = True
        self._nals.append(nal)

    def _drop(self) -> None:
        self._nals, self._fragment = [], None
        self._keyframe = self._has_sps = False
        self._broken = True

    def _finish(self) -> tuple[AccessUnit, ...]:
        nals, keyframe, has_sps = self._nals, self._keyframe, self._has_sps
        timestamp = self._timestamp if self._timestamp is not None else 0
        self._nals, self._fragment = [], None
        self._keyframe = self._has_sps = False
        if not nals or (self._broken and not keyframe):
            return _NONE
        self._broken = False
        if keyframe and not has_sps and self._sps and self._pps:
            nals = [self._sps, self._pps, *nals]
        return (AccessUnit(timestamp, START_CODE + START_CODE.join(nals), keyframe),)


# -- the session ------------------------------------------------------------------------------


class RtspSession:
    """One RTSP connection playing one video track over interleaved TCP.

    Args:
        url: ``rtsp://[user:password@]host[:port]/path``.
        open_timeout: Seconds for connecting and for each setup answer.
        read_timeout: Seconds without any data after which the stream has failed.
        batch_interval: Seconds between reads (what arrives meanwhile is read at once).
    """

    def __init__(
        self,
        url: str,
        *,
        open_timeout: float,
        read_timeout: float,
        batch_interval: float = BATCH_INTERVAL,
    ) -> None:
        self._target = Target.parse(url)
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._batch_interval = batch_interval
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._pos = 0  # start of what is not taken yet
        self._chunk = bytearray(READ_CHUNK)
        self._chunk_view = memoryview(self._chunk)
        self._cseq = 0
        self._session: str | None = None
        self._session_timeout = DEFAULT_SESSION_TIMEOUT
        self._auth: Authenticator | None = None
        self._keepalive_method = "OPTIONS"
        self._channel = 0
        self.track: VideoTrack | None = None

    @property
    def description(self) -> str:
        """The URL without credentials (a password may also sit in its query)."""
        return redact_url(self._target.url)

    def open(self) -> VideoTrack:
        """Connect, describe, set up and play; returns the video track."""
        target = self._target
        try:
            self._sock = _connect(target.host, target.port, self._open_timeout)
        except OSError as err:
            raise SourceError(
                f"cannot connect to {self.description}: {_os_reason(err)}", os_error_status(err)
            ) from None
        options = self._request("OPTIONS", target.url)
        if "GET_PARAMETER" in options.headers.get("public", "").upper():
            self._keepalive_method = "GET_PARAMETER"
        described = self._request("DESCRIBE", target.url, {"Accept": "application/sdp"})
        base = (
            described.headers.get("content-base")
            or described.headers.get("content-location")
            or target.url
        )
        track = parse_sdp(described.body.decode("utf-8", "replace"), base)
        if track.codec != "H264":
            what = track.codec or f"RTP payload type {track.payload_type}"
            raise Unsupported(f"video is {what}, not H.264")
        transport = f"RTP/AVP/TCP;unicast;interleaved={self._channel}-{self._channel + 1}"
        setup = self._request("SETUP", track.control, {"Transport": transport})
        answered = setup.headers.get("transport", "")
        if "interleaved=" not in answered:
            raise Unsupported("the camera refused RTP over the RTSP connection")
        match = re.search(r"interleaved=(\d+)", answered)
        self._channel = int(match.group(1)) if match else self._channel
        session, _, params = setup.headers.get("session", "").partition(";")
        self._session = session.strip() or None
        timeout = re.search(r"timeout=(\d+)", params)
        if timeout:
            self._session_timeout = max(2.0, float(timeout.group(1)))
        # PLAY goes to the aggregate URL: the base of the description.
        self._request("PLAY", base, {"Range": "npt=0.000-"})
        self.track = track
        return track

    def _send(self, method: str, url: str, headers: dict[str, str] | None = None) -> None:
        assert self._sock is not None
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        if self._session:
            lines.append(f"Session: {self._session}")
        if self._auth is not None and (value := self._auth.header(method, url)):
            lines.append(f"Authorization: {value}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        except OSError as err:
            raise SourceError(
                f"{self.description}: send failed: {_os_reason(err)}", os_error_status(err)
            ) from None

    def _request(self, method: str, url: str, headers: dict[str, str] | None = None) -> Response:
        """Send a request during setup and wait for its answer (retrying once with auth)."""
        for attempt in range(2):
            self._send(method, url, headers)
            response = self._read_response()
            if response.status == 401 and attempt == 0:
                target = self._target
                if target.user is None:
                    raise SourceError(
                        f"{self.description}: the camera wants a user and password (401)",
                        StreamStatus.AUTH_FAILED,
                    )
                self._auth = Authenticator(target.user, target.password or "")
                if not self._auth.challenge(response.headers.get("www-authenticate", "")):
                    raise SourceError(
                        f"{self.description}: unsupported authentication scheme",
                        StreamStatus.AUTH_FAILED,
                    )
                continue
            if response.status == 401:
                raise SourceError(
                    f"{self.description}: user or password refused (401)",
                    StreamStatus.AUTH_FAILED,
                )
            if response.status == 461 and method == "SETUP":
                raise Unsupported("the camera refused TCP transport (461)")
            if 300 <= response.status < 400:
                # An NVR or a relay sending the client elsewhere: FFmpeg follows redirects
                # (with the credentials), this client does not.
                raise Unsupported(f"the camera redirects to another address ({response.status})")
            if not 200 <= response.status < 300:
                raise SourceError(
                    f"{self.description}: {method} failed: {response.status} {response.reason}",
                    _STATUS_OF_ANSWER.get(response.status, StreamStatus.ERROR),
                )
            return response
        raise AssertionError("unreachable")

    def _read_response(self) -> Response:
        """Read one RTSP response during setup (skipping any interleaved data before it)."""
        assert self._sock is not None
        deadline = time.monotonic() + self._open_timeout
        while True:
            message = self._take_message()
            if isinstance(message, Response):
                return message
            if message is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SourceError(
                        f"{self.description}: no answer from the camera", StreamStatus.UNREACHABLE
                    )
                self._sock.settimeout(remaining)
                if not self._recv():
                    raise CameraError(f"{self.description}: the camera closed the connection")

    def _recv(self, *, wait: bool = True) -> int:
        """Append what the socket has; 0 when closed, -1 when (without ``wait``) nothing."""
        assert self._sock is not None
        try:
            size = self._sock.recv_into(self._chunk, 0, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return -1
        except TimeoutError:
            raise SourceError(
                f"{self.description}: no answer from the camera", StreamStatus.UNREACHABLE
            ) from None
        except OSError as err:
            raise SourceError(
                f"{self.description}: read failed: {_os_reason(err)}", os_error_status(err)
            ) from None
        if self._pos:  # drop what was taken, once per read rather than once per message
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += self._chunk_view[:size]
        return size

    def _take_message(self) -> Response | bytes | None:
        """The next complete message in the buffer: a response, RTP bytes, or None."""
        buf, pos = self._buffer, self._pos
        while len(buf) - pos >= 4:
            if buf[pos] == 0x24:  # "$": interleaved binary data
                size = (buf[pos + 2] << 8) | buf[pos + 3]
                if len(buf) < pos + 4 + size:
                    break
                channel = buf[pos + 1]
                self._pos = pos = pos + 4 + size
                if channel == self._channel:
                    return bytes(buf[pos - size : pos])
                continue  # RTCP and other channels
            if not buf[pos : pos + 1].isalpha():
                # Out of step (never seen on TCP, but cheap to survive): find the next "$".
                found = buf.find(b"$", pos + 1)
                self._pos = pos = found if found >= 0 else len(buf)
                continue
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                if len(buf) - pos > _MAX_HEADER:
                    raise CameraError(f"{self.description}: garbled answer from the camera")
                break
            first, headers = parse_head(bytes(buf[pos:end]))
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= _MAX_BODY:
                raise CameraError(f"{self.description}: garbled answer from the camera")
            if len(buf) < end + 4 + length:
                break
            body = bytes(buf[end + 4 : end + 4 + length])
            self._pos = pos = end + 4 + length
            if first.startswith("RTSP/"):
                _, _, rest = first.partition(" ")
                code, _, reason = rest.partition(" ")
                if not code.isdigit():
                    raise CameraError(f"{self.description}: garbled answer from the camera")
                return Response(int(code), reason, headers, body)
            # A request from the server (rare): nothing to do with it.
        return None

    def access_units(self, stop: threading.Event) -> Iterator[AccessUnit]:
        """Yield the track's access units until ``stop`` is set or the stream fails."""
        assert self._sock is not None
        assert self.track is not None
        depacketizer = H264Depacketizer(self.track.payload_type, self.track.parameter_sets)
        self._sock.settimeout(None)
        last_data = time.monotonic()
        keepalive_every = self._session_timeout / 2
        next_keepalive = last_data + keepalive_every
        while not stop.is_set():
            # Take everything gathered since the last batch: a read that does not fill
            # the chunk has emptied the socket.
            got = received = self._recv(wait=False)
            while got == READ_CHUNK:
                got = self._recv(wait=False)
            if got == 0:
                raise CameraError(f"{self.description}: the camera closed the connection")
            now = time.monotonic()
            if received > 0:
                last_data = now
                yield from self._drain(depacketizer)
            elif now - last_data > self._read_timeout:
                raise SourceError(
                    f"{self.description}: no data for {self._read_timeout:.0f} s",
                    StreamStatus.NO_VIDEO,
                )
            if now >= next_keepalive:
                self._send(self._keepalive_method, self._target.url)
                next_keepalive = now + keepalive_every
            stop.wait(self._batch_interval)

    def _drain(self, depacketizer: H264Depacketizer) -> list[AccessUnit]:
        """The access units completed by what is in the buffer."""
        push, channel = depacketizer.push, self._channel
        buf, pos = self._buffer, self._pos
        units: list[AccessUnit] = []
        # The hot loop (a few hundred RTP packets a second), kept inline and local.
        while len(buf) - pos >= 4:
            if buf[pos] == 0x24:
                end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if end > len(buf):
                    break
                if buf[pos + 1] == channel and (done := push(buf[pos + 4 : end])):
                    units += done
                pos = end
                continue
            self._pos = pos
            message = self._take_message()  # an answer to a keep-alive, in between
            pos = self._pos
            if message is None:
                break
            if isinstance(message, Response) and message.status == 454:
                raise CameraError(f"{self.description}: the camera ended the session")
            if isinstance(message, bytes):
                units += push(message)
        self._pos = pos
        return units

    def close(self) -> None:
        """Say goodbye (best effort) and close the connection."""
        if self._sock is None:
            return
        if self._session:
            with contextlib.suppress(CameraError):
                self._send("TEARDOWN", self._target.url)
        self._sock.close()
        self._sock = None


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection with a receive buffer sized for batched reading."""
    error: OSError = OSError("no address")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            # Before connecting, so that the window offered to the camera starts large:
            # a camera may drop video rather than wait for a slow reader.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as err:
            sock.close()
            error = err
            continue
        return sock
    raise error


def _os_reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


class DecodeTimes:
    """When each picture is decoded, for pictures stamped with when they are shown.

    RTP gives a picture one timestamp: when it is shown (RFC 6184). A camera that
    sends B-frames sends a picture before the ones shown ahead of it that refer to it,
    so those times go back now and then; a recording needs decoding times that only go
    forward and never pass the showing time. The n-th picture sent is decoded when the
    n-th picture shown would be, ``reorder`` pictures earlier: the ``reorder + 1``-th
    latest showing time received so far (as FFmpeg derives it). Without B-frames that
    is the picture's own time.

    ``reorder`` is the most pictures sent before one that is shown ahead of them: from
    the opening pictures when given, and raised when a deeper reordering comes (the
    decoding times of the pictures just before it were then too late: one picture is
    shown out of place, once). A jump of the timestamps further than any reordering (a
    camera's clock set) starts over from the new times.

    Args:
        frame: One frame in timestamp units.
        opening: The first pictures' timestamps, in the order sent, to learn ``reorder``.
    """

    def __init__(self, frame: int, opening: Sequence[int] = ()) -> None:
        self._reach = (MAX_REORDER + 1) * max(1, frame)
        self._frame = frame
        #: The ``reorder + 1`` latest showing times (a min-heap: the first is the answer).
        self._latest: list[int] = []
        self._sent: deque[int] = deque(maxlen=MAX_REORDER + 1)
        self.reorder = 0
        for pts in opening:
            self._follow(pts)
            self.reorder = max(self.reorder, self._depth(pts))
            self._sent.append(pts)
        self._sent.clear()

    def _follow(self, pts: int) -> None:
        """Start over after a jump no reordering explains."""
        if self._sent and not -self._reach <= pts - max(self._sent) <= self._reach:
            self._sent.clear()
            self._latest.clear()

    def _depth(self, pts: int) -> int:
        """How many of the recent pictures are shown after this one."""
        return min(MAX_REORDER, sum(1 for sent in self._sent if sent > pts))

    def __call__(self, pts: int) -> int:
        """The decoding time of the next picture sent, shown at ``pts``."""
        self._follow(pts)
        depth = self._depth(pts)
        self._sent.append(pts)
        latest = self._latest
        if depth > self.reorder:
            self.reorder = depth
            latest[:] = heapq.nlargest(depth + 1, self._sent)
            heapq.heapify(latest)
        else:
            heapq.heappush(latest, pts)
            if len(latest) > self.reorder + 1:
                heapq.heappop(latest)
        # The first pictures of a stream: the ones shown before them were never sent.
        return latest[0] - (self.reorder + 1 - len(latest)) * self._frame


def _frame_rate(timestamps: Sequence[int], clock_rate: int) -> float | None:
    """Frames a second from pictures' showing times (any order): the usual step between them."""
    shown = sorted(set(timestamps))
    steps = sorted(b - a for a, b in itertools.pairwise(shown))
    return clock_rate / steps[len(steps) // 2] if steps else None


class RtspSource:
    """An H.264 RTSP camera read by :class:`RtspSession`; other streams go to FFmpeg.

    Args:
        url: The configured source (may contain credentials; never logged).
        fallback: The FFmpeg source used when this client cannot take the stream.
        batch_interval: Seconds between reads: :data:`BATCH_INTERVAL` for recording and
            motion; the live view reads more often, for latency.
        clock: Monotonic seconds (when to try this client again, :data:`RETRY_OWN_CLIENT`).
    """

    def __init__(
        self,
        url: str,
        fallback: Source,
        *,
        batch_interval: float = BATCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._fallback = fallback
        self._batch_interval = batch_interval
        self._clock = clock
        self._fallback_until: float | None = None

    @property
    def description(self) -> str:
        """The source without credentials."""
        return redact_url(self._url)

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        """Open the stream and yield normalised packets until ``stop`` is set."""
        if self._fallback_until is not None and self._clock() < self._fallback_until:
            yield from self._fallback.packets(stop)
            return
        session = RtspSession(
            self._url,
            open_timeout=OPEN_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            batch_interval=self._batch_interval,
        )
        try:
            try:
                track = session.open()
            except Unsupported as err:
                _LOGGER.info("%s: %s; reading it with FFmpeg", self.description, err)
                self._fallback_until = self._clock() + RETRY_OWN_CLIENT
                session.close()
                yield from self._fallback.packets(stop)
                return
            yield from self._read(session, track, stop)
        finally:
            session.close()

    def _read(
        self, session: RtspSession, track: VideoTrack, stop: threading.Event
    ) -> Iterator[EncodedPacket]:
        time_base = Fraction(1, track.clock_rate)
        units = session.access_units(stop)
        # The first pictures, with when they arrived: how B-frames reorder pictures, and
        # the frame rate when the camera does not say it (the step between the first two
        # pictures sent is several frames with B-frames).
        held = [(unit, time.time()) for unit in itertools.islice(units, OPENING_PICTURES)]
        if not held:
            return
        first = held[0][0]
        opening = [unit.timestamp for unit, _ in held]
        fps = track.fps
        if fps is None or plausible_fps(fps) != fps:
            fps = plausible_fps(_frame_rate(opening, track.clock_rate))
        info = probe_size(StreamInfo("h264", 0, 0, fps, time_base), first.data)
        clock = PacketClock(time_base, fps)
        decode_times = DecodeTimes(clock.frame_duration, opening)
        sizes = SizeWatch(self.description)
        arrivals = itertools.chain(held, ((unit, None) for unit in units))
        for unit, arrived in arrivals:
            if unit.keyframe:
                info = sizes.check(info, unit.data)
            timestamp = unit.timestamp
            pts, dts, wall = clock.stamp(timestamp, decode_times(timestamp), arrived)
            yield EncodedPacket(unit.data, pts, dts, unit.keyframe, wall, info)
