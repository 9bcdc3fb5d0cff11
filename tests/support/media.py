#!/usr/bin/env python3
"""Synthetic H.264 test footage encoded with PyAV/libx264.

The scene is a static textured background (so a detector has something to
ignore) with an optional bright block that walks across it between two times:
tests know exactly when there is motion.

Run as a script to write a file for the RTSP server or the demo::

    .venv/bin/python tests/support/media.py out.mp4 --width 1920 --height 1080 --fps 15 \
        --seconds 20 --motion 8 14
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from doorstep_bridge.exceptions import CameraError
from doorstep_bridge.packets import EncodedPacket


@dataclass(frozen=True, slots=True)
class Footage:
    """What a fixture file contains."""

    path: Path
    width: int
    height: int
    fps: int
    seconds: float
    gop: int
    motion: tuple[float, float] | None


def background(width: int, height: int) -> npt.NDArray[np.uint8]:
    """A deterministic textured BGR background (soft gradient plus a grid)."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = (60 + 40 * np.sin(xs / 37.0) + 30 * np.cos(ys / 23.0)).astype(np.float32)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = np.clip(base, 0, 255)
    image[..., 1] = np.clip(base * 0.9 + 20, 0, 255)
    image[..., 2] = np.clip(base * 0.8 + 40, 0, 255)
    image[::32, :, :] = 30
    image[:, ::32, :] = 30
    return image


def scene_frame(
    bg: npt.NDArray[np.uint8], t: float, motion: tuple[float, float] | None
) -> npt.NDArray[np.uint8]:
    """The frame at time ``t``: the background, plus the walker while ``motion`` lasts."""
    frame = bg.copy()
    if motion is not None and motion[0] <= t < motion[1]:
        height, width = frame.shape[:2]
        progress = (t - motion[0]) / max(motion[1] - motion[0], 1e-6)
        size = max(height // 4, 8)
        x = int(progress * (width - size))
        y = height // 2 - size // 2
        frame[y : y + size, x : x + size] = (230, 230, 240)
    return frame


def write_h264(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 15,
    seconds: float = 6.0,
    gop: int | None = None,
    motion: tuple[float, float] | None = None,
    preset: str = "ultrafast",
    noise: float = 0.0,
    bitrate: int | None = None,
    b_frames: int = 0,
) -> Footage:
    """Encode the synthetic scene to an H.264 MP4 (keyframe every ``gop``).

    Args:
        noise: Standard deviation of per-frame sensor-like noise (grey levels); a real
            camera's picture is never still, which is what makes decoding cost something.
        bitrate: Constant-ish bitrate in bit/s, as camera encoders use (default: CRF).
        b_frames: B-frames between reference frames (High profile, as some cameras
            send): frames then travel out of display order. None by default.
    """
    gop = gop or fps  # one keyframe a second unless told otherwise
    bg = background(width, height)
    rng = np.random.default_rng(7)
    grain = [
        rng.normal(0, noise, (height, width, 1)).astype(np.int16) for _ in range(8 if noise else 0)
    ]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {
            "preset": preset,
            "bf": str(b_frames),
            "keyint_min": str(gop),
            "sc_threshold": "0",
        }
        if not b_frames:
            stream.codec_context.options |= {"tune": "zerolatency"}  # also: no B-frames
        else:
            stream.codec_context.options |= {"profile": "high", "b_strategy": "0"}
        if bitrate:
            stream.codec_context.bit_rate = bitrate
            stream.codec_context.options |= {"maxrate": str(bitrate), "bufsize": str(bitrate)}
        stream.codec_context.time_base = Fraction(1, fps)
        for index in range(round(seconds * fps)):
            image = scene_frame(bg, index / fps, motion)
            if grain:
                image = np.clip(image + grain[index % len(grain)], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Footage(path, width, height, fps, seconds, gop, motion)


def write_mjpeg_frames(
    count: int, width: int = 320, height: int = 240, motion: tuple[int, int] | None = None
) -> list[bytes]:
    """JPEG frames of the scene (for an MJPEG server); motion given in frame indexes."""
    import cv2

    bg = background(width, height)
    frames = []
    span = (float(motion[0]), float(motion[1])) if motion else None
    for index in range(count):
        image = scene_frame(bg, float(index), span)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        frames.append(data.tobytes())
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--gop", type=int, default=None, help="frames between keyframes")
    parser.add_argument("--motion", type=float, nargs=2, metavar=("START", "END"))
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--noise", type=float, default=0.0, help="sensor noise (grey levels)")
    parser.add_argument("--bitrate", type=int, default=None, help="bit/s (default: CRF)")
    args = parser.parse_args()
    footage = write_h264(
        args.output,
        width=args.width,
        height=args.height,
        fps=args.fps,
        seconds=args.seconds,
        gop=args.gop,
        motion=tuple(args.motion) if args.motion else None,
        preset=args.preset,
        noise=args.noise,
        bitrate=args.bitrate,
    )
    print(footage)


if __name__ == "__main__":
    main()


def file_packets(path: Path, base_wall: float = 1_700_000_000.0) -> list[EncodedPacket]:
    """Every packet of a file as the bridge's sources deliver them, with wall times
    ``base_wall + pts`` (read as fast as possible, no looping)."""
    import threading

    from doorstep_bridge.camera.sources import AvSource

    source = AvSource(str(path), loop=False, realtime=False)
    packets: list[EncodedPacket] = []
    stream = source.packets(threading.Event())
    while True:
        try:
            packet = next(stream)
        except (CameraError, StopIteration):  # end of file
            return packets
        packets.append(replace(packet, wall=base_wall + packet.seconds))


def decode_all(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Every frame of a video file as a luma (grey) array."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]


def decodable_frames(path: Path) -> int:
    """Frames a player can show from a (possibly truncated) MP4: up to the first broken one."""
    frames = 0
    with av.open(str(path)) as container:
        try:
            for packet in container.demux(video=0):
                if packet.is_corrupt:
                    break
                frames += len(packet.decode())
        except av.FFmpegError:
            pass
    return frames


def encode_annexb(width: int, height: int, count: int) -> list[bytes]:
    """``count`` H.264 access units (Annex B, parameter sets on each keyframe)."""
    encoder: Any = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 15)
    encoder.gop_size = 5
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "bframes=0"}
    units: list[bytes] = []
    for index in range(count):
        picture = np.full((height, width, 3), index * 8 % 256, np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        units += [bytes(packet) for packet in encoder.encode(frame)]
    return units + [bytes(packet) for packet in encoder.encode(None)]
