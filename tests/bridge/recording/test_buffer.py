"""The pre-roll buffer keeps whole GOPs of encoded packets covering the pre-roll."""

from __future__ import annotations

from dataclasses import replace

from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.buffer import PreRollBuffer


def test_buffer_starts_at_a_keyframe_and_covers_the_pre_roll(
    packets: list[EncodedPacket],
) -> None:
    buffer = PreRollBuffer(seconds=2.5)
    for packet in packets[:90]:  # 6 s
        buffer.append(packet)
    held = buffer.packets()
    newest = packets[89].wall
    assert held[0].keyframe
    assert held[0].wall <= newest - 2.5
    # No more than one GOP (1 s) more than needed.
    assert held[0].wall > newest - 2.5 - 1.0
    assert held[-1] is packets[89]
    assert buffer.size == sum(len(p.data) for p in held)


def test_buffer_ignores_packets_until_the_first_keyframe(packets: list[EncodedPacket]) -> None:
    buffer = PreRollBuffer(seconds=5)
    for packet in packets[1:15]:  # the GOP without its keyframe
        buffer.append(packet)
    assert len(buffer) == 0
    buffer.append(packets[15])
    assert buffer.packets() == [packets[15]]


def test_buffer_restarts_when_the_stream_changes(packets: list[EncodedPacket]) -> None:
    buffer = PreRollBuffer(seconds=5)
    for packet in packets[:20]:
        buffer.append(packet)
    other = replace(packets[30].stream, width=1280)
    reconnected = replace(packets[30], stream=other)
    buffer.append(reconnected)
    assert buffer.packets() == [reconnected]


def test_buffer_starts_again_when_the_timestamps_start_over(
    packets: list[EncodedPacket],
) -> None:
    # The pre-roll is counted on the stream's timestamps: a source that starts them over
    # without a new stream would otherwise leave the older packets in the buffer for good.
    buffer = PreRollBuffer(seconds=1.0)
    for packet in packets[:60]:
        buffer.append(packet)
    replayed = [replace(p, wall=p.wall + 4.0) for p in packets[:60]]  # pts from 0 again
    for packet in replayed:
        buffer.append(packet)
    assert buffer.packets() == replayed[30:]


def test_zero_pre_roll_keeps_only_the_current_gop(packets: list[EncodedPacket]) -> None:
    buffer = PreRollBuffer(seconds=0)
    for packet in packets[:40]:
        buffer.append(packet)
    held = buffer.packets()
    assert held[0] is packets[30]
    assert all(not p.keyframe for p in held[1:])


#: More than any one GOP of the fixture (at most 58 kB), less than two.
GOP_CAP = 60_000


def test_byte_cap_drops_old_gops(packets: list[EncodedPacket]) -> None:
    buffer = PreRollBuffer(seconds=60, max_bytes=GOP_CAP)
    for packet in packets[:60]:
        buffer.append(packet)
    assert buffer.packets()[0] is packets[45]
    assert buffer.size <= GOP_CAP


def test_byte_cap_holds_for_a_camera_that_hardly_sends_keyframes(
    packets: list[EncodedPacket],
) -> None:
    buffer = PreRollBuffer(seconds=5, max_bytes=GOP_CAP)
    buffer.append(packets[0])
    for packet in packets[1:]:  # 8 s with no keyframe after the first
        buffer.append(replace(packet, keyframe=False))
        assert buffer.size <= GOP_CAP
    # The pre-roll starts again at the next keyframe.
    keyframe = replace(packets[15], wall=packets[-1].wall + 0.1)
    buffer.append(keyframe)
    assert buffer.packets() == [keyframe]


def _keyframes(packets: list[EncodedPacket]) -> list[int]:
    return [i for i, p in enumerate(packets) if p.keyframe]


def test_fixture_has_a_keyframe_every_second(packets: list[EncodedPacket]) -> None:
    assert _keyframes(packets)[:4] == [0, 15, 30, 45]
