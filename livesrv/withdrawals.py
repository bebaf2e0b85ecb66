"""Creator withdrawals: available diamonds out, at their cash value, reviewed by admins."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from . import wallet
from .backend import Backend, args_hash, now_ms, store_errors
from .errors import BadRequest, Forbidden, IdempotencyConflict, InsufficientFunds, NotFound
from .keys import ShardKeys
from .tokens import Identity

STATUSES = ("requested", "paid", "rejected")


def withdrawal_id(b: Backend, user: str, key: str) -> str:
    shard = b.user(user).shard.shard
    return f"w{shard}-" + hashlib.sha1(f"{user}\n{key}".encode()).hexdigest()[:16]


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
    wid = withdrawal_id(b, who.user, key)
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
            b.settings.idempotency_ttl,
            now_ms(),
            b.catalog.diamonds_to_cents(diamonds),
            wid,
            keys.shard.wallet_channel,
        ],
    )
    if status == "conflict":
        raise IdempotencyConflict()
    if status == "min":
        raise BadRequest(f"the minimum withdrawal is {b.settings.min_withdrawal} diamonds")
    if status == "insufficient":
        raise InsufficientFunds(f"only {out} diamonds are available")
    return orjson.loads(out)  # type: ignore[no-any-return]


async def _records(b: Backend, shard: ShardKeys) -> list[dict[str, Any]]:
    async with store_errors():
        ids = await b.redis.zrevrange(shard.withdrawals, 0, -1)
        pipe = b.redis.pipeline(transaction=False)
        for wid in ids:
            pipe.hgetall(shard.withdrawal(wid))
        rows = await pipe.execute() if ids else []
    return [_view(r) for r in rows if r]


def _view(raw: dict[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = {k: raw[k] for k in ("id", "user", "status")}
    view.update({k: int(raw[k]) for k in ("diamonds", "cents", "created")})
    view["withdrawal"] = view.pop("id")
    return view


async def of_user(b: Backend, user: str) -> list[dict[str, Any]]:
    return [w for w in await _records(b, b.user(user).shard) if w["user"] == user]


async def listing(b: Backend, status: str | None = None) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    out: list[dict[str, Any]] = []
    for shard in b.all_shards():
        out.extend(w for w in await _records(b, shard) if status in (None, w["status"]))
    return sorted(out, key=lambda w: -w["created"])


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
        [status, now_ms(), shard.wallet_channel],
    )
    if result == "final":
        raise BadRequest(f"withdrawal {wid} is already {current}")
    return {"withdrawal": wid, "status": status}
