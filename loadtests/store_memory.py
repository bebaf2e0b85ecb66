"""What a gift leaves in the store: bytes per gift, and which keys hold them for how long.

Usage::

    python -m loadtests.store_memory                 # 40,000 gifts, about 30 s
    python -m loadtests.store_memory --gifts 80000 --out DIR

Starts ``livesrv serve`` with its embedded store, opens 16 rooms, and has 64 gifters send
``--gifts`` keyed gifts (each key new) over WebSockets until every one is settled. The
store's ``used_memory`` is read before and after (``MEMORY PURGE`` first), and
``MEMORY USAGE`` of every key, grouped by kind, says where the bytes went and how long
each kind stays (``LIFETIMES``, from docs/economy.md and docs/design.md).

Results: ``store_memory.json`` in ``--out`` (default ``loadtests/results``) and a table on
stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from livesrv.client import Client
from loadtests import servers
from loadtests.bench.gifts import store_url

ROOMS = 16
GIFTERS = 64
LIMITS = {  # policy, not capacity: the harness lifts them (README, "Load tests")
    "LIVESRV_OPS_PER_SECOND": "1000000",
    "LIVESRV_OPS_BURST": "1000000",
    "LIVESRV_DAY_LIMIT": "1000000000",
}
# key kind -> (a pattern of its keys, how long it is kept)
KINDS: dict[str, tuple[str, str]] = {
    "outbox": ("ls:{s*}:outbox", "for good"),
    "ledger": ("ls:{s*}:ledger", "for good"),
    "spends index": ("ls:{s*}:sx:*", "for good"),
    "idempotency records": ("ls:{s*}:idem:*", "the idempotency TTL"),
    "room event ids": ("ls:{r:*}:ev:*", "the idempotency TTL"),
    "spend windows": ("ls:{s*}:day:*", "24 h"),
    "holds": ("ls:{s*}:holds:*", "the hold period"),
    "room logs": ("ls:{r:*}:log", f"{ROOMS} logs, each capped at LIVESRV_LOG_MAXLEN events"),
}


async def _settled(r: aredis.Redis, timeout: float = 60.0) -> None:
    """Wait until the settlement worker has read and acknowledged every outbox entry."""
    outboxes = [key async for key in r.scan_iter(match=KINDS["outbox"][0], count=1000)]
    deadline = time.monotonic() + timeout
    while True:
        waiting = 0
        for outbox in outboxes:
            for group in await r.xinfo_groups(outbox):
                waiting += int(group.get("lag") or 0) + int(group["pending"])
        if waiting == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the outbox was not settled in time")
        await asyncio.sleep(0.2)


async def _used_memory(r: aredis.Redis) -> int:
    await r.execute_command("MEMORY", "PURGE")
    return int((await r.info("memory"))["used_memory"])


async def _by_kind(r: aredis.Redis) -> dict[str, dict[str, int]]:
    out = {}
    for kind, (pattern, _) in KINDS.items():
        keys = size = 0
        async for key in r.scan_iter(match=pattern, count=1000):
            keys += 1
            size += int(await r.memory_usage(key, samples=0) or 0)
        out[kind] = {"keys": keys, "bytes": size}
    return out


async def measure(server: servers.Livesrv, gifts: int) -> dict[str, Any]:
    r = aredis.Redis.from_url(store_url(server), decode_responses=True)
    try:
        token = {}
        for name, role in [(f"smc{j}", "creator") for j in range(ROOMS)] + [
            (f"smg{i}", "viewer") for i in range(GIFTERS)
        ]:
            token[name] = server.api("POST", "/api/tokens", {"user": name, "role": role})["token"]
        for i in range(GIFTERS):
            grant = {"coins": 10**9, "key": f"sm{i}", "reason": "bench"}
            server.api("POST", f"/api/users/smg{i}/grant", grant)
        creators = []
        for j in range(ROOMS):
            creators.append(await Client.connect(server.ws_url, token[f"smc{j}"]))
            await creators[-1].call("room_open", room=f"smr{j}", title="store memory")
        gifters = []
        for i in range(GIFTERS):
            gifters.append(await Client.connect(server.ws_url, token[f"smg{i}"]))
            await gifters[-1].call("join", room=f"smr{i % ROOMS}")
        await _settled(r)  # the grants
        before, keys_before = await _used_memory(r), await r.dbsize()
        each = gifts // GIFTERS

        async def send(i: int, gifter: Client) -> None:
            for n in range(each):
                room = f"smr{i % ROOMS}"
                await gifter.call("gift", room=room, gift="rose", count=1, key=f"k{n}")

        t0 = time.monotonic()
        await asyncio.gather(*(send(i, gifter) for i, gifter in enumerate(gifters)))
        seconds = time.monotonic() - t0
        await _settled(r)
        after, keys_after = await _used_memory(r), await r.dbsize()
        by_kind = await _by_kind(r)
        for client in creators + gifters:
            await client.close()
    finally:
        await r.aclose()
    sent = each * GIFTERS
    return {
        "gifts": sent,
        "seconds": round(seconds, 1),
        "used_memory_before": before,
        "used_memory_after": after,
        "bytes_per_gift": round((after - before) / sent),
        "keys_before": keys_before,
        "keys_after": keys_after,
        "by_kind": {
            kind: {
                **v,
                "bytes_per_gift": round(v["bytes"] / sent),
                "kept": KINDS[kind][1],
            }
            for kind, v in by_kind.items()
        },
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['gifts']:,} gifts: {result['bytes_per_gift']:,} B of store memory per gift",
        "",
        "| keys | how many | bytes per gift | kept |",
        "| --- | ---: | ---: | --- |",
    ]
    for kind, v in result["by_kind"].items():
        lines.append(f"| {kind} | {v['keys']:,} | {v['bytes_per_gift']:,} | {v['kept']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gifts", type=int, default=40_000, help="gifts to send (default 40000)")
    ap.add_argument("--out", type=Path, default=servers.REPO / "loadtests" / "results")
    args = ap.parse_args()
    if args.gifts < GIFTERS:
        ap.error(f"--gifts must be at least {GIFTERS}")
    with tempfile.TemporaryDirectory(prefix="livesrv-store-memory-") as tmp:
        server = servers.start_livesrv(Path(tmp) / "main", env=LIMITS)
        try:
            result = asyncio.run(measure(server, args.gifts))
        finally:
            server.stop()
    result["machine"] = {"python": platform.python_version(), "system": platform.platform()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
