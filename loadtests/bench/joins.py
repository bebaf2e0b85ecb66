"""Scenario: join and reconnect storms.

Phase A (joins): ``joins_clients`` clients connect, say hello and join one room, with
``joins_inflight`` in flight at a time; joins per second, latency (TCP connect to join
reply, retries included) p50/p99, failures and retries (connection resets, refusals), the
kernel's listen-queue overflows and drops (``/proc/net/netstat``, TcpExt ``ListenOverflows``
and ``ListenDrops``, machine-wide) before and after, and the server's CPU. The same load
goes to livesrv, to the naive ``websockets`` server (``loadtests/naive_server.py``) and to a
Node Socket.IO 4 server (``loadtests/socketio_server``, installed with ``npm ci`` when node
and npm are present; the result says so when they are not).

Phase B (storm): a room with a log; ``storm_clients`` clients all reconnect at once with
``join since`` = seq - ``storm_missed``: the time until every one of them has every missed
event (checked in order: gaps and duplicates counted), and how many room-log reads the
server made for them (``livesrv_room_replay_reads_total``, and the store's own count of
``XREVRANGE`` calls). More clients than one process's open-file limit allows: two serve
processes (``--workers 2``), as :mod:`.connections` does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livesrv.realtime.admission import somaxconn
from loadtests import servers
from loadtests.loadworker import raise_nofile

from .config import Plan
from .pool import Pool, mint, split
from .sampling import Sampler, metric, other_cpu, wait_idle
from .stats import lat_array, pct

SOCKETIO_DIR = servers.REPO / "loadtests" / "socketio_server"


def netstat() -> dict[str, int]:
    """The kernel's TcpExt counters (``/proc/net/netstat``): ListenOverflows, ListenDrops."""
    want = ("ListenOverflows", "ListenDrops")
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return {k: int(row[k]) for k in want if k in row}
    return {}


def start_socketio(
    log_dir: Path, timeout: float = 60.0
) -> tuple[servers.ServerProcess | None, str]:
    """The Socket.IO server, its packages installed first; (None, why) when it cannot run."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None, "node/npm not installed: no Socket.IO comparison in this run"
    if not (SOCKETIO_DIR / "node_modules" / "socket.io").exists():
        ci = "ci" if (SOCKETIO_DIR / "package-lock.json").exists() else "install"
        done = subprocess.run(
            [npm, ci, "--no-audit", "--no-fund"],
            cwd=SOCKETIO_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            return None, f"npm {ci} failed: {(done.stderr or done.stdout)[-300:]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "socketio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [node, "server.js", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=SOCKETIO_DIR,
            start_new_session=True,
        )
    server = servers.ServerProcess(proc=proc, log=log)
    try:
        server.wait_urls(("ws",), timeout)
    except BaseException:
        server.stop()
        raise
    meta = SOCKETIO_DIR / "node_modules" / "socket.io" / "package.json"
    version = json.loads(meta.read_text()).get("version", "?")
    return server, f"socket.io {version} on node {_node_version(node)}"


def _node_version(node: str) -> str:
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def _storm(
    pool: Pool,
    workers: list[int],
    kind: str,
    url: str,
    tokens: list[str],
    room: str,
    inflight: int,
    since: int | None = None,
    upto: int = 0,
) -> dict[str, Any]:
    """Run ``join_storm`` on ``workers`` together (each its share of tokens and inflight)."""
    chunks = split(tokens, len(workers))
    start_at = time.time() + 0.5
    res = pool.call_many(
        {
            w: (
                "join_storm",
                {
                    "kind": kind,
                    "url": url,
                    "tokens": chunk,
                    "room": room,
                    "inflight": max(1, inflight // len(workers)),
                    "since": since,
                    "upto": upto,
                    "start_at": start_at,
                    "timeout": 120.0,
                },
            )
            for w, chunk in zip(workers, chunks, strict=True)
            if chunk
        }
    )
    lat = lat_array([r["latencies"] for r in res.values()])
    joined = sum(r["joined"] for r in res.values())
    wall = max(r["finished"] for r in res.values()) - min(r["started"] for r in res.values())
    failures: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    for r in res.values():
        failures.update(r["failures"])
        retried.update(r["retried"])
    return {
        "clients": len(tokens),
        "joined": joined,
        "seconds": round(wall, 2),
        "joins_per_s": round(joined / wall, 1) if wall > 0 else None,
        "latency_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": pct(lat, 100)},
        "failed": dict(failures),
        "retried": dict(retried),
        "gaps": sum(r["gaps"] for r in res.values()),
        "dups": sum(r["dups"] for r in res.values()),
    }


def _phase_a(
    pool: Pool, kind: str, server: servers.ServerProcess, url: str, plan: Plan, run: int
) -> dict[str, Any]:
    workers = list(range(1, pool.size))
    room = f"jroom{run}"
    names = [f"j{run}-{i}" for i in range(plan.joins_clients)]
    if isinstance(server, servers.Livesrv):
        ctok = mint(pool, server, [f"jc{run}"], "creator")[f"jc{run}"]
        tokens = mint(pool, server, names, "viewer")
    else:
        ctok, tokens = f"jc{run}", {n: n for n in names}
    if kind != "socketio":
        pool.call(0, "open_rooms", url=url, rooms=[(ctok, room)])
    wait_idle(server)
    before, load0 = netstat(), sum(pool.cpu_times())
    with Sampler(server, name=f"joins-{kind}") as sampler:
        out = _storm(
            pool, workers, kind, url, [tokens[n] for n in names], room, plan.joins_inflight
        )
    after, load = netstat(), sum(pool.cpu_times()) - load0
    pool.call_many({w: ("joiners_close", {}) for w in workers})
    if kind != "socketio":
        pool.call(0, "creators_close")
    out["server"] = kind
    out["inflight"] = plan.joins_inflight
    out["kernel"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    out["server_cores"] = round(sampler.cpu / max(sampler.wall, 1e-9), 2)
    out["store_cores"] = round(sampler.store_cpu / max(sampler.wall, 1e-9), 2)
    out["load_cores"] = round(load / max(sampler.wall, 1e-9), 2)  # the clients' processes
    out["server_runq_wait_s"] = round(sampler.wait, 2)  # runnable, waiting for a core
    # the server's CPU per join: the figure least skewed by the rest of a shared machine
    out["server_cpu_ms_per_join"] = round(1000 * sampler.cpu / max(out["joined"], 1), 2)
    out["server_kernel_ms_per_join"] = round(1000 * sampler.kernel_cpu / max(out["joined"], 1), 2)
    out["other_cores"] = other_cpu(sampler, load)  # the rest of the (shared) machine
    if sampler.profile is not None:
        out["profile"] = sampler.profile
    return out


def _store_xrevrange(server: servers.Livesrv) -> int | None:
    """``XREVRANGE`` calls the server's store has answered (INFO commandstats)."""
    try:
        import redis

        from livesrv.store.embedded import EmbeddedStore

        client = redis.Redis.from_url(EmbeddedStore(server.data_dir).url)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - the figure is optional
        return None
    return int((stats.get("cmdstat_xrevrange") or {}).get("calls", 0))


def _phase_b(pool: Pool, tmp: Path, plan: Plan, env: dict[str, str]) -> dict[str, Any]:
    nofile = raise_nofile()
    n = plan.storm_clients
    workers = 1 if n + 1000 < nofile else 2
    server = servers.start_livesrv(tmp / "storm", workers=workers, env=env)
    try:
        room = "storm"
        ctok = mint(pool, server, ["sc"], "creator")["sc"]
        pool.call(0, "open_rooms", url=server.ws_url, rooms=[(ctok, room)])
        seq = pool.call(0, "room_chat", room=room, count=plan.storm_missed + 10)["seq"]
        since = seq - plan.storm_missed
        names = [f"s{i}" for i in range(n)]
        tokens = mint(pool, server, names, "viewer")
        wait_idle(server)
        reads0 = metric(server, "livesrv_room_replay_reads_total") or 0.0
        joiners0 = metric(server, "livesrv_room_replay_joiners_total") or 0.0
        x0 = _store_xrevrange(server)
        before, load0 = netstat(), sum(pool.cpu_times())
        with Sampler(server, name="storm") as sampler:
            out = _storm(
                pool,
                list(range(1, pool.size)),
                "livesrv",
                server.ws_url,
                [tokens[n] for n in names],
                room,
                n,  # all at once
                since=since,
                upto=seq,
            )
        after, load = netstat(), sum(pool.cpu_times()) - load0
        time.sleep(1.5)  # each worker copies its counts into the metrics every second
        reads = (metric(server, "livesrv_room_replay_reads_total") or 0.0) - reads0
        joiners = (metric(server, "livesrv_room_replay_joiners_total") or 0.0) - joiners0
        x1 = _store_xrevrange(server)
        pool.call_many({w: ("joiners_close", {}) for w in range(1, pool.size)})
        pool.call(0, "creators_close")
    finally:
        server.stop()
    out.update(
        server_workers=workers,
        missed=plan.storm_missed,
        since=since,
        upto=seq,
        replay_reads=int(reads),
        replay_joiners=int(joiners),
        joiners_per_read=round(joiners / reads, 1) if reads else None,
        store_xrevrange_calls=None if x0 is None or x1 is None else x1 - x0,
        kernel={k: after.get(k, 0) - before.get(k, 0) for k in after},
        server_cores=round(sampler.cpu / max(sampler.wall, 1e-9), 2),
        store_cores=round(sampler.store_cpu / max(sampler.wall, 1e-9), 2),
        load_cores=round(load / max(sampler.wall, 1e-9), 2),
        server_runq_wait_s=round(sampler.wait, 2),  # runnable, waiting for a core
        other_cores=other_cpu(sampler, load),
        server_cpu_ms_per_join=round(1000 * sampler.cpu / max(out["joined"], 1), 2),
    )
    if sampler.profile is not None:
        out["profile"] = sampler.profile
    return out


def joins(
    pool: Pool, tmp: Path, plan: Plan, env: dict[str, str], tick: Callable[[str], None]
) -> dict[str, Any]:
    """Phase A against livesrv, the naive server and Socket.IO, then phase B on livesrv."""
    result: dict[str, Any] = {"somaxconn": somaxconn(), "phase_a": []}
    starters: list[tuple[str, Callable[[], servers.ServerProcess | None]]] = [
        ("livesrv", lambda: servers.start_livesrv(tmp / "joins", env=env)),
        ("naive", lambda: servers.start_naive(tmp / "joins-naive")),
    ]
    sio_note: list[str] = []

    def socketio() -> servers.ServerProcess | None:
        server, note = start_socketio(tmp / "joins-sio")
        sio_note.append(note)
        return server

    starters.append(("socketio", socketio))
    for run, (kind, start) in enumerate(starters):
        tick(f"joins {kind} {plan.joins_clients}")
        server = start()
        if server is None:
            result["phase_a"].append({"server": kind, "skipped": sio_note[-1]})
            continue
        try:
            url = server.urls["ws"]
            if kind != "socketio" and not url.rstrip("/").endswith("/ws"):
                url = url.rstrip("/") + "/ws"
            result["phase_a"].append(_phase_a(pool, kind, server, url, plan, run))
        finally:
            server.stop()
    result["socketio"] = sio_note[-1] if sio_note else None
    if plan.storm_clients:
        tick(f"reconnect storm {plan.storm_clients}")
        result["storm"] = _phase_b(pool, tmp, plan, env)
    return result


def errors_of(res: dict[str, Any], s: dict[str, Any]) -> tuple[int, bool]:
    """(errors, complete) of the joins scenario, its headline figures put in ``s``."""
    j = res.get("joins")
    if not j:
        return 0, True
    errors, complete = 0, True
    rates = {}
    for run in j["phase_a"]:
        if "skipped" in run:
            continue
        rates[run["server"]] = {
            "joins_per_s": run["joins_per_s"],
            "cpu_ms_per_join": run.get("server_cpu_ms_per_join"),
            "p99_ms": run["latency_ms"]["p99"],
            "listen_overflows": run["kernel"].get("ListenOverflows"),
        }
        if run["server"] == "livesrv":
            errors += sum(run["failed"].values())
    s["joins"] = rates
    storm = j.get("storm")
    if storm:
        errors += sum(storm["failed"].values())
        complete = storm["gaps"] == 0 and storm["dups"] == 0 and storm["joined"] == storm["clients"]
        s["storm"] = {
            "clients": storm["clients"],
            "all_caught_up_s": storm["seconds"],
            "replay_reads": storm["replay_reads"],
            "joiners_per_read": storm["joiners_per_read"],
        }
    return errors, complete
