"""``python -m loadtests.bench --cluster``: three livesrv nodes on a 3-master local Valkey
Cluster beside three livesrv nodes on one standalone store, in one run.

For each setup it starts the store (a :class:`livesrv.store.local_cluster.LocalCluster`, or
one plain valkey-server on 127.0.0.1 with the same AOF settings), three ``livesrv serve``
processes (node i on master ``i % 3``; all three on the one store for the standalone
setup; one shared secret, so a token from any node works on every node), and measures with
the harness's load workers (:mod:`loadtests.loadworker`):

- gifts/s: gifters spread evenly over the three nodes, closed loop, a fresh key per gift;
  reply latency, and settlement (every creator's diamonds must reach its gift count);
- one-room fan-out: viewers spread evenly over the three nodes, gifts at a fixed rate from
  one node; every reader must see every gift, with no ``seq`` gap;
- the audit: ``livesrv audit --redis-url`` on the store after the load (exit code).

On a 2-core machine the three nodes, the masters and the load share two cores: the run shows
that the cluster is correct under load and what it costs, not a speed-up.
Results: ``loadtests/results/bench-cluster.json`` (``bench-cluster-quick.json`` in
``loadtests/results/quick/`` with ``--quick``; ``--out DIR`` to choose).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtests import servers
from loadtests.loadworker import raise_nofile

from . import stores
from .config import BENCH_ENV, GIFT, GIFT_COUNT, GRANT, OPTIONS
from .fanout import collect_when_delivered
from .gifts import wait_settlement
from .pool import Pool, grant, mint, split
from .results import say, stamp, write_json
from .sampling import machine, machine_busy, process_cpu, wait_quiet
from .stats import lat_array, pct

NODES = 3
SECRET = "bench-cluster-secret-0123456789abcdef0123456789"


@dataclass
class ClusterPlan:
    quick: bool
    gifters: int  # spread over the three nodes
    per_room: int
    gift_seconds: float
    viewers: int  # one room, spread over the three nodes
    fanout_rate: float
    fanout_seconds: float
    fanout_gifters: int
    drain: float

    @classmethod
    def make(cls, quick: bool) -> ClusterPlan:
        if quick:
            return cls(True, 12, 2, 2.0, 300, 20.0, 2.0, 3, 10.0)
        return cls(False, 48, 4, 8.0, 3000, 100.0, 8.0, 6, 20.0)


def audit(url: str, tmp: Path) -> dict[str, Any]:
    args = ["--redis-url", url, "--data-dir", str(tmp / "audit")]
    return servers.audit(args, {"LIVESRV_SECRET": SECRET})


def run_setup(pool: Pool, kind: str, plan: ClusterPlan, tmp: Path, tick: Any) -> dict[str, Any]:
    """Start one setup (``cluster`` or ``standalone``), measure gifts and fan-out, audit."""
    store = stores.cluster_store if kind == "cluster" else stores.standalone_store
    with store(tmp / f"{kind}-store") as (urls, store_pids):
        nodes: list[servers.Livesrv] = []
        try:
            for i in range(NODES):
                env = {
                    **BENCH_ENV,
                    "LIVESRV_REDIS_URL": urls[i % len(urls)],
                    "LIVESRV_SECRET": SECRET,
                }
                nodes.append(servers.start_livesrv(tmp / f"{kind}-node{i}", env=env))
            tick(f"{kind}: gifts")
            gifts = gift_phase(pool, kind, nodes, store_pids, plan)
            tick(f"{kind}: fan-out")
            fanout = fanout_phase(pool, kind, nodes, store_pids, plan)
        finally:
            for n in nodes:
                n.stop()
        tick(f"{kind}: audit")
        audit_ = audit(urls[0], tmp / kind)
    return {"store": kind, "masters": len(urls), "gifts": gifts, "fanout": fanout, "audit": audit_}


Sample = tuple[float, float, float, float, float]


def _measure(pool: Pool, nodes: list[servers.Livesrv], store_pids: list[int]) -> Sample:
    """CPU seconds so far of the nodes, the store, the load workers and the whole machine."""
    nodes_cpu = sum(n.cpu_times() for n in nodes)
    return (
        nodes_cpu,
        process_cpu(store_pids),
        sum(pool.cpu_times()),
        machine_busy(),
        time.monotonic(),
    )


def _cores(t0: Sample, t1: Sample) -> dict[str, float]:
    """Cores used over the phase: the three nodes, the store, the load, everything else on
    the machine (other work skews the figures; it is recorded, not hidden)."""
    wall = max(t1[4] - t0[4], 1e-9)
    used = [(b - a) / wall for a, b in zip(t0[:4], t1[:4], strict=True)]
    other = max(0.0, used[3] - used[0] - used[1] - used[2])
    return {
        "nodes": round(used[0], 2),
        "store": round(used[1], 2),
        "load": round(used[2], 2),
        "other": round(other, 2),
    }


def gift_phase(
    pool: Pool, kind: str, nodes: list[servers.Livesrv], store_pids: list[int], plan: ClusterPlan
) -> dict[str, Any]:
    nrooms = max(NODES, plan.gifters // plan.per_room)
    rooms = [f"{kind}-gr{j}" for j in range(nrooms)]
    creators = [f"{kind}-gc{j}" for j in range(nrooms)]
    gifters = [f"{kind}-gg{i}" for i in range(plan.gifters)]
    admin = nodes[0]
    ctok = mint(pool, admin, creators, "creator")
    gtok = mint(pool, admin, gifters, "viewer")
    grant(pool, admin, gifters, GRANT, kind)
    for k, node in enumerate(nodes):  # room j is opened on node j % 3
        mine = [
            (ctok[c], r)
            for j, (c, r) in enumerate(zip(creators, rooms, strict=True))
            if j % NODES == k
        ]
        pool.call(0, "open_rooms", url=node.ws_url, rooms=mine)
    gworkers = list(range(1, pool.size))
    pairs = [(i, gtok[g], rooms[i % nrooms]) for i, g in enumerate(gifters)]
    for k, node in enumerate(nodes):  # gifter i talks to node i % 3 (often not its room's)
        mine = [(t, r) for i, t, r in pairs if (i // nrooms + i) % NODES == k]
        pool.call_many(
            {
                w: ("gifters_connect", {"url": node.ws_url, "gifters": chunk})
                for w, chunk in zip(gworkers, split(mine, len(gworkers)), strict=True)
                if chunk
            }
        )
    pool.call(0, "reset_wallets")
    background = wait_quiet()
    start_at = time.time() + 0.5
    m0 = _measure(pool, nodes, store_pids)
    res = pool.call_many(
        {
            w: (
                "gifts_closed_loop",
                {
                    "start_at": start_at,
                    "duration": plan.gift_seconds,
                    "gift": GIFT,
                    "count": GIFT_COUNT,
                    "tag": f"{kind}g",
                    "record_acks": True,
                },
            )
            for w in gworkers
        }
    )
    m1 = _measure(pool, nodes, store_pids)
    ok = sum(r["ok"] for r in res.values())
    errors: Counter[str] = Counter()
    for r in res.values():
        errors.update(r["errors"])
    lat = lat_array([r["latencies"] for r in res.values()])
    span = max(r["t_end"] for r in res.values()) - min(r["t_begin"] for r in res.values())
    acks: dict[str, list[float]] = defaultdict(list)
    for r in res.values():
        for t, room in r["acks"]:
            acks[room].append(t)
    settle = wait_settlement(pool, acks, dict(zip(rooms, creators, strict=True)), 30.0)
    settle.pop("cdf", None)
    pool.call_many({w: ("gifters_close", {}) for w in gworkers})
    pool.call(0, "creators_close")
    return {
        "gifters": plan.gifters,
        "rooms": nrooms,
        "ok": ok,
        "errors": dict(errors),
        "gifts_per_s": round(ok / max(span, 1e-9), 1),
        "latency_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99)},
        "cores": _cores(m0, m1),
        "background_before": background,
        "settlement": settle,
    }


def fanout_phase(
    pool: Pool, kind: str, nodes: list[servers.Livesrv], store_pids: list[int], plan: ClusterPlan
) -> dict[str, Any]:
    room, creator = f"{kind}-fan", f"{kind}-fc"
    gifters = [f"{kind}-fg{i}" for i in range(plan.fanout_gifters)]
    names = [f"{kind}-fv{i}" for i in range(plan.viewers)]
    admin = nodes[0]
    ctok = mint(pool, admin, [creator], "creator")
    gtok = mint(pool, admin, gifters, "viewer")
    grant(pool, admin, gifters, GRANT, f"{kind}f")
    vtok = mint(pool, admin, names, "viewer")
    pool.call(0, "open_rooms", url=nodes[0].ws_url, rooms=[(ctok[creator], room)])
    pool.call(0, "gifters_connect", url=nodes[0].ws_url, gifters=[(gtok[g], room) for g in gifters])
    vworkers = list(range(1, pool.size))
    t0 = time.time()
    held: dict[int, int] = {}
    failed = 0
    for k, node in enumerate(nodes):
        mine = [vtok[n] for i, n in enumerate(names) if i % NODES == k]
        chunks = split(mine, len(vworkers))
        conn = pool.call_many(
            {
                w: (
                    "viewers_connect",
                    {"url": node.ws_url, "tokens": chunk, "room": room, "sample_every": 20},
                )
                for w, chunk in zip(vworkers, chunks, strict=True)
                if chunk
            }
        )
        held.update({w: r["connected"] for w, r in conn.items()})  # a worker's running total
        failed += sum(r["failed"] for r in conn.values())
    connect_s = time.time() - t0
    connected = sum(held.values())
    time.sleep(2.0)
    background = wait_quiet()
    pool.call_many({w: ("viewers_reset", {}) for w in vworkers})
    m0 = _measure(pool, nodes, store_pids)
    gres = pool.call(
        0,
        "gifts_rate",
        start_at=time.time() + 0.3,
        duration=plan.fanout_seconds,
        rate=plan.fanout_rate,
        gift=GIFT,
        tag=f"{kind}f",
        drain=plan.drain,
    )
    expected = gres["ok"]
    col = collect_when_delivered(pool, vworkers, expected, plan.drain)
    counts = [c for r in col.values() for c in r["gift_counts"]]
    m1 = _measure(pool, nodes, store_pids)
    pool.call_many({w: ("viewers_close", {}) for w in vworkers})
    pool.call(0, "gifters_close")
    pool.call(0, "creators_close")
    lat = lat_array([r["latencies"] for r in col.values()])
    last = max(r["last_recv"] for r in col.values())
    delivered = sum(counts)
    return {
        "viewers": plan.viewers,
        "connected": connected,
        "connect_failed": failed,
        "connect_s": round(connect_s, 2),
        "gift_rate": plan.fanout_rate,
        "gifts_ok": expected,
        "gift_errors": gres["errors"],
        "readers": len(counts),
        "readers_complete": sum(1 for c in counts if c == expected),
        "events_delivered": delivered,
        "events_per_s": round(delivered / max(last - gres["t_first"], 1e-9), 1),
        "event_latency_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": pct(lat, 100)},
        "seq_gaps": sum(r["gaps"] for r in col.values()),
        "seq_dups": sum(r["dups"] for r in col.values()),
        "readers_closed": sum(r["closed_fast"] for r in col.values()),
        "cores": _cores(m0, m1),
        "background_before": background,
    }


def failures(setup: dict[str, Any]) -> list[str]:
    """What went wrong in one setup (empty: correct)."""
    g, f = setup["gifts"], setup["fanout"]
    out = []
    if g["errors"] or not g["ok"]:
        out.append(f"gift errors {g['errors']} (ok {g['ok']})")
    if g["settlement"]["unsettled"]:
        out.append(f"{g['settlement']['unsettled']} gifts not settled")
    if f["connect_failed"] or f["gift_errors"]:
        out.append(f"fan-out: {f['connect_failed']} connects failed, gifts {f['gift_errors']}")
    if f["readers_complete"] != f["readers"] or f["seq_gaps"] or f["readers_closed"]:
        out.append(
            f"fan-out: {f['readers_complete']}/{f['readers']} readers complete, "
            f"{f['seq_gaps']} gaps, {f['readers_closed']} closed"
        )
    if setup["audit"]["exit"] != 0:
        out.append(f"audit exit {setup['audit']['exit']}: {setup['audit']['last_line']}")
    return out


def run(quick: bool, out: Path) -> dict[str, Any]:
    raise_nofile()
    OPTIONS.quiet_timeout = 3.0 if quick else 30.0  # the machine is shared: wait, but not long
    plan = ClusterPlan.make(quick)
    tmp = Path(tempfile.mkdtemp(prefix="livesrv-bench-cluster-"))
    result: dict[str, Any] = {
        "mode": "cluster-quick" if quick else "cluster",
        "machine": machine(),
        "plan": asdict(plan),
        "bench_env": BENCH_ENV,
        "started": stamp(),
        "setups": [],
    }

    pool = Pool(3)
    try:
        for kind in ("cluster", "standalone"):
            setup = run_setup(pool, kind, plan, tmp, say)
            setup["failures"] = failures(setup)
            result["setups"].append(setup)
    finally:
        pool.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result["finished"] = stamp()
    result["summary"] = summary(result)
    write_json(result, out, "bench-cluster-quick" if quick else "bench-cluster")
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for setup in result["setups"]:
        g, f = setup["gifts"], setup["fanout"]
        s[setup["store"]] = {
            "gifts_per_s": g["gifts_per_s"],
            "gift_p99_ms": g["latency_ms"]["p99"],
            "settlement_lag_p99_ms": g["settlement"]["lag_ms"]["p99"],
            "fanout_events_per_s": f["events_per_s"],
            "fanout_p99_ms": f["event_latency_ms"]["p99"],
            "gift_cores": g["cores"],
            "fanout_cores": f["cores"],
            "audit_exit": setup["audit"]["exit"],
            "failures": setup["failures"],
        }
    s["ok"] = all(not setup["failures"] for setup in result["setups"])
    return s


def main(quick: bool, out: Path) -> int:
    result = run(quick, out)
    print(json.dumps(result["summary"], indent=1))
    return 0 if result["summary"]["ok"] else 1
