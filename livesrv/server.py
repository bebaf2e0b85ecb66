"""One livesrv node: the WebSocket server, the admin app, the hub and the settlement worker,
in one event loop, with a clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from . import tokens
from .backend import Backend
from .broadcast import Hub
from .codec import SUBPROTOCOLS, select_subprotocol
from .connection import Session
from .errors import CloseCode
from .metrics import Metrics
from .settings import Settings
from .settlement import SettlementWorker

log = logging.getLogger(__name__)

DRAIN_SECONDS = 10.0


class Node:
    """Everything one process serves. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, settings: Settings, store_url: str, *, secret: str | None = None) -> None:
        self.settings = settings
        self.store_url = store_url
        self.secret = secret or tokens.resolve_secret(settings.secret, settings.data_dir)
        self.metrics = Metrics()
        self.backend = Backend.create(settings, store_url)
        self.hub = Hub(self.backend)
        self.worker = SettlementWorker(self.backend, self.metrics)
        self.sessions: set[Session] = set()
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.ws_server: Server | None = None
        self.http_runner: web.AppRunner | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self.ws_port = 0
        self.http_port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.host}:{self.ws_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.host}:{self.http_port}"

    async def start(
        self, *, ws_sock: socket.socket | None = None, http_sock: socket.socket | None = None
    ) -> None:
        from .admin import make_app  # the admin app needs a started node

        await self.hub.start()
        s = self.settings
        where = {"sock": ws_sock} if ws_sock else {"host": s.host, "port": s.port}
        self.ws_server = await serve(
            self._handler,
            **where,
            subprotocols=[Subprotocol(name) for name in SUBPROTOCOLS],
            select_subprotocol=_select,
            process_request=_only_ws_path,
            compression=None,
            max_size=s.max_frame,
            max_queue=4,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            server_header="livesrv",
        )
        self.ws_port = self.ws_server.sockets[0].getsockname()[1]
        app = make_app(self)
        self.http_runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=DRAIN_SECONDS
        )
        await self.http_runner.setup()
        site = (
            web.SockSite(self.http_runner, http_sock)
            if http_sock
            else web.TCPSite(self.http_runner, s.host, s.http_port)
        )
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp keeps the bound socket there
        assert server is not None
        self.http_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if s.settle:
            self._worker_task = asyncio.create_task(self.worker.run(), name="settlement")

    async def _handler(self, ws: ServerConnection) -> None:
        session = Session(ws, self)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)

    def begin_op(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def end_op(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self._idle.set()

    async def stop(self) -> None:
        """Stop accepting, let money in flight finish, close sockets with 1001, stop."""
        if self.ws_server is not None:
            self.ws_server.close(close_connections=False)  # no new connections
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), DRAIN_SECONDS)
            # Server.close() acts only once (above), so the sockets are closed here
            going = asyncio.gather(
                *(
                    ws.close(CloseCode.GOING_AWAY, "server shutting down")
                    for ws in self.ws_server.connections
                ),
                return_exceptions=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(going, DRAIN_SECONDS)
                await asyncio.wait_for(self.ws_server.wait_closed(), DRAIN_SECONDS)
        self.worker.stopping = True
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker_task
        await self.hub.stop()
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        await self.backend.close()


def _select(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    chosen = select_subprotocol(tuple(offered))
    return Subprotocol(chosen) if chosen else None


def _only_ws_path(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] != "/ws":
        return connection.respond(404, "WebSocket endpoint is /ws\n")
    return None


async def run_until_signalled(
    settings: Settings,
    store_url: str,
    *,
    announce: bool = True,
    ws_sock: socket.socket | None = None,
    http_sock: socket.socket | None = None,
) -> None:
    """Run a node until SIGTERM or SIGINT, then stop it cleanly."""
    node = Node(settings, store_url)
    await node.start(ws_sock=ws_sock, http_sock=http_sock)
    if announce:
        announce_urls(node.ws_url, node.http_url, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await node.stop()


def announce_urls(ws_url: str, http_url: str, settings: Settings) -> None:
    """Print the URLs on their own lines, so that scripts can read them."""
    print(ws_url, flush=True)
    print(http_url, flush=True)
    if settings.demo:
        print(f"demo page: {http_url}/", flush=True)


def client_demo_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "client_demo"
