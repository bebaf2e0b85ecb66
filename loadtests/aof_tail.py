"""What mending a store's AOF after a crash adds to the restart, side by side with the load.

Usage::

    python -m loadtests.aof_tail                  # 100 MB file, 3 rounds: about 40 s
    python -m loadtests.aof_tail --mb 20 --rounds 1

It writes one AOF file of money-step blocks shaped like a gift's effects (``MULTI``, a
wallet ``HINCRBY``, an idempotency ``SET ... PXAT``, a ledger and an outbox ``XADD``,
``EXEC``) and starts the embedded store on it, alternately:

- ``clean``: as after a clean stop (no pid file): the store loads the file;
- ``after crash``: with the pid file a killed store leaves, so livesrv first scans the
  file (:func:`livesrv.store.aof_tail.mend`), then the store loads it.

Each start is timed until the store answers PING (not ``LOADING``). Results:
``loadtests/results/aof_tail.json`` and a line per mode on stdout (median of the rounds).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from livesrv.store import aof_tail
from livesrv.store.embedded import EmbeddedStore

RESULTS = Path(__file__).parent / "results" / "aof_tail.json"


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def gift_block(i: int) -> bytes:
    user = b"v%d" % (i % 5000)
    shard = b"{s:%d}" % (i % 16)
    return b"".join(
        (
            command(b"MULTI"),
            command(b"HINCRBY", b"{u:" + user + b"}:wallet", b"coins", b"-5"),
            command(b"SET", shard + b":k:" + user + b":g%d" % i, b"a1b2c3\n{}", b"PXAT", b"1"),
            command(b"XADD", shard + b":ledger", b"%d-0" % (i + 1), b"t", b"spend", b"coins", b"5"),
            command(b"XADD", shard + b":outbox", b"%d-0" % (i + 1), b"user", user, b"p", b"{}"),
            command(b"EXEC"),
        )
    )


def write_aof(data_dir: Path, megabytes: int) -> int:
    aof = data_dir / "store" / "appendonlydir"
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.manifest").write_text("file appendonly.aof.1.incr.aof seq 1 type i\n")
    want, size, i = megabytes * 1_000_000, 0, 0
    with (aof / "appendonly.aof.1.incr.aof").open("wb") as fh:
        fh.write(command(b"SELECT", b"0"))
        while size < want:
            chunk = b"".join(gift_block(i + j) for j in range(1000))
            fh.write(chunk)
            size += len(chunk)
            i += 1000
    return i


def timed_start(template: Path, data_dir: Path, crashed: bool) -> float:
    """Start the store on a fresh copy of ``template`` (a store may rewrite its AOF)."""
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(template, data_dir)
    store = EmbeddedStore(data_dir)
    if crashed:
        store.dir.mkdir(parents=True, exist_ok=True)
        store.pidfile.write_text("999999999\n")  # no such process: a killed store's pid
    t0 = time.perf_counter()
    store.start(timeout=600)
    took = time.perf_counter() - t0
    store.stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the AOF file")
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="aof-tail-"))
    try:
        template = base / "template"
        blocks = write_aof(template, opts.mb)
        path = aof_tail.last_incremental(template / "store")
        assert path is not None
        size = path.stat().st_size
        runs: dict[str, list[float]] = {"clean": [], "after crash": []}
        for _ in range(opts.rounds):
            for mode in runs:
                runs[mode].append(timed_start(template, base / "run", mode == "after crash"))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = {
        mode: {"median_s": round(statistics.median(t), 2), "runs_s": [round(x, 2) for x in t]}
        for mode, t in runs.items()
    }
    extra = rows["after crash"]["median_s"] - rows["clean"]["median_s"]
    report = {
        "aof_bytes": size,
        "blocks": blocks,
        "rounds": opts.rounds,
        "start": rows,
        "mend_s": round(extra, 2),
        "mend_mb_per_s": round(size / 1e6 / extra, 1) if extra > 0 else None,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for mode, row in rows.items():
        print(f"{mode:12} start {row['median_s']:6.2f} s  (runs {row['runs_s']})")
    print(f"AOF {size / 1e6:.0f} MB, {blocks} blocks; the mend adds {extra:.2f} s")


if __name__ == "__main__":
    main()
