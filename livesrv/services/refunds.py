"""Refunds and chargebacks of coin purchases, and accounts flagged as minors.

The policy is docs/economy.md, "Refunds, chargebacks and minors". In short:

- **A receipt refunded or charged back** (admin API; the payment provider's webhook calls it)
  is a chain of two single-slot steps, both keyed by the receipt id, so a retry finishes
  the work and never doubles it: ``refund_mark.lua`` marks the receipt reversed in the
  receipt id's shard (the first kind stays: a receipt is reversed at most once), then
  ``refund.lua`` takes the receipt's coins back from the buyer in the buyer's shard. The
  balance may go below zero. The coins of the receipt already spent (the shortfall) are
  attributed to the buyer's spends, newest first (:func:`attribute` states the rule), and
  each attributed part becomes a clawback entry in the outbox: negative coins for the
  spend's earners, which the settlement worker turns into negative diamond credits
  (pending first, then available, then below zero).
- **An account flagged as a minor** (admin API): ``minor_flag.lua`` marks the wallet once
  (from then ``spend.lua`` refuses its spends with ``age_restricted``, and buying coins is
  refused too), then ``reverse.lua`` reverses each of its spends of the last
  ``minor_refund_days`` days, once per spend: the coins go back to the minor, and what no
  refund clawed back yet is clawed back from the earners.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import BadRequest, IdempotencyConflict, NotFound
from ..store.facade import Backend, now_ms, store_errors
from ..store.keys import shard_of
from ..wire.schema import REFUND_KINDS as KINDS
from .wallet import RECEIPT_KEY_PREFIX

SCAN_SPENDS = 10_000
"""A refund walks at most this many of the buyer's newest spends to attribute its shortfall;
what is left unattributed is carried by the platform."""
REVERSE_BATCH = 100
"""Spends one ``reverse.lua`` step reverses at most (a long list is several steps)."""
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Spend:
    """One of the buyer's spends, as the clawback sees it."""

    entry: str
    coins: int
    clawed: int  # coins of it clawed back before
    earns: bool  # whether it earned anybody diamonds (a treasure box earns nobody)


def shortfall(coins: int, balance_before: int) -> int:
    """The receipt's coins already spent: what the buyer lacks to give ``coins`` back.

    ``min(coins, coins - balance_before)`` when positive, else 0 (a balance already below
    zero, from an earlier refund, means all of this receipt's coins were spent).
    """
    return max(0, min(coins, coins - balance_before))


def attribute(short: int, newest_first: list[Spend]) -> list[tuple[str, int]]:
    """The clawback of a refund (sans-I/O; ``refund.lua`` does the same in the store).

    Walks the buyer's spends newest first, skips those that earned nobody and the coins of
    each spend already clawed back, and takes from each until ``short`` is covered.

    Returns:
        (outbox entry id, coins clawed back from it), newest first; the sum is at most
        ``short`` (less when the spends run out: the platform carries the rest).
    """
    out: list[tuple[str, int]] = []
    left = short
    for s in newest_first:
        if left <= 0:
            break
        if s.earns and s.coins > s.clawed:
            take = min(s.coins - s.clawed, left)
            out.append((s.entry, take))
            left -= take
    return out


def clawback_diamonds(earned: int, clawed: int, credited: int, bps: int) -> int:
    """The diamonds a clawback moves for one earner and kind (negative: taken back).

    Settlement credits ``floor((earned - clawed) x bps / 10000) - credited``.
    """
    return (earned - clawed) * bps // 10_000 - credited


def split_clawback(take: int, pending: int) -> tuple[int, int]:
    """Where ``take`` diamonds come from: (from pending, from available); pending first,
    then available, which may go below zero."""
    p = max(0, min(take, pending))
    return p, take - p


async def refund(b: Backend, rid: str, kind: str, reason: str) -> tuple[bool, dict[str, Any]]:
    """Refund or charge back the receipt ``rid``, once: the first result on any repeat.

    Returns:
        (fresh, reply): fresh is False when the receipt was reversed before (the reply is
        then the first one, whatever ``kind`` this call asked for).

    Raises:
        BadRequest: ``kind`` is not refund or chargeback.
        NotFound: No claim for that receipt id, or its coins were never credited.
        IdempotencyConflict: The claim changed under the request (nothing moved).
    """
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    rshard = b.shard(shard_of(rid, b.settings.shards))
    async with store_errors():
        owner = await b.redis.get(rshard.receipt(rid))
    if owner is None:
        raise NotFound(f"no claimed receipt {rid!r}")
    user, _, package = owner.partition("|")
    keys = b.user(user)
    async with store_errors():
        prior = await b.redis.get(keys.refund(rid))
        credited = await b.redis.exists(keys.idem(RECEIPT_KEY_PREFIX + rid))
    if prior is None and not credited:
        raise NotFound(f"receipt {rid!r} is claimed but its coins were never credited")
    pkg = b.catalog.packages.get(package)
    coins = pkg.coins if pkg else 0
    if prior is not None:  # done before; a lost mark (step 1) is written again, as it was
        first_reply: dict[str, Any] = orjson.loads(prior)
        kind, coins = first_reply["kind"], first_reply["coins"]
    status, first, marked = await b.run(
        "refund_mark",
        [rshard.receipt(rid), rshard.receipt_reversal(rid)],
        [kind, reason, now_ms(), coins, owner],
    )
    if prior is not None:
        return False, first_reply
    if status == "changed":
        raise IdempotencyConflict(f"the claim of receipt {rid!r} changed; nothing moved")
    done, reply = await b.run(
        "refund",
        [
            keys.wallet,
            keys.refund(rid),
            keys.shard.outbox,
            keys.shard.ledger,
            keys.spends,
            keys.clawed,
            keys.shard.wallets,
            keys.idem(RECEIPT_KEY_PREFIX + rid),
        ],
        [rid, first, int(marked), user, now_ms(), keys.wallet_channel, SCAN_SPENDS],
    )
    if done == "uncredited":  # the credit vanished between the read and the step
        raise NotFound(f"receipt {rid!r} is claimed but its coins were never credited")
    return done == "ok", orjson.loads(reply)


async def reversal(b: Backend, rid: str) -> dict[str, Any]:
    """A receipt as the admin API shows it: its claim, and its refund when reversed.

    Raises:
        NotFound: No claim for that receipt id.
    """
    rshard = b.shard(shard_of(rid, b.settings.shards))
    async with store_errors():
        owner = await b.redis.get(rshard.receipt(rid))
        mark = await b.redis.hgetall(rshard.receipt_reversal(rid))
    if owner is None:
        raise NotFound(f"no claimed receipt {rid!r}")
    user, _, package = owner.partition("|")
    async with store_errors():
        done = await b.redis.get(b.user(user).refund(rid))
    out: dict[str, Any] = {"receipt": rid, "user": user, "package": package, "reversed": None}
    if mark:
        out["reversed"] = {"kind": mark["kind"], "reason": mark.get("reason", "")}
        out["reversed"]["ts"] = int(mark["ts"])
        out["reversed"]["refund"] = orjson.loads(done) if done else None
    return out


async def flag_minor(b: Backend, user: str) -> tuple[bool, dict[str, Any]]:
    """Flag ``user`` as a minor (once) and reverse their spends of the refund window.

    A repeat flags nothing, reverses nothing already reversed (it finishes a flag cut
    short) and answers the same totals.

    Returns:
        (fresh, reply): fresh is False when the account was flagged before.
    """
    keys = b.user(user)
    window = b.settings.minor_refund_days * DAY_MS
    status, since, start = await b.run(
        "minor_flag", [keys.wallet, keys.shard.ledger, keys.shard.wallets], [user, now_ms(), window]
    )
    async with store_errors():
        ids = await b.redis.zrangebyscore(keys.spends, int(start), "+inf")
    for at in range(0, len(ids), REVERSE_BATCH):
        await b.run(
            "reverse",
            [keys.wallet, keys.shard.outbox, keys.shard.ledger, keys.clawed],
            [user, now_ms(), keys.wallet_channel, *ids[at : at + REVERSE_BATCH]],
        )
    async with store_errors():
        n, coins = await b.redis.hmget(keys.wallet, "rev_n", "rev_coins")
    return status == "ok", {
        "user": user,
        "minor": True,
        "since": int(since),
        "from": int(start),
        "reversed": int(n or 0),
        "coins_returned": int(coins or 0),
    }
