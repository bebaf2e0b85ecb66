"""Wallets: balances, coin purchases, admin grants, and the debit step of every spend."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import (
    AgeRestricted,
    IdempotencyConflict,
    InsufficientFunds,
    KeyExpired,
    LimitExceeded,
    NotFound,
)
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..store.keys import shard_of
from .receipts import ReceiptVerifier

MAX_COINS = (1 << 53) - 1  # the largest exact integer of the protocol and of Lua's doubles
RECEIPT_KEY_PREFIX = "rcpt:"
GRANT_KEY_PREFIX = "grant:"


async def read(b: Backend, user: str) -> dict[str, int]:
    """A user's balances, after moving any matured holds to available diamonds."""
    keys = b.user(user)
    coins, diamonds, pending = await b.run(  # release.lua, then the read: one round trip
        "wallet_read",
        [keys.wallet, keys.holds, keys.shard.holdq, keys.shard.ledger],
        [now_ms(), user, keys.wallet_channel],
    )
    return {"coins": int(coins or 0), "diamonds": int(diamonds or 0), "pending": int(pending or 0)}


async def buy_coins(
    b: Backend, verifier: ReceiptVerifier, user: str, package: str, receipt: str
) -> dict[str, Any]:
    """Credit a coin package paid with ``receipt``; one receipt id credits once, for anyone.

    The verifier turns the receipt into its receipt id before anything touches the store.
    Then two single-slot steps, both by receipt id (a receipt re-signed at another time has
    the same id): claim the id for (user, package) in the id's shard, then credit the
    wallet idempotently by the id. A crash between them is finished by the client's retry.

    Raises:
        NotFound: Unknown package.
        InvalidReceipt: The verifier does not accept the receipt (nothing was written).
        IdempotencyConflict: The receipt id was used by someone else or for another package.
        AgeRestricted: The account is flagged as a minor (nothing was written).
    """
    pkg = b.catalog.packages.get(package)
    if pkg is None:
        raise NotFound(f"unknown package {package!r}")
    rid = verifier.verify(user, package, receipt)
    async with store_errors():
        if await b.redis.hexists(b.user(user).wallet, "minor"):  # services/refunds.py
            raise AgeRestricted("this account is flagged as a minor: it cannot buy coins")
    rshard = b.shard(shard_of(rid, b.settings.shards))
    claim = await b.run("claim_receipt", [rshard.receipt(rid)], [f"{user}|{package}", now_ms()])
    if claim != "ok":
        raise IdempotencyConflict("this receipt was already used")
    return await _credit(
        b,
        user,
        pkg.coins,
        "purchase",
        RECEIPT_KEY_PREFIX + rid,
        rid,
        args_hash("buy_coins", {"package": package, "receipt": rid}),
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
            keys.wallet_channel,
        ],
    )
    if status == "conflict":
        raise IdempotencyConflict()
    if status == "overflow":
        raise LimitExceeded(f"a balance cannot pass {MAX_COINS} coins (you have {reply})")
    result: dict[str, Any] = orjson.loads(reply)
    return result


async def first_result(b: Backend, user: str, key: str, digest: str) -> dict[str, Any] | None:
    """The kept reply of an earlier movement by ``user`` with ``key`` and these arguments.

    A retry must get the first result even when the op could no longer start now (the
    room closed, the sender left): answering with that error would say nothing moved.
    None when the key was not used with these arguments (unused, other arguments, aborted).
    """
    prior = await _key_record(b, user, key)
    if prior is None or prior[0] != digest:
        return None
    result: dict[str, Any] = orjson.loads(prior[1])
    return result


async def _key_record(b: Backend, user: str, key: str) -> tuple[str, str] | None:
    """``user``'s record of ``key``: (args hash, first reply), or None when it has none."""
    async with store_errors():
        prior = await b.redis.get(b.user(user).idem(key))
    if prior is None:
        return None
    head, _, reply = prior.partition("\n")
    return head, reply


async def used_otherwise(b: Backend, user: str, key: str, digest: str) -> bool:
    """Whether ``user``'s ``key`` holds the record of a movement with other arguments (a
    step that refuses before it reaches the key, such as a sold-out purchase, answers
    ``idempotency_conflict`` then, as the debit would)."""
    prior = await _key_record(b, user, key)
    return prior is not None and prior[0] != digest


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
    exp: int,
    params: tuple[Any, Any] = (0, 0),
    reply: dict[str, Any] | None = None,
) -> tuple[bool, dict[str, Any], int]:
    """Debit ``amount`` coins for a gift, subscription or purchase, exactly once per key.

    The same step appends the movement to the settlement outbox and the ledger and keeps
    the reply under the key until ``exp``, the key generation's expiry (unix ms) that the
    request's first step fixed (see :func:`generation_expiry`).

    Returns:
        (fresh, reply, exp): fresh is False when the key was used before (nothing moved
        now); exp is the expiry of the generation the reply belongs to.

    Raises:
        IdempotencyConflict: Same key, other arguments.
        InsufficientFunds: Not enough coins.
        LimitExceeded: Over the rolling-day spend limit.
        KeyExpired: ``exp`` passed before the debit (nothing moved).
        AgeRestricted: The account is flagged as a minor (nothing moved).
    """
    step = spend_step(
        b,
        user,
        kind=kind,
        amount=amount,
        key=key,
        digest=digest,
        payload=payload,
        extra_key=extra_key,
        exp=exp,
        params=params,
        reply=reply,
    )
    status, out, gen = await b.run("spend", *step)
    return spend_outcome(b, amount, status, out, gen)


def spend_step(
    b: Backend,
    user: str,
    *,
    kind: str,
    amount: int,
    key: str,
    digest: str,
    payload: dict[str, Any],
    extra_key: str,
    exp: int,
    params: tuple[Any, Any] = (0, 0),
    reply: dict[str, Any] | None = None,
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of ``spend.lua`` for :func:`spend` (also the first step of
    ``gift.lua``)."""
    keys = b.user(user)
    return (
        [
            keys.wallet,
            keys.idem(key),
            keys.shard.outbox,
            keys.shard.ledger,
            keys.spent,
            extra_key,
            keys.shard.wallets,
            keys.spends,
        ],
        [
            digest,
            amount,
            now_ms(),
            b.settings.day_limit,
            exp,
            kind,
            user,
            key,
            orjson.dumps(payload).decode(),
            orjson.dumps(reply or {}).decode(),
            params[0],
            params[1],
            keys.wallet_channel,
        ],
    )


def spend_outcome(
    b: Backend, amount: int, status: str, out: str, gen: int
) -> tuple[bool, dict[str, Any], int]:
    """What :func:`spend` returns for ``spend.lua``'s reply, or the error it raises."""
    raise_refusal(b, status, out, amount)
    return status == "ok", orjson.loads(out), int(gen)


def raise_refusal(b: Backend, status: str, out: str, amount: int) -> None:
    """Turn a refused debit (``spend.lua``, ``sub_pay.lua``, ``sub_gift.lua``: the checks of
    ``debit_checks.lua``) into its protocol error; nothing for a debit that went through.

    Raises:
        IdempotencyConflict, InsufficientFunds, LimitExceeded, KeyExpired, AgeRestricted:
            As ``status``.
    """
    if status == "conflict":
        raise IdempotencyConflict()
    if status == "insufficient":
        owed = " (a refund took back coins already spent)" if int(out) < 0 else ""
        raise InsufficientFunds(f"this costs {amount} coins; you have {out}{owed}")
    if status == "limit":
        raise LimitExceeded(
            f"daily spend limit of {b.settings.day_limit} coins reached ({out} spent today)"
        )
    if status == "expired":
        raise KeyExpired()
    if status == "minor":
        raise AgeRestricted("this account is flagged as a minor: it cannot spend money")


def generation_expiry(b: Backend) -> int:
    """The expiry (unix ms) of a key generation that starts now: every record derived from
    the key dies then, together with its idempotency record."""
    return now_ms() + b.settings.idempotency_ttl * 1000
