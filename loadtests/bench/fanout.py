"""Scenario: fan-out. One room with N viewers, gifts at a fixed rate: events delivered per
second, event latency (now - the event's ``ts``) and end to end, ``seq`` gaps, server RSS
and kernel TCP memory; against livesrv or the naive baseline (a :class:`Target`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from loadtests import servers

from .config import CHAT_LEN, GIFT, Plan
from .pool import Pool, split
from .sampling import Sampler, metric, other_cpu, wait_idle
from .stats import end_to_end, lat_array, latency_timeline, pct


@dataclass
class Target:
    kind: str  # livesrv | naive
    server: servers.ServerProcess
    tokens: Callable[[list[str], str], dict[str, str]]
    grant: Callable[[list[str]], None]
    counter: Iterator[int] = field(default_factory=lambda: iter(range(1, 1 << 30)))


def collect_when_delivered(
    pool: Pool, vworkers: list[int], expected: int, drain_s: float
) -> dict[int, dict[str, Any]]:
    """Each viewer worker's samples, collected once every reading viewer has counted
    ``expected`` gifts (or after ``drain_s``). Polling asks only for counts: collecting the
    samples copies hundreds of thousands of them and holds the worker's event loop, which
    delayed the reads of the run's last events by tens of milliseconds when it was polled."""
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        progress = pool.call_many({w: ("viewers_progress", {}) for w in vworkers})
        if all(p["fewest"] >= expected for p in progress.values()):
            break
        time.sleep(0.05)
    return pool.call_many({w: ("viewers_collect", {}) for w in vworkers})


def fanout_run(
    pool: Pool,
    target: Target,
    viewers: int,
    plan: Plan,
    slow_every: int = 0,
    chat_rate: float = 0.0,
    seconds: float | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    run_id = next(target.counter)
    room = f"fan{run_id}"
    vworkers = list(range(1, 1 + plan.viewer_workers))
    creator = f"fc{run_id}"
    gifters = [f"fg{run_id}-{i}" for i in range(plan.fanout_gifters)]
    names = [f"fv{run_id}-{i}" for i in range(viewers)]
    ctok = target.tokens([creator], "creator")
    gtok = target.tokens(gifters, "viewer")
    target.grant(gifters)
    url = target.server.urls["ws"]
    url = url if url.endswith("/ws") else url.rstrip("/") + "/ws"
    pool.call(0, "open_rooms", url=url, rooms=[(ctok[creator], room)])
    pool.call(0, "gifters_connect", url=url, gifters=[(gtok[g], room) for g in gifters])
    vtok = target.tokens(names, "viewer")
    chunks = split([vtok[n] for n in names], len(vworkers))
    t0 = time.time()
    conn = pool.call_many(
        {
            w: (
                "viewers_connect",
                {
                    "url": url,
                    "tokens": chunk,
                    "room": room,
                    "sample_every": plan.sample_every,
                    "slow_every": slow_every,
                    "first_index": sum(len(c) for c in chunks[:k]),
                },
            )
            for k, (w, chunk) in enumerate(zip(vworkers, chunks, strict=True))
        }
    )
    connect_s = time.time() - t0
    connected = sum(r["connected"] for r in conn.values())
    failed = sum(r["failed"] for r in conn.values())
    failures: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    for r in conn.values():
        failures.update(r["failures"])
        retried.update(r["retried"])
    time.sleep(1.0 if plan.quick else 2.0)
    background = wait_idle(target.server)
    pool.call_many({w: ("viewers_reset", {}) for w in vworkers})
    start_at = time.time() + 0.3
    load0 = pool.cpu_times()
    name = f"fanout-{target.kind}-{viewers}" + ("-chat" if chat_rate else "")
    name += f"-slow{slow_every}" if slow_every else ""
    with Sampler(target.server, 0.25, name=name) as sampler:
        gres = pool.call(
            0,
            "gifts_rate",
            start_at=start_at,
            duration=seconds or plan.fanout_seconds,
            rate=rate or plan.fanout_rate,
            gift=GIFT,
            tag=f"f{run_id}",
            drain=plan.fanout_drain,
            chat_rate=chat_rate,
            chat_len=CHAT_LEN,
        )
        expected = gres["ok"]
        col = collect_when_delivered(pool, vworkers, expected, plan.fanout_drain)
        counts = [c for r in col.values() for c in r["gift_counts"]]
    load_cpu = [round(b - a, 2) for a, b in zip(load0, pool.cpu_times(), strict=True)]
    slow_end = None
    cut = None
    if slow_every:
        slow_end = pool.call_many(
            {w: ("slow_resume", {"wait": 2.0 if plan.quick else 5.0}) for w in vworkers}
        )
    if isinstance(target.server, servers.Livesrv):
        cut = metric(target.server, "livesrv_slow_consumers_cut_total")
    pool.call_many({w: ("viewers_close", {}) for w in vworkers})
    pool.call(0, "gifters_close")
    pool.call(0, "creators_close")

    lat = lat_array([r["latencies"] for r in col.values()])
    timeline = latency_timeline(col.values(), gres["t_first"])
    glat = lat_array([gres["latencies"]])
    e2e = end_to_end(gres["sends"], [v for r in col.values() for v in r["recv_by_from"]])
    delivered = sum(counts)
    last_recv = max(r["last_recv"] for r in col.values())
    span = max(last_recv - gres["t_first"], 1e-9)
    complete = sum(1 for c in counts if c == expected)
    slow_codes: Counter[str] = Counter()
    slow_counts = [c for r in col.values() for c in r["slow_gift_counts"]]
    if slow_end:
        for r in slow_end.values():
            slow_codes.update(r["codes"])
    rss = sampler.samples
    return {
        "server": target.kind,
        "viewers": viewers,
        "connected": connected,
        "connect_failed": failed,
        "connect_failures": dict(failures),
        "connect_retried": dict(retried),
        "connects_per_s": round(connected / max(connect_s, 1e-9), 1),
        "connect_s": round(connect_s, 2),
        "gift_rate": rate or plan.fanout_rate,
        "gifts_sent": gres["sent"],
        "gifts_ok": expected,
        "gift_errors": gres["errors"],
        "gift_reply_ms": {"p50": pct(glat, 50), "p99": pct(glat, 99)},
        "readers": len(counts),
        "readers_complete": complete,
        "events_expected": expected * len(counts),
        "events_delivered": delivered,
        "events_per_s": round(delivered / span, 1),
        "offered_events_per_s": round((rate or plan.fanout_rate) * len(counts), 1),
        "delivery_span_s": round(span, 3),
        "event_latency_ms": {
            "p50": pct(lat, 50),
            "p90": pct(lat, 90),
            "p99": pct(lat, 99),
            "max": pct(lat, 100),
            "samples": int(len(lat)),
        },
        "latency_timeline": timeline,
        "profile": sampler.profile,
        "end_to_end_ms": {
            "p50": pct(e2e, 50),
            "p90": pct(e2e, 90),
            "p99": pct(e2e, 99),
            "max": pct(e2e, 100),
            "samples": int(len(e2e)),
        },
        "seq_gaps": sum(r["gaps"] for r in col.values()),
        "seq_dups": sum(r["dups"] for r in col.values()),
        "readers_closed": sum(r["closed_fast"] for r in col.values()),
        "chat_rate": chat_rate,
        "chats_ok": gres.get("chats_ok", 0),
        "slow": {
            "viewers": len(slow_counts),
            "gifts_received_max": max(slow_counts, default=0),
            "ended": dict(slow_codes),
        }
        if slow_every
        else None,
        "slow_consumers_cut_total": cut,
        "server_cpu_s": round(sampler.cpu, 2),
        "server_kernel_cpu_s": round(sampler.kernel_cpu, 2),  # of it, in the kernel
        # efficiency: events delivered to readers per second of server CPU
        "deliveries_per_cpu_s": round(delivered / max(sampler.cpu, 1e-9)),
        "store_cpu_s": round(sampler.store_cpu, 2),
        "server_runq_wait_s": round(sampler.wait, 2),  # runnable, waiting for a core
        "store_runq_wait_s": round(sampler.store_wait, 2),
        "wall_s": round(sampler.wall, 2),
        "load_cpu_s": load_cpu,
        "machine_busy_cores": round(sampler.machine_busy / max(sampler.wall, 1e-9), 2),
        "other_cores": other_cpu(sampler, sum(load_cpu)),
        "background_before": background,
        "server_rss_mb": {
            "start": round(rss[0][1] / 2**20, 1) if rss else None,
            "max": round(max(v for _, v in rss) / 2**20, 1) if rss else None,
            "end": round(rss[-1][1] / 2**20, 1) if rss else None,
        },
        "rss_timeline": [[t, round(v / 2**20, 2)] for t, v in rss],
        "tcp_mem_mb": {
            "start": round(sampler.tcp_mem[0] / 2**20, 1) if sampler.tcp_mem else None,
            "max": round(max(sampler.tcp_mem) / 2**20, 1) if sampler.tcp_mem else None,
        },
        "tcp_mem_timeline": [round(v / 2**20, 2) for v in sampler.tcp_mem],
    }
