"""Scenario: idle connections. Viewers joined to a few rooms, held without traffic: the
server's RSS per connection at each point of the plan (its own server, so nothing else
inflates the figure).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtests import servers
from loadtests.loadworker import raise_nofile

from .config import Plan
from .pool import Pool, mint, split
from .sampling import settled_rss


def connections(
    pool: Pool, tmp: Path, plan: Plan, env: dict[str, str], tick: Callable[[str], None]
) -> dict[str, Any]:
    top = max(plan.conn_points)
    nofile = raise_nofile()
    workers = 1 if top + 1000 < nofile else 2
    note = None
    try:
        server = servers.start_livesrv(tmp / "conn", workers=workers, env=env)
    except (RuntimeError, TimeoutError) as exc:
        if workers == 1:
            raise
        note = f"--workers {workers} failed ({str(exc)[:200]}); one worker, capped points"
        workers = 1
        server = servers.start_livesrv(tmp / "conn1", workers=1, env=env)
    points = [p if p + 1000 < nofile or workers > 1 else nofile - 1000 for p in plan.conn_points]
    vworkers = list(range(1, pool.size))
    try:
        rooms = [f"idle{j}" for j in range(plan.conn_rooms)]
        creators = [f"ic{j}" for j in range(plan.conn_rooms)]
        ctok = mint(pool, server, creators, "creator")
        pool.call(
            0,
            "open_rooms",
            url=server.ws_url,
            rooms=[(ctok[c], r) for c, r in zip(creators, rooms, strict=True)],
        )
        names = [f"iv{i}" for i in range(max(points))]
        vtok = mint(pool, server, names, "viewer")
        time.sleep(1.0)
        rss0 = settled_rss(server)
        out: list[dict[str, Any]] = []
        done = 0
        for p in points:
            tick(f"idle connections {p}")
            failed = connect_idle(
                pool, server.ws_url, rooms, [vtok[n] for n in names[done:p]], done
            )
            done = p
            time.sleep(2.0)
            rss = settled_rss(server)
            out.append(
                {
                    "connections": p,
                    "failed": failed,
                    "server_rss_mb": round(rss / 2**20, 1),
                    "baseline_rss_mb": round(rss0 / 2**20, 1),
                    "kib_per_connection": round((rss - rss0) / p / 1024, 2),
                    "store_rss_mb": round(server.store_rss() / 2**20, 1),
                }
            )
        pool.call_many({w: ("viewers_close", {}) for w in vworkers})
        pool.call(0, "creators_close")
    finally:
        server.stop()
    return {"server_workers": workers, "note": note, "points": out}


def connect_idle(pool: Pool, url: str, rooms: list[str], tokens: list[str], first: int) -> int:
    """Connect viewers (hello, join) over the load workers 1..n and leave them idle: viewer
    ``first + i`` joins ``rooms[(first + i) % len(rooms)]``. Returns how many failed."""
    vworkers = list(range(1, pool.size))
    by_room: dict[int, list[str]] = defaultdict(list)
    for i, token in enumerate(tokens):
        by_room[(first + i) % len(rooms)].append(token)
    # one viewers_connect call per (worker, room) so each viewer joins its room
    calls: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
    for j, items in by_room.items():
        for k, chunk in enumerate(split(items, len(vworkers))):
            calls[vworkers[k]].append((rooms[j], chunk))
    failed = 0
    for step in range(max(len(v) for v in calls.values())):
        res = pool.call_many(
            {
                w: (
                    "viewers_connect",
                    {
                        "url": url,
                        "tokens": lst[step][1],
                        "room": lst[step][0],
                        "sample_every": 1 << 30,
                    },
                )
                for w, lst in calls.items()
                if step < len(lst)
            }
        )
        failed += sum(r["failed"] for r in res.values())
    return failed
