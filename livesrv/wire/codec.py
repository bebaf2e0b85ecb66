"""Codecs of protocol v1: JSON (text frames) and MessagePack (binary frames).

Sans-I/O: bytes and strings in, Python values out, and back. Also builds the raw,
unmasked WebSocket frames the broadcaster writes to many sockets after encoding once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson

from ..errors import BadRequest

JSON = "livesrv.v1.json"
MSGPACK = "livesrv.v1.msgpack"
SUBPROTOCOLS = (JSON, MSGPACK)

_OP_TEXT = 0x1
_OP_BINARY = 0x2


@dataclass(frozen=True)
class Codec:
    """One wire codec."""

    name: str
    binary: bool

    def decode(self, data: str | bytes) -> Any:
        """Decode one frame into a Python value.

        Raises:
            BadRequest: The frame is not valid for this codec.
        """
        try:
            if self.binary:
                if isinstance(data, str):
                    raise BadRequest("this connection speaks msgpack: send binary frames")
                return msgpack.unpackb(data, raw=False, strict_map_key=False)
            return orjson.loads(data)
        except BadRequest:
            raise
        except (
            ValueError,
            TypeError,
            msgpack.ExtraData,
            msgpack.FormatError,
            msgpack.StackError,
        ) as exc:
            raise BadRequest(f"frame is not valid {self.name.rsplit('.', 1)[-1]}") from exc

    def encode(self, message: Any) -> str | bytes:
        """Encode a message or batch into a frame payload (str for text frames)."""
        if self.binary:
            return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]
        return orjson.dumps(message).decode()

    def frame(self, message: Any) -> bytes:
        """Encode a message into a complete unmasked server-to-client WebSocket frame."""
        if self.binary:
            payload: bytes = msgpack.packb(message, use_bin_type=True)
            return ws_frame(payload, _OP_BINARY)
        return ws_frame(orjson.dumps(message), _OP_TEXT)


JSON_CODEC = Codec(JSON, binary=False)
MSGPACK_CODEC = Codec(MSGPACK, binary=True)
CODECS = {JSON: JSON_CODEC, MSGPACK: MSGPACK_CODEC}


def codec_for(subprotocol: str | None) -> Codec:
    """The codec for a negotiated subprotocol; JSON when none was offered."""
    return CODECS.get(subprotocol or JSON, JSON_CODEC)


def select_subprotocol(offered: list[str] | tuple[str, ...]) -> str | None:
    """The first offered subprotocol the server supports (docs/protocol.md, Transport)."""
    for name in offered:
        if name in CODECS:
            return name
    return None


def ws_frame(payload: bytes, opcode: int) -> bytes:
    """A final, unmasked WebSocket frame: identical bytes for every receiving socket."""
    n = len(payload)
    head = 0x80 | opcode
    if n < 126:
        return struct.pack("!BB", head, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload
