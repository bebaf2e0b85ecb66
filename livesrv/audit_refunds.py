"""The audit of refunds, chargebacks and minors (docs/economy.md, invariants 10 and 11).

:func:`gather` reads what the checks need beyond :mod:`livesrv.audit`'s data (the receipt
reversal records, and each flagged minor's window of spends); the checks are sans-I/O.
A refund is a chain of two single-slot steps (the receipt's reversal record in the receipt
id's shard, then the buyer's debit in the buyer's shard), so :func:`check_refunds` names
each half-done refund like the other lost-write checks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import orjson

from .store.facade import Backend
from .store.keys import REVERSALS_MATCH, UserKeys

NAMED_MAX = 50


def reversal_id_of(key: str) -> str | None:
    """The receipt id of a reversal record's key (``ls:{sN}:rrev:ID``); None otherwise."""
    tag, _, rest = key.partition("}")
    if not (tag.startswith("ls:{s") and tag[5:].isdigit() and rest.startswith(":rrev:")):
        return None
    return rest[len(":rrev:") :]


async def gather(b: Backend, wallets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every receipt reversal record, and each minor's spends of their refund window."""
    found = [k async for k in b.redis.scan_iter(match=REVERSALS_MATCH, count=1000)]
    keys = sorted({k for k in found if reversal_id_of(k) is not None})
    reversals: dict[str, dict[str, str]] = {}
    for at in range(0, len(keys), 1000):
        part = keys[at : at + 1000]
        pipe = b.redis.pipeline(transaction=False)
        for key in part:
            pipe.hgetall(key)
        for key, rec in zip(part, await pipe.execute(), strict=True):
            if rec:
                reversals[str(reversal_id_of(key))] = rec
    minors: dict[str, dict[str, Any]] = {}
    for user, w in wallets.items():
        if w.get("minor"):
            ids = await b.redis.zrangebyscore(
                UserKeys.of(user, b.settings.shards).spends, int(w["minor_from"]), "+inf"
            )
            minors[user] = {"since": int(w["minor"]), "from": int(w["minor_from"]), "ids": ids}
    return {"reversals": reversals, "minors": minors}


def coins_back(d: dict[str, Any]) -> tuple[int, int]:
    """(coins refunded or charged back from buyers, coins of spends reversed to payers)."""
    refunded = sum(int(e["coins"]) for e in d["ledger"] if e["t"] == "refund")
    reversed_ = sum(int(e["coins"]) for e in d["ledger"] if e["t"] == "reverse")
    return refunded, reversed_


def unexplained_negatives(d: dict[str, Any]) -> list[str]:
    """Balances below zero that refunds and clawbacks do not explain.

    A coin balance may be as low as minus the coins refunded from that user; available
    diamonds as low as minus the diamonds clawed back from that user; pending never.
    """
    refunded: Counter[str] = Counter()
    clawed: Counter[str] = Counter()
    for e in d["ledger"]:
        if e["t"] == "refund":
            refunded[e["user"]] += int(e["coins"])
        elif e["t"] == "settle" and int(e["diamonds"]) < 0:
            clawed[e["user"]] -= int(e["diamonds"])
    bad = []
    for u, w in d["wallets"].items():
        floors = {"coins": -refunded[u], "diamonds": -clawed[u], "pending": 0}
        bad += [f"{u}.{f}={w.get(f)}" for f, low in floors.items() if int(w.get(f) or 0) < low]
    return bad


def check_refunds(d: dict[str, Any]) -> dict[str, Any]:
    """Every refund is whole, and no clawback takes more than a spend paid.

    - each receipt reversal record (receipt id's shard) has its debit (ledger ``refund``,
      buyer's shard) of the record's coins, and each debit keeps its record;
    - a receipt is reversed once, a spend is reversed once;
    - per spend, the coins clawed back (clawback outbox entries) are at most its coins,
      and exactly its coins once reversed; a clawback names a spend of its payer;
    - per refund, its clawbacks add up to at most its shortfall;
    - a flagged minor's spends of the refund window that earned anybody are all reversed.
    """
    debits: dict[str, list[dict[str, str]]] = defaultdict(list)
    for e in d["ledger"]:
        if e["t"] == "refund":
            debits[e["ref"]].append(e)
    reversals = d.get("reversals", {})
    undebited = [
        {"receipt": rid, "user": r.get("user"), "kind": r.get("kind"), "coins": r.get("coins")}
        for rid, r in sorted(reversals.items())
        if not any(e["user"] == r.get("user") for e in debits.get(rid, []))
    ]
    unmarked = [
        {"receipt": rid, "user": e["user"], "kind": e["kind"], "coins": int(e["coins"])}
        for rid, es in sorted(debits.items())
        for e in es
        if rid not in reversals or int(reversals[rid].get("coins") or 0) != int(e["coins"])
    ]
    twice = [f"receipt {rid}" for rid, es in debits.items() if len(es) > 1]
    reversed_ = Counter(e["of"] for e in d["ledger"] if e["t"] == "reverse")
    twice += [f"spend {of}" for of, n in reversed_.items() if n > 1]
    spends = {i: f for _, i, f in d["outbox"] if f["kind"] != "clawback"}
    clawed: Counter[str] = Counter()
    by_refund: Counter[str] = Counter()
    over: list[dict[str, Any]] = []
    for _, i, f in d["outbox"]:
        if f["kind"] != "clawback":
            continue
        of = orjson.loads(f["p"])["of"]
        clawed[of] += -int(f["coins"])
        if f["key"].startswith("refund:"):
            by_refund[f["key"][len("refund:") :]] += -int(f["coins"])
        paid = spends.get(of)
        if paid is None or paid["user"] != f["user"]:
            over.append({"clawback": i, "of": of, "user": f["user"], "spend": "gone"})
    for of, n in clawed.items():
        paid = spends.get(of)
        due = int(paid["coins"]) if paid else 0
        if paid is not None and (n > due or (of in reversed_ and n != due)):
            over.append({"spend": of, "user": paid["user"], "coins": due, "clawed": n})
    for rid, es in debits.items():
        if by_refund[rid] > sum(int(e.get("shortfall") or 0) for e in es):
            over.append({"receipt": rid, "clawed": by_refund[rid], "shortfall": "less"})
    unreversed = [
        {"minor": u, "spend": i, "coins": int(spends[i]["coins"])}
        for u, m in sorted(d.get("minors", {}).items())
        for i in m["ids"]
        if i in spends and orjson.loads(spends[i]["p"]).get("e") and i not in reversed_
    ]
    return {
        "name": "refunds_whole",
        "ok": not (undebited or unmarked or twice or over or unreversed),
        "receipts_reversed": len(reversals),
        "coins_refunded": sum(int(e["coins"]) for es in debits.values() for e in es),
        "coins_clawed": sum(clawed.values()),
        "diamonds_clawed": -sum(
            min(0, int(e["diamonds"])) for e in d["ledger"] if e["t"] == "settle"
        ),
        "spends_reversed": len(reversed_),
        "minors": len(d.get("minors", {})),
        "reversed_not_debited": undebited[:NAMED_MAX],
        "debited_not_reversed": unmarked[:NAMED_MAX],
        "duplicates": twice[:NAMED_MAX],
        "clawback_mismatches": over[:NAMED_MAX],
        "minor_spends_not_reversed": unreversed[:NAMED_MAX],
    }
