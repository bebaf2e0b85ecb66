"""One livesrv node: the WebSocket server, the admin app, the hub and the settlement worker,
in one event loop, with a clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from picows import (
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from .. import fleet, logs, metrics
from ..errors import CloseCode
from ..http.guard import GuardedSite, HttpGuard
from ..metrics import Metrics
from ..services import receipts
from ..settings import Settings
from ..settlement import SettlementWorker
from ..store.facade import Backend
from ..wire import tokens
from ..wire.codec import select_subprotocol
from . import settle_process
from .admission import (
    allowed_origins,
    check_backlog,
    fd_limit,
    offered_subprotocols,
    refusal,
    somaxconn,
    ws_budget,
)
from .hub import Hub
from .listeners import claim_port, listening_sockets
from .session import Session
from .wsconn import OPEN, Connection, picows_logger

log = logging.getLogger(__name__)

DRAIN_SECONDS = 10.0
HANDSHAKE_SECONDS = 10.0  # a client's upgrade request must arrive within this
CLOSE_SECONDS = 2.0  # how long a close handshake waits for the client's answer
MAX_QUEUE = 4  # unread messages a connection holds before reading from it pauses
METRICS_SYNC_SECONDS = 1.0  # how often a worker copies its hub's figures into the metrics


class Node:
    """Everything one process serves. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        settings: Settings,
        store_url: str,
        *,
        secret: str | None = None,
        metrics_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.store_url = store_url
        self.secret = secret or tokens.resolve_secret(settings.secret, settings.data_dir)
        self.receipt_key = receipts.resolve_key(settings.receipt_key, self.secret)
        self.receipts = receipts.make_verifier(
            settings.receipt_verifier, settings.receipt_key, self.secret
        )
        # metrics_dir: one of several processes (workers, or beside a settlement process)
        self.metrics = Metrics(metrics_dir, own_gc=settings.workers == 1)
        self.backend = Backend.create(settings, store_url)
        self.backend.on_live = self.metrics.live  # -- live match, goals, hype train --
        self.hub = Hub(self.backend)
        self.worker = SettlementWorker(self.backend, self.metrics)
        self.sessions: set[Session] = set()
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.ws_servers: list[asyncio.AbstractServer] = []
        self.connections: set[Connection] = set()  # open ones, each with its session's pump
        self.origins = allowed_origins(settings.allowed_origins)
        self.http_runner: web.AppRunner | None = None
        self.http_guard = HttpGuard(settings.http_max_connections, settings.http_header_timeout)
        self.ws_budget = ws_budget(settings, fd_limit())
        self._worker_task: asyncio.Task[None] | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self.ws_port = 0
        self.http_port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.url_host}:{self.ws_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.url_host}:{self.http_port}"

    async def start(
        self,
        *,
        ws_socks: list[socket.socket] | None = None,
        http_sock: socket.socket | None = None,
    ) -> None:
        """Start serving. ``ws_socks``: the WebSocket port's listening sockets (a worker's);
        else the node opens its own, ``listen_queues`` of them on ``port``."""
        from ..http.admin import make_app  # the admin app needs a started node

        try:  # nodes that disagree on money settings must not share a store
            fleet.check_presence(self.settings)
            await fleet.guard_node(self.backend, self.secret, self.receipt_key)
        except BaseException:
            await self.backend.close()
            raise
        await self.hub.start()
        s = self.settings
        check_backlog(s.listen_backlog, somaxconn())
        if ws_socks is None:  # a reconnect storm queues in these, not in SYN retries
            claim_port(s.host, s.port)
            ws_socks = listening_sockets(s.host, s.port, s.listen_queues, s.listen_backlog)
        for sock in ws_socks:
            self.ws_servers.append(
                await ws_create_server(
                    self._upgrade,
                    sock=sock,
                    backlog=s.listen_backlog,
                    websocket_handshake_timeout=HANDSHAKE_SECONDS,
                    enable_auto_pong=True,
                    max_frame_size=s.max_frame,
                    read_buffer_init_size=2048,  # picows' smallest; grows for a bigger frame
                    use_aiofastnet=False,  # the event loop's own transports (uvloop's)
                    logger_name=picows_logger(),
                )
            )
        self.ws_port = ws_socks[0].getsockname()[1]
        app = make_app(self)
        self.http_runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=DRAIN_SECONDS,
            keepalive_timeout=s.http_keepalive_timeout,
            lingering_time=s.http_header_timeout,  # draining an unread body after an answer
        )
        await self.http_runner.setup()
        site = GuardedSite(
            self.http_runner,
            self.http_guard,
            host=s.host,
            port=s.http_port,
            sock=http_sock,
            backlog=s.listen_backlog,
        )
        await site.start()
        self.http_port = site.bound_port
        if s.settle:
            self._worker_task = asyncio.create_task(self.worker.run(), name="settlement")
        if self.metrics.multiprocess_dir is not None:  # the other workers' scrapes read it
            self._metrics_task = asyncio.create_task(self._sync_metrics(), name="metrics")
        self._keepalive_task = asyncio.create_task(self._keepalive(), name="keepalive")

    def sync_metrics(self) -> None:
        self.metrics.sync(len(self.hub.rooms), self.hub.delivered)
        self.metrics.sync_replays(self.hub.replays.reads, self.hub.replays.callers)

    async def _sync_metrics(self) -> None:
        while True:
            self.sync_metrics()
            await asyncio.sleep(METRICS_SYNC_SECONDS)

    async def _keepalive(self) -> None:
        """Ping every connection once per ``ping_interval``, in slices of about a second
        (not all at once); one that answered none since its last ping is closed 1011."""
        interval = self.settings.ping_interval
        while True:
            parts = max(1, round(interval))
            for k in range(parts):
                await asyncio.sleep(interval / parts)
                for session in [s for s in self.sessions if hash(s) % parts == k]:
                    session.keepalive()

    def _upgrade(self, request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        """The answer to an upgrade request: 404 off /ws, 503 beyond the process's
        connection budget, 403 from an origin not allowed, else 101 with the subprotocol
        chosen and a :class:`Connection` for it."""
        if request.path.split(b"?", 1)[0] != b"/ws":
            return refusal(404, "WebSocket endpoint is /ws\n")
        if len(self.connections) >= self.ws_budget:
            self.metrics.ws_refused.inc()
            return refusal(503, "too many connections, try again later\n")
        if self.origins is not None and request.headers.get("Origin") not in self.origins:
            return refusal(403, "this origin may not open a WebSocket here\n")
        chosen = select_subprotocol(offered_subprotocols(request))
        extra = {"Server": "livesrv"}
        if chosen:
            extra["Sec-WebSocket-Protocol"] = chosen
        connection = Connection(
            self._opened,
            chosen,
            max_size=self.settings.max_frame,
            max_queue=MAX_QUEUE,
            close_timeout=CLOSE_SECONDS,
        )
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(extra), connection
        )

    def _opened(self, connection: Connection) -> None:
        session = Session(connection, self)
        self.sessions.add(session)
        self.connections.add(connection)
        connection.handler = asyncio.get_running_loop().create_task(self._pump(connection, session))

    async def _pump(self, connection: Connection, session: Session) -> None:
        """The session's pump; its connection closes (1000 unless a code went out) and
        leaves :attr:`connections` when the pump ends."""
        try:
            await session.run()  # run() leaves self.sessions when it ends
        finally:
            try:
                if connection.state == OPEN:
                    await connection.close()
            finally:
                self.connections.discard(connection)
                connection.handler = None

    def begin_op(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def end_op(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self._idle.set()

    async def stop(self) -> None:
        """Stop accepting, let money in flight finish, close sockets with 1001, stop."""
        if self.ws_servers:
            for server in self.ws_servers:
                server.close()  # no new connections on any queue; the open ones stay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), DRAIN_SECONDS)
            open_now = list(self.connections)
            going = asyncio.gather(
                *(c.close(CloseCode.GOING_AWAY, "server shutting down") for c in open_now),
                return_exceptions=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(going, DRAIN_SECONDS)
            pumps = [c.handler for c in open_now if c.handler is not None]
            if pumps:
                await asyncio.wait(pumps, timeout=DRAIN_SECONDS)
        self.worker.stopping = True
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive_task
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._metrics_task
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker_task
        await self.hub.stop()
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        await self.backend.close()


def serve_node(settings: Settings, store_url: str) -> None:
    """``serve`` with one node: the node in this process and, by default, settlement in a
    process of its own beside it (the two share their metrics through a run directory)."""
    if not settle_process.apart(settings):
        asyncio.run(run_until_signalled(settings, store_url))
        return
    metrics_dir = metrics.run_dir(settings.data_dir)
    metrics.enable_multiprocess(metrics_dir)
    settler = settle_process.SettleProcess(settings, store_url, metrics_dir)
    try:
        node_settings = replace(settings, settle=False)
        asyncio.run(
            run_until_signalled(node_settings, store_url, metrics_dir=metrics_dir, settler=settler)
        )
    finally:
        settler.stop()  # after the node, which finished the money in flight
        metrics.remove_run_dir(metrics_dir)


async def run_until_signalled(
    settings: Settings,
    store_url: str,
    *,
    announce: bool = True,
    ws_socks: list[socket.socket] | None = None,
    http_sock: socket.socket | None = None,
    metrics_dir: Path | None = None,
    settler: settle_process.SettleProcess | None = None,
) -> None:
    """Run a node until SIGTERM or SIGINT, then stop it cleanly. With ``settler``, start
    that settlement process once the node is up and keep it running."""
    node = Node(settings, store_url, metrics_dir=metrics_dir)
    await node.start(ws_socks=ws_socks, http_sock=http_sock)
    watch = None
    if settler is not None:
        settler.start()
        watch = asyncio.create_task(settler.watch(), name="settle-process")
    tune_gc(settings.gc_young)
    if announce:
        durability = node.backend.durability.describe()
        settling = settle_process.describe(settings, settler)
        announce_urls(node.ws_url, node.http_url, settings, durability, settling=settling)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if watch is not None:
            watch.cancel()
        await node.stop()


def tune_gc(young: int) -> None:
    """Garbage collection for a process holding many connections.

    A connection is dozens of objects the collector tracks (its session, coroutines,
    futures, the WebSocket connection's), so a node with 20,000 holds hundreds of
    thousands. Python collects its young objects every 700 allocations and, while the total
    grows by a quarter, all of them: a process growing to 20,000 connections ran 9 full
    collections, each a pass over everything with its event loop stopped (up to 0.9 s at
    10,000 connections).
    Collecting the young every ``young`` allocations instead makes those checks, and so
    the full collections, rarer; what was allocated at start (modules, classes, settings:
    about 60,000 objects) is frozen out of every collection.
    Cyclic garbage still goes, a little later (docs/benchmarks.md, "Garbage collection").
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)


def announce_urls(
    ws_url: str, http_url: str, settings: Settings, durability: str = "", *, settling: str
) -> None:
    """Print the URLs on their own lines, so that scripts can read them, and log the
    start-up line."""
    print(ws_url, flush=True)
    print(http_url, flush=True)
    if settings.demo:
        print(f"demo page: {http_url}/", flush=True)
    logs.startup(settings, ws_url, http_url, durability, settling=settling)
