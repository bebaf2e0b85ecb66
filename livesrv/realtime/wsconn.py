"""websockets' server connection, made to hold less while a connection is idle.

A node holds tens of thousands of connections that mostly wait, so what each one keeps
between frames is the node's memory (docs/benchmarks.md, "Memory per connection"). Against
websockets' own :class:`~websockets.asyncio.server.ServerConnection` this drops, per
connection:

- the handshake: the request's and the response's headers (about 4 KiB with a load
  client's few headers, more with a browser's) are released once the connection is open;
- the keepalive task: websockets runs one task per connection (a task, a coroutine, a
  sleep future and a timer, about 1.7 KiB); livesrv's node pings every connection from
  one task instead (:meth:`LeanConnection.keepalive_round`, called by ``Node``);
- the write-flow waiters' deque (760 bytes even when empty, in CPython): a list. livesrv
  writes its frames to the transport itself; websockets only waits on it to ping and close.

Nothing a client sees changes: the same pings (every ``LIVESRV_PING_INTERVAL`` seconds),
the same 1011 "keepalive ping timeout" for a connection that answers none.
"""

from __future__ import annotations

import contextlib
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Event, State

# Stands for every handshake request once the connection is open: websockets only asks
# whether a request arrived (``request is None`` means "still waiting for it").
OPENED = Request(path="/ws", headers=Headers())


class LeanConnection(ServerConnection):
    """A :class:`ServerConnection` that keeps less once open (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drain_waiters = []  # type: ignore[assignment]  # append/remove/iterate only
        self.pong_due = False  # a keepalive ping went out and no pong came back yet

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await super().handshake(*args, **kwargs)
        if self.protocol.state is State.OPEN:
            self.request, self.response = OPENED, None

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
