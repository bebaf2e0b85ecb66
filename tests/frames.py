"""Shared helpers of the sans-I/O tests: reading the WebSocket frames the server builds."""

from __future__ import annotations

import struct


def unframe(frame: bytes) -> tuple[int, int, bytes]:
    """(fin+opcode byte, header length, payload) of an unmasked server frame."""
    b0, b1 = frame[0], frame[1]
    assert b1 & 0x80 == 0, "server frames are not masked"
    n = b1 & 0x7F
    if n < 126:
        head = 2
    elif n == 126:
        (n,) = struct.unpack("!H", frame[2:4])
        head = 4
    else:
        (n,) = struct.unpack("!Q", frame[2:10])
        head = 10
    payload = frame[head:]
    assert len(payload) == n
    return b0, head, payload
