"""The detector on real H.264 (libx264 through PyAV), as the camera pipeline feeds it."""

from __future__ import annotations

import io

import av
import cv2
import numpy as np
import numpy.typing as npt

from doorstep_bridge.motion import MotionGate, create_detector
from doorstep_bridge.motion.luma import luma_plane
from doorstep_bridge.motion.settings import MotionSettings
from tests.bridge.motion.conftest import paste, person, porch, u8


def encode(frames: list[npt.NDArray[np.uint8]], fps: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape
        stream.pix_fmt = "yuv420p"
        # A 2 s GOP: every keyframe re-quantises the whole picture ("breathing").
        stream.options = {"preset": "veryfast", "crf": "28", "g": str(2 * fps)}
        for gray in frames:
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def moving_times(data: bytes, fps: int) -> list[float]:
    out = []
    with av.open(io.BytesIO(data), "r") as inp:
        detector = None
        for i, frame in enumerate(inp.decode(video=0)):
            luma = luma_plane(frame)
            if detector is None:
                detector = create_detector(frame.width, frame.height, MotionSettings(), fps=fps)
            if detector.detect(luma).moving:
                out.append(i / fps)
    return out


def test_still_scene_with_encoder_noise_has_no_phantom_motion() -> None:
    scene = u8(cv2.resize(porch(320, 180, seed=11), (640, 360), interpolation=cv2.INTER_CUBIC))
    data = encode([scene] * 150, fps=5)  # 30 s at the default detect rate
    assert moving_times(data, fps=5) == []


def test_visitor_in_real_video_turns_motion_on_then_off() -> None:
    fps = 5
    scene = u8(cv2.resize(porch(320, 180, seed=12), (640, 360), interpolation=cv2.INTER_CUBIC))
    figure = person(220, 80, seed=2)
    frames = [scene] * 15
    frames += [paste(scene, figure, x, 100) for x in range(-60, 700, 40)]
    frames += [scene] * 50
    data = encode(frames, fps)
    gate = MotionGate(frames_to_start=2, off_delay=5.0)
    changes = []
    with av.open(io.BytesIO(data), "r") as inp:
        detector = create_detector(640, 360, MotionSettings(), fps=fps)
        for i, frame in enumerate(inp.decode(video=0)):
            state = gate.update(detector.detect(luma_plane(frame)).moving, i / fps)
            if state is not None:
                changes.append((state, i))
    last_in_view = 15 + sum(1 for x in range(-60, 700, 40) if x < 640) - 1
    assert [state for state, _ in changes] == [True, False]
    on_at, off_at = changes[0][1], changes[1][1]
    assert 15 <= on_at <= 17  # frames_to_start=2: the second frame with the visitor
    # OFF once off_delay (5 s = 25 frames) has passed since the visitor left.
    assert last_in_view + 5 * fps <= off_at <= last_in_view + 5 * fps + 3
