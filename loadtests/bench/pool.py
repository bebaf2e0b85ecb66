"""The load side: worker processes (:mod:`loadtests.loadworker`) driven over pipes, and
the admin-API chores they do for a scenario (tokens, coins).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

from loadtests import servers
from loadtests.loadworker import worker_main


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
