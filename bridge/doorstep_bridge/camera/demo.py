"""The demo camera (``demo://``): a synthetic porch where a visitor rings every minute.

The scene is drawn with NumPy and encoded with libx264 by the bridge itself, so
the demo exercises the same path as a real camera (H.264 packets → pre-roll
buffer → stream copy, detect decoding → motion). Every ``period`` seconds a
visitor walks up to the door, presses the bell (``on_ring``), waits and leaves.

Options in the URL query: ``demo://?period=60&fps=10&width=640&height=360&clock=1``.

With ``clock=1`` every frame carries a frame clock (off by default: a clock that
changes every frame is motion to the detector): its number and wall time as text, and the
time it was drawn (milliseconds since the epoch, modulo 2**32) as a strip of
black and white blocks along the bottom edge (:func:`draw_clock`). The strip is
placed in fractions of the frame and its blocks are big enough to survive JPEG,
so :func:`read_clock` reads it back from any received picture, scaled or not: a
test or a bench reads latency off a picture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
import threading
import time
from typing import TypeAlias
from urllib.parse import parse_qs, urlsplit

import av
import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.convert import reformat
from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.packets import EncodedPacket, StreamInfo

Image: TypeAlias = npt.NDArray[np.uint8]

# Phases of one visit, as fractions of the period.
_ARRIVE = (0.55, 0.72)  # walks from the left edge to the door
_RING = 0.75
_LEAVE = (0.85, 0.97)  # walks off to the right


#: The frame clock: 32 bits of time and 8 bits of checksum, one block each.
CLOCK_BITS = 32
_CHECK_BITS = 8
_BLOCKS = CLOCK_BITS + _CHECK_BITS
#: Where the strip is, in fractions of the frame (left, top, right, bottom).
CLOCK_STRIP = (0.04, 0.915, 0.96, 0.975)


def _checksum(value: int) -> int:
    return (value ^ (value >> 8) ^ (value >> 16) ^ (value >> 24) ^ 0x5A) & 0xFF


def _block_spans(width: int, height: int) -> tuple[list[tuple[int, int]], int, int]:
    """Columns of each block and the strip's top and bottom rows, for a frame size."""
    left, top, right, bottom = CLOCK_STRIP
    x0, x1 = left * width, right * width
    step = (x1 - x0) / _BLOCKS
    columns = [(round(x0 + i * step), round(x0 + (i + 1) * step)) for i in range(_BLOCKS)]
    return columns, round(top * height), round(bottom * height)


def draw_clock(image: Image, frame_number: int, now: float) -> None:
    """Draw the frame clock in place: the text, and the machine-readable strip of ``now``."""
    height, width = image.shape[:2]
    millis = int(now * 1000) % (1 << CLOCK_BITS)
    word = (millis << _CHECK_BITS) | _checksum(millis)
    columns, top, bottom = _block_spans(width, height)
    pad = max(1, (bottom - top) // 4)
    image[top - pad : bottom + pad, columns[0][0] - pad : columns[-1][1] + pad] = (128, 128, 128)
    for index, (x1, x2) in enumerate(columns):
        bit = (word >> (_BLOCKS - 1 - index)) & 1
        image[top:bottom, x1:x2] = (255, 255, 255) if bit else (0, 0, 0)
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    scale = max(0.3, height / 720)
    cv2.putText(
        image,
        f"#{frame_number} {stamp}",
        (columns[0][0], max(top - pad - round(8 * scale), 10)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        max(1, round(scale * 2)),
        cv2.LINE_AA,
    )


def read_clock(image: npt.NDArray[np.uint8]) -> int | None:
    """The time in a frame clock strip (ms since the epoch modulo 2**32), None if unreadable.

    ``image`` is BGR or grey, at the frame's size or scaled (the aspect kept).
    """
    grey = image if image.ndim == 2 else image[..., :3].mean(axis=2)
    height, width = grey.shape[:2]
    columns, top, bottom = _block_spans(width, height)
    rows = slice(top + (bottom - top) // 4, bottom - (bottom - top) // 4 or bottom)
    word = 0
    for x1, x2 in columns:
        inner = slice(x1 + (x2 - x1) // 4, max(x2 - (x2 - x1) // 4, x1 + 1))
        level = float(np.mean(grey[rows, inner]))
        if 64 < level < 192:
            return None  # not a clean block: no strip here, or a torn picture
        word = (word << 1) | int(level >= 128)
    millis = word >> _CHECK_BITS
    return millis if word & 0xFF == _checksum(millis) else None


def clock_age_ms(millis: int, now: float) -> int:
    """How many ms before ``now`` a frame clock reading was drawn (modulo arithmetic)."""
    return (int(now * 1000) - millis) % (1 << CLOCK_BITS)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Parsed ``demo://`` options."""

    period: float = 60.0
    fps: int = 10
    width: int = 640
    height: int = 360
    clock: bool = False

    @classmethod
    def from_url(cls, url: str) -> DemoOptions:
        """Read options from the URL query; unknown or bad values raise CameraError."""
        query = parse_qs(urlsplit(url).query)
        values: dict[str, float] = {}
        for key, items in query.items():
            if key not in {"period", "fps", "width", "height", "clock"}:
                raise CameraError(f"demo source: unknown option {key!r}")
            try:
                values[key] = float(items[-1])
            except ValueError:
                raise CameraError(f"demo source: {key} must be a number") from None
        options = cls(
            period=values.get("period", 60.0),
            fps=int(values.get("fps", 10)),
            width=int(values.get("width", 640)) // 2 * 2,
            height=int(values.get("height", 360)) // 2 * 2,
            clock=bool(values.get("clock", 0)),
        )
        if options.period < 4 or not 1 <= options.fps <= 30 or options.width < 64:
            raise CameraError("demo source: period >= 4 s, 1 <= fps <= 30, width >= 64")
        return options


class DemoScene:
    """Draws the porch and the visitor at any time of the cycle."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        w, h = options.width, options.height
        ys, xs = np.mgrid[0:h, 0:w]
        wall = (150 + 20 * np.sin(xs / 11.0) * np.sin(ys / 7.0)).astype(np.uint8)
        image = np.stack([wall * 0.85, wall * 0.9, wall], axis=-1).astype(np.uint8)
        image[int(h * 0.8) :, :] = (90, 100, 110)  # porch floor
        self.door = (int(w * 0.42), int(h * 0.18), int(w * 0.58), int(h * 0.8))
        x1, y1, x2, y2 = self.door
        frame = max(3, w // 80)
        image[y1 - frame : y2, x1 - frame : x2 + frame] = (230, 235, 240)  # white door frame
        image[y1:y2, x1:x2] = (40, 60, 120)  # the door
        image[y1 + 4 : y2, x1 + 4 : x2 - 4] = (50, 75, 140)
        pane_x1, pane_x2 = x1 + (x2 - x1) // 4, x2 - (x2 - x1) // 4
        image[y1 + (y2 - y1) // 10 : y1 + (y2 - y1) // 4, pane_x1:pane_x2] = (200, 190, 150)
        knob = max(2, w // 160)
        kx, ky = x2 - (x2 - x1) // 6, (y1 + y2) // 2
        image[ky - knob : ky + knob, kx - knob : kx + knob] = (60, 190, 220)  # brass knob
        step_y = int(h * 0.8)
        image[step_y : step_y + max(4, h // 30), x1 - w // 20 : x2 + w // 20] = (170, 175, 180)
        image[step_y - 2 : step_y + 2, x1 + 6 : x2 - 6] = (40, 80, 60)  # doormat edge
        lamp_x, lamp_y = x1 - w // 12, int(h * 0.3)
        image[lamp_y : lamp_y + h // 14, lamp_x - w // 80 : lamp_x + w // 80] = (120, 230, 250)
        bx, by = x2 + max(4, w // 60), int(h * 0.45)
        image[by - 3 : by + 3, bx - 3 : bx + 3] = (220, 220, 220)  # the bell
        self.bell = (bx, by)
        self.background: Image = image

    def visitor_x(self, phase: float) -> float | None:
        """Horizontal centre of the visitor (fraction of the width), None when away."""
        door_x = 0.35
        if _ARRIVE[0] <= phase < _ARRIVE[1]:
            return -0.05 + (door_x + 0.05) * (phase - _ARRIVE[0]) / (_ARRIVE[1] - _ARRIVE[0])
        if _ARRIVE[1] <= phase < _LEAVE[0]:
            return door_x
        if _LEAVE[0] <= phase < _LEAVE[1]:
            return door_x + 0.75 * (phase - _LEAVE[0]) / (_LEAVE[1] - _LEAVE[0])
        return None

    def frame(self, t: float) -> Image:
        """The frame at ``t`` seconds since the start."""
        image = self.background.copy()
        phase = (t % self.options.period) / self.options.period
        centre = self.visitor_x(phase)
        if centre is not None:
            w, h = self.options.width, self.options.height
            cx = int(centre * w)
            body_w, body_h = max(6, w // 14), int(h * 0.42)
            top = int(h * 0.8) - body_h
            left, right = max(cx - body_w // 2, 0), min(cx + body_w // 2, w)
            if right > left:
                image[top:, left:right] = (60, 50, 160)  # coat
                head = max(4, body_w // 2)
                hx1, hx2 = max(cx - head // 2, 0), min(cx + head // 2, w)
                if hx2 > hx1:
                    image[top - head - 2 : top - 2, hx1:hx2] = (120, 160, 200)
        return image


class DemoSource:
    """The demo camera as a source; ``on_ring`` is called (from the reader thread) per visit."""

    def __init__(self, url: str, on_ring: Callable[[], None] | None = None) -> None:
        self._url = url
        self._on_ring = on_ring

    @property
    def description(self) -> str:
        """The source as configured."""
        return "demo://"

    def packets(self, stop: threading.Event) -> Iterator[EncodedPacket]:
        """Draw, encode and yield frames in real time until ``stop`` is set.

        Raises:
            CameraError: The ``demo://`` options are invalid.
        """
        options = DemoOptions.from_url(self._url)
        scene = DemoScene(options)
        time_base = Fraction(1, options.fps)
        info = StreamInfo("h264", options.width, options.height, float(options.fps), time_base)
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = options.width, options.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = time_base
        encoder.framerate = Fraction(options.fps)
        encoder.gop_size = options.fps * 2
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
        started_mono, started_wall = time.monotonic(), time.time()
        index = 0
        rung_cycle = -1
        while not stop.is_set():
            t = index / options.fps
            delay = started_mono + t - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
            picture = scene.frame(t)
            if options.clock:
                draw_clock(picture, index, time.time())
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts = index
            for packet in encoder.encode(reformat(frame, format="yuv420p")):
                pts = int(packet.pts if packet.pts is not None else index)
                yield EncodedPacket(
                    bytes(packet),
                    pts,
                    int(packet.dts if packet.dts is not None else pts),
                    bool(packet.is_keyframe),
                    started_wall + pts / options.fps,
                    info,
                )
            cycle, phase = divmod(t / options.period, 1.0)
            if phase >= _RING and rung_cycle != int(cycle):
                rung_cycle = int(cycle)
                if self._on_ring is not None:
                    self._on_ring()
            index += 1
