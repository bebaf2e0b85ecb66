"""The harness's run-queue figure: the time a process was runnable but had no core.

On a machine the servers, the store and the load share, this is what tells a slow phase
held up by the others from one that used its CPU badly (docs/benchmarks.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

psutil = pytest.importorskip("psutil")

from loadtests.servers import run_queue_wait  # noqa: E402

SPIN = "import time\nend = time.process_time() + {cpu}\nwhile time.process_time() < end: pass\n"


def _spinners(n: int, cpu: float, core: int) -> list[subprocess.Popen[bytes]]:
    """``n`` processes, each burning ``cpu`` seconds of CPU, all on the one ``core``."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN.format(cpu=cpu)]) for _ in range(n)]
    for p in procs:
        os.sched_setaffinity(p.pid, {core})
    return procs


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="Linux schedstat")
def test_processes_sharing_one_core_are_seen_waiting_for_it() -> None:
    core = min(os.sched_getaffinity(0))
    procs = _spinners(3, 0.4, core)
    handles = [psutil.Process(p.pid) for p in procs]
    deadline = time.monotonic() + 30
    waited = 0.0
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        waited = max(waited, run_queue_wait(handles))  # read while they still exist
        time.sleep(0.02)
    for p in procs:
        p.wait(5)
    # three processes that each need 0.4 s on one core: while one runs the other two
    # wait, so each waits about 0.8 s, about 2.4 s together (a little less by the time
    # the first one is gone); far more than zero either way
    assert waited > 0.3, waited


def test_gone_processes_count_nothing() -> None:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    handle = psutil.Process(p.pid)
    p.wait(10)
    assert run_queue_wait([handle]) == 0.0
