"""``serve --workers N`` when a worker dies before it listens: serve says which one, stops
the workers already started and its store, and exits 1, instead of waiting forever on the
workers it left running.

The failure is made real in the worker process: serve runs in a child Python that swaps the
function a worker opens its listening sockets with for one that raises in every worker but
the first (or in the first), as a worker out of file descriptors would. A worker killed later
stops serve the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServeProcess
from tests.test_cli import _running
from tests.test_settle_process import descendants
from tests.timing import scaled, until

SERVE_WITH_A_FAILING_WORKER = """
import os, sys
from livesrv import cli
from livesrv.realtime import processes

started_file, fail_first = sys.argv[1], sys.argv[2] == "first"
real = processes.listening_sockets


def out_of_files(*args, **kwargs):
    if fail_first or os.path.exists(started_file):
        raise OSError(24, "Too many open files")
    with open(started_file, "w") as fh:
        fh.write(str(os.getpid()))
    return real(*args, **kwargs)


processes.listening_sockets = out_of_files
sys.exit(cli.main(sys.argv[3:]))
"""


def _running_in(directory: Path) -> list[int]:
    """Live processes whose working directory is ``directory`` (the embedded store runs in
    its data dir's ``store``)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(directory) and _running(int(entry)):
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.parametrize(("failing", "workers"), [("second", 3), ("first", 2)])
async def test_a_worker_dying_before_it_listens_stops_serve_with_exit_1(
    tmp_path: Path, failing: str, workers: int
) -> None:
    data_dir, started = tmp_path / "data", tmp_path / "first-worker.pid"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    args = ["serve", "--workers", str(workers), "--port", "0", "--http-port", "0"]
    done = subprocess.run(
        [sys.executable, "-c", SERVE_WITH_A_FAILING_WORKER, str(started), failing]
        + [*args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=scaled(60),  # before the fix: never returned
        env=env,
    )
    assert done.returncode == 1, done.stderr
    n = 2 if failing == "second" else 1
    said = f"livesrv: worker {n} of {workers} did not start listening (exited 1; its error"
    assert said in done.stderr
    assert "Too many open files" in done.stderr  # the worker's own error, above
    assert "ws://" not in done.stdout  # no URLs announced for a serve that is not serving
    if failing == "second":  # the worker that did start is stopped, not left behind
        first = int(started.read_text())
        await until(lambda: not _running(first))
    else:
        assert not started.exists()
    await until(lambda: not _running_in(data_dir / "store"))


async def test_a_worker_killed_while_serving_stops_the_others_with_exit_1(
    serve_process: Callable[..., ServeProcess],
) -> None:
    p = serve_process("--workers", "2")
    forked = await until(lambda: _workers(p.proc.pid, 2))
    os.kill(forked[0], signal.SIGKILL)
    assert await asyncio.to_thread(p.wait) == 1
    await until(lambda: not _running(forked[1]))  # the one left is stopped too
    await until(lambda: not _running_in(p.data_dir / "store"))


def _workers(serve_pid: int, n: int) -> list[int]:
    """The ``n`` workers under serve once all are there (forked: serve's own command line,
    where the settlement process and the store have theirs)."""
    found = [pid for pid, line in descendants(serve_pid).items() if " serve " in line]
    return sorted(found) if len(found) == n else []
