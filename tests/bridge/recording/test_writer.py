"""Clip files: stream copy, privacy masks burnt in, transcoded MJPEG, crash repair."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
import subprocess
import sys

import av
import numpy as np
import pytest

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.packets import EncodedPacket, StreamInfo
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.writer import ClipWriter, finalize, probe
from tests.support.media import Footage, decode_all, write_mjpeg_frames

MASK = ((40, 30), (260, 30), (260, 200), (40, 200))


def _write(tmp_path: Path, packets: list[EncodedPacket], masks: MaskSet) -> Path:
    partial = tmp_path / "clip.partial.mp4"
    writer = ClipWriter(partial, packets[0].stream, masks, comment='{"reason": "motion"}')
    for packet in packets:
        writer.write(packet)
    writer.close()
    final = tmp_path / "clip.mp4"
    finished = finalize(partial, final)
    assert not partial.exists()
    assert finished.frames == len(packets)
    return final


def _atoms(path: Path) -> list[str]:
    data = path.read_bytes()
    names, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        names.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size < 8:
            break
        offset += size
    return names


def test_stream_copy_clip_is_browser_ready_h264_mp4(
    tmp_path: Path, packets: list[EncodedPacket]
) -> None:
    final = _write(tmp_path, packets[15:75], MaskSet(()))
    atoms = _atoms(final)
    assert atoms.index("moov") < atoms.index("mdat")  # +faststart
    with av.open(str(final)) as container:
        stream = container.streams.video[0]
        assert container.format.name.startswith("mov,mp4")
        assert stream.codec_context.name == "h264"
        first = next(container.demux(stream))
        assert first.is_keyframe
    frames = decode_all(final)
    assert len(frames) == 60
    duration, count, comment = probe(final)
    assert duration == pytest.approx(4.0, abs=0.01)
    assert count == 60
    assert comment == '{"reason": "motion"}'


def test_stream_copy_keeps_the_original_bytes(tmp_path: Path, packets: list[EncodedPacket]) -> None:
    final = _write(tmp_path, packets[:30], MaskSet(()))
    original = decode_all(final)
    with av.open(str(final)) as container:
        sizes = [p.size for p in container.demux(video=0) if p.size]
    # Copy, not re-encode: every frame keeps its size (Annex B → AVCC keeps NAL payloads).
    assert len(sizes) == 30
    assert len(original) == 30
    assert abs(sum(sizes) - sum(len(p.data) for p in packets[:30])) < 30 * 64


def test_privacy_masks_are_filled_in_every_frame(
    tmp_path: Path, packets: list[EncodedPacket]
) -> None:
    final = _write(tmp_path, packets[30:90], MaskSet([MASK]))  # includes the walker
    frames = decode_all(final)
    assert len(frames) == 60
    for luma in frames:
        inside = luma[34:196, 44:256]  # the mask, minus a 4 px margin for chroma/edges
        assert int(inside.max()) <= 2  # black (Y=16 is grey level 0)
        outside = luma[220:, 300:]
        assert float(outside.mean()) > 30  # the rest of the scene is still there


def test_mjpeg_is_transcoded_to_h264(tmp_path: Path) -> None:
    jpegs = write_mjpeg_frames(12, width=320, height=240)
    info = StreamInfo("mjpeg", 320, 240, 10.0, Fraction(1, 90000))
    packets = [
        EncodedPacket(data, i * 9000, i * 9000, True, 1.7e9 + i / 10, info)
        for i, data in enumerate(jpegs)
    ]
    final = _write(tmp_path, packets, MaskSet(()))
    with av.open(str(final)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    frames = decode_all(final)
    assert len(frames) == 12
    assert frames[0].shape == (240, 320)


def test_partial_file_cut_by_kill_is_repaired(tmp_path: Path, footage: Footage) -> None:
    partial = tmp_path / "clip.partial.mp4"
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path.cwd())!r})
from tests.support.media import file_packets
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.writer import ClipWriter
packets = file_packets({str(footage.path)!r})
writer = ClipWriter({str(partial)!r}, packets[0].stream, MaskSet(()))
for index, packet in enumerate(packets):
    writer.write(packet)
    if index == 70:
        os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -9
    final = tmp_path / "clip.mp4"
    finished = finalize(partial, final)
    # Readable up to the last complete fragment (keyframes at 0, 15, ... 60).
    assert 45 <= finished.frames <= 71
    assert len(decode_all(final)) == finished.frames


def test_unplayable_partial_is_reported(tmp_path: Path) -> None:
    partial = tmp_path / "clip.partial.mp4"
    partial.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)
    with pytest.raises(StorageError):
        finalize(partial, tmp_path / "clip.mp4")
    assert not (tmp_path / "clip.mp4").exists()
    assert not (tmp_path / ".clip.mp4.tmp").exists()


def test_mask_rasterisation_scales_to_another_frame_size() -> None:
    masks = MaskSet([MASK], reference=(640, 360))
    luma, chroma = masks.masks(320, 180)
    assert luma[50, 70]  # (140, 100) in 640x360
    assert not luma[150, 300]
    assert chroma.shape == (90, 160)
    assert chroma[25, 35]
    image = np.full((180, 320, 3), 200, np.uint8)
    masks.fill_bgr(image)
    assert image[50, 70].tolist() == [0, 0, 0]
    assert image[150, 300].tolist() == [200, 200, 200]


def test_hevc_source_is_transcoded_to_h264(tmp_path: Path) -> None:
    import av as pyav

    from tests.support.media import background, file_packets

    source = tmp_path / "hevc.mp4"
    with pyav.open(str(source), "w") as container:
        stream = container.add_stream("libx265", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
        image = background(320, 180)
        for index in range(20):
            frame = pyav.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    packets = file_packets(source)
    assert packets[0].stream.codec == "hevc"
    assert packets[0].stream.extradata  # hvcC: the decoder needs it
    final = _write(tmp_path, packets, MaskSet(()))
    with av.open(str(final)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert len(decode_all(final)) == len(packets)


def test_a_crash_loses_at_most_about_a_second_even_with_long_gops(tmp_path: Path) -> None:
    from tests.support.media import write_h264

    long_gop = write_h264(tmp_path / "gop4s.mp4", width=320, height=180, fps=15, seconds=5, gop=60)
    partial = tmp_path / "clip.partial.mp4"
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path.cwd())!r})
from tests.support.media import file_packets
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.writer import ClipWriter
packets = file_packets({str(long_gop.path)!r})
writer = ClipWriter({str(partial)!r}, packets[0].stream, MaskSet(()))
for index, packet in enumerate(packets):
    writer.write(packet)
    if index == 50:
        os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -9
    finished = finalize(partial, tmp_path / "clip.mp4")
    # The only keyframe is frame 0, yet fragments were cut every second.
    assert finished.frames >= 30
    assert len(decode_all(tmp_path / "clip.mp4")) == finished.frames


def test_a_partial_file_cut_short_mid_frame_finishes_into_a_playable_clip(
    tmp_path: Path, packets: list[EncodedPacket]
) -> None:
    """What a full disk leaves: the last fragment written only in part."""
    writer = ClipWriter(tmp_path / "c.partial.mp4", packets[0].stream, MaskSet(()))
    for packet in packets[:40]:
        writer.write(packet)
    writer.close()
    data = writer.partial.read_bytes()
    writer.partial.write_bytes(data[: len(data) - 3000])  # inside the last keyframe
    done = finalize(writer.partial, tmp_path / "c.mp4")
    assert done.frames == 30  # the two complete seconds
    assert len(decode_all(done.path)) == 30


def test_a_masked_clip_starts_at_the_frame_asked_for_and_keeps_the_rest_intact(
    tmp_path: Path, footage: Footage, packets: list[EncodedPacket]
) -> None:
    """Decoded from the keyframe at 1 s, kept from frame 22; the walker crosses the mask."""
    partial = tmp_path / "clip.partial.mp4"
    masks = MaskSet([MASK])
    writer = ClipWriter(partial, packets[15].stream, masks, show_from=packets[22].pts)
    for packet in packets[15:90]:
        writer.write(packet)
    writer.close()
    finished = finalize(partial, tmp_path / "clip.mp4")
    assert finished.frames == 90 - 22
    assert finished.duration == pytest.approx((90 - 22) / 15, abs=0.01)
    frames, source = decode_all(finished.path), decode_all(footage.path)
    assert len(frames) == 90 - 22
    outside = np.ones((360, 640), dtype=bool)
    outside[22:208, 32:268] = False  # the mask and an 8 px margin
    for index, luma in enumerate(frames):
        assert int(luma[34:196, 44:256].max()) <= 2  # black
        # Frame for frame the source's picture outside the mask (re-encoding costs a few
        # grey levels): in step with the source, and no black smeared out of the mask.
        difference = np.abs(luma.astype(np.int16) - source[22 + index].astype(np.int16))
        assert int(difference[outside].max()) <= 24, index


def test_filling_masks_in_place_matches_filling_a_copy() -> None:
    import av as pyav

    # 630 px wide: PyAV pads its rows, which the in-place fill has to step over.
    masks = MaskSet([MASK, ((500, 300), (629, 250), (600, 359))])
    rng = np.random.default_rng(3)
    original = rng.integers(17, 256, (540, 630), dtype=np.uint8)
    frame = pyav.VideoFrame.from_ndarray(original, format="yuv420p")
    assert frame.planes[0].line_size > 630
    masks.fill_frame(frame)
    planes = original.copy()
    masks.fill_yuv420(planes, 630, 360)
    assert np.array_equal(frame.to_ndarray(format="yuv420p"), planes)
    luma, _ = masks.masks(630, 360)
    assert np.all(planes[:360][luma] == 16)
    assert np.array_equal(planes[:360][~luma], original[:360][~luma])
    assert not np.array_equal(planes[360:], original[360:])  # chroma filled too
