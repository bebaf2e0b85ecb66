"""A small protocol v1 test client over a real WebSocket, for either codec."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.timing import scaled

JSON = "livesrv.v1.json"
MSGPACK = "livesrv.v1.msgpack"


class Client:
    """One connection: ``call`` sends a request and awaits its reply; events are kept."""

    def __init__(self, ws: ClientConnection, codec: str) -> None:
        self.ws = ws
        self.codec = codec
        self.events: list[dict[str, Any]] = []
        self.replies: dict[Any, dict[str, Any]] = {}
        self.frames: list[Any] = []
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.close_code: int | None = None

    @classmethod
    async def open(cls, url: str, codec: str = JSON, **kw: Any) -> Client:
        ws = await connect(url, subprotocols=[codec], max_size=None, **kw)  # type: ignore[list-item]
        return cls(ws, codec)

    def encode(self, message: Any) -> str | bytes:
        if self.codec == MSGPACK:
            return msgpack.packb(message, use_bin_type=True)
        return json.dumps(message)

    def decode(self, data: str | bytes) -> Any:
        if isinstance(data, bytes):
            return msgpack.unpackb(data, raw=False)
        return json.loads(data)

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                frame = self.decode(data)
                self.frames.append(frame)
                for msg in frame if isinstance(frame, list) else [frame]:
                    if "ev" in msg:
                        self.events.append(msg)
                    else:
                        self.replies[msg.get("id")] = msg
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            async with self._changed:
                self._changed.notify_all()

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def request(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a request map as is and await the reply with its id."""
        await self.ws.send(self.encode(message))
        rid = message.get("id")
        return await self.wait(lambda: self.replies.pop(rid, None), timeout)

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        return await self.request({"id": next(self._ids), "op": op, **args})

    async def ok(self, op: str, **args: Any) -> dict[str, Any]:
        """Call and assert success."""
        reply = await self.call(op, **args)
        assert reply["ok"] is True, reply
        return reply

    async def error(self, op: str, **args: Any) -> str:
        """Call, assert failure, return the error code."""
        reply = await self.call(op, **args)
        assert reply["ok"] is False, reply
        return str(reply["error"]["code"])

    async def wait(self, probe: Callable[[], Any], timeout: float = 10) -> Any:
        """Wait until ``probe()`` returns something truthy, and return it."""
        async with asyncio.timeout(scaled(timeout)):
            async with self._changed:
                while True:
                    value = probe()
                    if value:
                        return value
                    if self._reader.done():
                        raise ConnectionError(f"closed with {self.close_code}")
                    await self._changed.wait()

    async def event(
        self,
        name: str,
        pred: Callable[[dict[str, Any]], bool] = lambda e: True,
        timeout: float = 10,
    ) -> dict[str, Any]:
        """The first received event called ``name`` that matches ``pred``."""

        def probe() -> dict[str, Any] | None:
            return next((e for e in self.events if e["ev"] == name and pred(e)), None)

        return await self.wait(probe, timeout)  # type: ignore[no-any-return]

    async def closed(self, timeout: float = 15) -> int | None:
        with contextlib.suppress(ConnectionError):
            await self.wait(lambda: self._reader.done(), timeout)
        return self.close_code

    def seqs(self, room: str) -> list[int]:
        return [e["seq"] for e in self.events if e.get("room") == room and "seq" in e]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
