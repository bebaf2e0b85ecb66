"""Subscription tiers: a creator's tier prices, subscribing at a tier (a new period, a
renewal, or an upgrade charged pro rata), loyalty months and the subscriber badge.

The rules are in :mod:`.sub_rules`; gifted subscriptions in :mod:`.sub_gifts`. A viewer's
subscription to a creator is two keys in the viewer's slot: its end (``sub``, unix s, as
before tiers) and its record (``sub_record``: tier, price, months). One ``sub_pay.lua``
step debits the wallet and writes both.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import (
    Forbidden,
    IdempotencyConflict,
    NotFound,
    Unavailable,
)
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..wire.tokens import Identity
from . import sub_rules as rules
from . import wallet
from .rooms import RoomInfo, event, log_event

DAY = 86400
REPLANS = 5  # a subscription record that changes under a subscribe this often: unavailable


def period_s(b: Backend) -> int:
    """One subscription period in seconds (the catalogue's ``sub_days``)."""
    return b.catalog.sub_days * DAY


async def tiers_of(b: Backend, creator: str) -> tuple[int, ...]:
    """The creator's tier prices, tier 1 first (:func:`.sub_rules.default_tiers` when the
    creator never set any)."""
    async with store_errors():
        raw = await b.redis.hmget(b.user(creator).settings, "sub_tiers", "sub_price")
    return _tiers(b, *raw)


def _tiers(b: Backend, raw_tiers: str | None, raw_price: str | None) -> tuple[int, ...]:
    stored = rules.parse_tiers(raw_tiers)
    if stored:
        return stored
    tier1 = int(raw_price) if raw_price else b.catalog.default_sub_price
    return rules.default_tiers(tier1, b.catalog.sub_prices)


async def set_tiers(b: Backend, who: Identity, prices: Any) -> dict[str, Any]:
    """A creator sets their tier prices (for future periods and upgrades; tier 1 is also
    ``sub_price``).

    Raises:
        Forbidden: Not a creator. BadRequest: See :func:`.sub_rules.check_tiers`.
    """
    if not who.is_creator:
        raise Forbidden("only creators set subscription tiers")
    return await store_tiers(b, who.user, prices)


async def store_tiers(b: Backend, creator: str, prices: Any) -> dict[str, Any]:
    """Set ``creator``'s tier prices (:func:`set_tiers` without the role check: the admin
    API's ``PUT /api/creators/{user}/sub_tiers``).

    Raises:
        BadRequest: See :func:`.sub_rules.check_tiers`.
    """
    tiers = rules.check_tiers(prices, b.catalog.sub_prices)
    async with store_errors():
        await b.redis.hset(
            b.user(creator).settings,
            mapping={"sub_tiers": ",".join(map(str, tiers)), "sub_price": tiers[0]},
        )
    return {"prices": list(tiers)}


async def state_of(b: Backend, user: str, creator: str) -> tuple[rules.SubState, str]:
    """The user's subscription to ``creator``, and the record as ``sub_pay.lua`` compares it
    ("until|tier|months", the stored strings)."""
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        _read_state(b, pipe, user, creator)
        return _state(*await pipe.execute())


def _read_state(b: Backend, pipe: Any, user: str, creator: str) -> None:
    k = b.user(user)
    pipe.get(k.sub(creator))
    pipe.hmget(k.sub_record(creator), "tier", "price", "months")


def _state(until: str | None, record: list[str | None]) -> tuple[rules.SubState, str]:
    tier, price, months = record
    token = f"{until or '0'}|{tier or '0'}|{months or '0'}"
    state = rules.SubState(int(until or 0), int(tier or 0), int(price or 0), int(months or 0))
    return state, token


async def badge_of(b: Backend, user: str, creator: str) -> dict[str, int] | None:
    """``{tier, months}`` while ``user`` subscribes to ``creator``, else None."""
    state, _ = await state_of(b, user, creator)
    return rules.badge(state, now_ms())


def tier_fields(tiers: tuple[int, ...]) -> dict[str, Any]:
    """The creator's part of a join reply (the same for every viewer of the room, read once
    per batch of joiners): ``sub_price`` (tier 1) and ``sub_tiers`` (prices, tier 1 first)."""
    return {"sub_price": tiers[0], "sub_tiers": list(tiers)}


async def viewer_fields(b: Backend, user: str, creator: str) -> dict[str, Any]:
    """The joiner's own part of a join reply, read with one read-only script in the
    joiner's slot (``sub_state.lua``): ``subscribed_until`` (unix s, 0 when not subscribed),
    ``sub_tier`` (the active tier, 0 for none) and ``sub_months`` (loyalty months)."""
    k = b.user(user)
    until, *record = await b.run("sub_state", [k.sub(creator), k.sub_record(creator)], [])
    state, _ = _state(until, record)
    now = now_ms()
    return {
        "subscribed_until": state.until if state.active(now) else 0,
        "sub_tier": state.current_tier(now),
        "sub_months": state.months,
    }


async def prior_result(
    b: Backend, user: str, key: str, digest: str
) -> tuple[dict[str, Any], int] | None:
    """The kept reply of ``key`` and its generation's expiry (unix ms), or None when unused:
    a retry answers it whatever the subscription or the room is now.

    Raises:
        IdempotencyConflict: The key was used with other arguments.
    """
    idem = b.user(user).idem(key)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        pipe.get(idem)
        pipe.pexpiretime(idem)
        raw, exp = await pipe.execute()
    if raw is None:
        return None
    head, _, reply = raw.partition("\n")
    if head != digest:
        raise IdempotencyConflict()
    return orjson.loads(reply), max(0, int(exp))


def subscribe_digest(room: str, tier: int | None) -> str:
    args: dict[str, Any] = {"room": room} if tier is None else {"room": room, "tier": tier}
    return args_hash("subscribe", args)


async def subscribe(
    b: Backend, user: str, room: RoomInfo, key: str, tier: int | None = None
) -> dict[str, Any]:
    """Subscribe to the room creator at ``tier`` (None: the current tier, or tier 1): a new
    period, a renewal, or an upgrade of the time already paid (:func:`.sub_rules.plan`).

    A retry with the key answers the first result, whatever the subscription is now.

    Raises:
        NotFound: The room has no creator. Forbidden: Subscribing to yourself.
        BadRequest: No such tier, or a downgrade.
        InsufficientFunds, LimitExceeded, IdempotencyConflict: from the debit.
    """
    creator = room.creator
    if creator is None:
        raise NotFound(f"no room {room.room!r}")
    if creator == user:
        raise Forbidden("you cannot subscribe to yourself")
    digest = subscribe_digest(room.room, tier)
    done = await prior_result(b, user, key, digest)
    if done is not None:
        return _result(done[0])
    prices = await tiers_of(b, creator)
    exp = wallet.generation_expiry(b)
    for _ in range(REPLANS):
        state, token = await state_of(b, user, creator)
        now = now_ms()
        plan = rules.plan(state, tier, prices, now, period_s(b))
        ev = _event(room.room, user, plan, state.current_tier(now))
        status, out, gen = await _pay(
            b, user, key, digest, creator, room.room, plan, ev, token, exp
        )
        if status == "changed":
            continue
        reply: dict[str, Any] = orjson.loads(out)
        if status == "ok":
            await log_event(b, room.room, ev, evid=_evid(user, key, gen), exp=gen)
        return _result(reply)
    raise Unavailable("the subscription changed while paying; retry with the same key")


def _event(room: str, user: str, plan: rules.Plan, was: int) -> dict[str, Any]:
    if plan.mode == "upgrade":
        return event(
            "sub_upgrade",
            room,
            **{"from": user, "tier": plan.tier, "was": was},
            until=plan.until,
            coins=plan.amount,
        )
    fields = {"from": user, "until": plan.until, "tier": plan.tier, "months": plan.months}
    return event("sub", room, **fields, gifted=False, by=None)


def _evid(user: str, key: str, exp: int) -> str:
    """The room event id of a subscribe: one per key generation."""
    return f"s:{user}:{key}:{exp}"


def _result(reply: dict[str, Any]) -> dict[str, Any]:
    names = ("until", "coins", "tier", "months", "paid", "mode")
    return {n: reply[n] for n in names if n in reply}


async def _pay(
    b: Backend,
    user: str,
    key: str,
    digest: str,
    creator: str,
    room: str,
    plan: rules.Plan,
    ev: dict[str, Any],
    token: str,
    exp: int,
) -> tuple[str, str, int]:
    """Run ``sub_pay.lua``. Returns (status ok | dup | changed, reply json, generation).

    Raises:
        IdempotencyConflict, InsufficientFunds, LimitExceeded, KeyExpired.
    """
    share = b.catalog.sub_share_bps
    k = b.user(user)
    payload = {
        "room": room,
        "e": [[creator, f"sub:{share}", share]],
        "ev": ev,
        "evid": _evid(user, key, exp),
        "x": exp,
        "sub": {"creator": creator, "tier": plan.tier, "period": plan.periods, "mode": plan.mode},
    }
    template = {"until": plan.until, "tier": plan.tier, "mode": plan.mode}
    status, out, gen = await b.run(
        "sub_pay",
        [
            k.wallet,
            k.idem(key),
            k.shard.outbox,
            k.shard.ledger,
            k.spent,
            k.sub(creator),
            k.sub_record(creator),
            k.shard.wallets,
            k.spends,
        ],
        [
            digest,
            plan.amount,
            now_ms(),
            b.settings.day_limit,
            exp,
            user,
            key,
            orjson.dumps(payload).decode(),
            orjson.dumps(template).decode(),
            k.wallet_channel,
            token,
            plan.until,
            plan.tier,
            plan.price,
            plan.periods,
        ],
    )
    wallet.raise_refusal(b, status, out, plan.amount)
    return status, out, int(gen)
