"""Treasure boxes: a user drops coins into a room with a countdown, viewers claim during
it, and when it opens the coins are split among the claimers (or go back to the dropper).

A drop crosses slots, as a chain of idempotent single-slot steps keyed by the box id
(a hash of dropper, key and key generation, so a retry names the same box):

1. the dropper's debit (``spend.lua``, kind ``box``, in the dropper's shard; its outbox
   entry names the room and the box);
2. the box in the room (``box_create.lua``), its place in the due index (``BOX_DUE``) and
   the logged ``box_drop`` event. The op runs it right after the debit; the settlement
   worker runs it again for every ``box`` outbox entry, so a crash between the steps is
   finished without the client;
3. at the opening time (the store's clock), whichever settlement worker of any node
   finds the box due first opens it (``box_open.lua`` decides the split exactly once and
   keeps it), credits each share (``credit.lua``, idempotent per user by the box id),
   logs ``box_opened``, marks the box paid and drops it from the due index. Any step cut
   short is done again by the next worker tick: the split is read back, credits already
   made answer ``dup``.

The split rule (:func:`split_box`): every claimer gets ``coins // n``; the remainder
``coins % n`` goes one coin each to the earliest claimers; nobody claimed: everything back
to the dropper. The shares always add up to the box.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import orjson

from ..errors import BadRequest, BoxClosed, Forbidden, LimitExceeded, NotFound, NotLive
from ..settings import Settings
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..store.keys import BOX_DUE, RoomKeys
from . import wallet
from .rooms import RoomInfo, event, log_event

log = logging.getLogger(__name__)

CREDIT_KEY_PREFIX = "box:"
DUE_BATCH = 100  # due boxes one index shard yields per worker tick


def split_box(coins: int, claimers: list[str], dropper: str) -> list[tuple[str, int]]:
    """The shares of a box of ``coins`` (sans-I/O; ``box_open.lua`` applies the same rule).

    Args:
        coins: The box's coins (> 0).
        claimers: The claimers in claim order (earliest first), each once.
        dropper: Who dropped it: gets everything when nobody claimed.

    Returns:
        ``[(user, coins)]`` in claim order; the coins add up to ``coins`` exactly. A
        claimer may get 0 when the box holds fewer coins than claimers.
    """
    if not claimers:
        return [(dropper, coins)]
    share, rest = divmod(coins, len(claimers))
    return [(u, share + (1 if i < rest else 0)) for i, u in enumerate(claimers)]


def check_seconds(settings: Settings, seconds: int) -> None:
    """Raises BadRequest unless ``seconds`` is within the countdown range."""
    lo, hi = settings.box_min_seconds, settings.box_max_seconds
    if not lo <= seconds <= hi:
        raise BadRequest(f"seconds must be between {lo} and {hi}")


def box_id(user: str, key: str, exp: int) -> str:
    """The box dropped with ``key`` in the key generation ending at ``exp``."""
    return "b" + hashlib.sha1(f"{user}\n{key}\n{exp}".encode()).hexdigest()[:16]


def drop_digest(room: str, coins: int, seconds: int) -> str:
    return args_hash("box_drop", {"room": room, "coins": coins, "seconds": seconds})


def _due_member(room: str, box: str) -> str:
    return f"{room}|{box}"


async def drop(
    b: Backend, user: str, room: str, info: RoomInfo | None, coins: int, seconds: int, key: str
) -> dict[str, Any]:
    """Drop a box of ``coins`` into ``room`` (joined, live), opening in ``seconds``.

    A retry with the same key answers the first result, whatever the room is now.

    Returns:
        ``{box, opens_at (unix ms), coins (the dropper's balance)}``.

    Raises:
        Forbidden: Not in the room. NotLive: The room is not live. BadRequest: ``seconds``
        out of range. LimitExceeded: The room has ``box_max_open`` boxes open (when two
        drops race for the last place, the loser is refunded before this reply).
        InsufficientFunds, LimitExceeded, IdempotencyConflict: from the debit.
    """
    check_seconds(b.settings, seconds)
    digest = drop_digest(room, coins, seconds)
    try:
        if info is None:
            raise Forbidden("join the room first")
        if not info.live:
            raise NotLive()
        if await _open_count(b, room) >= b.settings.box_max_open:
            raise LimitExceeded(f"at most {b.settings.box_max_open} open boxes per room")
    except (Forbidden, NotLive, LimitExceeded):
        first = await wallet.first_result(b, user, key, digest)
        if first is None:
            raise
        reply = first
    else:
        exp = wallet.generation_expiry(b)
        bid = box_id(user, key, exp)
        _, reply, exp = await wallet.spend(
            b,
            user,
            kind="box",
            amount=coins,
            key=key,
            digest=digest,
            payload={"room": room, "box": bid, "seconds": seconds, "e": [], "x": exp},
            extra_key=b.user(user).wallet,
            exp=exp,
            reply={"box": bid},
        )
    bid = reply["box"]
    state, opens, reason = await ensure_box(b, room, bid, user, coins, seconds)
    if state == "refund" or reason:
        await open_box(b, room, bid)  # the refund is made before the refusal is answered
        if reason == "not_live":
            raise NotLive("the room closed before the box was placed; your coins are back")
        raise LimitExceeded(f"at most {b.settings.box_max_open} open boxes; your coins are back")
    return {"box": bid, "opens_at": opens, "coins": reply["coins"]}


async def _open_count(b: Backend, room: str) -> int:
    async with store_errors():
        return int(await b.redis.zcard(RoomKeys(room).boxes))


async def ensure_box(
    b: Backend, room: str, box: str, dropper: str, coins: int, seconds: int
) -> tuple[str, int, str]:
    """Step 2 of a drop (after the debit): the box in the room, in the due index, and its
    ``box_drop`` event; every part idempotent by the box id.

    Returns:
        (state, opens_at, reason): reason ``not_live`` or ``full`` when the box was refused
        (it is refunded at once by the worker, or by :func:`drop`).
    """
    k = RoomKeys(room)
    _, state, opens, reason = await b.run(
        "box_create",
        [k.meta, k.boxes, k.box(box)],
        [box, dropper, coins, seconds, b.settings.box_max_open],
    )
    opens = int(opens)
    async with store_errors():
        await b.redis.zadd(BOX_DUE.key_for(box), {_due_member(room, box): opens})
    if not reason:
        ev = event("box_drop", room, box=box, coins=coins, opens_at=opens, **{"from": dropper})
        await log_event(b, room, ev, evid="bd:" + box)
    return str(state), opens, str(reason)


async def claim(b: Backend, user: str, room: RoomInfo, box: str) -> dict[str, Any]:
    """Claim a share of an open box of a room the caller joined; a repeat answers the
    first claim.

    Returns:
        ``{box, order}``: the caller's place among the claimers (1 = first).

    Raises:
        NotFound: No such box in the room. BoxClosed: Its countdown is over.
        Forbidden: The dropper's own box. LimitExceeded: ``box_max_claimers`` reached.
    """
    k = RoomKeys(room.room)
    status, order, _ = await b.run(
        "box_claim", [k.box(box), k.box_claims(box)], [user, b.settings.box_max_claimers]
    )
    if status == "not_found":
        raise NotFound(f"no box {box!r} in this room")
    if status == "closed":
        raise BoxClosed()
    if status == "forbidden":
        raise Forbidden("you cannot claim your own box")
    if status == "full":
        raise LimitExceeded(f"this box has its {b.settings.box_max_claimers} claimers")
    return {"box": box, "order": int(order)}


async def open_box(b: Backend, room: str, box: str) -> bool:
    """Open a box whose time has come and pay its shares; safe to run any number of times,
    on any node, concurrently.

    Returns:
        True when the box is paid out (now or before); False when it is not due yet.
    """
    k = RoomKeys(room)
    status, split_json, dropper, coins = await b.run(
        "box_open", [k.box(box), k.box_claims(box), k.boxes], [box]
    )
    if status == "early":
        return False
    if status == "opened":
        split = [(str(u), int(c)) for u, c in orjson.loads(split_json)]
        await asyncio.gather(
            *(
                wallet._credit(
                    b,
                    user,
                    c,
                    "box",
                    CREDIT_KEY_PREFIX + box,
                    box,
                    args_hash("box_share", {"box": box, "coins": c}),
                    keep=False,
                )
                for user, c in split
                if c > 0
            )
        )
        refunded = len(split) == 1 and split[0][0] == dropper
        ev = event(
            "box_opened",
            room,
            box=box,
            coins=int(coins),
            split=[[u, c] for u, c in split],
            refunded=refunded,
            **{"from": dropper},
        )
        await log_event(b, room, ev, evid="bo:" + box)
        ttl = b.settings.idempotency_ttl
        async with store_errors():
            await b.redis.hset(k.box(box), "state", "paid")
            await b.redis.expire(k.box(box), ttl)
            await b.redis.expire(k.box_claims(box), ttl)
    async with store_errors():  # paid (now or before), or gone
        await b.redis.zrem(BOX_DUE.key_for(box), _due_member(room, box))
    return True


async def open_due(b: Backend) -> int:
    """Open every box that is due, in every due-index shard (the settlement worker calls
    this each upkeep tick). Returns the boxes paid out."""
    now = now_ms()
    async with store_errors():
        found = await asyncio.gather(
            *(
                b.redis.zrangebyscore(key, "-inf", now, start=0, num=DUE_BATCH)
                for key in BOX_DUE.keys
            )
        )
    due = [str(m).partition("|")[::2] for rows in found for m in rows]
    done = await asyncio.gather(
        *(open_box(b, room, box) for room, box in due), return_exceptions=True
    )
    failed = [(d, r) for d, r in zip(due, done, strict=True) if isinstance(r, BaseException)]
    for (room, box), exc in failed:  # each is tried again at the next tick
        log.warning("treasure box %s in room %s not paid out yet: %r", box, room, exc)
    if failed and all(isinstance(r, BaseException) for r in done):
        raise failed[0][1]  # the store is away: the worker's back-off and outage log apply
    return sum(1 for r in done if r is True)


async def join_view(b: Backend, room: str) -> list[dict[str, Any]]:
    """The room's open boxes for a ``join`` reply: ``{box, from, coins, opens_at,
    claimers}``, soonest first."""
    k = RoomKeys(room)
    async with store_errors():
        rows = await b.redis.zrange(k.boxes, 0, -1, withscores=True)
        if not rows:
            return []
        pipe = b.redis.pipeline(transaction=False)
        for box, _ in rows:
            pipe.hmget(k.box(box), "dropper", "coins", "n")
        metas = await pipe.execute()
    return [
        {
            "box": box,
            "from": dropper,
            "coins": int(coins or 0),
            "opens_at": int(opens),
            "claimers": int(n or 0),
        }
        for (box, opens), (dropper, coins, n) in zip(rows, metas, strict=True)
        if dropper is not None
    ]


def dropped(outbox: list[tuple[int, str, dict[str, str]]]) -> list[tuple[str, str]]:
    """(room, box) of every box debit in outbox entries (as the audit reads them)."""
    out = []
    for _, _, f in outbox:
        if f.get("kind") == "box":
            p = orjson.loads(f["p"])
            out.append((str(p["room"]), str(p["box"])))
    return out


async def states(b: Backend, boxes: list[tuple[str, str]]) -> dict[str, str]:
    """Box id -> its state (open, refund, opened, paid) for the audit; a box without a
    record (never placed, or expired after it was paid) is left out."""
    if not boxes:
        return {}
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for room, box in boxes:
            pipe.hget(RoomKeys(room).box(box), "state")
        rows = await pipe.execute()
    return {box: str(s) for (_, box), s in zip(boxes, rows, strict=True) if s is not None}
