"""livesrv benchmark harness: one command, its own servers, its own load processes.

Usage::

    python -m loadtests.bench            # full run (about 10 minutes on 2 cores)
    python -m loadtests.bench --quick    # about a minute, small sizes (used by the tests)
    python loadtests/bench.py --help

It starts ``livesrv serve`` (port 0, its own store in a temporary data dir) and the naive
baseline server (``loadtests/naive_server.py``), then load processes
(:mod:`loadtests.loadworker`) that hold the connections. It measures, in one run:

- gift throughput and reply latency (p50/p99) against concurrency, beside the ceiling:
  the same gift scripts driven straight at the same store with pipelining;
- settlement lag (gift acknowledged -> creator's ``wallet`` event with the new diamonds)
  at the peak gift rate;
- fan-out: one room with N viewers at a fixed gift rate, events delivered per second and
  event latency (now - event ``ts``), livesrv beside the naive baseline;
- slow consumers: 5% of the viewers never read; server memory, the others' latency, and
  how the slow ones are cut (close code 4409);
- RSS per idle connection at 10k and 20k connections.

Results: ``loadtests/results/bench.json`` and PNG plots beside it; with ``--quick``,
``bench-quick.json`` and its plots in ``loadtests/results/quick/`` (ignored by git); ``--out
DIR`` writes them elsewhere. The last line printed names the directory and the files.
The process exits 1 when any request failed or any event was not delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python loadtests/bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "loadtests"  # noqa: A001

from loadtests import profiling, servers  # noqa: E402
from loadtests.loadworker import raise_nofile, worker_main  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# The bench server lifts the per-connection op rate limit and the daily spend cap so the
# load measures capacity, not policy; everything else is the default configuration.
BENCH_ENV = {
    "LIVESRV_OPS_PER_SECOND": "1000000",
    "LIVESRV_OPS_BURST": "1000000",
    "LIVESRV_DAY_LIMIT": "1000000000",
    # 256 KiB instead of 1 MiB per socket, so a viewer that never reads is cut within the
    # slow-consumer run (about 6 s at 40 KB/s) instead of minutes later
    "LIVESRV_SEND_BUFFER_LIMIT": "262144",
}
GIFT = "rose"
GIFT_COUNT = 2  # 2 coins a gift: exactly 1 diamond for the creator (5000 bps), so lag is exact
GRANT = 2_000_000
CHAT_LEN = 400  # characters of each chat message in the slow-consumer runs


@dataclass
class Plan:
    quick: bool
    concurrency: list[int]
    gift_seconds: float
    per_room: int
    ceiling_seconds: float
    ceiling_rounds: int
    ceiling_users: int
    ceiling_depth: int
    ceiling_tasks: int
    fanout_viewers: list[int]
    fanout_rate: float
    fanout_seconds: float
    fanout_drain: float
    slow_viewers: int
    slow_every: int
    slow_chat_rate: float
    slow_gift_rate: float
    slow_seconds: float
    conn_points: list[int]
    conn_rooms: int
    viewer_workers: int
    gifter_workers: int
    fanout_gifters: int
    sample_every: int

    @classmethod
    def full(cls) -> Plan:
        return cls(
            quick=False,
            concurrency=[1, 4, 16, 64, 256],
            gift_seconds=8.0,
            per_room=4,
            ceiling_seconds=4.0,
            ceiling_rounds=3,
            ceiling_users=64,
            ceiling_depth=64,
            ceiling_tasks=4,
            fanout_viewers=[1000, 5000, 10000],
            fanout_rate=200.0,
            fanout_seconds=10.0,
            fanout_drain=20.0,
            slow_viewers=5000,
            slow_every=20,
            slow_chat_rate=50.0,
            slow_gift_rate=100.0,
            slow_seconds=15.0,
            conn_points=[10000, 20000],
            conn_rooms=20,
            viewer_workers=2,
            gifter_workers=2,
            fanout_gifters=8,
            sample_every=20,
        )

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(
            quick=True,
            concurrency=[1, 8],
            gift_seconds=2.0,
            per_room=4,
            ceiling_seconds=1.0,
            ceiling_rounds=1,
            ceiling_users=8,
            ceiling_depth=32,
            ceiling_tasks=2,
            fanout_viewers=[200],
            fanout_rate=20.0,
            fanout_seconds=2.0,
            fanout_drain=8.0,
            slow_viewers=200,
            slow_every=20,
            slow_chat_rate=20.0,
            slow_gift_rate=20.0,
            slow_seconds=2.0,
            conn_points=[400],
            conn_rooms=2,
            viewer_workers=2,
            gifter_workers=2,
            fanout_gifters=2,
            sample_every=5,
        )


# -- load processes ----------------------------------------------------------------------
class Pool:
    """Load worker processes; worker 0 holds creators and the gift-rate driver."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for i in range(n):
            parent, child = ctx.Pipe()
            ips = [f"127.0.{1 + i}.{j}" for j in range(2, 18)]
            proc = ctx.Process(target=worker_main, args=(child, i, ips), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.pids = [self.call(i, "ping")["pid"] for i in range(n)]

    @property
    def size(self) -> int:
        return len(self.pipes)

    def send(self, i: int, cmd: str, **args: Any) -> None:
        self.pipes[i].send({"cmd": cmd, "args": args})

    def recv(self, i: int, timeout: float = 600.0) -> dict[str, Any]:
        if not self.pipes[i].poll(timeout):
            raise TimeoutError(f"load worker {i} did not answer in {timeout}s")
        result: dict[str, Any] = self.pipes[i].recv()
        if not result.get("_ok", False):
            raise RuntimeError(f"load worker {i}: {result.get('_error')}")
        return result

    def call(self, i: int, cmd: str, **args: Any) -> dict[str, Any]:
        self.send(i, cmd, **args)
        return self.recv(i)

    def call_many(self, calls: dict[int, tuple[str, dict[str, Any]]]) -> dict[int, dict[str, Any]]:
        for i, (cmd, args) in calls.items():
            self.send(i, cmd, **args)
        return {i: self.recv(i) for i in calls}

    def cpu_times(self) -> list[float]:
        """CPU seconds (user + system) used so far by each worker."""
        import psutil

        out = []
        for pid in self.pids:
            try:
                t = psutil.Process(pid).cpu_times()
                out.append(t.user + t.system)
            except psutil.Error:
                out.append(0.0)
        return out

    def close(self) -> None:
        for i, pipe in enumerate(self.pipes):
            with contextlib.suppress(Exception):
                pipe.send({"cmd": "exit"})
                if pipe.poll(10):
                    pipe.recv()
            with contextlib.suppress(Exception):
                self.procs[i].join(5)
            if self.procs[i].is_alive():
                self.procs[i].terminate()


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[k::parts] for k in range(parts)]


def mint(
    pool: Pool,
    server: servers.Livesrv,
    users: list[str],
    role: str,
    workers: list[int] | None = None,
) -> dict[str, str]:
    """Tokens for ``users`` from the admin API, minted by several load workers at once."""
    if not users:
        return {}
    workers = workers or list(range(1, pool.size))
    chunks = split(users, len(workers))
    results = pool.call_many(
        {
            w: (
                "mint",
                {
                    "http_url": server.http_url,
                    "admin_token": server.admin_token,
                    "users": chunk,
                    "role": role,
                },
            )
            for w, chunk in zip(workers, chunks, strict=True)
            if chunk
        }
    )
    tokens: dict[str, str] = {}
    for r in results.values():
        tokens.update(r["tokens"])
    return tokens


def grant(pool: Pool, server: servers.Livesrv, users: list[str], coins: int, tag: str) -> None:
    pool.call(
        0,
        "grant",
        http_url=server.http_url,
        admin_token=server.admin_token,
        users=users,
        coins=coins,
        tag=tag,
    )


class Dist:
    """A sorted sample of values, with percentiles (linear interpolation, like numpy's)."""

    def __init__(self, values: Any) -> None:
        self.v = sorted(values)

    def __len__(self) -> int:
        return len(self.v)

    def q(self, q: float) -> float:
        v = self.v
        pos = (len(v) - 1) * q / 100.0
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    def max(self) -> float:
        return self.v[-1]


def lat_array(blobs: list[bytes]) -> Dist:
    arr = array("d")
    for b in blobs:
        arr.frombytes(b)
    return Dist(arr)


def pct(values: Dist, q: float) -> float | None:
    if len(values) == 0:
        return None
    return round(values.q(q), 2)


PROFILE_DIR: Path | None = None  # set by --profile: py-spy records every measured phase


def _tcp_mem() -> int:
    """Bytes the kernel holds in TCP socket buffers, all sockets (/proc/net/sockstat)."""
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1]) * 4096
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores)."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _other_cpu(sampler: Sampler, load_cpu: float) -> float:
    """Cores used meanwhile by processes that are neither the servers nor the load."""
    other = sampler.machine_busy - sampler.cpu - sampler.store_cpu - load_cpu
    return round(max(0.0, other) / max(sampler.wall, 1e-9), 2)


class Sampler:
    """Samples a server's RSS (and CPU seconds) every ``interval`` s in a thread.

    With ``--profile``, also records the server with py-spy for the same span and keeps
    a flame graph (SVG) and a summary of the hottest functions.
    """

    def __init__(
        self, server: servers.ServerProcess, interval: float = 0.5, name: str | None = None
    ) -> None:
        self.server = server
        self.name = name
        self.profile: dict[str, Any] | None = None
        self._spy: Any = None
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.tcp_mem: list[int] = []  # kernel TCP buffer memory (bytes), machine-wide
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.time()
        while not self._stop.is_set():
            self.samples.append((round(time.time() - t0, 2), self.server.rss()))
            self.tcp_mem.append(_tcp_mem())
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        if PROFILE_DIR is not None and self.name and isinstance(self.server, servers.Livesrv):
            self._spy = profiling.start(self.server.pid, PROFILE_DIR / self.name)
        self.cpu0 = self.server.cpu_times()
        self.store0 = self.server.store_cpu_times()
        self.busy0 = _machine_busy()
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = self.server.cpu_times() - self.cpu0
        self.store_cpu = self.server.store_cpu_times() - self.store0
        self.wall = time.monotonic() - self.t0
        self.machine_busy = _machine_busy() - self.busy0
        if self._spy is not None:
            self.profile = profiling.stop(self._spy)


# -- gifts: throughput, latency, settlement ---------------------------------------------
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
                "other_cores": _other_cpu(sampler, sum(load_cpu)),
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
        "cdf": _cdf(arr),
    }


def _cdf(arr: Dist, points: int = 60) -> list[list[float]]:
    if len(arr) == 0:
        return []
    qs = [100.0 * i / (points - 1) for i in range(points)]
    return [[round(q, 2), round(arr.q(q), 2)] for q in qs]


# -- the store's own ceiling ---------------------------------------------------------------
MARKER = "CEILKEY0"


async def record_gift_calls(
    server: servers.Livesrv, env: dict[str, str], users: list[str], room: str
) -> tuple[str, dict[str, str], list[list[Any]]]:
    """Send one real gift per user through livesrv's own gift code, recording its scripts.

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
    original = backend.run

    async def recording(name: str, keys: list[str], args: list[Any]) -> Any:
        calls.append((name, list(keys), list(args)))
        return await original(name, keys, args)

    backend.run = recording  # type: ignore[method-assign]
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
        "other_cores": _other_cpu(sampler, sum(load_cpu)),
        "background_before": background,
    }


# -- fan-out ---------------------------------------------------------------------------------
@dataclass
class Target:
    kind: str  # livesrv | naive
    server: servers.ServerProcess
    tokens: Callable[[list[str], str], dict[str, str]]
    grant: Callable[[list[str]], None]
    counter: Iterator[int] = field(default_factory=lambda: iter(range(1, 1 << 30)))


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
        deadline = time.monotonic() + plan.fanout_drain
        while True:
            col = pool.call_many({w: ("viewers_collect", {}) for w in vworkers})
            counts = [c for r in col.values() for c in r["gift_counts"]]
            if all(c >= expected for c in counts) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
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
        "store_cpu_s": round(sampler.store_cpu, 2),
        "wall_s": round(sampler.wall, 2),
        "load_cpu_s": load_cpu,
        "machine_busy_cores": round(sampler.machine_busy / max(sampler.wall, 1e-9), 2),
        "other_cores": _other_cpu(sampler, sum(load_cpu)),
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


def latency_timeline(cols: Any, t0: float, step: float = 0.5) -> list[list[float]]:
    """Event latency p50 and p99 per ``step`` seconds of the run: [[t, p50, p99, n], ...]."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for r in cols:
        lat, times = array("d"), array("d")
        lat.frombytes(r["latencies"])
        times.frombytes(r["latency_times"])
        for v, t in zip(lat, times, strict=True):
            buckets[int((t - t0) / step)].append(v)
    out = []
    for k in sorted(buckets):
        d = Dist(buckets[k])
        out.append([round(k * step, 2), round(d.q(50), 1), round(d.q(99), 1), len(d)])
    return out


def metric(server: servers.Livesrv, name: str) -> float | None:
    """One sample's value from the server's /metrics (summed over label sets)."""
    try:
        text = server.metrics()
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def end_to_end(sends: dict[str, list[float]], viewers: list[dict[str, list[float]]]) -> Any:
    """Gift sent -> gift event received, pairing the k-th event from a gifter with the k-th
    gift that gifter sent (requests of one connection are handled in order)."""
    out: list[float] = []
    for recv in viewers:
        for user, times in recv.items():
            sent = sends.get(user)
            if not sent:
                continue
            out.extend((r - t) * 1000.0 for r, t in zip(times, sent, strict=False))
    return Dist(out)


def wait_idle(server: servers.ServerProcess, limit: float = 0.15) -> float:
    """Wait until the server uses less than ``limit`` of a core over half a second, then
    (up to ``QUIET_TIMEOUT`` s) until the rest of the machine is quiet too.

    Returns the cores used by processes outside this benchmark just before the phase.
    """
    deadline = time.monotonic() + IDLE_TIMEOUT
    while True:
        c0 = server.cpu_times()
        time.sleep(0.5)
        busy = (server.cpu_times() - c0) / 0.5
        if busy < limit or time.monotonic() > deadline:
            break
    return wait_quiet()


SERVER_WORKERS = 1
SETTLE_PROCESS = False
IDLE_TIMEOUT = 60.0
QUIET_TIMEOUT = 90.0
QUIET_LIMIT = 0.25


def _tree_cpu() -> float:
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def wait_quiet() -> float:
    """Wait until processes outside this benchmark use under ``QUIET_LIMIT`` cores.

    The machine is shared (2 cores): anything else running skews every figure, so each
    phase starts when the rest of the machine is quiet, or after ``QUIET_TIMEOUT`` s; the
    background load seen is recorded with the phase either way.
    """
    deadline = time.monotonic() + QUIET_TIMEOUT
    while True:
        m0, t0, w0 = _machine_busy(), _tree_cpu(), time.monotonic()
        time.sleep(1.0)
        wall = time.monotonic() - w0
        foreign = max(0.0, (_machine_busy() - m0) - (_tree_cpu() - t0)) / wall
        if foreign < QUIET_LIMIT or time.monotonic() > deadline:
            return round(foreign, 2)


# -- idle connections ---------------------------------------------------------------------------
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
        rss0 = _settled_rss(server)
        out: list[dict[str, Any]] = []
        done = 0
        for p in points:
            tick(f"idle connections {p}")
            batch = names[done:p]
            by_room: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for i, n in enumerate(batch):
                by_room[(done + i) % len(rooms)].append((i, vtok[n]))
            # one viewers_connect call per (worker, room) so each viewer joins its room
            calls: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
            for j, items in by_room.items():
                for k, chunk in enumerate(split([t for _, t in items], len(vworkers))):
                    calls[vworkers[k]].append((rooms[j], chunk))
            failed = 0
            for step in range(max(len(v) for v in calls.values())):
                res = pool.call_many(
                    {
                        w: (
                            "viewers_connect",
                            {
                                "url": server.ws_url,
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
            done = p
            time.sleep(2.0)
            rss = _settled_rss(server)
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


def _settled_rss(server: servers.ServerProcess) -> int:
    samples = []
    for _ in range(3):
        samples.append(server.rss())
        time.sleep(0.3)
    return sorted(samples)[1]


# -- the run -------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nofile": raise_nofile(),
    }


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, the ratios, the error count and whether delivery was complete."""
    s: dict[str, Any] = {}
    errors = _summarize_gifts(res, s)
    fan_errors, complete = _summarize_fanout(res, s)
    errors += fan_errors
    conns = res.get("connections") or {}
    for p in conns.get("points", []):
        errors += p["failed"]
    s["kib_per_idle_connection"] = {
        str(p["connections"]): p["kib_per_connection"] for p in conns.get("points", [])
    }
    s["errors"] = errors
    s["delivery_complete"] = complete
    return s


def _summarize_gifts(res: dict[str, Any], s: dict[str, Any]) -> int:
    levels = res.get("gifts") or []
    errors = sum(sum(lv["errors"].values()) + (lv["ok"] == 0) for lv in levels)
    ceil_ = res.get("ceiling") or {}
    errors += sum(ceil_.get("errors", {}).values())
    if not levels:
        return errors
    peak = max(levels, key=lambda lv: lv["gifts_per_s"])
    s["gift_peak_per_s"] = peak["gifts_per_s"]
    s["gift_peak_concurrency"] = peak["concurrency"]
    s["gift_peak_latency_ms"] = peak["latency_ms"]
    s["settlement_lag_ms"] = peak["settlement"]["lag_ms"]
    s["unsettled"] = peak["settlement"]["unsettled"]
    if ceil_.get("gifts_per_s"):
        s["ceiling_gifts_per_s"] = ceil_["gifts_per_s"]
        s["throughput_vs_ceiling"] = round(peak["gifts_per_s"] / ceil_["gifts_per_s"], 3)
    return errors


def _run_failed(run: dict[str, Any]) -> tuple[int, bool]:
    """(errors, complete) of one livesrv fan-out run."""
    errors = run["connect_failed"] + sum(run["gift_errors"].values())
    complete = (
        run["readers_complete"] == run["readers"]
        and not run["seq_gaps"]
        and not run["readers_closed"]
    )
    return errors, complete


def _summarize_fanout(res: dict[str, Any], s: dict[str, Any]) -> tuple[int, bool]:
    errors, complete = 0, True
    fan: dict[str, Any] = {}
    for run in res.get("fanout") or []:
        fan.setdefault(str(run["viewers"]), {})[run["server"]] = run
        if run["server"] == "livesrv":  # the baseline falls behind by design
            e, ok = _run_failed(run)
            errors, complete = errors + e, complete and ok
    s["fanout"] = {
        v: {
            "livesrv_events_per_s": pair["livesrv"]["events_per_s"],
            "naive_events_per_s": pair["naive"]["events_per_s"],
            "ratio": round(pair["livesrv"]["events_per_s"] / pair["naive"]["events_per_s"], 2),
            "livesrv_p99_ms": pair["livesrv"]["event_latency_ms"]["p99"],
            "naive_p99_ms": pair["naive"]["event_latency_ms"]["p99"],
        }
        for v, pair in fan.items()
        if "livesrv" in pair and "naive" in pair and pair["naive"]["events_per_s"]
    }
    slow = res.get("slow")
    if slow:
        for run in (slow["baseline"], slow["with_slow"]):
            e, ok = _run_failed(run)
            errors, complete = errors + e, complete and ok
        s["slow"] = {
            "readers_p99_ms": [
                slow["baseline"]["event_latency_ms"]["p99"],
                slow["with_slow"]["event_latency_ms"]["p99"],
            ],
            "rss_max_mb": [
                slow["baseline"]["server_rss_mb"]["max"],
                slow["with_slow"]["server_rss_mb"]["max"],
            ],
            "slow_ended": slow["with_slow"]["slow"]["ended"],
            "slow_consumers_cut_total": slow["with_slow"]["slow_consumers_cut_total"],
        }
    return errors, complete


class _NoBar:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, what: str) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def run(
    plan: Plan, out: Path, *, only: set[str] | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the scenarios of ``plan`` (all, or those in ``only``); write JSON and plots."""
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional
        tqdm = _NoBar  # type: ignore[assignment,misc]

    raise_nofile()
    chosen = set(SCENARIOS) if only is None else only
    steps = (
        len(plan.concurrency) * ("gifts" in chosen)
        + ("ceiling" in chosen)
        + 2 * len(plan.fanout_viewers) * ("fanout" in chosen)
        + ("slow" in chosen)
        + len(plan.conn_points) * ("connections" in chosen)
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
        "server_workers": SERVER_WORKERS,
        "settle_process": SETTLE_PROCESS,
        "machine": machine(),
        "plan": asdict(plan),
        "bench_env": env,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    pool = Pool(1 + max(plan.viewer_workers, plan.gifter_workers))
    try:
        _scenarios(pool, plan, env, tmp, chosen, tick, result)
        if "connections" in chosen:
            result["connections"] = connections(pool, tmp, plan, env, tick)
    finally:
        pool.close()
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    marks.append(("end", time.monotonic()))
    result["phase_seconds"] = {
        name: round(marks[i + 1][1] - t, 1) for i, (name, t) in enumerate(marks[:-1])
    }
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    result["summary"] = summarize(result)
    out.mkdir(parents=True, exist_ok=True)
    name = "bench-quick" if plan.quick else "bench"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    try:
        from loadtests import plots

        result["plots"] = plots.render(result, out, prefix=name)
    except ImportError as exc:  # matplotlib is optional for the quick run
        result["plots"] = {"error": str(exc)}
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    return result


SCENARIOS = ("gifts", "ceiling", "fanout", "slow", "connections")


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
        tmp / "main", env=env, workers=SERVER_WORKERS, settle_process=SETTLE_PROCESS
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
            base = fanout_run(
                pool,
                lsrv,
                plan.slow_viewers,
                plan,
                chat_rate=plan.slow_chat_rate,
                seconds=plan.slow_seconds,
                rate=plan.slow_gift_rate,
            )
            with_slow = fanout_run(
                pool,
                lsrv,
                plan.slow_viewers,
                plan,
                slow_every=plan.slow_every,
                chat_rate=plan.slow_chat_rate,
                seconds=plan.slow_seconds,
                rate=plan.slow_gift_rate,
            )
            result["slow"] = {
                "fraction": 1 / plan.slow_every,
                "baseline": base,
                "with_slow": with_slow,
            }
        if "ceiling" in chosen:
            # last on this server: the ceiling leaves a large settlement backlog behind
            tick("store ceiling")
            try:
                result["ceiling"] = ceiling(pool, server, plan, env)
            except (ImportError, AttributeError, TypeError) as exc:
                result["ceiling"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        server.stop()
        if naive is not None:
            naive.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="livesrv benchmark harness")
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="results directory (default loadtests/results, or loadtests/results/quick with "
        "--quick: ignored by git); printed at the end",
    )
    parser.add_argument(
        "--only", default="", help="comma list of: gifts,ceiling,fanout,slow,connections"
    )
    parser.add_argument("--viewers", default="", help="fan-out sizes, e.g. 1000,5000,10000")
    parser.add_argument("--rate", type=float, default=None, help="fan-out gifts per second")
    parser.add_argument("--concurrency", default="", help="gift concurrency levels, e.g. 1,16")
    parser.add_argument("--ceiling-rounds", type=int, default=None, help="rounds of the ceiling")
    parser.add_argument(
        "--server-workers", type=int, default=1, help="livesrv serve --workers for the main server"
    )
    parser.add_argument(
        "--settle-process",
        action="store_true",
        help="run the main server with --no-settle beside a separate `livesrv settle`",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="3 nodes on a 3-master local cluster beside 3 nodes on one standalone store "
        "(loadtests/bench_cluster.py; with --quick: small sizes)",
    )
    parser.add_argument(
        "--durability",
        action="store_true",
        help="gifts on a 3-master, 3-replica cluster with LIVESRV_DURABILITY master and "
        "replicas side by side (loadtests/bench_durability.py)",
    )
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=None,
        help="seconds each phase waits for the rest of the machine to go quiet "
        "(default 90, 3 with --quick)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record each measured phase of livesrv with py-spy into DIR",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS
    if args.durability:
        from loadtests import bench_durability

        return bench_durability.main(args.quick, args.out)
    if args.cluster:
        from loadtests import bench_cluster

        return bench_cluster.main(args.quick, args.out)
    plan = Plan.quick_plan() if args.quick else Plan.full()
    if args.viewers:
        plan.fanout_viewers = [int(v) for v in args.viewers.split(",")]
    if args.rate:
        plan.fanout_rate = args.rate
    global SERVER_WORKERS, SETTLE_PROCESS
    SERVER_WORKERS = args.server_workers
    SETTLE_PROCESS = args.settle_process
    if args.ceiling_rounds:
        plan.ceiling_rounds = args.ceiling_rounds
    if args.concurrency:
        plan.concurrency = [int(v) for v in args.concurrency.split(",")]
    only = {o.strip() for o in args.only.split(",") if o.strip()} or None
    global QUIET_TIMEOUT, IDLE_TIMEOUT
    IDLE_TIMEOUT = 4.0 if args.quick else IDLE_TIMEOUT
    QUIET_TIMEOUT = (
        args.quiet_timeout
        if args.quiet_timeout is not None
        else (3.0 if args.quick else QUIET_TIMEOUT)
    )
    if args.profile is not None:
        global PROFILE_DIR
        PROFILE_DIR = args.profile
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    result = run(plan, args.out, only=only, progress=not args.no_progress)
    print(json.dumps(result["summary"], indent=1))
    name = "bench-quick" if plan.quick else "bench"
    written = sorted(p.name for p in args.out.glob(f"{name}*"))
    print(f"results written to {args.out.resolve()}: {', '.join(written)}")
    s = result["summary"]
    return 0 if s["errors"] == 0 and s["delivery_complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
