"""Scenario: the store's own ceiling. One real gift per user goes through livesrv's gift
code while its script calls are recorded; the load workers then replay those calls straight
at the same store, pipelined, each gift with a fresh key: the most gifts/s the store can
take for the same work.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from typing import Any

from loadtests import servers

from .config import GIFT, GIFT_COUNT, GRANT, Plan
from .gifts import ops_per_gift, store_ops
from .pool import Pool, grant, mint, split
from .sampling import Sampler, other_cpu, wait_idle

MARKER = "CEILKEY0"


async def record_gift_calls(
    server: servers.Livesrv, env: dict[str, str], users: list[str], room: str
) -> tuple[str, dict[str, str], list[list[Any]]]:
    """Send one real gift per user through livesrv's own gift code, recording the scripts it
    runs through the store facade's hook (:attr:`livesrv.store.facade.Backend.on_script`).

    Returns (store url, script sources by name, per user the list of (name, keys, args)
    with the idempotency key replaced by ``MARKER``).
    """
    sys.path.insert(0, str(servers.REPO))
    from livesrv.services import gifts, rooms
    from livesrv.settings import Settings
    from livesrv.store import scripts
    from livesrv.store.embedded import EmbeddedStore
    from livesrv.store.facade import Backend

    settings = Settings.from_env(env={**os.environ, **env}, data_dir=server.data_dir)
    url = settings.redis_url or EmbeddedStore(server.data_dir).url
    backend = Backend.create(settings, url)
    calls: list[tuple[str, list[str], list[Any]]] = []

    def record(name: str, keys: list[str], args: list[Any], seconds: float) -> None:
        calls.append((name, list(keys), list(args)))

    backend.on_script = record
    info = await rooms.info(backend, room)
    per_user = []
    try:
        for user in users:
            calls.clear()
            await gifts.send_gift(backend, user, info, GIFT, GIFT_COUNT, MARKER)  # type: ignore[arg-type]
            per_user.append([list(c) for c in calls])
    finally:
        await backend.close()
    sources = {n: scripts.source(n) for n in {c[0] for u in per_user for c in u}}
    return url, sources, per_user


def ceiling(pool: Pool, server: servers.Livesrv, plan: Plan, env: dict[str, str]) -> dict[str, Any]:
    users = [f"ceil-{i}" for i in range(plan.ceiling_users)]
    room, creator = "ceil-room", "ceil-creator"
    ctok = mint(pool, server, [creator], "creator")
    grant(pool, server, users, GRANT, "ceil")
    pool.call(0, "open_rooms", url=server.ws_url, rooms=[(ctok[creator], room)])
    url, sources, per_user = asyncio.run(record_gift_calls(server, env, users, room))
    workers = list(range(1, 1 + plan.gifter_workers))
    rounds = []
    for k in range(plan.ceiling_rounds):
        rounds.append(_ceiling_round(pool, server, plan, workers, url, sources, per_user, k))
    pool.call(0, "creators_close")
    best = max(rounds, key=lambda r: r["gifts_per_s"])
    return {
        "scripts_per_gift": sorted({c[0] for c in per_user[0]}) if per_user else [],
        "calls_per_gift": len(per_user[0]) if per_user else 0,
        **best,
        "errors": dict(sum((Counter(r["errors"]) for r in rounds), Counter())),
        "rounds": rounds,
        "pipeline_depth": plan.ceiling_depth,
        "pipelines": plan.ceiling_tasks * len(workers),
    }


def _ceiling_round(
    pool: Pool,
    server: servers.Livesrv,
    plan: Plan,
    workers: list[int],
    url: str,
    sources: dict[str, str],
    per_user: list[list[Any]],
    k: int,
) -> dict[str, Any]:
    background = wait_idle(server)
    start_at = time.time() + 0.5
    load0 = pool.cpu_times()
    ops0 = store_ops(server)
    with Sampler(server) as sampler:
        res = pool.call_many(
            {
                w: (
                    "ceiling",
                    {
                        "store_url": url,
                        "sources": sources,
                        "templates": chunk,
                        "marker": MARKER,
                        "start_at": start_at,
                        "duration": plan.ceiling_seconds,
                        "depth": plan.ceiling_depth,
                        "tasks": plan.ceiling_tasks,
                        "tag": f"x{k}{w}",
                    },
                )
                for w, chunk in zip(workers, split(per_user, len(workers)), strict=True)
            }
        )
    load_cpu = [round(b - a, 2) for a, b in zip(load0, pool.cpu_times(), strict=True)]
    ok = sum(r["ok"] for r in res.values())
    # the replayed gift script, and what the serve's settlement does with what it writes
    ops = ops_per_gift(ops0, store_ops(server), ok)
    seconds = max(r["t_end"] for r in res.values()) - min(r["t_begin"] for r in res.values())
    errors: Counter[str] = Counter()
    for r in res.values():
        errors.update(r["errors"])
    return {
        "ok": ok,
        "errors": dict(errors),
        "seconds": round(seconds, 3),
        "gifts_per_s": round(ok / max(seconds, 1e-9), 1),
        "server_cpu_s_meanwhile": round(sampler.cpu, 2),
        "store_cpu_share": round(sampler.store_cpu / max(sampler.wall, 1e-9), 3),
        "load_cpu_s": load_cpu,
        "other_cores": other_cpu(sampler, sum(load_cpu)),
        "background_before": background,
        "store_ops_per_gift": ops,
    }
