"""The ledger invariants of docs/economy.md, recomputed from the store.

Each check reports its figures, not just pass or fail. The ledger and outbox streams are
append-only and kept whole, so every figure can be recomputed from them.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from typing import Any

import orjson

from .errors import BadRequest
from .paging import all_names, decode_cursor, encode_cursor
from .settlement import GROUP, credits_for, diamonds_for
from .store.facade import Backend, store_errors
from .store.keys import PRODUCT_INDEX, ProductKeys, ShardKeys, UserKeys

ORDERS_SCAN = 2000  # outbox entries one page of all_orders reads at most
STREAM_ID = re.compile(r"^[0-9]{1,19}-[0-9]{1,19}$")


async def _stream(b: Backend, key: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        rows = await b.redis.xrange(key, min=start, max="+", count=5000)
        out.extend(rows)
        if len(rows) < 5000:
            return out
        ms, seq = rows[-1][0].split("-")
        start = f"{ms}-{int(seq) + 1}"


async def _gather(b: Backend) -> dict[str, Any]:
    """Read everything the checks need. Every read names one key (or one shard's keys),
    so on a cluster each goes to the master owning it: every master is read."""
    shards = await asyncio.gather(*(_gather_shard(b, s) for s in b.all_shards()))
    wallets: dict[str, dict[str, Any]] = {}
    ledger: list[dict[str, str]] = []
    outbox: list[tuple[int, str, dict[str, str]]] = []
    applied: set[str] = set()
    backlog = 0
    for part in shards:
        wallets.update(part["wallets"])
        ledger.extend(part["ledger"])
        outbox.extend(part["outbox"])
        applied |= part["applied"]
        backlog += part["backlog"]
    names = await all_names(b, PRODUCT_INDEX)
    pipe = b.redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(ProductKeys(name).meta)
    products = [p for p in (await pipe.execute() if names else []) if p]
    return {
        "wallets": wallets,
        "ledger": ledger,
        "outbox": outbox,
        "applied": applied,
        "backlog": backlog,
        "products": products,
    }


async def _gather_shard(b: Backend, s: ShardKeys) -> dict[str, Any]:
    """One user shard's wallets, streams, applied refs and settlement backlog (one slot)."""
    users = sorted(await b.redis.smembers(s.wallets))
    pipe = b.redis.pipeline(transaction=False)
    for u in users:
        pipe.hgetall(UserKeys.of(u, b.settings.shards).wallet)
    wallets = dict(zip(users, await pipe.execute() if users else [], strict=True))
    ledger = [f for _, f in await _stream(b, s.ledger)]
    outbox = [(s.shard, i, f) for i, f in await _stream(b, s.outbox)]
    applied = await b.redis.smembers(s.applied)
    backlog = 0
    if await b.redis.exists(s.outbox):
        for g in await b.redis.xinfo_groups(s.outbox):
            if g["name"] == GROUP:
                backlog += int(g.get("lag") or 0) + int(g.get("pending") or 0)
    return {
        "wallets": wallets,
        "ledger": ledger,
        "outbox": outbox,
        "applied": applied,
        "backlog": backlog,
    }


def _int(raw: dict[str, Any], name: str) -> int:
    return int(raw.get(name) or 0)


def check_coins(d: dict[str, Any]) -> dict[str, Any]:
    credited = sum(int(e["coins"]) for e in d["ledger"] if e["t"] == "credit")
    spent = sum(int(e["coins"]) for e in d["ledger"] if e["t"] == "spend")
    held = sum(_int(w, "coins") for w in d["wallets"].values())
    by_kind = Counter[str]()
    for e in d["ledger"]:
        if e["t"] in ("credit", "spend"):
            by_kind[f"{e['t']}:{e['kind']}"] += int(e["coins"])
    return {
        "name": "coins_conserved",
        "ok": credited == held + spent,
        "credited": credited,
        "held": held,
        "spent": spent,
        "by_kind": dict(by_kind),
    }


def check_negative(d: dict[str, Any]) -> dict[str, Any]:
    bad = [
        f"{u}.{f}"
        for u, w in d["wallets"].items()
        for f in ("coins", "diamonds", "pending")
        if _int(w, f) < 0
    ]
    bad += [f"product {p['product']}.stock" for p in d["products"] if _int(p, "stock") < 0]
    return {
        "name": "nothing_negative",
        "ok": not bad,
        "wallets": len(d["wallets"]),
        "products": len(d["products"]),
        "negative": bad,
    }


def check_settled(d: dict[str, Any]) -> dict[str, Any]:
    refs = [c.ref for shard, i, f in d["outbox"] for c in credits_for(shard, i, f)]
    missing = [r for r in refs if r not in d["applied"]]
    extra = len(d["applied"]) - (len(refs) - len(missing))
    return {
        "name": "settled_exactly_once",
        "ok": not missing and extra == 0 and d["backlog"] == 0,
        "outbox_entries": len(d["outbox"]),
        "credits_owed": len(refs),
        "credits_applied": len(d["applied"]),
        "unsettled": len(missing),
        "unknown_applied": extra,
        "backlog": d["backlog"],
    }


def check_diamonds(d: dict[str, Any]) -> dict[str, Any]:
    earned: dict[str, Counter[str]] = defaultdict(Counter)
    bps_of: dict[str, int] = {}
    for shard, i, f in d["outbox"]:
        for c in credits_for(shard, i, f):
            if c.ref in d["applied"]:
                earned[c.earner][c.kind] += c.coins
                bps_of[c.kind] = c.bps
    wrong = []
    total = 0
    for user, w in d["wallets"].items():
        expect = sum(
            diamonds_for(coins, bps_of[k]) for k, coins in earned.get(user, Counter()).items()
        )
        credited = _int(w, "credited")
        held = _int(w, "pending") + _int(w, "diamonds") + _int(w, "withdrawn")
        total += credited
        if expect != credited or credited != held:
            wrong.append(
                {
                    "user": user,
                    "expected": expect,
                    "credited": credited,
                    "pending+available+withdrawn": held,
                }
            )
    return {
        "name": "diamonds_accounted",
        "ok": not wrong,
        "earners": len(earned),
        "diamonds_credited": total,
        "mismatches": wrong[:20],
    }


def check_idempotency(d: dict[str, Any]) -> dict[str, Any]:
    """Each key generation (user, key, expiry ``x``) moves once: a key reused after its
    record expired is a new generation, so it may move again."""
    moves = Counter[tuple[str, str, str, str]]()
    receipts = Counter[str]()
    for e in d["ledger"]:
        if e["t"] in ("spend", "credit", "withdraw"):
            moves[(e["t"], e["user"], e["key"], e.get("x", ""))] += 1
        if e["t"] == "credit" and e["kind"] == "purchase":
            receipts[e["ref"]] += 1
    twice = [f"{t} {u} {k}" for (t, u, k, _), n in moves.items() if n > 1]
    twice += [f"receipt {r}" for r, n in receipts.items() if n > 1]
    return {
        "name": "idempotency",
        "ok": not twice,
        "keyed_movements": len(moves),
        "receipts": len(receipts),
        "duplicates": twice[:20],
    }


def check_stock(d: dict[str, Any]) -> dict[str, Any]:
    sold_by = Counter[str]()
    for _, _, f in d["outbox"]:
        if f["kind"] == "shop":
            p = orjson.loads(f["p"])
            sold_by[p["product"]] += int(p["qty"])
    wrong = []
    for p in d["products"]:
        stocked, left = _int(p, "stocked"), _int(p, "stock")
        sold, reserved = _int(p, "sold"), _int(p, "reserved")
        paid = sold_by[p["product"]]
        # every paid unit is sold or still reserved (being finished); nothing sold is unpaid
        if stocked != left + sold + reserved or not sold <= paid <= sold + reserved:
            wrong.append(
                {
                    "product": p["product"],
                    "stocked": stocked,
                    "left": left,
                    "sold": sold,
                    "reserved": reserved,
                    "paid": sold_by[p["product"]],
                }
            )
    return {
        "name": "stock_conserved",
        "ok": not wrong,
        "products": len(d["products"]),
        "units_sold": sum(_int(p, "sold") for p in d["products"]),
        "units_reserved": sum(_int(p, "reserved") for p in d["products"]),
        "mismatches": wrong[:20],
    }


CHECKS = (
    check_coins,
    check_negative,
    check_settled,
    check_diamonds,
    check_idempotency,
    check_stock,
)


async def run(b: Backend, *, attempts: int = 20, pause: float = 0.25) -> dict[str, Any]:
    """Run every check. On a live system a movement can be caught half-way (debited, not
    yet settled), so a failing report is taken again a few times before it stands."""
    report: dict[str, Any] = {}
    async with store_errors():
        await b.ready()
    for attempt in range(attempts):
        async with store_errors():
            data = await _gather(b)
        checks = [c(data) for c in CHECKS]
        report = {"ok": all(c["ok"] for c in checks), "checks": checks}
        if report["ok"] or attempt == attempts - 1:
            break
        await asyncio.sleep(pause)
    return report


async def all_orders(b: Backend, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of every order (shard by shard, oldest first), read from the outboxes.

    A page reads at most :data:`ORDERS_SCAN` outbox entries, so it may hold fewer than
    ``limit`` orders (even none) while ``next`` is not None.

    Returns:
        ``{"orders": [...], "next": cursor or None}``.

    Raises:
        BadRequest: A cursor this listing did not give out.
    """
    pos = decode_cursor("all_orders", cursor, int, str)
    shard, after = (pos[0], pos[1]) if pos else (0, "")
    if not 0 <= shard < b.settings.shards or (after and not STREAM_ID.fullmatch(after)):
        raise BadRequest("cursor is not one this listing gave out")
    orders: list[dict[str, Any]] = []
    budget = ORDERS_SCAN
    while shard < b.settings.shards:
        async with store_errors():
            rows = await b.redis.xrange(
                b.shard(shard).outbox, min=f"({after}" if after else "-", max="+", count=limit
            )
        for entry, f in rows:
            after = entry
            budget -= 1
            if f["kind"] == "shop":
                orders.append(_order(f))
            if len(orders) == limit or budget <= 0:
                return {"orders": orders, "next": encode_cursor("all_orders", shard, after)}
        if len(rows) < limit:
            shard, after = shard + 1, ""
    return {"orders": orders, "next": None}


def _order(f: dict[str, str]) -> dict[str, Any]:
    p = orjson.loads(f["p"])
    return {
        "order": p["order"],
        "user": f["user"],
        "product": p["product"],
        "qty": p["qty"],
        "coins": int(f["coins"]),
        "room": p["room"],
    }


def render(report: dict[str, Any]) -> str:
    """The report as text, one check per line with its figures."""
    lines = []
    for c in report["checks"]:
        figures = ", ".join(f"{k}={v}" for k, v in c.items() if k not in ("name", "ok"))
        lines.append(f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {figures}")
    lines.append("audit: " + ("all invariants hold" if report["ok"] else "VIOLATIONS FOUND"))
    return "\n".join(lines)
