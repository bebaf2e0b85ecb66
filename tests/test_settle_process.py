"""``serve`` settles in a process of its own: real serve processes, a real embedded store.

The settlement process is serve's child; what viewers spend reaches creators through it,
its figures show in serve's /metrics, it is started again when it dies (and settles what
was spent meanwhile), and it goes when serve is killed. ``--settle-inline`` keeps the old
way (settlement in the node's event loop), and ``--workers N`` has one for all workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from livesrv.realtime import settle_process
from livesrv.settings import Settings
from tests.client import Client
from tests.conftest import ServeProcess
from tests.test_cli import (  # noqa: F401 -- _no_livesrv_env: the same clean environment
    Serve,
    _no_livesrv_env,
    _running,
    api,
    arun,
    audit_args,
    some_gifts,
)
from tests.test_metrics_workers import scrape
from tests.timing import until

SETTLER = "-m livesrv.realtime.settle_process"  # the settlement process's command line


def descendants(pid: int) -> dict[int, str]:
    """Every process under ``pid`` that is still running: pid -> command line."""
    parents: dict[int, int] = {}
    lines: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
            lines[int(entry)] = cmdline
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = lines[child]
                frontier.append(child)
    return found


def settlers(pid: int) -> list[int]:
    return [p for p, line in descendants(pid).items() if SETTLER in line]


async def creator_pending(p: ServeProcess, expected: int) -> None:
    """Wait until the creator ``cr`` has ``expected`` diamonds pending (settled)."""

    async def probe() -> bool:
        wallet = await api(p, "GET", "/api/users/cr/wallet")
        return bool(wallet["pending"] == expected)

    await until(probe, 30)


async def close(*clients: Client) -> None:
    for c in clients:
        await c.close()


async def test_serve_settles_in_a_child_process_that_comes_back_and_goes_with_serve(
    serve_process: Serve, tmp_path: Path
) -> None:
    d = tmp_path / "d"
    p = serve_process(data_dir=d)  # default hold: diamonds settle as pending
    (settler,) = await until(lambda: settlers(p.proc.pid), 30)
    creator, fan = await some_gifts(p, 4)  # 4 x 3 coins, the creator's half pending
    await creator_pending(p, 6)
    sample = await scrape(p.http_url)
    assert sample.get("livesrv_settlement_entries_total") == 4
    assert sample.get('livesrv_coins_spent_total{kind="gift"}') == 12
    assert 'python_gc_collections_total{generation="0"}' in sample

    # the settlement process dies: gifts keep being accepted, and settle once it is back
    os.kill(settler, signal.SIGKILL)
    for i in (4, 5):
        await fan.ok("gift", room="r", gift="rose", count=3, key=f"k{i}")
    (again,) = await until(lambda: [s for s in settlers(p.proc.pid) if s != settler], 30)
    await creator_pending(p, 9)
    assert settlers(p.proc.pid) == [again]
    audit = await arun(*audit_args(d))
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # a killed serve takes its settlement process along (no settling behind a dead node)
    p.signal(signal.SIGKILL)
    await asyncio.to_thread(p.wait)
    await until(lambda: not _running(again), 30)
    await close(creator, fan)


async def test_settle_inline_settles_in_the_serve_process(
    serve_process: Serve, tmp_path: Path
) -> None:
    p = serve_process("--settle-inline", data_dir=tmp_path / "d")
    creator, fan = await some_gifts(p, 2)
    await creator_pending(p, 3)
    assert (await scrape(p.http_url)).get("livesrv_settlement_entries_total") == 2
    assert settlers(p.proc.pid) == []
    p.signal(signal.SIGTERM)
    assert await asyncio.to_thread(p.wait) == 0
    await close(creator, fan)


async def test_workers_share_one_settlement_process(serve_process: Serve, tmp_path: Path) -> None:
    p = serve_process("--workers", "2", data_dir=tmp_path / "d")
    (settler,) = await until(lambda: settlers(p.proc.pid), 30)
    creator, fan = await some_gifts(p, 2)
    await creator_pending(p, 3)
    assert settlers(p.proc.pid) == [settler]
    assert (await scrape(p.http_url)).get("livesrv_settlement_entries_total") == 2
    p.signal(signal.SIGTERM)
    assert await asyncio.to_thread(p.wait) == 0
    assert not _running(settler)  # serve stopped it before exiting
    await close(creator, fan)


async def test_a_killed_serve_with_workers_leaves_nothing_of_itself_running(
    serve_process: Serve, tmp_path: Path
) -> None:
    p = serve_process("--workers", "2", data_dir=tmp_path / "d")
    await until(lambda: settlers(p.proc.pid), 30)
    children = descendants(p.proc.pid)  # two workers, the settlement process, the store
    assert len(children) == 4, children
    p.signal(signal.SIGKILL)
    await asyncio.to_thread(p.wait)
    await until(lambda: not any(_running(pid) for pid in children), 30)


def test_a_settlement_process_that_keeps_dying_is_started_again_later_each_time(
    tmp_path: Path,
) -> None:
    """Quick deaths: started again after about 1 s, then 2 s (Backoff: half to all of each
    step); one that had run a minute is started again at once."""
    now = [0.0]
    settler = settle_process.SettleProcess(
        Settings(), "redis://127.0.0.1:1", tmp_path, clock=lambda: now[0]
    )
    spawned: list[float] = []

    def dies_at_once() -> subprocess.Popen[bytes]:
        spawned.append(now[0])
        proc = subprocess.Popen(["true"])
        proc.wait()
        return proc

    settler.spawn = dies_at_once  # type: ignore[method-assign]

    def at(t: float) -> list[float]:
        now[0] = t
        settler.check()
        return spawned

    settler.start()
    assert at(0.1) == [0.0]  # found dead: started again in 0.5-1 s
    assert at(0.5) == [0.0]
    assert at(1.2) == [0.0, 1.2]
    assert at(1.3) == [0.0, 1.2]  # dead again: 1-2 s from now
    assert at(2.2) == [0.0, 1.2]
    assert at(3.4) == [0.0, 1.2, 3.4]
    assert at(70.0) == [0.0, 1.2, 3.4, 70.0]  # it had run over a minute: at once
    settler.stop()


async def test_serve_on_an_external_store_needs_no_writable_data_dir(
    serve_process: Serve, flushed: str, tmp_path: Path
) -> None:
    """The node and its settlement process share their metrics through a directory; with
    no data dir to make it in (a file there, as a read-only file system would refuse), a
    private temporary one serves."""
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file, not a directory")
    p = serve_process("--redis-url", flushed, data_dir=not_a_dir)
    creator, fan = await some_gifts(p, 2)
    await creator_pending(p, 3)
    assert (await scrape(p.http_url)).get("livesrv_settlement_entries_total") == 2
    p.signal(signal.SIGTERM)
    assert await asyncio.to_thread(p.wait) == 0
    await close(creator, fan)
