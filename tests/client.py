"""The test suite's protocol v1 client: ``livesrv.client`` with everything recorded.

The tests look at the raw traffic (every frame, every event, every reply, the close code)
and send frames the library never would (bad ids, garbage, oversize frames), so this
helper wraps one library connection with reconnect, retries and dedupe switched off: what
the server sends is what the test sees. ``ok`` and ``error`` go through the library's
``call`` (its request/reply matching and typed errors); ``request`` sends a map as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection

from livesrv import client as lib
from tests.timing import scaled

JSON = lib.JSON
MSGPACK = lib.MSGPACK


class _Recording(lib.Client):
    """The library client, handing every frame, reply and event to the helper too."""

    def __init__(self, helper: Client, url: str, codec: str, connect_kwargs: dict[str, Any]):
        super().__init__(
            url,
            None,
            codec=codec,
            reconnect=None,
            retry=None,
            dedupe=False,
            event_buffer=1,
            connect_kwargs=connect_kwargs,
        )
        self.helper = helper

    def _frame_received(self, frame: Any) -> None:
        self.helper.frames.append(frame)
        super()._frame_received(frame)
        self.helper.changed()

    def _reply_received(self, msg: dict[str, Any]) -> None:
        self.helper.replies[msg.get("id")] = msg
        super()._reply_received(msg)

    def _event_received(self, ev: dict[str, Any]) -> None:
        self.helper.events.append(ev)  # kept in the list the tests read, not in the buffer

    async def _read(self, ws: ClientConnection) -> None:
        try:
            await super()._read(ws)
        finally:
            self.helper.reader_done = True
            self.helper.changed()


class Client:
    """One connection: ``call`` sends a request and awaits its reply; events are kept."""

    def __init__(self, url: str, codec: str = JSON, **kw: Any) -> None:
        self.conn = _Recording(self, url, codec, kw)
        self.codec = codec
        self.events: list[dict[str, Any]] = []
        self.replies: dict[Any, dict[str, Any]] = {}
        self.frames: list[Any] = []
        self.reader_done = False
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    @classmethod
    async def open(cls, url: str, codec: str = JSON, **kw: Any) -> Client:
        """Connect without ``hello``; ``kw`` goes to the WebSocket handshake (``origin``)."""
        helper = cls(url, codec, **kw)
        await helper.conn.open()
        return helper

    @property
    def ws(self) -> ClientConnection:
        return self.conn.ws

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    def changed(self) -> None:
        """Wake every ``wait`` (a frame came, or the connection ended)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def encode(self, message: Any) -> str | bytes:
        return self.conn.encode(message)

    def decode(self, data: str | bytes) -> Any:
        return self.conn.decode(data)

    async def send_raw(self, data: str | bytes) -> None:
        await self.conn.send_raw(data)

    async def request(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a request map as is and await the reply with its id."""
        reply = await self.conn.request(message, scaled(timeout))
        with contextlib.suppress(TypeError):
            self.replies.pop(message.get("id"), None)
        return reply

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send ``op`` and return its reply, success or failure."""
        return await self.request({"id": next(self._ids), "op": op, **args})

    async def ok(self, op: str, **args: Any) -> dict[str, Any]:
        """Call and assert success."""
        try:
            reply = await self.conn.call(op, timeout=scaled(10), **args)
        except lib.ProtocolError as exc:
            raise AssertionError(exc.reply) from None
        self.replies.pop(reply.get("id"), None)
        return reply

    async def error(self, op: str, **args: Any) -> str:
        """Call, assert failure, return the error code."""
        try:
            reply = await self.conn.call(op, timeout=scaled(10), **args)
        except lib.ProtocolError as exc:
            self.replies.pop(exc.reply.get("id"), None)
            return exc.code
        raise AssertionError(reply)

    async def wait(self, probe: Callable[[], Any], timeout: float = 10) -> Any:
        """Wait until ``probe()`` returns something truthy, and return it."""
        async with asyncio.timeout(scaled(timeout)):
            while True:
                changed = self._changed
                value = probe()
                if value:
                    return value
                if self.reader_done:
                    raise ConnectionError(f"closed with {self.close_code}")
                await changed.wait()

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
            await self.wait(lambda: self.reader_done, timeout)
        return self.close_code

    def seqs(self, room: str) -> list[int]:
        return [e["seq"] for e in self.events if e.get("room") == room and "seq" in e]

    async def close(self) -> None:
        await self.conn.close()
