"""``python -m loadtests.bench --durability``: what waiting for a replica costs.

One 3-master, 3-replica local Valkey Cluster; three ``livesrv serve`` nodes (node i on
master ``i % 3``) are started with ``LIVESRV_DURABILITY=master`` (a reply once the master
applied the step) and then with ``replicas`` (a reply once a replica holds it: one
``WAIT 1`` per master per pipelined batch), alternately, several rounds each, on the same
cluster. Each round is the cluster bench's gift phase (:func:`loadtests.bench.cluster.
gift_phase`: gifters spread over the three nodes, closed loop, a fresh key per gift,
settlement checked). The figures quoted are the medians over the rounds of each policy and
their ratio, measured side by side in one run; the audit runs on the cluster at the end.

Results: ``bench-durability.json`` (``bench-durability-quick.json`` with ``--quick``) in
the results directory.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests import servers
from loadtests.loadworker import raise_nofile

from . import stores
from .cluster import NODES, SECRET, ClusterPlan, audit, gift_phase
from .config import BENCH_ENV, OPTIONS
from .pool import Pool
from .results import say, stamp, write_json
from .sampling import machine

POLICIES = ("master", "replicas")


def run(quick: bool, out: Path) -> dict[str, Any]:
    raise_nofile()
    OPTIONS.quiet_timeout = 3.0 if quick else 30.0
    plan = ClusterPlan.make(quick)
    rounds = 2 if quick else 4
    tmp = Path(tempfile.mkdtemp(prefix="livesrv-bench-durability-"))
    result: dict[str, Any] = {
        "mode": "durability-quick" if quick else "durability",
        "machine": machine(),
        "plan": asdict(plan),
        "rounds_per_policy": rounds,
        "bench_env": BENCH_ENV,
        "started": stamp(),
        "runs": [],
    }

    pool = Pool(3)
    try:
        with stores.cluster_store(tmp / "store", replicas=1) as (urls, store_pids):
            for r in range(rounds):
                for policy in POLICIES if r % 2 == 0 else reversed(POLICIES):
                    say(f"round {r + 1}: durability {policy}")
                    result["runs"].append(
                        {
                            "policy": policy,
                            "round": r + 1,
                            **_round(pool, policy, r, urls, plan, store_pids, tmp),
                        }
                    )
            say("audit")
            result["audit"] = audit(urls[0], tmp)
    finally:
        pool.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result["finished"] = stamp()
    result["summary"] = summary(result)
    path = write_json(result, out, "bench-durability-quick" if quick else "bench-durability")
    print(f"results written to {path.resolve()}")
    return result


def _round(
    pool: Pool,
    policy: str,
    r: int,
    urls: list[str],
    plan: ClusterPlan,
    store_pids: list[int],
    tmp: Path,
) -> dict[str, Any]:
    nodes: list[servers.Livesrv] = []
    try:
        for i in range(NODES):
            env = {
                **BENCH_ENV,
                "LIVESRV_REDIS_URL": urls[i % len(urls)],
                "LIVESRV_SECRET": SECRET,
                "LIVESRV_DURABILITY": policy,
            }
            nodes.append(servers.start_livesrv(tmp / f"{policy}{r}-node{i}", env=env))
        return gift_phase(pool, f"{policy}{r}", nodes, store_pids, plan)
    finally:
        for n in nodes:
            n.stop()


def summary(result: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for policy in POLICIES:
        runs = [x for x in result["runs"] if x["policy"] == policy]
        s[policy] = {
            "gifts_per_s": statistics.median(x["gifts_per_s"] for x in runs),
            "p50_ms": statistics.median(x["latency_ms"]["p50"] for x in runs),
            "p99_ms": statistics.median(x["latency_ms"]["p99"] for x in runs),
            "settlement_p99_ms": statistics.median(x["settlement"]["lag_ms"]["p99"] for x in runs),
            "errors": sum(sum(x["errors"].values()) for x in runs),
            "unsettled": sum(x["settlement"]["unsettled"] for x in runs),
        }
    m, r = s["master"], s["replicas"]
    s["replicas_over_master"] = {
        "gifts_per_s": round(r["gifts_per_s"] / max(m["gifts_per_s"], 1e-9), 3),
        "p50": round(r["p50_ms"] / max(m["p50_ms"], 1e-9), 3),
        "p99": round(r["p99_ms"] / max(m["p99_ms"], 1e-9), 3),
    }
    s["audit_exit"] = result["audit"]["exit"]
    s["ok"] = result["audit"]["exit"] == 0 and not any(
        s[p]["errors"] or s[p]["unsettled"] for p in POLICIES
    )
    return s


def main(quick: bool, out: Path) -> int:
    result = run(quick, out)
    print(json.dumps(result["summary"], indent=1))
    return 0 if result["summary"]["ok"] else 1
