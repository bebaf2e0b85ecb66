"""Wallets: balances, coin purchases, admin grants, and the debit step of every spend."""

from __future__ import annotations

from typing import Any

import orjson

from .backend import Backend, args_hash, now_ms, store_errors
from .errors import (
    IdempotencyConflict,
    InsufficientFunds,
    LimitExceeded,
    NotFound,
)
from .keys import shard_of

RECEIPT_KEY_PREFIX = "rcpt:"
GRANT_KEY_PREFIX = "grant:"


async def read(b: Backend, user: str) -> dict[str, int]:
    """A user's balances, after moving any matured holds to available diamonds."""
    keys = b.user(user)
    async with store_errors():
        await b.run(
            "release",
            [keys.wallet, keys.holds, keys.shard.holdq, keys.shard.ledger],
            [now_ms(), user, keys.shard.wallet_channel],
        )
        coins, diamonds, pending = await b.redis.hmget(keys.wallet, "coins", "diamonds", "pending")
    return {"coins": int(coins or 0), "diamonds": int(diamonds or 0), "pending": int(pending or 0)}


async def buy_coins(b: Backend, user: str, package: str, receipt: str) -> dict[str, Any]:
    """Credit a coin package paid with ``receipt``; one receipt credits once, for anyone.

    Two single-slot steps: claim the receipt for (user, package) in the receipt's shard,
    then credit the wallet idempotently by the receipt. A crash between them is finished
    by the client's retry with the same receipt.

    Raises:
        NotFound: Unknown package.
        IdempotencyConflict: The receipt was used by someone else or for another package.
    """
    pkg = b.catalog.packages.get(package)
    if pkg is None:
        raise NotFound(f"unknown package {package!r}")
    rshard = b.shard(shard_of(receipt, b.settings.shards))
    claim = await b.run("claim_receipt", [rshard.receipt(receipt)], [f"{user}|{package}", now_ms()])
    if claim != "ok":
        raise IdempotencyConflict("this receipt was already used")
    return await _credit(
        b,
        user,
        pkg.coins,
        "purchase",
        RECEIPT_KEY_PREFIX + receipt,
        receipt,
        args_hash("buy_coins", {"package": package, "receipt": receipt}),
        keep=True,
    )


async def grant(b: Backend, user: str, coins: int, key: str, reason: str) -> dict[str, Any]:
    """An operator's grant of coins, idempotent by key."""
    return await _credit(
        b,
        user,
        coins,
        "grant",
        GRANT_KEY_PREFIX + key,
        reason,
        args_hash("grant", {"coins": coins, "reason": reason}),
        keep=False,
    )


async def _credit(
    b: Backend, user: str, coins: int, kind: str, key: str, ref: str, digest: str, *, keep: bool
) -> dict[str, Any]:
    keys = b.user(user)
    status, reply = await b.run(
        "credit",
        [keys.wallet, keys.idem(key), keys.shard.ledger, keys.shard.wallets],
        [
            digest,
            coins,
            kind,
            user,
            key,
            0 if keep else b.settings.idempotency_ttl,
            ref,
            now_ms(),
            keys.shard.wallet_channel,
        ],
    )
    if status == "conflict":
        raise IdempotencyConflict()
    result: dict[str, Any] = orjson.loads(reply)
    return result


async def first_result(b: Backend, user: str, key: str, digest: str) -> dict[str, Any] | None:
    """The kept reply of an earlier movement by ``user`` with ``key`` and these arguments.

    A retry must get the first result even when the op could no longer start now (the
    room closed, the sender left): answering with that error would say nothing moved.
    None when the key was not used with these arguments (unused, other arguments, aborted).
    """
    async with store_errors():
        prior = await b.redis.get(b.user(user).idem(key))
    if prior is None:
        return None
    head, _, reply = prior.partition("\n")
    if head != digest:
        return None
    result: dict[str, Any] = orjson.loads(reply)
    return result


async def spend(
    b: Backend,
    user: str,
    *,
    kind: str,
    amount: int,
    key: str,
    digest: str,
    payload: dict[str, Any],
    extra_key: str,
    params: tuple[Any, Any] = (0, 0),
    reply: dict[str, Any] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Debit ``amount`` coins for a gift, subscription or purchase, exactly once per key.

    The same step appends the movement to the settlement outbox and the ledger and keeps
    the reply under the key.

    Returns:
        (fresh, reply): fresh is False when the key was used before (nothing moved now).

    Raises:
        IdempotencyConflict: Same key, other arguments.
        InsufficientFunds: Not enough coins.
        LimitExceeded: Over the rolling-day spend limit.
    """
    keys = b.user(user)
    status, out = await b.run(
        "spend",
        [
            keys.wallet,
            keys.idem(key),
            keys.shard.outbox,
            keys.shard.ledger,
            keys.spent,
            extra_key,
            keys.shard.wallets,
        ],
        [
            digest,
            amount,
            now_ms(),
            b.settings.day_limit,
            b.settings.idempotency_ttl,
            kind,
            user,
            key,
            orjson.dumps(payload).decode(),
            orjson.dumps(reply or {}).decode(),
            params[0],
            params[1],
            keys.shard.wallet_channel,
        ],
    )
    if status == "conflict":
        raise IdempotencyConflict()
    if status == "insufficient":
        raise InsufficientFunds(f"this costs {amount} coins; you have {out}")
    if status == "limit":
        raise LimitExceeded(
            f"daily spend limit of {b.settings.day_limit} coins reached ({out} spent today)"
        )
    return status == "ok", orjson.loads(out)
