"""The demo camera (``demo://``): a synthetic porch where a visitor rings every minute.

The scene is drawn with NumPy and encoded with libx264 by the bridge itself, so
the demo exercises the same path as a real camera (H.264 packets → pre-roll
buffer → stream copy, detect decoding → motion). Every ``period`` seconds a
visitor walks up to the door, presses the bell (``on_ring``), waits and leaves.

Options in the URL query: ``demo://?period=60&fps=10&width=640&height=360``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
import threading
import time
from urllib.parse import parse_qs, urlsplit

import av
import numpy as np
import numpy.typing as npt

from doorstep_bridge.camera.packets import EncodedPacket, StreamInfo
from doorstep_bridge.exceptions import CameraError

type Image = npt.NDArray[np.uint8]

# Phases of one visit, as fractions of the period.
_ARRIVE = (0.55, 0.72)  # walks from the left edge to the door
_RING = 0.75
_LEAVE = (0.85, 0.97)  # walks off to the right


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Parsed ``demo://`` options."""

    period: float = 60.0
    fps: int = 10
    width: int = 640
    height: int = 360

    @classmethod
    def from_url(cls, url: str) -> DemoOptions:
        """Read options from the URL query; unknown or bad values raise CameraError."""
        query = parse_qs(urlsplit(url).query)
        values: dict[str, float] = {}
        for key, items in query.items():
            if key not in {"period", "fps", "width", "height"}:
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
        image[y1:y2, x1:x2] = (40, 60, 120)  # the door
        image[y1 + 4 : y2, x1 + 4 : x2 - 4] = (50, 75, 140)
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
            frame = av.VideoFrame.from_ndarray(scene.frame(t), format="bgr24")
            frame.pts = index
            for packet in encoder.encode(frame.reformat(format="yuv420p")):
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
