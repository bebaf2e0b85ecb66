"""Settlement in a process of its own beside ``serve``'s node(s) (the default): the
settlement worker does not share the sessions' event loop, so a busy node no longer
delays what creators are credited (docs/design.md, "Where settlement runs").

The child is a fresh interpreter (``python -m livesrv.realtime.settle_process``: nothing of
the parent's event loop, threads or sockets comes with it), tied to serve by the
parent-death signal, so a serve that is killed takes it along. One that dies on its own is
started again; whatever it held is idempotent and claimed by its successor
(``settle_claim_ms``). Its metrics reach serve's ``/metrics`` through the run's
multiprocess directory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .. import logs, metrics
from ..event_loop import use_uvloop
from ..parent_death import kill_with_parent
from ..settings import Settings
from ..store.outage import Backoff

log = logging.getLogger(__name__)

STOP_SECONDS = 10.0  # a settle process that does not stop on SIGTERM within this is killed
WATCH_SECONDS = 0.5
# one that keeps dying is started again after 1, 2, 4 ... 30 s; one that lived this long
# before it died is started again at once
RESTART_FIRST, RESTART_CAP, HEALTHY_SECONDS = 1.0, 30.0, 60.0


class SettleProcess:
    """Starts, watches and stops the one settlement process of a ``serve``."""

    def __init__(
        self,
        settings: Settings,
        store_url: str,
        metrics_dir: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store_url = store_url
        self.metrics_dir = metrics_dir
        self.clock = clock  # monotonic seconds (tests may pass their own)
        self.proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._restart_at: float | None = None  # when the dead process is started again
        self._backoff = Backoff(RESTART_FIRST, RESTART_CAP)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        self.proc = self.spawn()
        self._started_at = self.clock()
        self._restart_at = None

    def spawn(self) -> subprocess.Popen[bytes]:
        """Run ``python -m livesrv.realtime.settle_process``; what it needs comes on its
        standard input (the settings as serve resolved them, not the environment again)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            preexec_fn=kill_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
        what = (self.settings, self.store_url, self.metrics_dir, os.getpid(), _log_level())
        assert proc.stdin is not None
        with proc.stdin:
            proc.stdin.write(pickle.dumps(what))
        return proc

    def check(self) -> None:
        """Start the process again if it died: at once if it had run ``HEALTHY_SECONDS``,
        else after a delay that doubles with each quick death (up to 1 s, 2 s, 4 s ...
        30 s: ``Backoff``'s jitter)."""
        proc = self.proc
        if proc is None or proc.poll() is None:
            return
        now = self.clock()
        if self._restart_at is None:  # just found dead
            if now - self._started_at >= HEALTHY_SECONDS:
                self._backoff.reset()
                delay = 0.0
            else:
                delay = self._backoff.next()
            self._restart_at = now + delay
            log.warning(
                "the settlement process (pid %s) exited with status %s; starting it again "
                "in %.1f s",
                proc.pid,
                proc.returncode,
                delay,
            )
            metrics.worker_gone(self.metrics_dir, proc.pid)
        if now >= self._restart_at:
            self.start()

    async def watch(self) -> None:
        """Keep it running until cancelled."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            self.check()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_SECONDS``. What it had not settled stays in
        the outbox for the next worker (each entry settles once, by its id)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        metrics.worker_gone(self.metrics_dir, proc.pid)


def apart(settings: Settings) -> bool:
    """Whether serve settles in a process of its own (else in its node(s), or not at all)."""
    return settings.settle and settings.settle_process


def describe(settings: Settings, settler: SettleProcess | None) -> str:
    """Where this serve settles, for its start-up line."""
    if settler is not None:
        return f"in its own process (pid {settler.pid})"
    if not settings.settle:
        return "off (--no-settle)"
    return "in each worker" if settings.workers > 1 else "in this process"


def _log_level() -> str:
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())


def main() -> None:
    """The settlement process: one worker of the consumer group until SIGTERM."""
    settings, store_url, metrics_dir, parent, log_level = pickle.loads(sys.stdin.buffer.read())
    if os.getppid() != parent:  # serve died before the parent-death signal was set
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches serve, which stops us
    logs.setup(log_level, settings.log_format)
    metrics.enable_multiprocess(metrics_dir)
    use_uvloop()
    asyncio.run(_settle(settings, store_url, metrics_dir))


async def _settle(settings: Settings, store_url: str, metrics_dir: Path) -> None:
    from ..metrics import Metrics
    from ..settlement import SettlementWorker
    from ..store.facade import Backend

    b = Backend.create(settings, store_url)
    name = f"settle-{socket.gethostname()}-{os.getpid()}"
    worker = SettlementWorker(b, Metrics(metrics_dir), name=name)
    task = asyncio.create_task(worker.run(), name="settlement")

    def on_term() -> None:
        worker.stopping = True
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await b.close()


if __name__ == "__main__":
    main()
