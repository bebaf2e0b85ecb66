"""The audit of subscriptions (``subs_paid``): loyalty months equal the periods paid, and
every gifted period granted was paid and every one paid was granted.

What it reads (:func:`records`) is every subscription record (``sub_record`` in
:mod:`livesrv.store.keys`); what it checks against are the outbox entries of kind ``sub``
and ``sub_gift`` (:func:`check_subs`, sans-I/O, run with the other checks of
:mod:`livesrv.audit_checks`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from .store.facade import Backend
from .store.keys import SUB_RECORDS_MATCH, sub_record_of

NAMED_MAX = 50

LABELS = {
    "months_mismatches": "loyalty months other than the periods paid",
    "paid_not_granted": "gifted sub paid, its period never granted",
    "granted_not_paid": "gifted period granted, its debit is gone",
}


async def records(b: Backend) -> dict[tuple[str, str], dict[str, Any]]:
    """Every subscription record by (user, creator): ``months`` and the gift ``refs``."""
    found = [k async for k in b.redis.scan_iter(match=SUB_RECORDS_MATCH, count=1000)]
    keys = sorted({k for k in found if sub_record_of(k) is not None})  # SCAN may repeat one
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for at in range(0, len(keys), 1000):
        part = keys[at : at + 1000]
        pipe = b.redis.pipeline(transaction=False)
        for key in part:
            pipe.hgetall(key)
        for key, rec in zip(part, await pipe.execute(), strict=True):
            if not rec:
                continue
            owner = sub_record_of(key)
            assert owner is not None
            out[owner] = {
                "months": int(rec.get("months") or 0),
                "tier": int(rec.get("tier") or 0),
                "refs": sorted(f[2:] for f in rec if f.startswith("g:")),
            }
    return out


def check_subs(d: dict[str, Any]) -> dict[str, Any]:
    """Per (viewer, creator): loyalty months = periods the viewer paid (outbox entries of
    kind ``sub`` that started or renewed a period; an upgrade adds none) + gifted periods
    granted; each gifted period granted (a ``g:REF`` of the record) has its ``sub_gift``
    debit, and each ``sub_gift`` debit its grant. A subscription exists only through
    these paid steps, so an active one without its movement shows here as months short
    of the periods paid. (Subscriptions paid before tiers have no record: not counted.)"""
    own = Counter[tuple[str, str]]()
    gifts: dict[str, dict[str, Any]] = {}
    for _, _, f in d["outbox"]:
        if f["kind"] not in ("sub", "sub_gift"):
            continue
        s = orjson.loads(f["p"]).get("sub")
        if s is None:
            continue
        if f["kind"] == "sub":
            own[(f["user"], s["creator"])] += int(s["period"])
        else:
            gifts[s["ref"]] = {
                "by": f["user"],
                "key": f["key"],
                "to": s["to"],
                "creator": s["creator"],
                "tier": s["tier"],
                "coins": int(f["coins"]),
            }
    recs: dict[tuple[str, str], dict[str, Any]] = d.get("sub_records", {})
    granted = {ref: owner for owner, r in recs.items() for ref in r["refs"]}
    wrong = []
    for owner in sorted(set(recs) | set(own)):
        r = recs.get(owner, {"months": 0, "refs": []})
        if r["months"] != own[owner] + len(r["refs"]):
            wrong.append(
                {
                    "user": owner[0],
                    "creator": owner[1],
                    "months": r["months"],
                    "paid_periods": own[owner],
                    "gifted_periods": len(r["refs"]),
                }
            )
    ungranted = [
        {"ref": ref, **g}
        for ref, g in sorted(gifts.items())
        if granted.get(ref) != (g["to"], g["creator"])
    ]
    unpaid = [
        {"ref": ref, "user": owner[0], "creator": owner[1]}
        for ref, owner in sorted(granted.items())
        if ref not in gifts
    ]
    return {
        "name": "subs_paid",
        "ok": not wrong and not ungranted and not unpaid,
        "records": len(recs),
        "loyalty_months": sum(r["months"] for r in recs.values()),
        "periods_paid": sum(own.values()),
        "gifted": len(gifts),
        "gifted_granted": len(granted),
        "months_mismatches": wrong[:NAMED_MAX],
        "paid_not_granted": ungranted[:NAMED_MAX],
        "granted_not_paid": unpaid[:NAMED_MAX],
    }
