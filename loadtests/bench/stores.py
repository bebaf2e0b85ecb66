"""The stores the cluster and durability benchmarks start their nodes on: one plain valkey-server,
or a local cluster (:mod:`livesrv.store.local_cluster`). Each is a context manager yielding
(URLs, pids)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def standalone_store(base: Path) -> Iterator[tuple[list[str], list[int]]]:
    """One plain (non-cluster) valkey-server on 127.0.0.1, AOF everysec like the cluster's
    nodes. Yields ([url], [pid])."""
    from livesrv.store.embedded import find_server_binary
    from livesrv.store.local_cluster import free_port

    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = base / "standalone.conf"
    conf.write_text(
        "".join(
            f"{k} {v}\n"
            for k, v in {
                "bind": "127.0.0.1",
                "port": port,
                "dir": base,
                "appendonly": "yes",
                "appendfsync": "everysec",
                "save": '""',
                "maxmemory-policy": "noeviction",
                "daemonize": "no",
            }.items()
        )
    )
    with (base / "standalone.log").open("ab") as log:
        proc = subprocess.Popen(
            [find_server_binary(), str(conf)], cwd=base, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 15
        while not _answers(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"standalone store did not start; see {base}")
            time.sleep(0.05)
        yield [f"redis://127.0.0.1:{port}"], [proc.pid]
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def cluster_store(
    base: Path, masters: int = 3, replicas: int = 0
) -> Iterator[tuple[list[str], list[int]]]:
    """A local cluster (:mod:`livesrv.store.local_cluster`), ``replicas`` per master. Yields
    (master URLs, every node's pid)."""
    from livesrv.store.local_cluster import LocalCluster

    c = LocalCluster(base, masters=masters, replicas=replicas)
    c.start()
    c.wait_ok()
    try:
        yield c.urls, [n.pid for n in c.nodes if n.pid]
    finally:
        c.stop()
