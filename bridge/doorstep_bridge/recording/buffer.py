"""The pre-roll buffer: the last seconds of encoded packets, in whole GOPs.

Only encoded packets are kept (a few MB for 5 s of 1080p), never decoded
frames. The buffer always starts at a keyframe so a clip cut from it plays from
its first frame. Its seconds are counted on the stream's own timestamps, not the
packets' capture times on the wall clock, which a step of the system clock (NTP
setting the stale clock of a board without a real-time clock, a clock set back)
would move.
"""

from __future__ import annotations

from collections import deque

from doorstep_bridge.packets import EncodedPacket, StreamInfo

#: Hard cap so a camera with no keyframes (or a huge GOP) cannot eat the memory.
MAX_BUFFER_BYTES = 64 * 1024 * 1024


class PreRollBuffer:
    """Keeps at least ``seconds`` of packets, trimmed at keyframes.

    Not thread-safe: the recorder owns it and guards it with its lock.
    """

    def __init__(self, seconds: float, max_bytes: int = MAX_BUFFER_BYTES) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._packets: deque[EncodedPacket] = deque()
        self._keyframes: deque[int] = deque()  # positions counted from `_dropped`
        self._dropped = 0
        self._bytes = 0
        self._stream: StreamInfo | None = None
        self._window = 0  # ``seconds`` in the stream's time_base, worked out once per stream
        self._last_key_pts = 0

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._bytes

    def append(self, packet: EncodedPacket) -> None:
        """Add the newest packet and drop whole GOPs that are no longer needed."""
        stream = packet.stream
        if stream is not self._stream:
            if stream != self._stream:
                self.clear()  # the stream changed (reconnect): old packets no longer fit
                self._window = round(self.seconds / stream.time_base)
            self._stream = stream
        if packet.keyframe:
            if self._keyframes and packet.pts <= self._last_key_pts:
                # The stream's timeline started over without a new stream (a source that
                # restarted unnoticed): trimmed on it, the old packets would stay forever.
                self.clear()
            self._last_key_pts = packet.pts
            self._keyframes.append(self._dropped + len(self._packets))
        elif not self._packets:
            return  # the buffer must start at a keyframe
        self._packets.append(packet)
        self._bytes += len(packet.data)
        self._trim(packet.pts - self._window)

    def _trim(self, since: int) -> None:
        # Drop the oldest GOP while the next keyframe alone still covers the pre-roll
        # (starts at ``since`` or before, in pts).
        while len(self._keyframes) >= 2:
            second = self._packets[self._keyframes[1] - self._dropped]
            if second.pts > since and self._bytes <= self.max_bytes:
                break
            self._drop_until(self._keyframes[1])
            self._keyframes.popleft()
        if self._bytes > self.max_bytes and len(self._packets) > 1:
            # One GOP alone is over the cap (a camera that hardly ever sends a
            # keyframe): start again at the next keyframe rather than keep it all.
            self.clear()

    def _drop_until(self, position: int) -> None:
        while self._dropped < position:
            packet = self._packets.popleft()
            self._bytes -= len(packet.data)
            self._dropped += 1

    def packets(self) -> list[EncodedPacket]:
        """The buffered packets, oldest first (starting at a keyframe)."""
        return list(self._packets)

    def clear(self) -> None:
        """Forget everything (the stream restarted)."""
        self._dropped += len(self._packets)
        self._packets.clear()
        self._keyframes.clear()
        self._bytes = 0
