"""Scenario: gift throughput and reply latency against concurrency, and settlement lag
(gift acknowledged -> the creator's ``wallet`` event with the new diamond).
"""

from __future__ import annotations

import math
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
    levels = []
    gworkers = list(range(1, 1 + plan.gifter_workers))
    for c in plan.concurrency:
        tick(f"gifts c={c}")
        nrooms = math.ceil(c / plan.per_room)
        rooms = [f"gr{c}-{j}" for j in range(nrooms)]
        creators = [f"bc{c}-{j}" for j in range(nrooms)]
        gifters = [f"bg{c}-{i}" for i in range(c)]
        ctok = mint(pool, server, creators, "creator")
        gtok = mint(pool, server, gifters, "viewer")
        grant(pool, server, gifters, GRANT, f"c{c}")
        pool.call(
            0,
            "open_rooms",
            url=server.ws_url,
            rooms=[(ctok[u], r) for u, r in zip(creators, rooms, strict=True)],
        )
        creator_of = dict(zip(rooms, creators, strict=True))
        pairs = [(gtok[g], rooms[i % nrooms]) for i, g in enumerate(gifters)]
        pool.call_many(
            {
                w: ("gifters_connect", {"url": server.ws_url, "gifters": chunk})
                for w, chunk in zip(gworkers, split(pairs, len(gworkers)), strict=True)
                if chunk
            }
        )
        pool.call(0, "reset_wallets")
        background = wait_idle(server)
        start_at = time.time() + 0.5
        load0 = pool.cpu_times()
        with Sampler(server, name=f"gifts-c{c}") as sampler:
            res = pool.call_many(
                {
                    w: (
                        "gifts_closed_loop",
                        {
                            "start_at": start_at,
                            "duration": plan.gift_seconds,
                            "gift": GIFT,
                            "count": GIFT_COUNT,
                            "tag": f"c{c}",
                            "record_acks": True,
                        },
                    )
                    for w in gworkers
                    if w <= len(pairs)
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
        acks: dict[str, list[float]] = defaultdict(list)
        for r in res.values():
            for t, room in r["acks"]:
                acks[room].append(t)
        settle = wait_settlement(pool, acks, creator_of, timeout=15.0 if not plan.quick else 8.0)
        levels.append(
            {
                "concurrency": c,
                "rooms": nrooms,
                "ok": ok,
                "errors": dict(errors),
                "seconds": round(t_end - t_begin, 3),
                "gifts_per_s": round(ok / max(t_end - t_begin, 1e-9), 1),
                "latency_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99)},
                "server_cpu_s": round(sampler.cpu, 2),
                "store_cpu_share": round(sampler.store_cpu / max(sampler.wall, 1e-9), 3),
                "machine_busy_cores": round(sampler.machine_busy / max(sampler.wall, 1e-9), 2),
                "load_cpu_s": load_cpu,
                "other_cores": other_cpu(sampler, sum(load_cpu)),
                "background_before": background,
                "profile": sampler.profile,
                "settlement": settle,
            }
        )
        pool.call_many({w: ("gifters_close", {}) for w in gworkers})
        pool.call(0, "creators_close")
    return levels


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
