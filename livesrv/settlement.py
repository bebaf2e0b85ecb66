"""The settlement worker: turns spends in the outbox streams into creator diamonds.

It reads every shard's outbox as the consumer group ``settle``, credits each earner once
per entry (``settle.lua`` keeps the applied refs), acknowledges, claims entries a dead
worker left pending (XAUTOCLAIM) and removes the consumers of dead workers once they
hold nothing. Every command names one shard's outbox, so it works on a cluster. A gift,
subscription or purchase whose room event was never logged (a crash between the debit and
the log) is logged here, so nothing paid for goes unseen. It also releases matured holds
and finishes abandoned shop reservations.

This module is the worker: its loops, reading, claiming and acknowledging the outbox.
What one entry owes and the steps that pay it are in :mod:`livesrv.settlement_credits`,
the re-logging of unlogged events in :mod:`livesrv.settlement_events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from .errors import Unavailable
from .metrics import Metrics
from .services import match, shop, treasure
from .settlement_credits import EntrySettler
from .store.facade import STORE_DOWN, STORE_FAILURES, Backend, ReplyError, now_ms
from .store.keys import ShardKeys, UserKeys
from .store.outage import Backoff, Outage
from .store.pipeline import AutoPipeline

log = logging.getLogger(__name__)

GROUP = "settle"


class SettlementWorker:
    """Settles every outbox shard as one consumer of the group ``settle``.

    On a standalone store one blocking XREADGROUP reads every shard's outbox at once. On a
    cluster a command may not name keys of two slots, so each shard is read by its own
    blocking XREADGROUP (one reader task per shard, each on the master owning the shard),
    and claims, acknowledgements and consumer clean-up are per shard too.
    """

    MAINTAIN_S = 0.25  # maintenance tick: holds about once a second, claims every 5 s
    OVERLAP = 4  # batches settling at once while the next is read
    # after a read that was not full, wait this long before the next: a busy outbox is read
    # in batches of what arrived meanwhile (tens of entries, one store call for their
    # credits) instead of a read, a settle call and an ack for every few entries
    PACE_S = 0.01

    def __init__(self, b: Backend, metrics: Metrics | None = None, name: str | None = None):
        self.b = b
        self.metrics = metrics
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.shards = b.all_shards()
        self._streams = {s.outbox: s for s in self.shards}
        self.stopping = False
        self.entries = EntrySettler(b, metrics)  # what one entry owes, paid

    def read_groups(self) -> list[list[ShardKeys]]:
        """The shards one XREADGROUP may read together: all of them on a standalone store,
        one each on a cluster (CROSSSLOT otherwise)."""
        if self.b.is_cluster:
            return [[s] for s in self.shards]
        return [self.shards]

    async def ensure_groups(self, shards: list[ShardKeys] | None = None) -> None:
        for s in self.shards if shards is None else shards:
            try:
                await self.b.redis.xgroup_create(s.outbox, GROUP, id="0", mkstream=True)
            except ReplyError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self) -> None:
        """Settle until cancelled; survives the store (or one master) going away and back."""
        with contextlib.suppress(*STORE_FAILURES):
            await self.b.ready()  # else the readers' first reads retry
        readers = [
            asyncio.create_task(self._read_loop(group), name=f"settle-read-{group[0].shard}")
            for group in self.read_groups()
        ]
        try:
            await self._maintain_loop()
        finally:
            for task in readers:
                task.cancel()
            for task in readers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _read_loop(self, shards: list[ShardKeys]) -> None:
        """Read batches and settle them, the next batch read while earlier ones settle (at
        most ``OVERLAP`` at once: credits commute and each is idempotent), so a busy node
        keeps up with its outbox instead of waiting a whole settle between two reads."""
        outage = Outage("settlement", log, self.b.settings.store_down_log_every)
        backoff = Backoff()
        ready = False
        settling: set[asyncio.Task[int]] = set()
        try:
            while not self.stopping:
                try:
                    if len(settling) >= self.OVERLAP:
                        await asyncio.wait(settling, return_when=asyncio.FIRST_COMPLETED)
                    for task in [t for t in settling if t.done()]:
                        settling.discard(task)
                        task.result()  # a batch's failure is handled below, as a read's
                    if not ready:
                        await self.ensure_groups(shards)
                        ready = True
                    resp = await self._fetch(shards, block_ms=250)
                    if resp:
                        settling.add(asyncio.create_task(self._settle_read(resp)))
                    outage.ok()
                    backoff.reset()
                    if resp and max(len(e) for _, e in resp) < self.b.settings.settle_batch:
                        await asyncio.sleep(self.PACE_S)
                except asyncio.CancelledError:
                    raise
                except STORE_DOWN as exc:
                    outage.failed(exc)
                    ready = False
                    await asyncio.sleep(backoff.next())
                except Exception:
                    log.exception("settlement step failed; retrying")
                    ready = False
                    await asyncio.sleep(0.5)
        finally:
            for task in settling:
                task.cancel()

    async def _maintain_loop(self) -> None:
        """Matured holds about once a second, abandoned entries and dead consumers every
        5 s, abandoned shop reservations every 50 s (all also right at start)."""
        ticks = 0
        outage = Outage("settlement upkeep", log, self.b.settings.store_down_log_every)
        backoff = Backoff()
        while not self.stopping:
            try:
                if ticks % 4 == 0:
                    await self.release_holds()
                opened = await treasure.open_due(self.b)  # -- treasure box: open what is due --
                if opened and self.metrics is not None:
                    self.metrics.boxes_opened.inc(opened)
                if ticks % 4 == 0:
                    await match.finish_due(self.b)  # -- live match: end what no node ended --
                if ticks % 20 == 0:
                    await self.ensure_groups()
                    await self.claim_abandoned()
                    await self.reap_consumers()
                if ticks % 200 == 0:
                    await shop.sweep(self.b)
                outage.ok()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except (*STORE_DOWN, Unavailable) as exc:
                outage.failed(exc)
                await asyncio.sleep(backoff.next())  # the same tick again, later
                continue
            except Exception:
                log.exception("settlement upkeep failed; retrying")
            ticks += 1
            await asyncio.sleep(self.MAINTAIN_S)

    async def step(self, block_ms: int | None = None) -> int:
        """Read and settle one batch of new entries of every shard. Returns entries settled."""
        counts = await asyncio.gather(*(self._read(g, block_ms) for g in self.read_groups()))
        return sum(counts)

    async def _read(self, shards: list[ShardKeys], block_ms: int | None) -> int:
        return await self._settle_read(await self._fetch(shards, block_ms))

    async def _fetch(self, shards: list[ShardKeys], block_ms: int | None) -> Any:
        return await self.b.redis.xreadgroup(
            GROUP,
            self.name,
            {s.outbox: ">" for s in shards},
            count=self.b.settings.settle_batch,
            block=block_ms,
        )

    async def _settle_read(self, resp: Any) -> int:
        """Settle what one read returned: every shard's entries in one batch (one read of a
        standalone store names every shard's outbox)."""
        return await self._settle_batches(
            [(self._streams[stream], entries) for stream, entries in resp or []]
        )

    async def claim_abandoned(self) -> int:
        """Take over entries another consumer read but never acknowledged (every shard)."""
        return sum(await asyncio.gather(*(self._claim_shard(s) for s in self.shards)))

    async def _claim_shard(self, s: ShardKeys) -> int:
        done = 0
        start = "0-0"
        while True:
            nxt, entries, *_ = await self.b.redis.xautoclaim(
                s.outbox,
                GROUP,
                self.name,
                self.b.settings.settle_claim_ms,
                start_id=start,
                count=self.b.settings.settle_batch,
            )
            done += await self._settle_entries(s, entries)
            if nxt in ("0-0", b"0-0") or not entries:
                return done
            start = nxt

    async def reap_consumers(self) -> list[str]:
        """Remove, from every shard's group, the consumers that hold no entries and have
        been idle for ``settle_reap_ms`` (workers of nodes that died or restarted).

        Returns:
            The names removed (a name once per shard it was removed from).
        """
        removed = await asyncio.gather(
            *(
                self.b.run(
                    "reap_consumers",
                    [s.outbox],
                    [GROUP, self.b.settings.settle_reap_ms, self.name],
                )
                for s in self.shards
            )
        )
        names = [str(n) for part in removed for n in part or []]
        if names:
            log.info("settlement: removed idle consumers %s", sorted(set(names)))
        return names

    async def drain(self) -> int:
        """Settle everything outstanding now, including other consumers' pending entries."""
        await self.b.ready()
        await self.ensure_groups()
        total = 0
        while True:
            n = await self.step(block_ms=None)
            total += n
            if n == 0:
                break
        for s in self.shards:
            pending = await self.b.redis.xpending_range(s.outbox, GROUP, "-", "+", 1000)
            for p in pending:
                entries = await self.b.redis.xclaim(
                    s.outbox, GROUP, self.name, 0, [p["message_id"]]
                )
                total += await self._settle_entries(s, entries)
        return total

    async def _settle_entries(self, shard: ShardKeys, entries: list[Any]) -> int:
        return await self._settle_batches([(shard, entries)])

    async def _settle_batches(self, batches: list[tuple[ShardKeys, list[Any]]]) -> int:
        """Settle the entries of some shards' outboxes as one batch
        (:meth:`EntrySettler.settle`), then acknowledge each shard's in one call. Credits
        commute, so their order does not matter; an entry whose step failed is not
        acknowledged (the others are) and is claimed again later; the first failure is raised
        after the acknowledgements."""
        batches = [(shard, entries) for shard, entries in batches if entries]
        if not batches:
            return 0
        # the debits read may not be on a replica yet: credit only what a failover keeps
        await asyncio.gather(*(self.b.replicated(shard.outbox) for shard, _ in batches))
        live = [(shard, i, f) for shard, entries in batches for i, f in entries if f]
        results = await self.entries.settle(live)
        failed = [r for r in results if r is not None]
        skip = {i for (_, i, _), r in zip(live, results, strict=True) if r is not None}
        acks = []
        for shard, entries in batches:
            done = [entry_id for entry_id, _ in entries if entry_id not in skip]
            if done:
                acks.append(self._ack(shard.outbox, done))
        await asyncio.gather(*acks)
        if failed:
            raise failed[0]
        return len(live)

    async def _ack(self, outbox: str, ids: list[str]) -> None:
        """Acknowledge settled entries: on the scripts' auto-pipelined connection when the
        store is not a cluster (no pool round trip per batch)."""
        pipeline = self.b.scripts.pipeline
        if isinstance(pipeline, AutoPipeline):
            await pipeline.execute("XACK", outbox, GROUP, *ids)
        else:
            await self.b.redis.xack(outbox, GROUP, *ids)

    async def release_holds(self) -> int:
        """Move matured holds to available diamonds for every earner that has one due."""
        released = 0
        now = now_ms()
        for s in self.shards:
            users = await self.b.redis.zrangebyscore(s.holdq, "-inf", now)
            for user in users:
                k = UserKeys.of(user, self.b.settings.shards)
                released += int(
                    await self.b.run(
                        "release",
                        [k.wallet, k.holds, s.holdq, s.ledger],
                        [now, user, k.wallet_channel],
                    )
                )
        return released

    async def backlog(self) -> int:
        """Entries not yet settled: never delivered (lag) plus delivered but unacknowledged."""
        total = 0
        for s in self.shards:
            with contextlib.suppress(ReplyError):
                for g in await self.b.redis.xinfo_groups(s.outbox):
                    if g["name"] == GROUP:
                        total += int(g.get("lag") or 0) + int(g.get("pending") or 0)
        return total
