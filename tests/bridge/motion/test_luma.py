"""Getting the luma plane of decoded frames without copying it."""

from __future__ import annotations

import av
import numpy as np

from doorstep_bridge.motion.luma import luma_plane


def test_yuv420p_plane_is_a_view_of_the_decoder_buffer() -> None:
    gray = np.tile(np.arange(0, 250, 2, dtype=np.uint8), (90, 1))[:, :120]
    frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
    luma = luma_plane(frame)
    assert luma.shape == (90, 120)
    assert luma.dtype == np.uint8
    assert not luma.flags.owndata
    # H.264-style limited range: black is 16, white 235.
    expected = 16 + gray.astype(np.float64) * 219 / 255
    assert np.abs(luma - expected).max() <= 1.0


def test_rows_padded_by_the_decoder_are_cut_off() -> None:
    frame = av.VideoFrame(170, 64, "yuv420p")
    luma = luma_plane(frame)
    assert luma.shape == (64, 170)
    assert frame.planes[0].line_size >= 170


def test_rgb_frames_are_converted() -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, 24:] = 200
    luma = luma_plane(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
    assert luma.shape == (32, 48)
    assert luma[:, :20].max() < 20
    assert luma[:, 30:].min() > 150
