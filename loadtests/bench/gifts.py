"""Scenario: gift throughput and reply latency against concurrency, and settlement lag
(gift acknowledged -> the creator's ``wallet`` event with the new diamond).
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from loadtests import servers

from .config import GIFT, GIFT_COUNT, GRANT, Plan
from .pool import Pool, grant, mint, split
from .sampling import Sampler, other_cpu, wait_idle
from .stats import Dist, cdf, lat_array, pct


def gift_levels(
    pool: Pool, server: servers.Livesrv, plan: Plan, tick: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Each concurrency level against livesrv, then against the plain one-script gift server
    (``loadtests/plain_gift_server.py``) on the same store, side by side."""
    levels = []
    plain = servers.start_plain_gifts(server.data_dir / "plain", store_url(server))
    try:
        for c, label in zip(plan.concurrency, level_labels(plan.concurrency), strict=True):
            tick(f"gifts c={c}")
            level = _livesrv_level(pool, server, plan, c, label)
            level["plain"] = _plain_level(pool, server, plain, plan, c, label)
            mine, theirs = level["gifts_per_s"], level["plain"]["gifts_per_s"]
            level["vs_plain"] = round(mine / theirs, 2) if theirs else None
            levels.append(level)
    finally:
        plain.stop()
    return levels


def level_labels(concurrency: list[int] | tuple[int, ...]) -> list[str]:
    """The name of each level's gifters, rooms and keys: its concurrency, and for a level
    given again, its position too (the same names would make its gifts idempotent replays
    of the earlier level's, which move nothing)."""
    return [f"{c}" if c not in concurrency[:n] else f"{c}r{n}" for n, c in enumerate(concurrency)]


def _livesrv_level(
    pool: Pool, server: servers.Livesrv, plan: Plan, c: int, label: str
) -> dict[str, Any]:
    nrooms = math.ceil(c / plan.per_room)
    rooms = [f"gr{label}-{j}" for j in range(nrooms)]
    creators = [f"bc{label}-{j}" for j in range(nrooms)]
    gifters = [f"bg{label}-{i}" for i in range(c)]
    ctok = mint(pool, server, creators, "creator")
    gtok = mint(pool, server, gifters, "viewer")
    grant(pool, server, gifters, GRANT, f"c{label}")
    pairs = [(gtok[g], rooms[i % nrooms]) for i, g in enumerate(gifters)]
    _connect(
        pool,
        plan,
        server.ws_url,
        [(ctok[u], r) for u, r in zip(creators, rooms, strict=True)],
        pairs,
    )
    pool.call(0, "reset_wallets")
    ops0 = store_ops(server)
    run = _closed_loop(pool, server, plan, len(pairs), f"c{label}", f"gifts-c{label}")
    creator_of = dict(zip(rooms, creators, strict=True))
    acks: dict[str, list[float]] = defaultdict(list)
    for r in run.pop("results"):
        for t, room in r["acks"]:
            acks[room].append(t)
    settle = wait_settlement(pool, acks, creator_of, timeout=15.0 if not plan.quick else 8.0)
    ops = ops_per_gift(ops0, store_ops(server), run["ok"])
    _close(pool, plan)
    return {
        "concurrency": c,
        "rooms": nrooms,
        **run,
        "settlement": settle,
        "store_ops_per_gift": ops,
    }


def _plain_level(
    pool: Pool,
    server: servers.Livesrv,
    plain: servers.ServerProcess,
    plan: Plan,
    c: int,
    label: str,
) -> dict[str, Any]:
    """The same closed loop against the plain server (it trusts any token: the user name)."""
    nrooms = math.ceil(c / plan.per_room)
    rooms = [f"pr{label}-{j}" for j in range(nrooms)]
    creators = [(f"pc{label}-{j}", rooms[j]) for j in range(nrooms)]
    pairs = [(f"pg{label}-{i}", rooms[i % nrooms]) for i in range(c)]
    _connect(pool, plan, plain.urls["ws"], creators, pairs)
    ops0 = store_ops(server)
    run = _closed_loop(pool, plain, plan, len(pairs), f"p{label}", None)
    run.pop("results")
    ops = ops_per_gift(ops0, store_ops(server), run["ok"])
    _close(pool, plan)
    return {**run, "store_ops_per_gift": ops}


def _connect(
    pool: Pool,
    plan: Plan,
    url: str,
    creators: list[tuple[str, str]],
    pairs: list[tuple[str, str]],
) -> None:
    """Creators (token, room) open their rooms on worker 0; gifters (token, room) connect and
    join on the gifter workers."""
    pool.call(0, "open_rooms", url=url, rooms=creators)
    gworkers = list(range(1, 1 + plan.gifter_workers))
    pool.call_many(
        {
            w: ("gifters_connect", {"url": url, "gifters": chunk})
            for w, chunk in zip(gworkers, split(pairs, len(gworkers)), strict=True)
            if chunk
        }
    )


def _close(pool: Pool, plan: Plan) -> None:
    pool.call_many({w: ("gifters_close", {}) for w in range(1, 1 + plan.gifter_workers)})
    pool.call(0, "creators_close")


def _closed_loop(
    pool: Pool,
    target: servers.ServerProcess,
    plan: Plan,
    gifters: int,
    tag: str,
    profile_name: str | None,
) -> dict[str, Any]:
    """One closed-loop run of every connected gifter: throughput, latency, CPU."""
    gworkers = list(range(1, 1 + plan.gifter_workers))
    background = wait_idle(target)
    start_at = time.time() + 0.5
    load0 = pool.cpu_times()
    with Sampler(target, name=profile_name) as sampler:
        res = pool.call_many(
            {
                w: (
                    "gifts_closed_loop",
                    {
                        "start_at": start_at,
                        "duration": plan.gift_seconds,
                        "gift": GIFT,
                        "count": GIFT_COUNT,
                        "tag": tag,
                        "record_acks": True,
                    },
                )
                for w in gworkers
                if w <= gifters
            }
        )
    load_cpu = [round(b - a, 2) for a, b in zip(load0, pool.cpu_times(), strict=True)]
    ok = sum(r["ok"] for r in res.values())
    errors: Counter[str] = Counter()
    for r in res.values():
        errors.update(r["errors"])
    lat = lat_array([r["latencies"] for r in res.values()])
    t_begin = min(r["t_begin"] for r in res.values())
    t_end = max(r["t_end"] for r in res.values())
    return {
        "ok": ok,
        "errors": dict(errors),
        "seconds": round(t_end - t_begin, 3),
        "gifts_per_s": round(ok / max(t_end - t_begin, 1e-9), 1),
        "latency_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99)},
        "server_cpu_s": round(sampler.cpu, 2),
        "server_kernel_cpu_s": round(sampler.kernel_cpu, 2),  # of it, in the kernel
        "store_cpu_share": round(sampler.store_cpu / max(sampler.wall, 1e-9), 3),
        # runnable but waiting for a core: held up by the other processes on the machine
        "server_runq_wait_s": round(sampler.wait, 2),
        "store_runq_wait_s": round(sampler.store_wait, 2),
        "machine_busy_cores": round(sampler.machine_busy / max(sampler.wall, 1e-9), 2),
        "load_cpu_s": load_cpu,
        "other_cores": other_cpu(sampler, sum(load_cpu)),
        "background_before": background,
        "profile": sampler.profile,
        "results": list(res.values()),
    }


def wait_settlement(
    pool: Pool, acks: dict[str, list[float]], creator_of: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Wait until each creator's wallet events show every gift credited, then compute lags.

    Gift k (in ack order) of a room counts as settled when the creator's credited diamonds
    (available + pending) reach k: each gift is worth exactly one diamond.
    """
    need = {creator_of[room]: len(ts) for room, ts in acks.items()}
    deadline = time.monotonic() + timeout
    while True:
        wallets = pool.call(0, "wallets")["wallets"]
        have = {u: max((v for _, v in wallets.get(u, [])), default=0) for u in need}
        if all(have[u] >= n for u, n in need.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    lags: list[float] = []
    unsettled = 0
    for room, ts in acks.items():
        events = sorted(wallets.get(creator_of[room], []))
        j = 0
        for k, t_ack in enumerate(sorted(ts), start=1):
            while j < len(events) and events[j][1] < k:
                j += 1
            if j == len(events):
                unsettled += len(ts) - k + 1
                break
            lags.append(max(0.0, (events[j][0] - t_ack) * 1000.0))
    arr = Dist(lags)
    return {
        "gifts": sum(len(t) for t in acks.values()),
        "unsettled": unsettled,
        "wallet_events": sum(len(v) for v in wallets.values()),
        "lag_ms": {
            "p50": pct(arr, 50),
            "p90": pct(arr, 90),
            "p99": pct(arr, 99),
            "max": round(arr.max(), 2) if len(arr) else None,
        },
        "cdf": cdf(arr),
    }


def store_url(server: servers.Livesrv) -> str:
    """The URL of the bench server's own (embedded) store."""
    sys.path.insert(0, str(servers.REPO))
    from livesrv.store.embedded import EmbeddedStore

    return EmbeddedStore(server.data_dir).url


def store_ops(server: servers.Livesrv) -> dict[str, tuple[int, int]]:
    """The store's (calls, microseconds) per command so far (``INFO commandstats``: the
    commands clients send and those scripts call), or {} when the store cannot be asked.

    A script's microseconds include the commands it calls, which also count under their
    own names."""
    import redis

    client = redis.Redis.from_url(store_url(server), socket_timeout=5)
    try:
        stats = client.info("commandstats")
    except redis.RedisError:
        return {}
    finally:
        client.close()
    return {k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for k, v in stats.items()}


SCRIPT_COMMANDS = ("evalsha", "eval")


def ops_per_gift(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], gifts: int
) -> dict[str, Any]:
    """Store commands, and the store's time, per acknowledged gift between two
    :func:`store_ops` readings, from the first gift to the last settlement (pub/sub,
    settlement and ticks included).

    ``script_us``: time inside scripts (their commands included); ``command_us``: time in
    commands, those scripts call and those clients send; so ``script_us`` less the
    commands scripts call is the scripting engine's own time. ``us_by_command``: the
    time in commands split by command (the costliest first)."""
    if not before or not after or not gifts:
        return {}
    zero = (0, 0)
    delta = {
        k: (v[0] - before.get(k, zero)[0], v[1] - before.get(k, zero)[1])
        for k, v in after.items()
        if v[0] - before.get(k, zero)[0] > 0
    }
    calls = {k: v[0] for k, v in delta.items()}
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:12]
    script_us = sum(v[1] for k, v in delta.items() if k in SCRIPT_COMMANDS)
    command_us = sum(v[1] for k, v in delta.items() if k not in SCRIPT_COMMANDS)
    return {
        "total": round(total / gifts, 2),
        "scripts": round(sum(calls.get(k, 0) for k in SCRIPT_COMMANDS) / gifts, 2),
        "by_command": {k: round(v / gifts, 3) for k, v in top},
        "us_by_command": {  # where the time in commands goes, the costliest first
            k: round(v[1] / gifts, 2)
            for k, v in sorted(delta.items(), key=lambda kv: -kv[1][1])[:12]
            if k not in SCRIPT_COMMANDS
        },
        "script_us": round(script_us / gifts, 1),
        "command_us": round(command_us / gifts, 1),
    }
