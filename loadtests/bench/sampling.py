"""What each phase records besides its own figures: the server's RSS and CPU, the store's
CPU, the whole machine's busy time (so other work on a shared machine shows), and the
waits for an idle server and a quiet machine before a phase starts.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

from loadtests import profiling, servers
from loadtests.loadworker import raise_nofile

from .config import OPTIONS


def tcp_mem() -> int:
    """Bytes the kernel holds in TCP socket buffers, all sockets (/proc/net/sockstat)."""
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1]) * 4096
    except (OSError, ValueError, IndexError):
        pass
    return 0


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores)."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def other_cpu(sampler: Sampler, load_cpu: float) -> float:
    """Cores used meanwhile by processes that are neither the servers nor the load."""
    other = sampler.machine_busy - sampler.cpu - sampler.store_cpu - load_cpu
    return round(max(0.0, other) / max(sampler.wall, 1e-9), 2)


class Sampler:
    """Samples a server's RSS (and CPU seconds) every ``interval`` s in a thread.

    With ``--profile``, also records the server with py-spy for the same span and keeps
    a flame graph (SVG) and a summary of the hottest functions.
    """

    def __init__(
        self, server: servers.ServerProcess, interval: float = 0.5, name: str | None = None
    ) -> None:
        self.server = server
        self.name = name
        self.profile: dict[str, Any] | None = None
        self._spy: Any = None
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.tcp_mem: list[int] = []  # kernel TCP buffer memory (bytes), machine-wide
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.time()
        while not self._stop.is_set():
            self.samples.append((round(time.time() - t0, 2), self.server.rss()))
            self.tcp_mem.append(tcp_mem())
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        if (
            OPTIONS.profile_dir is not None
            and self.name
            and isinstance(self.server, servers.Livesrv)
        ):
            self._spy = profiling.start(self.server.pid, OPTIONS.profile_dir / self.name)
        self.cpu0, self.kernel0 = self.server.cpu_and_kernel_times()
        self.store0 = self.server.store_cpu_times()
        self.wait0 = self.server.run_queue_wait()
        self.store_wait0 = self.server.store_run_queue_wait()
        self.busy0 = machine_busy()
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        cpu, kernel = self.server.cpu_and_kernel_times()
        self.cpu, self.kernel_cpu = cpu - self.cpu0, kernel - self.kernel0
        self.store_cpu = self.server.store_cpu_times() - self.store0
        # runnable but waiting for a core (threads that ended meanwhile take theirs along)
        self.wait = max(0.0, self.server.run_queue_wait() - self.wait0)
        self.store_wait = max(0.0, self.server.store_run_queue_wait() - self.store_wait0)
        self.wall = time.monotonic() - self.t0
        self.machine_busy = machine_busy() - self.busy0
        if self._spy is not None:
            self.profile = profiling.stop(self._spy)


def wait_idle(server: servers.ServerProcess, limit: float = 0.15) -> float:
    """Wait until the server uses less than ``limit`` of a core over half a second, then
    (up to ``OPTIONS.quiet_timeout`` s) until the rest of the machine is quiet too.

    Returns the cores used by processes outside this benchmark just before the phase.
    """
    deadline = time.monotonic() + OPTIONS.idle_timeout
    while True:
        c0 = server.cpu_times()
        time.sleep(0.5)
        busy = (server.cpu_times() - c0) / 0.5
        if busy < limit or time.monotonic() > deadline:
            break
    return wait_quiet()


def _tree_cpu() -> float:
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def wait_quiet() -> float:
    """Wait until processes outside this benchmark use under ``OPTIONS.quiet_limit`` cores.

    The machine is shared (2 cores): anything else running skews every figure, so each
    phase starts when the rest of the machine is quiet, or after ``OPTIONS.quiet_timeout`` s; the
    background load seen is recorded with the phase either way.
    """
    deadline = time.monotonic() + OPTIONS.quiet_timeout
    while True:
        m0, t0, w0 = machine_busy(), _tree_cpu(), time.monotonic()
        time.sleep(1.0)
        wall = time.monotonic() - w0
        foreign = max(0.0, (machine_busy() - m0) - (_tree_cpu() - t0)) / wall
        if foreign < OPTIONS.quiet_limit or time.monotonic() > deadline:
            return round(foreign, 2)


def settled_rss(server: servers.ServerProcess) -> int:
    samples = []
    for _ in range(3):
        samples.append(server.rss())
        time.sleep(0.3)
    return sorted(samples)[1]


def metric(server: servers.Livesrv, name: str) -> float | None:
    """One sample's value from the server's /metrics (summed over label sets)."""
    try:
        text = server.metrics()
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nofile": raise_nofile(),
    }


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes ``pids``, all together."""
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total
