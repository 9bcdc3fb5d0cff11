"""What sources hand to the pipeline: encoded packets and the stream they belong to.

Packets are copied out of PyAV into plain immutable records so that the pre-roll
buffer and the clip writers never share (or mutate) a demuxer's packet objects,
and so that packets survive a reconnect of the source that produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

#: Codecs that are recorded by stream copy; anything else is transcoded to H.264.
COPYABLE_CODECS = frozenset({"h264"})


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The video stream a source delivers.

    Attributes:
        codec: FFmpeg codec name (``h264``, ``mjpeg``, ...).
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Nominal frame rate (a best guess for sources that do not say).
        time_base: Unit of the packets' ``pts``/``dts``.
        extradata: Out-of-band decoder configuration for codecs that need it (not
            H.264, whose parameter sets travel in-band in front of keyframes).
    """

    codec: str
    width: int
    height: int
    fps: float
    time_base: Fraction
    extradata: bytes = field(default=b"", repr=False, compare=False)

    @property
    def copyable(self) -> bool:
        """True when clips can be written by stream copy (no re-encode)."""
        return self.codec in COPYABLE_CODECS


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One encoded video frame (H.264 in Annex B with parameter sets on keyframes).

    Attributes:
        data: The encoded bytes.
        pts: Presentation time in ``stream.time_base`` units. It goes back now and then
            in a stream with B-frames (a picture is sent before the ones shown ahead of
            it); otherwise it only goes forward.
        dts: Decoding time in the same units: only goes forward.
        keyframe: True for a frame a decoder can start from.
        wall: Wall-clock time (seconds since the epoch) the frame was captured.
        stream: The stream the packet belongs to.
    """

    data: bytes
    pts: int
    dts: int
    keyframe: bool
    wall: float
    stream: StreamInfo

    @property
    def seconds(self) -> float:
        """``pts`` in seconds."""
        return float(self.pts * self.stream.time_base)

    @property
    def sent(self) -> float:
        """Wall-clock time of the packet's place in the stream.

        That is ``wall`` less how much later than it is decoded it is shown. Unlike
        ``wall``, it goes forward from one packet to the next with B-frames too (unless
        the clock is set back).
        """
        if self.pts == self.dts:  # no B-frames: no Fraction arithmetic per packet
            return self.wall
        return self.wall - float((self.pts - self.dts) * self.stream.time_base)
