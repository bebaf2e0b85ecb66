"""What a Lua script costs the store before its commands: the scripting engine's own time.

Usage::

    python -m loadtests.script_overhead            # about 10 s
    python -m loadtests.script_overhead --calls 50000 --out DIR

Starts one plain valkey-server from the embedded binary (AOF everysec, as serve's store)
and runs each script below ``--calls`` times with the argument shape of ``gift.lua`` (18
keys, 60 arguments), pipelined from one client, then reads the store's own microseconds per
``EVALSHA`` from ``INFO commandstats``. The rows separate the call itself, splitting the
keys and arguments into tables as ``gift.lua`` does, a batch of reads and a batch of writes
through ``redis.call`` (so their cost per call), and defining local functions.

Results: ``script_overhead.json`` in ``--out`` (default ``loadtests/results``) and a
table on stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtests.bench.stores import standalone_store

KEYS = [f"{{s}}:k{i}" for i in range(18)]
ARGS = [f"argument-{i}-0123456789abcdef" for i in range(60)]
CALLS_IN_BATCH = 36  # about as many as gift.lua makes

SCRIPTS = {
    "empty": "return 1",
    "split keys and arguments into tables": """
local sk, sa, ek, ea = {}, {}, {}, {}
for i = 1, #KEYS do if i <= 8 then sk[i] = KEYS[i] else ek[i - 8] = KEYS[i] end end
for i = 1, #ARGV do if i <= 16 then sa[i] = ARGV[i] else ea[i - 16] = ARGV[i] end end
return 1""",
    f"{CALLS_IN_BATCH} GETs of a missing key": (
        f"for i = 1, {CALLS_IN_BATCH} do redis.call('GET', '{{s}}:missing') end return 1"
    ),
    f"{CALLS_IN_BATCH} HGETs": (
        f"for i = 1, {CALLS_IN_BATCH} do redis.call('HGET', '{{s}}:h', 'f') end return 1"
    ),
    f"{CALLS_IN_BATCH} INCRs (writes)": (
        f"for i = 1, {CALLS_IN_BATCH} do redis.call('INCR', '{{s}}:n') end return 1"
    ),
    "8 local functions defined": "\n".join(
        [f"local function f{i}(x) return x end" for i in range(8)] + ["return 1"]
    ),
}


def measure(url: str, calls: int) -> dict[str, float]:
    """Microseconds per EVALSHA, as the store counts them, for each script."""
    import redis

    client = redis.Redis.from_url(url)
    out = {}
    try:
        client.hset("{s}:h", "f", "1")
        for name, source in SCRIPTS.items():
            sha = client.script_load(source)
            client.config_resetstat()
            pipe = client.pipeline(transaction=False)
            for i in range(calls):
                pipe.evalsha(sha, len(KEYS), *KEYS, *ARGS)
                if i % 100 == 99:
                    pipe.execute()
            pipe.execute()
            stats = client.info("commandstats")["cmdstat_evalsha"]
            out[name] = round(float(stats["usec_per_call"]), 2)
    finally:
        client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per script")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with (
        tempfile.TemporaryDirectory(prefix="livesrv-script-overhead-") as tmp,
        standalone_store(Path(tmp)) as (urls, _pids),
    ):
        usec = measure(urls[0], args.calls)
    empty = usec["empty"]
    result: dict[str, Any] = {
        "started": started,
        "machine": platform.processor() or platform.machine(),
        "calls_per_script": args.calls,
        "keys": len(KEYS),
        "arguments": len(ARGS),
        "usec_per_evalsha": usec,
        "usec_beyond_empty": {k: round(v - empty, 2) for k, v in usec.items() if k != "empty"},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "script_overhead.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"| script ({len(KEYS)} keys, {len(ARGS)} arguments) | us per call | beyond empty |")
    print("| --- | ---: | ---: |")
    for name, value in usec.items():
        print(f"| {name} | {value:.2f} | {value - empty:.2f} |")
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
