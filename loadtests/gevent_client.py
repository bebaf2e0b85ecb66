"""A blocking, gevent-friendly face of ``livesrv.client`` for locust users.

locust runs each user as a gevent greenlet with the standard library monkey-patched; the
client library is asyncio. One real OS thread runs one asyncio loop (on the unpatched
selector) for every user of the process; a greenlet hands it a coroutine and waits for the
result in a gevent threadpool worker, so the gevent hub keeps running the other users
meanwhile. Events are handed back through a callback that runs on the loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import gevent
from gevent import monkey
from websockets.asyncio.client import ClientConnection

from livesrv import client as lib

T = TypeVar("T")

_Selector = monkey.get_original("selectors", "DefaultSelector")
_start_thread = monkey.get_original("_thread", "start_new_thread")


class LoopThread:
    """One asyncio loop in one native thread, shared by the greenlets of the process."""

    _shared: LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.SelectorEventLoop(_Selector())
        _start_thread(self._run, ())
        # a pool thread waits for each call in flight; let every user have one
        gevent.get_hub().threadpool.maxsize = 1024

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def shared(cls) -> LoopThread:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop; block this greenlet (only) until it is done."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return gevent.get_hub().threadpool.apply(future.result, (timeout,))  # type: ignore[no-any-return]


class _Reporting(lib.Client):
    """The library client, handing each event (no buffer) and each drop to callbacks."""

    def __init__(
        self,
        on_event: Callable[[dict[str, Any]], None] | None,
        on_close: Callable[[int | None], None] | None,
        *a: Any,
        **kw: Any,
    ) -> None:
        super().__init__(*a, **kw)
        self.on_event = on_event
        self.on_close = on_close

    def _deliver(self, ev: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(ev)

    async def _read(self, ws: ClientConnection) -> None:
        await super()._read(ws)
        if self.on_close is not None:
            self.on_close(self.close_code)


class BlockingClient:
    """``livesrv.client.Client`` with blocking methods, one per locust user.

    Args:
        url: ``ws://host:port/ws``.
        token: The user's token (``hello`` is sent on connect); None to send it yourself.
        on_event: Called on the loop's thread with every event (keep it short and
            thread-safe: queue it for a greenlet).
        on_close: Called on the loop's thread with the close code whenever a connection
            ends (the library then reconnects, unless the client was closed).
        options: Passed to ``livesrv.client.Client`` (``codec``, ``reconnect``, ...).
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_close: Callable[[int | None], None] | None = None,
        **options: Any,
    ) -> None:
        self.runner = LoopThread.shared()
        self.client = _Reporting(on_event, on_close, url, token, event_buffer=1, **options)
        self.runner.run(self.client.open())

    @property
    def user(self) -> dict[str, Any] | None:
        return self.client.user

    def call(self, op: str, /, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """``Client.call``, blocking this greenlet: the reply, or a typed error raised."""
        return self.runner.run(self.client.call(op, timeout=timeout, **args))

    def close(self) -> None:
        self.runner.run(self.client.close())
