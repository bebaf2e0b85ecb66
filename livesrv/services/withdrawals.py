"""Creator withdrawals: available diamonds out, at their cash value, reviewed by admins."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import BadRequest, Forbidden, IdempotencyConflict, InsufficientFunds, NotFound
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..store.keys import ShardKeys
from ..wire.tokens import Identity
from . import wallet
from .paging import decode_cursor, encode_cursor

STATUSES = ("requested", "paid", "rejected")


def withdrawal_id(b: Backend, user: str, key: str, exp: int) -> str:
    """The id of the withdrawal made with ``key`` in the key generation that ends at ``exp``:
    a key reused after its record expired makes a new withdrawal, never overwrites one."""
    shard = b.user(user).shard.shard
    return f"w{shard}-" + hashlib.sha1(f"{user}\n{key}\n{exp}".encode()).hexdigest()[:16]


def _shard_of_id(b: Backend, wid: str) -> ShardKeys:
    head = wid.partition("-")[0]
    if not head.startswith("w") or not head[1:].isdigit() or int(head[1:]) >= b.settings.shards:
        raise NotFound(f"no withdrawal {wid!r}")
    return ShardKeys(int(head[1:]))


async def withdraw(b: Backend, who: Identity, diamonds: int, key: str) -> dict[str, Any]:
    """Withdraw available diamonds (at least the minimum), exactly once per key.

    Raises:
        Forbidden: Not a creator. BadRequest: Under the minimum.
        InsufficientFunds: Not that many available diamonds. IdempotencyConflict.
    """
    if not who.is_creator:
        raise Forbidden("only creators can withdraw")
    await wallet.read(b, who.user)  # matured holds become available first
    keys = b.user(who.user)
    exp = wallet.generation_expiry(b)
    wid = withdrawal_id(b, who.user, key, exp)
    status, out = await b.run(
        "withdraw",
        [
            keys.wallet,
            keys.idem(key),
            keys.shard.ledger,
            keys.shard.withdrawals,
            keys.shard.withdrawal(wid),
        ],
        [
            args_hash("withdraw", {"diamonds": diamonds}),
            diamonds,
            b.settings.min_withdrawal,
            who.user,
            key,
            exp,
            now_ms(),
            b.catalog.diamonds_to_cents(diamonds),
            wid,
            keys.wallet_channel,
        ],
    )
    if status == "conflict":
        raise IdempotencyConflict()
    if status == "min":
        raise BadRequest(f"the minimum withdrawal is {b.settings.min_withdrawal} diamonds")
    if status == "insufficient":
        if int(out) < 0:  # a clawback took back diamonds already withdrawn (refunds.py)
            raise InsufficientFunds(f"your diamonds are {out}: no withdrawal until above zero")
        raise InsufficientFunds(f"only {out} diamonds are available")
    return orjson.loads(out)  # type: ignore[no-any-return]


async def _page(
    b: Backend,
    shards: list[ShardKeys],
    keep: Callable[[dict[str, Any]], bool],
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """One page of withdrawals of ``shards`` that ``keep`` accepts, newest first.

    The order is (created, id) descending across shards; the cursor is the position the
    page stopped at. Each shard reads at most ``limit`` entries past the cursor (plus the
    ones created in the cursor's millisecond), so a filtered page may hold fewer items.
    """
    pos = decode_cursor("withdrawals", cursor, int, str)
    at: tuple[int, str] | None = (pos[0], pos[1]) if pos else None
    async with store_errors():
        ties = [0] * len(shards)
        if at is not None:
            pipe = b.redis.pipeline(transaction=False)
            for shard in shards:
                pipe.zcount(shard.withdrawals, at[0], at[0])
            ties = [int(n) for n in await pipe.execute()]
        pipe = b.redis.pipeline(transaction=False)
        for shard, extra in zip(shards, ties, strict=True):
            top = "+inf" if at is None else at[0]
            pipe.zrevrangebyscore(
                shard.withdrawals, top, "-inf", start=0, num=limit + extra, withscores=True
            )
        reads = await pipe.execute()
    frontiers: list[tuple[int, str]] = []
    seen: list[tuple[tuple[int, str], ShardKeys]] = []
    for shard, extra, rows in zip(shards, ties, reads, strict=True):
        if len(rows) == limit + extra:  # this shard may hold more below its last row
            frontiers.append((int(rows[-1][1]), rows[-1][0]))
        for wid, score in rows:
            where = (int(score), wid)
            if at is None or where < at:
                seen.append((where, shard))
    bound = max(frontiers) if frontiers else None
    seen = sorted((x for x in seen if bound is None or x[0] >= bound), reverse=True)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for (_, wid), shard in seen:
            pipe.hgetall(shard.withdrawal(wid))
        rows = await pipe.execute() if seen else []
    found = [(where, _view(r)) for (where, _), r in zip(seen, rows, strict=True) if r]
    found = [(where, w) for where, w in found if keep(w)]
    page = found[:limit]
    stop = page[-1][0] if len(found) > limit else bound
    return {
        "withdrawals": [w for _, w in page],
        "next": None if stop is None else encode_cursor("withdrawals", *stop),
    }


def _view(raw: dict[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = {k: raw[k] for k in ("id", "user", "status")}
    view.update({k: int(raw[k]) for k in ("diamonds", "cents", "created")})
    view["withdrawal"] = view.pop("id")
    return view


async def of_user(b: Backend, user: str, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of a creator's withdrawals, newest first: ``{"withdrawals", "next"}``.

    Raises:
        BadRequest: A cursor this listing did not give out.
    """
    return await _page(b, [b.user(user).shard], lambda w: w["user"] == user, cursor, limit)


async def mine(b: Backend, who: Identity, cursor: str | None, limit: int) -> dict[str, Any]:
    """A creator's own withdrawals, newest first (:func:`of_user`).

    Raises:
        Forbidden: Not a creator.
    """
    if not who.is_creator:
        raise Forbidden("only creators have withdrawals")
    return await of_user(b, who.user, cursor, limit)


async def listing(b: Backend, status: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of every withdrawal (with ``status`` only, when given), newest first.

    Raises:
        BadRequest: An unknown status, or a cursor this listing did not give out.
    """
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    return await _page(b, b.all_shards(), lambda w: status in (None, w["status"]), cursor, limit)


async def set_status(b: Backend, wid: str, status: str) -> dict[str, Any]:
    """Mark a requested withdrawal paid, or rejected (its diamonds return to the creator).

    Raises:
        NotFound: No such withdrawal. BadRequest: It is already paid or rejected.
    """
    shard = _shard_of_id(b, wid)
    async with store_errors():
        user = await b.redis.hget(shard.withdrawal(wid), "user")
    if user is None:
        raise NotFound(f"no withdrawal {wid!r}")
    keys = b.user(user)
    result, current = await b.run(
        "withdrawal_status",
        [shard.withdrawal(wid), keys.wallet, shard.ledger],
        [status, now_ms(), keys.wallet_channel],
    )
    if result == "final":
        raise BadRequest(f"withdrawal {wid} is already {current}")
    return {"withdrawal": wid, "status": status}
