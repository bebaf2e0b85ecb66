"""Where the memory of an idle connection goes: ``python -m loadtests.connmem [-n 10000]``.

Two servers, one after the other, each ``livesrv serve`` (one process) with its own store;
N viewers connect, ``hello``, ``join`` one of 20 rooms and stay idle:

1. Untraced: the server's RSS before and after, divided by N; and the kernel's memory for
   the sockets (slab caches from ``/proc/slabinfo``, buffer pages from
   ``/proc/net/sockstat``), which is not in any process's RSS. Both ends of each
   connection are sockets on this machine, so the kernel figure per server socket is the
   slab growth divided by 2N.
2. Traced (``PYTHONTRACEMALLOC=1``): a snapshot before and after, the growth grouped by the
   file that allocated it: websockets, asyncio and uvloop, livesrv, the rest. The
   difference between the RSS per connection and what the traces account for is the
   allocator's own overhead and memory no Python allocator hands out.

Prints a JSON summary (``--out FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any

from loadtests import servers
from loadtests.bench.config import BENCH_ENV
from loadtests.bench.pool import Pool, mint
from loadtests.bench.sampling import settled_rss

SNAPSHOT_HOOK = """
import os, threading, time, tracemalloc
from pathlib import Path

_dir = Path(os.environ["CONNMEM_DIR"])


def _serve_snapshots() -> None:
    while True:
        for want in _dir.glob("*.want"):
            want.unlink()
            tracemalloc.take_snapshot().dump(str(_dir / (want.stem + ".snap")))
            (_dir / (want.stem + ".done")).touch()
        time.sleep(0.2)


if tracemalloc.is_tracing():
    threading.Thread(target=_serve_snapshots, daemon=True).start()
"""

GROUPS = (
    ("websockets", "/websockets/"),
    ("asyncio + uvloop", "/asyncio/"),
    ("asyncio + uvloop", "uvloop"),
    ("livesrv", "/livesrv/"),
)


def slab_bytes() -> dict[str, int]:
    """Bytes in each kernel slab cache (objects x size), or {} when unreadable."""
    out: dict[str, int] = {}
    try:
        lines = Path("/proc/slabinfo").read_text().splitlines()[2:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        out[f[0]] = int(f[1]) * int(f[3])  # active objects x object size
    return out


def sockstat() -> dict[str, int]:
    """``/proc/net/sockstat``: sockets in use, TCP sockets and TCP buffer pages (bytes)."""
    out = {"sockets": 0, "tcp": 0, "tcp_mem": 0}
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            f = line.split()
            if f[0] == "sockets:":
                out["sockets"] = int(f[2])
            elif f[0] == "TCP:":
                out["tcp"] = int(f[f.index("inuse") + 1])
                out["tcp_mem"] = int(f[f.index("mem") + 1]) * 4096
    except (OSError, ValueError, IndexError):
        pass
    return out


def kernel_delta(before: tuple[dict[str, int], dict[str, int]], sockets: int) -> dict[str, Any]:
    """The kernel's growth since ``before`` (slab, sockstat) per socket opened meanwhile."""
    slab0, stat0 = before
    slab1, stat1 = slab_bytes(), sockstat()
    grown = {k: v - slab0.get(k, 0) for k, v in slab1.items()}
    top = sorted(grown.items(), key=lambda kv: -kv[1])[:8]
    per = max(sockets, 1)
    return {
        "sockets_opened": stat1["tcp"] - stat0["tcp"],
        "slab_kib_per_socket": round(sum(grown.values()) / per / 1024, 2),
        "tcp_buffer_kib_per_socket": round((stat1["tcp_mem"] - stat0["tcp_mem"]) / per / 1024, 2),
        "top_slabs_kib_per_socket": {k: round(v / per / 1024, 2) for k, v in top if v > 0},
    }


def kernel_mark() -> tuple[dict[str, int], dict[str, int]]:
    return slab_bytes(), sockstat()


def _open(pool: Pool, tmp: Path, n: int, env: dict[str, str]) -> tuple[Any, list[str], Any]:
    server = servers.start_livesrv(tmp, workers=1, env=env)
    rooms = [f"mem{j}" for j in range(20)]
    creators = [f"mc{j}" for j in range(len(rooms))]
    ctok = mint(pool, server, creators, "creator")
    pool.call(
        0,
        "open_rooms",
        url=server.ws_url,
        rooms=[(ctok[c], r) for c, r in zip(creators, rooms, strict=True)],
    )
    vtok = mint(pool, server, [f"mv{i}" for i in range(n)], "viewer")
    return server, rooms, vtok


def _connect(pool: Pool, server: Any, rooms: list[str], vtok: dict[str, str]) -> int:
    from loadtests.bench.connections import connect_idle

    return connect_idle(pool, server.ws_url, rooms, list(vtok.values()), 0)


def _close(pool: Pool, server: Any) -> None:
    pool.call_many({w: ("viewers_close", {}) for w in range(1, pool.size)})
    pool.call(0, "creators_close")
    server.stop()


def untraced(pool: Pool, tmp: Path, n: int, env: dict[str, str]) -> dict[str, Any]:
    server, rooms, vtok = _open(pool, tmp / "plain", n, env)
    try:
        time.sleep(1.0)
        rss0, mark = settled_rss(server), kernel_mark()
        failed = _connect(pool, server, rooms, vtok)
        time.sleep(2.0)
        rss = settled_rss(server)
        kernel = kernel_delta(mark, 2 * n)
    finally:
        _close(pool, server)
    return {
        "failed": failed,
        "rss_mib": round(rss / 2**20, 1),
        "baseline_mib": round(rss0 / 2**20, 1),
        "rss_kib_per_connection": round((rss - rss0) / n / 1024, 2),
        "kernel": kernel,
    }


def _snapshot(d: Path, name: str) -> tracemalloc.Snapshot:
    (d / f"{name}.want").touch()
    deadline = time.monotonic() + 120
    while not (d / f"{name}.done").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the server took no snapshot")
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(str(d / f"{name}.snap"))


def traced(pool: Pool, tmp: Path, n: int, env: dict[str, str], top: int) -> dict[str, Any]:
    hook = tmp / "hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(textwrap.dedent(SNAPSHOT_HOOK))
    env = {
        **env,
        "PYTHONTRACEMALLOC": "1",
        "CONNMEM_DIR": str(hook),
        "PYTHONPATH": f"{hook}:{servers.REPO}",
    }
    server, rooms, vtok = _open(pool, tmp / "traced", n, env)
    try:
        time.sleep(1.0)
        before = _snapshot(hook, "before")
        failed = _connect(pool, server, rooms, vtok)
        time.sleep(2.0)
        after = _snapshot(hook, "after")
    finally:
        _close(pool, server)
    stats = after.compare_to(before, "filename")
    groups: dict[str, float] = {}
    files = []
    for st in stats:
        name = st.traceback[0].filename
        group = next((g for g, needle in GROUPS if needle in name), "other")
        groups[group] = groups.get(group, 0) + st.size_diff
        files.append((name, st.size_diff, st.count_diff))
    files.sort(key=lambda f: -f[1])
    lines = sorted(after.compare_to(before, "lineno"), key=lambda st: -st.size_diff)[:top]
    short = lambda f: "/".join(f.split("/")[-3:])  # noqa: E731
    return {
        "failed": failed,
        "traced_kib_per_connection": round(sum(groups.values()) / n / 1024, 2),
        "groups_kib_per_connection": {g: round(v / n / 1024, 2) for g, v in groups.items()},
        "files": [
            {
                "file": short(f),
                "bytes_per_connection": round(b / n),
                "blocks_per_connection": round(c / n, 1),
            }
            for f, b, c in files[:top]
        ],
        "lines": [
            {
                "line": f"{short(st.traceback[0].filename)}:{st.traceback[0].lineno}",
                "bytes_per_connection": round(st.size_diff / n),
                "blocks_per_connection": round(st.count_diff / n, 1),
            }
            for st in lines
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.connmem", description=__doc__)
    parser.add_argument("-n", type=int, default=10000, help="idle connections")
    parser.add_argument("--top", type=int, default=20, help="files listed")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--skip-untraced", action="store_true")
    args = parser.parse_args(argv)
    from loadtests.loadworker import raise_nofile

    raise_nofile()
    env = dict(BENCH_ENV)
    pool = Pool(3)
    try:
        with tempfile.TemporaryDirectory(prefix="connmem") as tmp:
            result: dict[str, Any] = {"connections": args.n}
            if not args.skip_untraced:
                result["untraced"] = untraced(pool, Path(tmp), args.n, env)
            result["traced"] = traced(pool, Path(tmp), args.n, env, args.top)
    finally:
        pool.close()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
