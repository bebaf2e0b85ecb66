"""What one outbox entry owes, and the store steps that pay it.

:func:`credits_for` (sans-I/O) turns an entry into one :class:`Credit` per earner, each with
a ref unique to the entry and earner, so ``settle.lua`` applies it once however often the
entry is read. :class:`EntrySettler` settles a batch of entries at once: the earners'
credits of all of them (on a store that is not a cluster, up to 64 credits per
``settle_batch.lua`` call, with no task or future per entry), and the few other steps some
entries owe: the room event if it was never logged (:mod:`livesrv.settlement_events`), a
treasure box's placement, a paid purchase's sold mark; then it counts the entries in the
metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import orjson

from .metrics import Metrics
from .services import shop, treasure
from .settlement_events import event_step
from .store.facade import Backend, now_ms
from .store.keys import ShardKeys, UserKeys


@dataclass(frozen=True)
class Credit:
    """One earner's share of one outbox entry."""

    earner: str
    kind: str
    bps: int
    coins: int
    ref: str


def credits_for(
    shard: int, entry_id: str, fields: dict[str, str], payload: dict[str, Any] | None = None
) -> list[Credit]:
    """The credits an outbox entry owes (sans-I/O); ``payload``: its ``p`` field decoded."""
    if payload is None:
        payload = orjson.loads(fields["p"])
    coins = int(fields["coins"])
    return [
        Credit(earner, kind, int(bps), coins, f"{shard}:{entry_id}:{i}")
        for i, (earner, kind, bps) in enumerate(payload["e"])
    ]


def diamonds_for(earned_coins: int, bps: int) -> int:
    """floor(coins x bps / 10000): what ``settle.lua`` credits in total per earner and kind."""
    return earned_coins * bps // 10_000


class EntrySettler:
    """Settles batches of outbox entries: every step each entry owes, at once.

    Args:
        b: The store.
        metrics: Where settled entries are counted (None: nowhere).
    """

    BATCH = 64  # credits per settle_batch.lua call at most (a call holds the store)

    def __init__(self, b: Backend, metrics: Metrics | None = None) -> None:
        self.b = b
        self.metrics = metrics

    async def settle(
        self, entries: list[tuple[ShardKeys, str, dict[str, str]]]
    ) -> list[BaseException | None]:
        """Settle ``entries`` (outbox shard, id, fields): the credits of all of them
        in as few store calls as the store allows (on a store that is not a cluster, one
        ``settle_batch.lua`` call per ``BATCH`` credits; on a cluster one ``settle.lua`` per
        credit, each in its earner's slot), with the few other steps some entries owe.

        Returns:
            Per entry, None when it is settled, else what failed (it stays unacknowledged
            and is settled again later: every step is idempotent).
        """
        others: list[tuple[int, Awaitable[Any]]] = []
        credits: list[tuple[int, list[str], list[Any]]] = []  # (entry, keys, args)
        tally = _Tally(entries)
        now = now_ms()
        for i, (shard, entry_id, fields) in enumerate(entries):
            try:  # an entry that cannot be read fails alone: the others settle
                payload = orjson.loads(fields["p"])
                owed = [
                    self._credit_step(c, now)
                    for c in credits_for(shard.shard, entry_id, fields, payload)
                ]
                steps = self._other_steps(payload, fields)  # coroutines: made last
            except Exception as exc:
                tally.add(i, exc)
                continue
            others.extend((i, step) for step in steps)
            credits.extend((i, keys, args) for keys, args in owed)
        calls: list[Awaitable[Any]] = [step for _, step in others]
        spans = self._credit_calls(credits, calls)
        results = await asyncio.gather(*calls, return_exceptions=True)
        for (i, _), result in zip(others, results, strict=False):
            tally.add(i, result)
        for span, result in zip(spans, results[len(others) :], strict=True):
            # settle.lua answers one credit; settle_batch.lua a list, one per credit
            if self.b.is_cluster or isinstance(result, BaseException):
                replies = [result] * len(span)
            else:
                replies = result
            for j, reply in zip(span, replies, strict=True):
                tally.add(credits[j][0], reply)
        if self.metrics is not None:
            self._count(entries, tally)
        return tally.failed

    def _credit_step(self, c: Credit, now: int) -> tuple[list[str], list[Any]]:
        """The keys and arguments of ``settle.lua`` for one credit."""
        ek = UserKeys.of(c.earner, self.b.settings.shards)
        keys = [ek.wallet, ek.shard.applied, ek.shard.ledger, ek.holds, ek.shard.holdq]
        keys.append(ek.shard.wallets)
        args = [c.ref, c.kind, c.coins, c.bps, self.b.settings.hold_ms, now, c.earner]
        args.append(ek.wallet_channel)
        return keys, args

    def _credit_calls(
        self, credits: list[tuple[int, list[str], list[Any]]], calls: list[Awaitable[Any]]
    ) -> list[range]:
        """Add the store calls of ``credits`` to ``calls``; the credits each one answers for."""
        spans: list[range] = []
        if self.b.is_cluster:  # a batch would name keys of many slots
            for j, (_, keys, args) in enumerate(credits):
                calls.append(self.b.run("settle", keys, args))
                spans.append(range(j, j + 1))
            return spans
        for lo in range(0, len(credits), self.BATCH):
            part = credits[lo : lo + self.BATCH]
            batch_args: list[Any] = [len(part[0][1]), len(part[0][2])]
            for _, _, args in part:
                batch_args.extend(args)
            calls.append(
                self.b.run("settle_batch", [k for _, ks, _ in part for k in ks], batch_args)
            )
            spans.append(range(lo, lo + len(part)))
        return spans

    def _other_steps(self, payload: dict[str, Any], fields: dict[str, str]) -> list[Awaitable[Any]]:
        """What an entry owes besides its credits (most owe nothing else)."""
        steps: list[Awaitable[Any]] = []
        logging = event_step(self.b, payload, fields)
        if logging is not None:
            steps.append(logging)
        if fields["kind"] == "box":  # -- treasure box: put the box in its room, if not yet --
            box_args = (payload["room"], payload["box"], fields["user"], int(fields["coins"]))
            steps.append(treasure.ensure_box(self.b, *box_args, int(payload["seconds"])))
        if fields["kind"] == "shop" and "ref" in payload:
            # a paid purchase's reservation is sold: the proof that outlives the key's records
            steps.append(shop.mark_sold(self.b, payload["product"], payload["ref"], payload["x"]))
        return steps

    def _count(self, entries: list[tuple[ShardKeys, str, dict[str, str]]], tally: _Tally) -> None:
        """Count the settled entries of a batch: one update per counter and kind per batch
        (each is a shared-memory write under ``--workers`` or a settlement process), one
        lag observation per entry."""
        assert self.metrics is not None
        now = now_ms()
        settled = clawed = series = 0
        spent: dict[str, int] = {}
        for i, (_, entry_id, fields) in enumerate(entries):
            if tally.failed[i] is not None:
                continue
            settled += 1
            kind = fields["kind"]
            if kind == "clawback":
                clawed += max(0, tally.clawed[i])
            else:
                spent[kind] = spent.get(kind, 0) + int(fields["coins"])
            if kind == "series":  # -- series --
                series += 1
            self.metrics.settle_lag.observe(max(0, now - int(entry_id.split("-")[0])) / 1000)
        if settled:
            self.metrics.settled.inc(settled)
        if clawed:
            self.metrics.diamonds_clawed.inc(clawed)
        if series:
            self.metrics.series_sales.inc(series)
        for kind, coins in spent.items():
            self.metrics.coins_spent.labels(kind).inc(coins)


class _Tally:
    """What each entry of a batch came to: its first failure, and the diamonds a
    clawback entry took back."""

    def __init__(self, entries: list[tuple[ShardKeys, str, dict[str, str]]]) -> None:
        self.entries = entries
        self.failed: list[BaseException | None] = [None] * len(entries)
        self.clawed = [0] * len(entries)

    def add(self, i: int, result: Any) -> None:
        """One step's result for entry ``i`` (a reply or the exception it raised)."""
        if isinstance(result, BaseException):
            self.failed[i] = self.failed[i] or result
        elif isinstance(result, list) and int(result[0]) < 0:
            self.failed[i] = self.failed[i] or OverflowError(
                f"settling {self.entries[i][1]} would pass 2^53 - 1 in an earner's wallet; refused"
            )
        elif isinstance(result, list):
            self.clawed[i] -= int(result[1])
