"""``serve --workers N``: N processes share the WebSocket and HTTP ports (SO_REUSEPORT) and
the same store; the kernel spreads connections across them. Rooms span processes through
the store's pub/sub. Settlement runs in one process of its own beside them (by default) or
in each worker (``--settle-inline``), all of them consumers of the same group."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import signal
import socket
import sys
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from .. import metrics
from ..event_loop import use_uvloop
from ..parent_death import term_with_parent
from ..settings import Settings
from .listeners import claim_port, listening_sockets, reuseport_socket
from .node import announce_urls, run_until_signalled
from .settle_process import SettleProcess, apart, describe

READY_TIMEOUT = 30.0  # seconds a worker has to open its listening sockets


class WorkerStartError(RuntimeError):
    """A worker died (or hung) before it listened; serve stops the others and exits 1."""


def _child(settings: Settings, store_url: str, ready: Connection, metrics_dir: Path) -> None:
    term_with_parent()  # a killed serve: its workers close their connections and go
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    metrics.enable_multiprocess(metrics_dir)  # /metrics on any worker shows them all
    use_uvloop()
    s = settings
    ws_socks = listening_sockets(s.host, s.port, s.listen_queues, s.listen_backlog)
    http_sock = reuseport_socket(s.host, s.http_port)
    http_sock.listen(s.listen_backlog)
    ready.send(True)
    ready.close()
    asyncio.run(
        run_until_signalled(
            settings,
            store_url,
            announce=False,
            ws_socks=ws_socks,
            http_sock=http_sock,
            metrics_dir=metrics_dir,
        )
    )


def run_workers(settings: Settings, store_url: str) -> int:
    """Start the workers, print the URLs once all listen, and stop them on SIGTERM/SIGINT."""
    claim_port(settings.host, settings.port)  # another serve's port is not shared
    claim_port(settings.host, settings.http_port)
    # Bound but not listening: reserves the ports (resolving port 0) and takes no traffic.
    ws_hold = reuseport_socket(settings.host, settings.port)
    http_hold = reuseport_socket(settings.host, settings.http_port)
    settings = replace(
        settings, port=ws_hold.getsockname()[1], http_port=http_hold.getsockname()[1]
    )
    metrics_dir = metrics.run_dir(settings.data_dir)
    try:
        return _supervise(settings, store_url, metrics_dir, (ws_hold, http_hold))
    except WorkerStartError as exc:
        print(f"livesrv: {exc}", file=sys.stderr)
        return 1
    finally:
        metrics.remove_run_dir(metrics_dir)


def _supervise(
    settings: Settings, store_url: str, metrics_dir: Path, holds: tuple[socket.socket, ...]
) -> int:
    settler = None
    if apart(settings):  # one for all workers, not one each
        settler = SettleProcess(settings, store_url, metrics_dir)
        settings = replace(settings, settle=False)
    try:
        procs = _start_workers(settings, store_url, metrics_dir)
    finally:  # the workers listen now (or serve is giving up): the reservation ends
        for hold in holds:
            hold.close()
    if settler is not None:
        settler.start()
    host = settings.url_host
    announce_urls(
        f"ws://{host}:{settings.port}/ws",
        f"http://{host}:{settings.http_port}",
        settings,
        settling=describe(settings, settler),
    )
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop and all(p.is_alive() for p in procs):
        for p in procs:
            p.join(0.1)
        if settler is not None:
            settler.check()
    for n, p in enumerate(procs, 1):
        if not stop and not p.is_alive():
            print(
                f"livesrv: worker {n} (pid {p.pid}) exited {p.exitcode}; stopping", file=sys.stderr
            )
    _stop_workers(procs, metrics_dir)
    if settler is not None:
        settler.stop()  # after the workers, which finished the money in flight
    return 0 if stop else 1


def _start_workers(settings: Settings, store_url: str, metrics_dir: Path) -> list[BaseProcess]:
    """Fork the workers, each once the one before says it listens. A worker that dies or
    stays silent before that stops the ones already started and raises WorkerStartError
    (they are not daemons: left running, they would keep serve from ever exiting)."""
    ctx = mp.get_context("fork")
    procs: list[BaseProcess] = []
    try:
        for n in range(1, settings.workers + 1):
            parent_end, child_end = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_child, args=(settings, store_url, child_end, metrics_dir), daemon=False
            )
            proc.start()
            procs.append(proc)
            child_end.close()
            if not _says_ready(parent_end, READY_TIMEOUT):
                proc.join(1)
                how = (
                    f"silent for {READY_TIMEOUT:.0f} s"
                    if proc.exitcode is None
                    else f"exited {proc.exitcode}; its error is above"
                )
                raise WorkerStartError(
                    f"worker {n} of {settings.workers} did not start listening ({how})"
                )
    except BaseException:
        _stop_workers(procs, metrics_dir)
        raise
    return procs


def _says_ready(pipe: Connection, timeout: float) -> bool:
    """True when the worker sent ready within ``timeout``; False when it died first (the
    pipe closes) or stayed silent."""
    try:
        return pipe.poll(timeout) and pipe.recv() is True
    except (EOFError, OSError):
        return False
    finally:
        pipe.close()


def _stop_workers(procs: list[BaseProcess], metrics_dir: Path) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()  # SIGTERM: each worker drains and closes with 1001
    for p in procs:
        p.join(30)
        if p.is_alive():
            p.kill()
            p.join(5)
        if p.pid is not None:
            metrics.worker_gone(metrics_dir, p.pid)
