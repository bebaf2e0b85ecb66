"""What the two baseline servers share: the naive fan-out server (``loadtests/naive_server.py``)
and the plain gift server (``loadtests/plain_gift_server.py``).

Who a ``hello`` token names, the error reply, the send of one frame to every viewer of a room,
the ``websockets`` server that runs until SIGINT or SIGTERM and prints its URL, and the
command-line options and event loop both take. Each server keeps its own ops and replies.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

SUBPROTOCOLS = ["livesrv.v1.json"]


def user_of(token: str) -> str:
    """The ``sub`` claim of a JWT (not verified: the baselines trust everyone), or the token."""
    parts = token.split(".")
    if len(parts) == 3:
        try:
            pad = "=" * (-len(parts[1]) % 4)
            return str(json.loads(base64.urlsafe_b64decode(parts[1] + pad))["sub"])
        except (ValueError, KeyError):
            pass
    return token[:64]


def error(rid: Any, code: str) -> dict[str, Any]:
    """The error reply to request ``rid`` (the code is also its message)."""
    return {"id": rid, "ok": False, "error": {"code": code, "message": code}}


async def fan_out(viewers: set[ServerConnection], frame: str) -> None:
    """Send ``frame`` to each viewer in turn, awaiting each send (the textbook fan-out); a
    viewer whose connection is closed leaves ``viewers``."""
    for ws in list(viewers):
        try:
            await ws.send(frame)
        except ConnectionClosed:
            viewers.discard(ws)


async def serve_until_stopped(
    handler: Callable[[ServerConnection], Awaitable[None]], host: str, port: int
) -> None:
    """Serve ``handler`` on ``host:port``, print ``ws://HOST:PORT/ws`` once listening, and
    return on SIGINT or SIGTERM."""
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        host,
        port,
        subprotocols=SUBPROTOCOLS,  # type: ignore[arg-type]
        max_size=64 * 1024,
        compression=None,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()
        print(f"ws://{bound[0]}:{bound[1]}/ws", flush=True)
        await stop


def add_server_args(parser: argparse.ArgumentParser, port: int) -> None:
    """``--host``, ``--port`` (default ``port``) and ``--no-uvloop``."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")


def run(main: Coroutine[Any, Any, None], no_uvloop: bool) -> None:
    """Run ``main`` on uvloop when it is installed (unless ``no_uvloop``), else on asyncio's
    default loop."""
    if not no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)
