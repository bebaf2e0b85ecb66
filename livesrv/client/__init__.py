"""``livesrv.client``: an importable asyncio client for protocol v1 (docs/protocol.md).

Needs only ``websockets``, ``msgpack`` and ``orjson``; it imports nothing of the server.

    from livesrv.client import Client, InsufficientFunds

    async with Client("ws://127.0.0.1:8765/ws", token, codec="msgpack") as c:
        await c.call("join", room="r1")
        await c.call("gift", room="r1", gift="rose", count=1, key="gift-0001")
        async for ev in c.events(room="r1"):
            print(ev)
"""

from .core import JSON, MSGPACK, Client
from .errors import (
    BY_CODE,
    AgeRestricted,
    BadRequest,
    Banned,
    BoxClosed,
    CallTimeout,
    ClientError,
    ConnectionLost,
    Forbidden,
    IdempotencyConflict,
    InsufficientFunds,
    Internal,
    InvalidReceipt,
    LimitExceeded,
    Muted,
    NotFound,
    NotLive,
    OutOfStock,
    ProtocolError,
    RateLimited,
    SlowMode,
    Unauthorized,
    Unavailable,
    UnknownError,
    error_for,
)
from .events import GAP, REJOIN_FAILED, EventBuffer, Rooms
from .policy import DEFAULT_RECONNECT, DEFAULT_RETRY, Backoff

connect = Client.connect

__all__ = [
    "BY_CODE",
    "DEFAULT_RECONNECT",
    "DEFAULT_RETRY",
    "GAP",
    "JSON",
    "MSGPACK",
    "REJOIN_FAILED",
    "AgeRestricted",
    "Backoff",
    "BadRequest",
    "Banned",
    "BoxClosed",
    "CallTimeout",
    "Client",
    "ClientError",
    "ConnectionLost",
    "EventBuffer",
    "Forbidden",
    "IdempotencyConflict",
    "InsufficientFunds",
    "Internal",
    "InvalidReceipt",
    "LimitExceeded",
    "Muted",
    "NotFound",
    "NotLive",
    "OutOfStock",
    "ProtocolError",
    "RateLimited",
    "Rooms",
    "SlowMode",
    "Unauthorized",
    "Unavailable",
    "UnknownError",
    "connect",
    "error_for",
]
