"""The audit's checks (sans-I/O): each takes what :mod:`livesrv.audit` read from the store
and returns its figures and, when its invariant is broken, the movements that break it.

A money movement that crosses hash slots is a chain of single-slot steps. On a cluster with
asynchronous replication a failover can lose the last steps one master applied while the
other masters keep theirs, so a chain can be left half done. Each kind of half-done chain
is named here, movement by movement (docs/economy.md, "When the store loses a write").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import orjson

from .audit_refunds import check_refunds, coins_back, unexplained_negatives
from .audit_subs import LABELS as SUB_LABELS
from .audit_subs import check_subs
from .settlement_credits import credits_for, diamonds_for

NAMED_MAX = 50
"""Named movements one list of a check holds at most; the check's count is exact."""
SKEW_MS = 2_000
"""A paid order's reservation is only missed while its key generation has more than this
left: past its end the store drops finished reservations (by its own clock)."""

LABELS = {
    "unsettled_credits": "owed, never credited",
    "credits_without_debit": "credited, its debit is gone",
    "mismatches": "mismatch",
    "negative": "negative",
    "duplicates": "moved twice",
    "paid_not_sold": "paid, not sold",
    "sold_not_paid": "sold, not paid",
    "claimed_not_credited": "receipt claimed, its coins never credited",
    "credited_not_claimed": "coins credited, the receipt's claim is gone",
    "box_mismatches": "treasure box credited other than its coins",  # -- treasure box --
    "box_credits_without_debit": "treasure box credit, its debit is gone",
    "paid_without_access": "series paid, no access record",  # -- series --
    "access_without_sale": "series access, its sale is gone",
    "reversed_not_debited": "receipt reversed, its coins never taken back",  # -- refunds --
    "debited_not_reversed": "coins taken back, the receipt's reversal record is gone or other",
    "clawback_mismatches": "clawback other than its spend",
    "minor_spends_not_reversed": "minor's spend not reversed",
}
"""How :func:`livesrv.audit.render` introduces each list of named movements."""


def _int(raw: dict[str, Any], name: str) -> int:
    return int(raw.get(name) or 0)


def check_coins(d: dict[str, Any]) -> dict[str, Any]:
    credited = sum(int(e["coins"]) for e in d["ledger"] if e["t"] == "credit")
    spent = sum(int(e["coins"]) for e in d["ledger"] if e["t"] == "spend")
    held = sum(_int(w, "coins") for w in d["wallets"].values())
    refunded, reversed_ = coins_back(d)  # -- refunds and minors (audit_refunds.py) --
    by_kind = Counter[str]()
    for e in d["ledger"]:
        if e["t"] in ("credit", "spend", "refund", "reverse"):
            by_kind[f"{e['t']}:{e['kind']}"] += int(e["coins"])
    return {
        "name": "coins_conserved",
        "ok": credited - refunded == held + spent - reversed_,
        "credited": credited,
        "held": held,
        "spent": spent,
        "refunded": refunded,
        "reversed": reversed_,
        "by_kind": dict(by_kind),
    }


def check_negative(d: dict[str, Any]) -> dict[str, Any]:
    bad = unexplained_negatives(d)  # below zero only as far as refunds and clawbacks explain
    bad += [f"product {p['product']}.stock" for p in d["products"] if _int(p, "stock") < 0]
    return {
        "name": "nothing_negative",
        "ok": not bad,
        "wallets": len(d["wallets"]),
        "products": len(d["products"]),
        "negative": bad,
    }


def check_settled(d: dict[str, Any]) -> dict[str, Any]:
    """Every outbox entry's credits applied once; nothing applied that no entry owes.

    An applied ref no outbox entry owes is a credit whose debit was lost (the payer's
    master lost the spend, the earner's kept the credit). An owed ref never applied, with
    nothing left to deliver, is a credit the earner's master lost after the entry was
    acknowledged.
    """
    owed: dict[str, tuple[dict[str, str], Any]] = {}
    for shard, i, f in d["outbox"]:
        for c in credits_for(shard, i, f):
            owed[c.ref] = (f, c)
    unsettled = [
        {
            "ref": ref,
            "payer": f["user"],
            "key": f["key"],
            "kind": f["kind"],
            "earner": c.earner,
            "coins": c.coins,
        }
        for ref, (f, c) in owed.items()
        if ref not in d["applied"]
    ]
    settles = {e["ref"]: e for e in d["ledger"] if e["t"] == "settle"}
    unknown = []
    for ref in sorted(d["applied"] - owed.keys()):
        e = settles.get(ref, {})
        unknown.append(
            {
                "ref": ref,
                "earner": e.get("user", "?"),
                "kind": e.get("kind", "?"),
                "coins": _int(e, "coins"),
                "diamonds": _int(e, "diamonds"),
            }
        )
    return {
        "name": "settled_exactly_once",
        "ok": not unsettled and not unknown and d["backlog"] == 0,
        "outbox_entries": len(d["outbox"]),
        "credits_owed": len(owed),
        "credits_applied": len(d["applied"]),
        "unsettled": len(unsettled),
        "unknown_applied": len(unknown),
        "backlog": d["backlog"],
        "unsettled_credits": unsettled[:NAMED_MAX],
        "credits_without_debit": unknown[:NAMED_MAX],
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


def _paid_orders(d: dict[str, Any]) -> tuple[Counter[str], dict[str, dict[tuple[str, int], Any]]]:
    """Units paid per product, and each paid order by product and (``user|key``, ``x``)."""
    units = Counter[str]()
    orders: dict[str, dict[tuple[str, int], Any]] = defaultdict(dict)
    for _, _, f in d["outbox"]:
        if f["kind"] == "shop":
            p = orjson.loads(f["p"])
            units[p["product"]] += int(p["qty"])
            if f.get("x"):  # the reservation is "user|key" of the key generation x
                orders[p["product"]][(f"{f['user']}|{f['key']}", int(f["x"]))] = {
                    "product": p["product"],
                    "order": p["order"],
                    "user": f["user"],
                    "key": f["key"],
                    "qty": int(p["qty"]),
                    "coins": int(f["coins"]),
                }
    return units, orders


def check_stock(d: dict[str, Any]) -> dict[str, Any]:
    """Stock adds up per product, and per order: every paid order's reservation is sold
    (or still held), every sold reservation was paid."""
    units, orders = _paid_orders(d)
    wrong = []
    unsold: list[dict[str, Any]] = []
    unpaid: list[dict[str, Any]] = []
    for p in d["products"]:
        name = p["product"]
        stocked, left = _int(p, "stocked"), _int(p, "stock")
        sold, reserved = _int(p, "sold"), _int(p, "reserved")
        paid = units[name]
        # every paid unit is sold or still reserved (being finished); nothing sold is unpaid
        if stocked != left + sold + reserved or not sold <= paid <= sold + reserved:
            wrong.append(
                {
                    "product": name,
                    "stocked": stocked,
                    "left": left,
                    "sold": sold,
                    "reserved": reserved,
                    "paid": paid,
                }
            )
        held = d["reservations"].get(name, {})
        for (ref, x), order in orders[name].items():
            r = held.get(ref)
            if r is not None and r["x"] == x:
                if r["s"] == "cancelled":
                    unsold.append({**order, "reservation": "cancelled"})
            elif x > d["now"] + SKEW_MS:  # a reservation of a live generation is never dropped
                unsold.append({**order, "reservation": "gone"})
        for ref, r in held.items():
            if r["s"] == "sold" and r["x"] and (ref, r["x"]) not in orders[name]:
                user, _, key = ref.partition("|")
                unpaid.append(
                    {"product": name, "order": r["order"], "user": user, "key": key, "qty": r["q"]}
                )
    return {
        "name": "stock_conserved",
        "ok": not wrong and not unsold and not unpaid,
        "products": len(d["products"]),
        "units_sold": sum(_int(p, "sold") for p in d["products"]),
        "units_reserved": sum(_int(p, "reserved") for p in d["products"]),
        "orders_paid_not_sold": len(unsold),
        "orders_sold_not_paid": len(unpaid),
        "mismatches": wrong[:20],
        "paid_not_sold": unsold[:NAMED_MAX],
        "sold_not_paid": unpaid[:NAMED_MAX],
    }


def check_receipts(d: dict[str, Any]) -> dict[str, Any]:
    """Every receipt claim has its purchase credit, to the claimant; every purchase credit
    keeps its claim (claims never expire: without one, the receipt id could credit again)."""
    credits: dict[str, list[dict[str, str]]] = defaultdict(list)
    for e in d["ledger"]:
        if e["t"] == "credit" and e["kind"] == "purchase":
            credits[e["ref"]].append(e)
    uncredited = [
        {"receipt": rid, "user": c["user"], "package": c["package"], "coins": c["coins"]}
        for rid, c in sorted(d["claims"].items())
        if not any(e["user"] == c["user"] for e in credits.get(rid, []))
    ]
    unclaimed = []
    for rid, entries in credits.items():
        claim = d["claims"].get(rid)
        for e in entries:
            if claim is None or claim["user"] != e["user"]:
                held = "gone" if claim is None else f"{claim['user']}|{claim['package']}"
                unclaimed.append(
                    {"receipt": rid, "user": e["user"], "coins": int(e["coins"]), "claim": held}
                )
    return {
        "name": "receipts_claimed",
        "ok": not uncredited and not unclaimed,
        "claims": len(d["claims"]),
        "purchases": sum(len(v) for v in credits.values()),
        "claims_uncredited": len(uncredited),
        "credits_unclaimed": len(unclaimed),
        "claimed_not_credited": uncredited[:NAMED_MAX],
        "credited_not_claimed": unclaimed[:NAMED_MAX],
    }


# -- paid pins and treasure boxes --

BOX_DONE = ("paid", None)
"""Box states whose coins must all be credited out (None: the record expired after the
box was paid, or the box was never placed)."""


def check_boxes(d: dict[str, Any]) -> dict[str, Any]:
    """Coins debited into treasure boxes = coins credited out of them + coins still held
    in boxes not paid out yet; per box, a paid box credited exactly its coins, an unpaid
    one no more than them, and no box credit without its debit. Paid pinned messages are
    spends like gifts (``coins_conserved``, ``by_kind`` ``spend:paid_chat``)."""
    debited: dict[str, dict[str, Any]] = {}
    for _, _, f in d["outbox"]:
        if f["kind"] == "box":
            p = orjson.loads(f["p"])
            debited[p["box"]] = {"box": p["box"], "room": p["room"], "dropper": f["user"]}
            debited[p["box"]]["coins"] = int(f["coins"])
    credited = Counter[str]()
    for e in d["ledger"]:
        if e["t"] == "credit" and e["kind"] == "box":
            credited[e["ref"]] += int(e["coins"])
    held = 0
    wrong: list[dict[str, Any]] = []
    for box, m in debited.items():
        state = d.get("boxes", {}).get(box)
        out = credited[box]
        if state in BOX_DONE and out != m["coins"] or state not in BOX_DONE and out > m["coins"]:
            wrong.append({**m, "state": state or "gone", "credited": out})
        elif state not in BOX_DONE:
            held += m["coins"] - out
    unknown = [{"box": box, "credited": c} for box, c in credited.items() if box not in debited]
    into, out_of = sum(m["coins"] for m in debited.values()), sum(credited.values())
    return {
        "name": "boxes_conserved",
        "ok": into == out_of + held and not wrong and not unknown,
        "boxes": len(debited),
        "coins_into_boxes": into,
        "coins_out_of_boxes": out_of,
        "coins_in_open_boxes": held,
        "paid_chat_spent": sum(
            int(e["coins"]) for e in d["ledger"] if e["t"] == "spend" and e["kind"] == "paid_chat"
        ),
        "box_mismatches": wrong[:NAMED_MAX],
        "box_credits_without_debit": unknown[:NAMED_MAX],
    }


# -- end paid pins and treasure boxes --


def check_series(d: dict[str, Any]) -> dict[str, Any]:
    """Every series sale (an outbox entry of kind ``series``) has its buyer's access record
    at the price paid, and every access record has its sale: both are written by one
    step, so a difference is a lost write. The creator's diamonds from sales are checked
    by ``diamonds_accounted`` like every earner's."""
    sold: dict[tuple[str, str], int] = {}
    for _, _, f in d["outbox"]:
        if f["kind"] == "series":
            sold[(f["user"], orjson.loads(f["p"])["series"])] = int(f["coins"])
    held = {
        (user, sid): coins
        for user, records in d.get("series_access", {}).items()
        for sid, coins in records.items()
    }
    unowned = [
        {"user": u, "series": s, "coins": c, "access": held.get((u, s))}
        for (u, s), c in sorted(sold.items())
        if held.get((u, s)) != c
    ]
    unsold = [
        {"user": u, "series": s, "coins": c}
        for (u, s), c in sorted(held.items())
        if (u, s) not in sold
    ]
    return {
        "name": "series_access_paid",
        "ok": not unowned and not unsold,
        "sales": len(sold),
        "coins": sum(sold.values()),
        "access_records": len(held),
        "paid_without_access": unowned[:NAMED_MAX],
        "access_without_sale": unsold[:NAMED_MAX],
    }


CHECKS = (
    check_coins,
    check_negative,
    check_settled,
    check_diamonds,
    check_idempotency,
    check_stock,
    check_receipts,
    check_boxes,  # -- treasure box --
    check_series,  # -- series --
    check_refunds,  # -- refunds and minors --
    check_subs,  # -- subscription tiers, gifted subs (audit_subs.py) --
)
LABELS.update(SUB_LABELS)
