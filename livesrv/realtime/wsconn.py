"""websockets' server connection, made to hold less while a connection is idle.

A node holds tens of thousands of connections that mostly wait, so what each one keeps
between frames is the node's memory (docs/benchmarks.md, "Memory per connection"). Against
websockets' own :class:`~websockets.asyncio.server.ServerConnection` this drops, per
connection:

- the handshake: the request's and the response's headers (about 4 KiB with a load
  client's six headers, more with a browser's) are released once the connection is open;
- the keepalive task: websockets runs one task per connection (a task, a coroutine, a
  sleep future and a timer, about 1.8 KiB); livesrv's node pings every connection from
  one task instead (:meth:`LeanConnection.keepalive_round`, called by ``Node``);
- two empty deques (760 bytes each in CPython, even empty): the write-flow waiters
  (livesrv writes its frames to the transport itself; websockets only waits there to close)
  and the queue of received frames (at most ``max_queue`` long): lists instead.

Nothing a client sees changes: the same pings (every ``LIVESRV_PING_INTERVAL`` seconds),
the same 1011 "keepalive ping timeout" for a connection that answers none.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State


class FrameQueue(list[Frame]):
    """What websockets' received-frame queue uses of a deque, on a list: 56 bytes empty
    instead of 760, and never longer than ``max_queue`` frames (4)."""

    __slots__ = ()

    def popleft(self) -> Frame:
        return self.pop(0)

    def extendleft(self, items: Iterable[Frame]) -> None:
        self[:0] = list(items)[::-1]  # as deque.extendleft: each one in turn at the front


class LeanConnection(ServerConnection):
    """A :class:`ServerConnection` that keeps less once open (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drain_waiters = []  # type: ignore[assignment]  # append/remove/iterate only
        self.pong_due = False  # a keepalive ping went out and no pong came back yet

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        frames = self.recv_messages.frames
        if isinstance(frames.queue, deque) and not frames.queue:
            frames.queue = FrameQueue()  # type: ignore[assignment]

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await super().handshake(*args, **kwargs)
        if self.protocol.state is State.OPEN and self.request is not None:
            # The request stays (websockets reads "a request arrived" from it, and its
            # parser still holds it) but not its headers; the response goes.
            self.request.headers.clear()
            self.response = None

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PONG:
            self.pong_due = False
        super().process_event(event)

    def keepalive_round(self) -> bool:
        """One keepalive round: ping, unless the last round's ping is still unanswered.

        Returns:
            False when the connection answered no ping since the last round (the caller
            closes it), else True (a ping went out, or the connection is not open).
        """
        if self.protocol.state is not State.OPEN:
            return True
        if self.pong_due:
            return False
        self.protocol.send_ping(b"")
        with contextlib.suppress(OSError, RuntimeError):  # closing: connection_lost follows
            self.send_data()
        self.pong_due = True
        return True
