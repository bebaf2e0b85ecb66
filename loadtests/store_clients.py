"""Side-by-side measurement of asyncio store clients, on a standalone store and on a cluster.

Usage::

    python -m loadtests.store_clients                 # about 70 s
    python -m loadtests.store_clients --repeat 3      # median of 3 runs per row
    python -m loadtests.store_clients --duration 2 --warmup 0.5 --loop asyncio

In one run it starts a standalone valkey-server (TCP on 127.0.0.1, AOF on) and then a
3-master local cluster (:mod:`livesrv.store.local_cluster`), both from the embedded binary, and
drives each with 64 coroutines calling a gift-debit-like Lua script for a fixed time through:

- ``redis-py``: ``redis.asyncio.Redis`` on a blocking pool of 64 connections (what
  ``livesrv.store.embedded.connect`` builds); standalone only;
- ``autopipeline``: livesrv's own :class:`livesrv.store.pipeline.AutoPipeline`; standalone only;
- ``glide``: valkey-glide's ``GlideClient`` / ``GlideClusterClient`` with ``Script``;
- ``coredis``: coredis' ``Redis`` / ``RedisCluster`` with ``register_script``;
- ``redis-py-cluster``: ``redis.asyncio.RedisCluster``; cluster only.

The script touches three keys of one user shard (one hash slot): it checks and debits a
wallet hash (HINCRBY), records an idempotency key (SET NX EX) and appends to the shard's
outbox stream (XADD). Users are spread over 16 shard tags, so a cluster spreads them over
its masters. Each client runs in its own process (so its RSS and CPU time are its own;
glide's Rust threads are counted in its process); the store's CPU is measured too. After
each run the wallets are checked: coins debited must equal the calls that answered.

Results: ``loadtests/results/store_clients.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import redis

if __package__ in (None, ""):  # run as a file: python loadtests/store_clients.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "loadtests"  # noqa: A001

from livesrv.store.embedded import find_server_binary  # noqa: E402
from livesrv.store.local_cluster import LocalCluster, free_port  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARDS = 16
GRANT = 10**12
DEBIT = """
local coins = tonumber(redis.call('HGET', KEYS[1], 'coins') or '0')
local amount = tonumber(ARGV[1])
if coins < amount then return redis.error_reply('insufficient_funds') end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return -1 end
local left = redis.call('HINCRBY', KEYS[1], 'coins', -amount)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'u', ARGV[3], 'n', ARGV[1])
return left
"""
CLIENTS = {
    "standalone": ["redis-py", "autopipeline", "glide", "coredis"],
    "cluster": ["redis-py-cluster", "glide", "coredis"],
}
PACKAGES = {"glide": "valkey-glide", "coredis": "coredis"}

Call = Callable[[list[str], list[Any]], Awaitable[Any]]


def wallet(user: int) -> str:
    return f"scb:{{s{user % SHARDS}}}:w:u{user}"


def keys_for(run: str, user: int, seq: int) -> list[str]:
    tag = f"scb:{{s{user % SHARDS}}}"
    return [wallet(user), f"{tag}:i:{run}:{user}:{seq}", f"{tag}:outbox"]


# -- the clients under test ---------------------------------------------------------------


async def open_client(name: str, topology: str, url: str, stack: contextlib.AsyncExitStack) -> Call:
    """Connect ``name`` and return a call(keys, args) that runs the debit script."""
    host, port = url.removeprefix("redis://").split(":")
    if name == "redis-py":
        from livesrv.store.embedded import connect

        r = connect(url, pool_size=64)
        stack.push_async_callback(r.connection_pool.disconnect)
        stack.push_async_callback(r.aclose)
        sha = await r.script_load(DEBIT)
        return lambda keys, args: r.evalsha(sha, len(keys), *keys, *args)
    if name == "redis-py-cluster":
        import redis.asyncio as aioredis

        rc = aioredis.RedisCluster.from_url(url, decode_responses=True)
        stack.push_async_callback(rc.aclose)
        sha = await rc.script_load(DEBIT)
        return lambda keys, args: rc.evalsha(sha, len(keys), *keys, *args)
    if name == "autopipeline":
        from livesrv.store.pipeline import AutoPipeline

        ap = AutoPipeline(url)
        stack.push_async_callback(ap.close)
        sha = ap.register(DEBIT)
        return lambda keys, args: ap.evalsha(sha, keys, args)
    if name == "glide":
        from glide import (
            GlideClient,
            GlideClientConfiguration,
            GlideClusterClient,
            GlideClusterClientConfiguration,
            NodeAddress,
            Script,
        )

        addr = [NodeAddress(host, int(port))]
        g: Any
        if topology == "cluster":
            g = await GlideClusterClient.create(GlideClusterClientConfiguration(addr))
        else:
            g = await GlideClient.create(GlideClientConfiguration(addr))
        stack.push_async_callback(g.close)
        script = Script(DEBIT)
        return lambda keys, args: g.invoke_script(script, keys, [str(a) for a in args])
    if name == "coredis":
        import coredis

        c: Any
        if topology == "cluster":
            c = coredis.RedisCluster(
                startup_nodes=[coredis.connection.TCPLocation(host, int(port))],
                decode_responses=True,
            )
        else:
            c = coredis.Redis(host=host, port=int(port), decode_responses=True)
        await stack.enter_async_context(c)
        script = c.register_script(DEBIT)
        return lambda keys, args: script(keys=keys, args=args)
    raise ValueError(name)


def setup_wallets(topology: str, url: str, users: int) -> redis.Redis | redis.RedisCluster:
    sync: Any = (
        redis.RedisCluster.from_url(url, decode_responses=True)
        if topology == "cluster"
        else redis.Redis.from_url(url, decode_responses=True)
    )
    for user in range(users):
        sync.hset(wallet(user), "coins", GRANT)
    return sync


async def measure(opts: argparse.Namespace) -> dict[str, Any]:
    """One client, one topology: the figures of one table row (runs in its own process)."""
    sync = setup_wallets(opts.topology, opts.url, opts.concurrency)
    run = f"{os.getpid()}"
    proc = psutil.Process()
    latencies: list[int] = []
    state = {"measuring": False, "stop": False}
    counts = {"answered": 0, "errors": 0, "window": 0}
    first_error: list[str] = []

    async def user_loop(call: Call, user: int) -> None:
        seq = 0
        while not state["stop"]:
            seq += 1
            t0 = time.perf_counter_ns()
            try:
                reply = await call(keys_for(run, user, seq), [1, 600, f"u{user}"])
            except Exception as exc:  # noqa: BLE001 - counted and reported
                counts["errors"] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)
                continue
            t1 = time.perf_counter_ns()
            if int(reply) >= 0:
                counts["answered"] += 1
            if state["measuring"]:
                counts["window"] += 1
                latencies.append(t1 - t0)

    async with contextlib.AsyncExitStack() as stack:
        call = await open_client(opts.client, opts.topology, opts.url, stack)
        tasks = [asyncio.create_task(user_loop(call, u)) for u in range(opts.concurrency)]
        await asyncio.sleep(opts.warmup)
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        state["measuring"] = True
        await asyncio.sleep(opts.duration)
        state["measuring"] = False
        cpu1, elapsed = proc.cpu_times(), time.monotonic() - t0
        window = counts["window"]
        state["stop"] = True
        await asyncio.gather(*tasks)
        threads = proc.num_threads()
    debited = sum(GRANT - int(sync.hget(wallet(u), "coins")) for u in range(opts.concurrency))
    sync.close()
    latencies.sort()
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "calls_per_s": round(window / elapsed),
        "p50_ms": round(_pct(latencies, 0.50) / 1e6, 3),
        "p99_ms": round(_pct(latencies, 0.99) / 1e6, 3),
        "client_cpu_cores": round(cpu / elapsed, 2),
        "client_cpu_us_per_call": round(cpu / max(window, 1) * 1e6, 1),
        "client_rss_mib": round(proc.memory_info().rss / 2**20, 1),
        "client_threads": threads,
        "errors": counts["errors"],
        "first_error": first_error[0] if first_error else None,
        "books_balance": debited == counts["answered"],
    }


def _pct(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def worker_main(opts: argparse.Namespace) -> None:
    if opts.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(measure(opts))
    print(json.dumps(result), flush=True)


# -- the harness ---------------------------------------------------------------------------


def run_one(
    client: str, topology: str, url: str, opts: argparse.Namespace, servers: list[int]
) -> dict[str, Any]:
    """Run one measurement in a child process; returns its row."""
    module = PACKAGES.get(client)
    if module is not None:
        try:
            importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            return {"skipped": f"{module} is not installed (pip install {module})"}
    server_procs = [psutil.Process(pid) for pid in servers]
    before = sum(sum(p.cpu_times()[:2]) for p in server_procs)
    started = time.monotonic()
    argv = [sys.executable, "-m", "loadtests.store_clients", "--worker", client, topology, url]
    argv += ["--duration", str(opts.duration), "--warmup", str(opts.warmup), "--loop", opts.loop]
    argv += ["--concurrency", str(opts.concurrency)]
    cwd = Path(__file__).resolve().parent.parent
    out = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)
    wall = time.monotonic() - started
    after = sum(sum(p.cpu_times()[:2]) for p in server_procs)
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1:] or ["exit " + str(out.returncode)]}
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    row["store_cpu_cores"] = round((after - before) / wall, 2)  # whole run, incl. warm-up
    return row


def repeated(
    client: str, topology: str, url: str, opts: argparse.Namespace, servers: list[int]
) -> dict[str, Any]:
    """``--repeat`` runs of one client; the row of the median run by calls/s, with all
    runs' calls/s beside it (the machine may be shared, so single runs are noisy)."""
    runs = [run_one(client, topology, url, opts, servers) for _ in range(opts.repeat)]
    good = sorted((r for r in runs if "calls_per_s" in r), key=lambda r: r["calls_per_s"])
    if len(good) < len(runs):
        return next(r for r in runs if "calls_per_s" not in r)
    row = dict(good[len(good) // 2])
    row["runs_calls_per_s"] = [r["calls_per_s"] for r in runs]
    row["errors"] = sum(r["errors"] for r in runs)
    row["books_balance"] = all(r["books_balance"] for r in runs)
    return row


def start_standalone(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base.mkdir(parents=True, exist_ok=True)
    args = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(base), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "everysec", "--maxclients", "10000"]
    proc = subprocess.Popen(
        [find_server_binary(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis(port=port, socket_timeout=1) as client:
                client.ping()
            return proc, url
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)


def harness(opts: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    base = Path(tempfile.mkdtemp(prefix="store-clients-"))
    try:
        proc, url = start_standalone(base / "standalone")
        try:
            for client in CLIENTS["standalone"]:
                rows.append({"topology": "standalone", "client": client})
                rows[-1].update(repeated(client, "standalone", url, opts, [proc.pid]))
                print(_line(rows[-1]), flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        with LocalCluster(base / "cluster", masters=3) as cluster:
            pids = [n.pid for n in cluster.nodes if n.pid]
            for client in CLIENTS["cluster"]:
                rows.append({"topology": "cluster", "client": client})
                rows[-1].update(repeated(client, "cluster", cluster.urls[0], opts, pids))
                print(_line(rows[-1]), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {
            "concurrency": opts.concurrency,
            "warmup_s": opts.warmup,
            "duration_s": opts.duration,
            "repeat": opts.repeat,
            "loop": opts.loop,
            "shards": SHARDS,
            "cluster_masters": 3,
            "store": "valkey " + _server_version(),
        },
        "versions": {p: _version(p) for p in ("redis", "hiredis", "valkey-glide", "coredis")},
        "rows": rows,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(rows))
    print(f"\nwritten to {opts.out}")
    bad = [r for r in rows if r.get("failed") or r.get("errors") or r.get("books_balance") is False]
    return 1 if bad else 0


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _server_version() -> str:
    out = subprocess.run([find_server_binary(), "--version"], capture_output=True, text=True)
    return out.stdout.split("v=")[1].split()[0] if "v=" in out.stdout else out.stdout.strip()


COLUMNS = [
    ("topology", "topology"),
    ("client", "client"),
    ("calls_per_s", "calls/s"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("client_cpu_cores", "client cpu"),
    ("client_cpu_us_per_call", "cpu us/call"),
    ("client_rss_mib", "rss MiB"),
    ("store_cpu_cores", "store cpu"),
    ("errors", "errors"),
    ("books_balance", "books ok"),
]


def _line(row: dict[str, Any]) -> str:
    note = row.get("skipped") or row.get("failed")
    if note:
        return f"{row['topology']:<10} {row['client']:<17} -- {note}"
    return "  ".join(f"{title}={row.get(key)}" for key, title in COLUMNS)


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title in COLUMNS]]
    notes = []
    for row in rows:
        if row.get("skipped") or row.get("failed"):
            cells.append([row["topology"], row["client"]] + ["-"] * (len(COLUMNS) - 2))
            notes.append(
                f"{row['topology']}/{row['client']}: {row.get('skipped') or row['failed']}"
            )
        else:
            cells.append([str(row.get(key)) for key, _ in COLUMNS])
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=64, help="coroutines")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--repeat", type=int, default=1, help="runs per client (median kept)")
    parser.add_argument("--out", type=Path, default=RESULTS / "store_clients.json")
    parser.add_argument("--worker", nargs=3, metavar=("CLIENT", "TOPOLOGY", "URL"))
    opts = parser.parse_args(argv)
    if opts.worker:
        opts.client, opts.topology, opts.url = opts.worker
        worker_main(opts)
        return 0
    return harness(opts)


if __name__ == "__main__":
    sys.exit(main())
