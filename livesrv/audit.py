"""The ledger invariants of docs/economy.md, recomputed from the store.

Each check reports its figures, not just pass or fail, and names every movement that
breaks its invariant (the checks are in :mod:`livesrv.audit_checks`). The ledger and
outbox streams are append-only and kept whole, so every figure can be recomputed from them.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson

from . import audit_refunds, audit_subs
from .audit_checks import CHECKS, LABELS
from .errors import BadRequest
from .services import series, treasure
from .services.paging import all_names, decode_cursor, encode_cursor
from .services.shop import order_id
from .settlement import GROUP
from .store.facade import Backend, now_ms, store_errors
from .store.keys import (
    PRODUCT_INDEX,
    RECEIPTS_MATCH,
    ProductKeys,
    ShardKeys,
    UserKeys,
    receipt_id_of,
)

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
    or scans every master, so on a cluster every master is read.

    The user shards (ledger, outbox) are read before the receipt claims and products, so
    a coin purchase caught half-way on a live system looks claimed but not yet credited,
    never credited without its claim. (Whatever is caught half-way fails a check for a
    moment: :func:`run` reads again before a failure stands.)
    """
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
    claims = await _gather_claims(b)
    products, reservations = await _gather_products(b)
    boxes = await treasure.states(b, treasure.dropped(outbox))  # -- treasure box --
    access = await series.access_records(b, sorted(wallets))  # -- series --
    refunds = await audit_refunds.gather(b, wallets)  # -- refunds and minors --
    sub_records = await audit_subs.records(b)  # -- subscription tiers, gifted subs --
    return {
        **refunds,
        "now": now_ms(),  # after the reservations were read: any gone by then had ended
        "wallets": wallets,
        "ledger": ledger,
        "outbox": outbox,
        "applied": applied,
        "backlog": backlog,
        "products": products,
        "reservations": reservations,
        "claims": claims,
        "boxes": boxes,
        "series_access": access,
        "sub_records": sub_records,
    }


async def _gather_claims(b: Backend) -> dict[str, dict[str, Any]]:
    """Every receipt claim record (kept forever), by receipt id: claimant and package."""
    found = [k async for k in b.redis.scan_iter(match=RECEIPTS_MATCH, count=1000)]
    keys = sorted({k for k in found if receipt_id_of(k) is not None})  # SCAN may repeat one
    claims: dict[str, dict[str, Any]] = {}
    for at in range(0, len(keys), 1000):
        part = keys[at : at + 1000]
        pipe = b.redis.pipeline(transaction=False)
        for key in part:
            pipe.get(key)
        for key, owner in zip(part, await pipe.execute(), strict=True):
            if owner is None:
                continue
            user, _, package = owner.partition("|")
            pkg = b.catalog.packages.get(package)
            claims[str(receipt_id_of(key))] = {
                "user": user,
                "package": package,
                "coins": pkg.coins if pkg else 0,
            }
    return claims


async def _gather_products(
    b: Backend,
) -> tuple[list[dict[str, str]], dict[str, dict[str, dict[str, Any]]]]:
    """Every product record, and each product's reservations by ``user|key`` (with the
    order id their purchase has)."""
    names = await all_names(b, PRODUCT_INDEX)
    pipe = b.redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(ProductKeys(name).meta)
        pipe.hgetall(ProductKeys(name).reservations)
    rows = await pipe.execute() if names else []
    products = []
    reservations: dict[str, dict[str, dict[str, Any]]] = {}
    for name, meta, held in zip(names, rows[::2], rows[1::2], strict=True):
        if not meta:
            continue
        products.append(meta)
        reservations[name] = {}
        for ref, raw in held.items():
            r = orjson.loads(raw)
            user, _, key = ref.partition("|")
            x = int(r.get("x") or 0)
            reservations[name][ref] = {
                "s": r.get("s"),
                "q": int(r.get("q") or 0),
                "x": x,
                "order": order_id(b, user, key, x),
            }
    return products, reservations


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
    if outbox:
        groups = [g for g in await b.redis.xinfo_groups(s.outbox) if g["name"] == GROUP]
        for g in groups:
            backlog += int(g.get("lag") or 0) + int(g.get("pending") or 0)
        if not groups:  # no settlement worker ever read this outbox: all of it is to come
            backlog = len(outbox)
    return {
        "wallets": wallets,
        "ledger": ledger,
        "outbox": outbox,
        "applied": applied,
        "backlog": backlog,
    }


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
    """The report as text: one check per line with its figures, then, indented under it,
    one line per movement it names (what is wrong, then the movement's fields)."""
    lines = []
    for c in report["checks"]:
        named = {k: v for k, v in c.items() if isinstance(v, list)}
        figures = ", ".join(
            f"{k}={v}" for k, v in c.items() if k not in ("name", "ok") and k not in named
        )
        lines.append(f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {figures}")
        for field, items in named.items():
            lines += [f"      {LABELS.get(field, field)}: {_describe(x)}" for x in items]
    lines.append("audit: " + ("all invariants hold" if report["ok"] else "VIOLATIONS FOUND"))
    return "\n".join(lines)


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        return " ".join(f"{k}={v}" for k, v in item.items())
    return str(item)
