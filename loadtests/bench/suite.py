"""The single-server run: every scenario (or those chosen) against one livesrv and the naive
baseline, with a progress bar; the result carries the machine, the plan, each phase's
duration and the summary, and is written by :mod:`.results`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests import servers
from loadtests.loadworker import raise_nofile

from .ceiling import ceiling
from .config import BENCH_ENV, GRANT, OPTIONS, Plan
from .connections import connections
from .fanout import Target, fanout_run
from .gifts import gift_levels
from .joins import joins
from .pool import Pool, grant, mint
from .results import stamp, summarize, write
from .sampling import machine
from .slow import slow_consumers


class _NoBar:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, what: str) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


SCENARIOS = ("gifts", "ceiling", "fanout", "slow", "connections", "joins")
MONEY = {"gifts", "ceiling", "fanout", "slow"}  # scenarios that move money on the main server


def run(
    plan: Plan, out: Path, *, only: set[str] | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the scenarios of ``plan`` (all, or those in ``only``); write JSON and plots."""
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional
        tqdm = _NoBar  # type: ignore[assignment,misc]

    raise_nofile()
    # joins starts three servers and a storm: over 20 s more, so not in --quick unless asked
    default = set(SCENARIOS) - ({"joins"} if plan.quick else set())
    chosen = default if only is None else only
    steps = (
        len(plan.concurrency) * ("gifts" in chosen)
        + ("ceiling" in chosen)
        + 2 * len(plan.fanout_viewers) * ("fanout" in chosen)
        + ("slow" in chosen)
        + len(plan.conn_points) * ("connections" in chosen)
        + 4 * ("joins" in chosen)
        + bool(chosen & MONEY)
        + 2
    )
    bar = tqdm(
        total=steps,
        disable=not progress,
        unit="step",
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
    )

    marks: list[tuple[str, float]] = [("setup", time.monotonic())]

    def tick(what: str) -> None:
        marks.append((what, time.monotonic()))
        bar.set_description(what)
        bar.update(1)

    tmp = Path(tempfile.mkdtemp(prefix="livesrv-bench-"))
    env = dict(BENCH_ENV)
    result: dict[str, Any] = {
        "mode": "quick" if plan.quick else "full",
        "server_workers": OPTIONS.server_workers,
        "settle": OPTIONS.settle,
        "machine": machine(),
        "plan": asdict(plan),
        "bench_env": env,
        "started": stamp(),
    }
    pool = Pool(1 + max(plan.viewer_workers, plan.gifter_workers))
    try:
        _scenarios(pool, plan, env, tmp, chosen, tick, result)
        if "connections" in chosen:
            result["connections"] = connections(pool, tmp, plan, env, tick)
        if "joins" in chosen:
            result["joins"] = joins(pool, tmp, plan, env, tick)
    finally:
        pool.close()
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    marks.append(("end", time.monotonic()))
    result["phase_seconds"] = {
        name: round(marks[i + 1][1] - t, 1) for i, (name, t) in enumerate(marks[:-1])
    }
    result["finished"] = stamp()
    result["summary"] = summarize(result)
    name = "bench-quick" if plan.quick else "bench"
    # joins alone (its own servers) has its own file: it does not replace the suite's
    write(result, out, name + "-joins" if chosen == {"joins"} else name)
    return result


def _scenarios(
    pool: Pool,
    plan: Plan,
    env: dict[str, str],
    tmp: Path,
    chosen: set[str],
    tick: Callable[[str], None],
    result: dict[str, Any],
) -> None:
    """Everything measured against the main livesrv server and the naive baseline."""
    tick("starting servers")
    server = servers.start_livesrv(
        tmp / "main",
        env=env,
        workers=OPTIONS.server_workers,
        settle=OPTIONS.settle,
    )
    naive = None
    try:
        naive = servers.start_naive(tmp / "naive")
        lsrv = Target(
            "livesrv",
            server,
            tokens=lambda users, role: mint(pool, server, users, role),
            grant=lambda users: grant(pool, server, users, GRANT, "fan"),
        )
        nv = Target(
            "naive",
            naive,
            tokens=lambda users, role: {u: u for u in users},
            grant=lambda users: None,
        )
        if "gifts" in chosen:
            result["gifts"] = gift_levels(pool, server, plan, tick)
        if "fanout" in chosen:
            result["fanout"] = []
            for v in plan.fanout_viewers:
                for target in (lsrv, nv):
                    tick(f"fan-out {target.kind} {v}")
                    result["fanout"].append(fanout_run(pool, target, v, plan))
        if "slow" in chosen:
            tick("slow consumers")
            result["slow"] = slow_consumers(pool, lsrv, plan)
        if "ceiling" in chosen:
            # last on this server: the ceiling leaves a large settlement backlog behind
            tick("store ceiling")
            try:
                result["ceiling"] = ceiling(pool, server, plan, env)
            except (ImportError, AttributeError, TypeError) as exc:
                result["ceiling"] = {"error": f"{type(exc).__name__}: {exc}"}
        if chosen & MONEY:
            # every money guarantee kept under the load: the audit of the whole store, on
            # the running server (its settlement may still be working through a backlog)
            tick("audit")
            result["audit"] = server.audit(env)
    finally:
        server.stop()
        if naive is not None:
            naive.stop()
