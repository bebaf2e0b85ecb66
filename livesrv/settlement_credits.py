"""What one outbox entry owes, and the store steps that pay it.

:func:`credits_for` (sans-I/O) turns an entry into one :class:`Credit` per earner, each with
a ref unique to the entry and earner, so ``settle.lua`` applies it once however often the
entry is read. :class:`EntrySettler` runs every step an entry owes at once: the earners'
credits (on a store that is not a cluster, the credits of one loop iteration go to the store
together as one ``settle_batch.lua`` call), the room event if it was never logged
(:mod:`livesrv.settlement_events`), a treasure box's placement and a paid purchase's sold
mark; then it counts the entry in the metrics.
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
from .store.batching import StepBatcher
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


def credits_for(shard: int, entry_id: str, fields: dict[str, str]) -> list[Credit]:
    """The credits an outbox entry owes (sans-I/O)."""
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
    """Settles single outbox entries: every step an entry owes, concurrently.

    Args:
        b: The store.
        metrics: Where settled entries are counted (None: nowhere).
    """

    def __init__(self, b: Backend, metrics: Metrics | None = None) -> None:
        self.b = b
        self.metrics = metrics
        # the credits of a batch go to the store together (one store: one script call)
        self._credits = None if b.is_cluster else StepBatcher(b.run, "settle_batch")

    async def settle_entry(self, shard: ShardKeys, entry_id: str, fields: dict[str, str]) -> None:
        payload = orjson.loads(fields["p"])
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
        now = now_ms()
        for c in credits_for(shard.shard, entry_id, fields):
            ek = UserKeys.of(c.earner, self.b.settings.shards)
            steps.append(
                self._settle(
                    [
                        ek.wallet,
                        ek.shard.applied,
                        ek.shard.ledger,
                        ek.holds,
                        ek.shard.holdq,
                        ek.shard.wallets,
                    ],
                    [
                        c.ref,
                        c.kind,
                        c.coins,
                        c.bps,
                        self.b.settings.hold_ms,
                        now,
                        c.earner,
                        ek.wallet_channel,
                    ],
                )
            )
        clawed = 0  # a clawback entry (services/refunds.py) credits negative diamonds
        for result in await asyncio.gather(*steps):
            if isinstance(result, list) and int(result[0]) < 0:
                raise OverflowError(
                    f"settling {entry_id} would pass 2^53 - 1 in an earner's wallet; refused"
                )
            if fields["kind"] == "clawback" and isinstance(result, list):
                clawed -= int(result[1])
        if self.metrics is not None:
            self.metrics.settled.inc()
            if fields["kind"] == "clawback":
                self.metrics.diamonds_clawed.inc(max(0, clawed))
            else:
                self.metrics.coins_spent.labels(fields["kind"]).inc(int(fields["coins"]))
            if fields["kind"] == "series":  # -- series --
                self.metrics.series_sales.inc()
            self.metrics.settle_lag.observe(max(0, now_ms() - int(entry_id.split("-")[0])) / 1000)

    def _settle(self, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        """One credit (``settle.lua``); with the others of this loop iteration in one
        ``settle_batch.lua`` call when the store is not a cluster."""
        if self._credits is None:
            return self.b.run("settle", keys, args)
        return self._credits.run(keys, args)
