"""Gifted subscriptions: a viewer pays for subscriptions of N other viewers in the room,
chosen by name or at random among those present.

Three kinds of steps, each idempotent:

1. ``sub_gift.lua`` in the gifter's slot: all N debits at once (all or nothing), one
   ledger spend and one outbox entry per gift, and the key's record, which keeps the
   recipients (so a random choice is made once, and a retry finds it).
2. ``sub_grant.lua`` in each recipient's slot: the gifted period and its loyalty month,
   once per gift ref.
3. The room's ``sub`` event of each gift (``gifted: true``, ``by``), once per event id.

A crash after step 1 is finished by the retry with the same key, or by the settlement
worker (:func:`finish_entry`), whichever comes first. Rules: :mod:`.sub_rules`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from ..errors import BadRequest, Forbidden, NotLive
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..store.keys import RoomKeys
from . import sub_rules as rules
from . import sub_tiers, wallet
from .rooms import RoomInfo, event, log_event, seen_since


def gift_digest(room: str, tier: int, count: int | None, to: list[str] | None) -> str:
    args: dict[str, Any] = {"room": room, "tier": tier}
    args.update({"to": to} if to is not None else {"count": count})
    return args_hash("sub_gift", args)


async def gift_subs(
    b: Backend,
    user: str,
    room: str,
    info: RoomInfo | None,
    *,
    tier: int,
    count: int | None,
    to: list[str] | None,
    key: str,
) -> dict[str, Any]:
    """Gift ``count`` subscriptions at ``tier`` to random viewers present in the room (not
    subscribed to its creator, not the gifter or the creator), or one to each of ``to``
    (who must be present and not subscribed). ``info`` is the room as the gifter's session
    knows it (None: not a member). A retry answers the first result and finishes what a
    crash left undone, whatever the room is now.

    Raises:
        BadRequest: Both or neither of count and to, no such tier, a recipient absent or
            subscribed, or fewer eligible viewers than ``count``.
        Forbidden: Not a member, or the gifter's own room. NotLive: The room is not live.
        InsufficientFunds, LimitExceeded, IdempotencyConflict: from the debit.
    """
    if (count is None) == (to is None):
        raise BadRequest("give either count (random recipients) or to (chosen recipients)")
    digest = gift_digest(room, tier, count, to)
    prior = await sub_tiers.prior_result(b, user, key, digest)
    if prior is not None:
        return await _finish(b, user, key, *prior)
    if info is None:
        raise Forbidden("join the room first")
    creator = info.creator
    if not info.live or creator is None:
        raise NotLive()
    if creator == user:
        raise Forbidden("you cannot gift subscriptions in your own room")
    prices = await sub_tiers.tiers_of(b, creator)
    if tier > len(prices):
        raise BadRequest(f"this creator offers tiers 1-{len(prices)}")
    recipients = await _recipients(b, user, room, creator, count, to, key)
    exp = wallet.generation_expiry(b)
    price = prices[tier - 1]
    template = {"room": room, "creator": creator, "tier": tier, "price": price}
    template["recipients"] = recipients
    payloads = [
        orjson.dumps(_payload(b, user, key, exp, i, to_user, template)).decode()
        for i, to_user in enumerate(recipients, 1)
    ]
    k = b.user(user)
    status, out, gen = await b.run(
        "sub_gift",
        [k.wallet, k.idem(key), k.shard.outbox, k.shard.ledger, k.spent, k.shard.wallets, k.spends],
        [
            digest,
            price,
            now_ms(),
            b.settings.day_limit,
            exp,
            user,
            key,
            orjson.dumps(template).decode(),
            k.wallet_channel,
            *payloads,
        ],
    )
    wallet.raise_refusal(b, status, out, price * len(recipients))
    return await _finish(b, user, key, orjson.loads(out), int(gen))


async def present(b: Backend, room: str) -> set[str]:
    """The users seen in the room within ``presence_ttl``, on every node."""
    async with store_errors():
        return set(await b.redis.zrangebyscore(RoomKeys(room).presence, seen_since(b), "+inf"))


async def subscribed(b: Backend, users: list[str], creator: str) -> set[str]:
    """Those of ``users`` whose subscription to ``creator`` is active."""
    if not users:
        return set()
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for u in users:
            pipe.get(b.user(u).sub(creator))
        ends = await pipe.execute()
    now = time.time()
    return {u for u, end in zip(users, ends, strict=True) if end and int(end) > now}


async def _recipients(
    b: Backend,
    user: str,
    room: str,
    creator: str,
    count: int | None,
    to: list[str] | None,
    key: str,
) -> list[str]:
    """The checked chosen recipients, or ``count`` random eligible ones.

    Raises:
        BadRequest: See :func:`gift_subs`.
    """
    here = await present(b, room)
    if to is not None:
        chosen = rules.check_recipients(to, user, creator)
        absent = [u for u in chosen if u not in here]
        if absent:
            raise BadRequest(f"not in the room: {', '.join(absent)}")
        already = await subscribed(b, chosen, creator)
        if already:
            raise BadRequest(f"already subscribed: {', '.join(sorted(already))}")
        return chosen
    assert count is not None
    order = rules.shuffled(here - {user, creator}, rules.gift_seed(user, key))
    picked: list[str] = []
    batch = max(2 * count, 20)
    for at in range(0, len(order), batch):
        part = order[at : at + batch]
        picked += rules.pick(part, await subscribed(b, part, creator), count - len(picked))
        if len(picked) == count:
            return picked
    raise BadRequest(
        f"only {len(picked)} viewers in the room can receive a gifted subscription "
        f"(present, not subscribed, not you or the creator); ask for at most that many"
    )


def _payload(
    b: Backend, user: str, key: str, exp: int, i: int, to: str, t: dict[str, Any]
) -> dict[str, Any]:
    """The outbox payload of the ``i``-th gift: what settlement credits and what
    :func:`finish_entry` needs to grant the period and log the event."""
    share = b.catalog.sub_share_bps
    ev = event("sub", t["room"], **{"from": to, "tier": t["tier"], "gifted": True, "by": user})
    return {
        "room": t["room"],
        "e": [[t["creator"], f"sub:{share}", share]],
        "ev": ev,
        "evid": _evid(user, key, exp, i),
        "x": exp,
        "sub": {
            "to": to,
            "creator": t["creator"],
            "tier": t["tier"],
            "price": t["price"],
            "ref": rules.gift_ref(user, key, exp, i),
        },
    }


def _evid(user: str, key: str, exp: int, i: int) -> str:
    return f"sg:{user}:{key}:{exp}:{i}"


async def _finish(
    b: Backend, user: str, key: str, reply: dict[str, Any], exp: int
) -> dict[str, Any]:
    """Grant every gift of a paid ``sub_gift`` and log its event (each once), then answer."""
    gifts = await asyncio.gather(
        *(
            finish_entry(b, _payload(b, user, key, exp, i, to, reply))
            for i, to in enumerate(reply["recipients"], 1)
        )
    )
    names = ("coins", "paid", "tier", "price", "recipients")
    return {**{n: reply[n] for n in names}, "gifts": gifts}


async def finish_entry(b: Backend, payload: dict[str, Any]) -> dict[str, Any]:
    """Grant one gift's period to its recipient (``sub_grant.lua``, once per ref) and log its
    ``sub`` event (once per event id). The request does it; the settlement worker does it
    for an outbox entry of kind ``sub_gift`` a crash left unfinished.

    Returns:
        ``{to, until, months}``: the recipient's subscription after this gift.
    """
    s = payload["sub"]
    k = b.user(s["to"])
    out = await b.run(
        "sub_grant",
        [k.sub(s["creator"]), k.sub_record(s["creator"])],
        [s["ref"], s["tier"], s["price"], sub_tiers.period_s(b)],
    )
    until, months, _ = (int(x) for x in str(out).split("|"))
    ev = {**payload["ev"], "until": until, "months": months}
    await log_event(b, payload["room"], ev, evid=payload["evid"], exp=int(payload["x"]))
    return {"to": s["to"], "until": until, "months": months}
