"""Concurrency: 20 clients x 200 keyed gifts to one creator at once. Balances, diamonds,
the room's gift events and the audit must come out exact; the throughput is reported."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import pytest

from tests.client import JSON, MSGPACK, Client
from tests.conftest import ServerFactory
from tests.timing import scaled

CLIENTS = 20
GIFTS_EACH = 200
PRICES = {"rose": 1, "finger_heart": 5, "panda": 5, "rainbow_puke": 100}


def plan(i: int) -> list[tuple[str, int]]:
    """Client i's gifts: (gift, count), deterministic."""
    rng = random.Random(i)
    gifts = list(PRICES)
    return [(rng.choice(gifts), rng.randint(1, 3)) for _ in range(GIFTS_EACH)]


async def test_twenty_clients_two_hundred_gifts_each(
    make_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # no hype train: the room log is to hold exactly the gifts (trains: test_live_match.py)
    server = await make_server(ops_per_second=100_000, ops_burst=100_000, hype_viewers=0)
    creator = await server.connect("creator", "creator")
    await creator.ok("room_open", room="stage", title="big night")
    await creator.ok("join", room="stage")
    observer = await server.connect("observer", codec=MSGPACK)
    await observer.ok("join", room="stage")

    users = [f"fan{i:02d}" for i in range(CLIENTS)]
    plans = {u: plan(i) for i, u in enumerate(users)}
    spend = {u: sum(PRICES[g] * n for g, n in plans[u]) for u in users}
    leftover = {u: i for i, u in enumerate(users)}  # every fan ends with a different balance
    for u in users:
        await server.grant(u, spend[u] + leftover[u], key=f"load-{u}")
    fans: dict[str, Client] = {}
    for i, u in enumerate(users):
        fans[u] = await server.connect(u, codec=(JSON, MSGPACK)[i % 2])
        await fans[u].ok("join", room="stage")

    async def send_all(u: str) -> list[dict[str, Any]]:
        c = fans[u]
        return [
            await c.call("gift", room="stage", gift=g, count=n, key=f"{u}-{k}")
            for k, (g, n) in enumerate(plans[u])
        ]

    start = time.perf_counter()
    results = await asyncio.gather(*(send_all(u) for u in users))
    elapsed = time.perf_counter() - start
    total_gifts = CLIENTS * GIFTS_EACH
    rate = total_gifts / elapsed
    with capsys.disabled():
        print(
            f"\n[concurrency] {CLIENTS} clients x {GIFTS_EACH} keyed gifts = {total_gifts} "
            f"in {elapsed:.2f} s: {rate:.0f} gifts/s (server and clients in one process)"
        )

    # every reply is a success with the running balance, and ends at the leftover
    for u, replies in zip(users, results, strict=True):
        assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
        balances = [r["coins"] for r in replies]
        expected, left = [], spend[u] + leftover[u]
        for g, n in plans[u]:
            left -= PRICES[g] * n
            expected.append(left)
        assert balances == expected
        assert all(r["combo"] >= n for r, (_, n) in zip(replies, plans[u], strict=True))
        assert (await fans[u].ok("wallet"))["coins"] == leftover[u]

    # the observer saw every gift once, in seq order, with no gap
    last_seq = 1 + total_gifts
    await observer.wait(lambda: max(observer.seqs("stage"), default=0) >= last_seq, timeout=30)
    await asyncio.sleep(scaled(0.2))
    events = [e for e in observer.events if e["ev"] == "gift"]
    assert [e["seq"] for e in events] == list(range(2, last_seq + 1))
    assert Counter(e["from"] for e in events) == dict.fromkeys(users, GIFTS_EACH)
    coins_by_fan = Counter[str]()
    for e in events:
        coins_by_fan[e["from"]] += e["coins"]
        assert e["coins"] == PRICES[e["gift"]] * e["count"]
    assert dict(coins_by_fan) == spend
    # each fan's events are in the order it sent them
    for u in users:
        mine = [(e["gift"], e["count"]) for e in events if e["from"] == u]
        assert mine == plans[u]

    # the leaderboard: the top ten spenders, largest first
    top = (await observer.ok("join", room="stage"))["top"]
    assert len(set(spend.values())) == CLIENTS  # no ties, so the order is exact
    ranked = sorted(users, key=lambda u: -spend[u])[:10]
    assert top == [[u, spend[u]] for u in ranked]

    # the creator's diamonds after settlement: floor(total x 50%), remainders carried
    total = sum(spend.values())
    await server.settle(timeout=30)
    assert (await creator.ok("wallet"))["diamonds"] == total * 5000 // 10_000
    await creator.event("wallet", lambda e: e["diamonds"] == total // 2, timeout=10)

    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["coins_conserved"]["credited"] == total + sum(leftover.values())
    assert checks["coins_conserved"]["spent"] == total
    assert checks["coins_conserved"]["held"] == sum(leftover.values())
    assert checks["settled_exactly_once"]["outbox_entries"] == total_gifts
    assert checks["settled_exactly_once"]["backlog"] == 0
    assert checks["diamonds_accounted"]["diamonds_credited"] == total // 2
    assert checks["idempotency"]["keyed_movements"] == total_gifts + CLIENTS

    # a replay storm of every 10th key moves nothing and returns the first results
    async def replay(u: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        c, out = fans[u], []
        for k in range(0, GIFTS_EACH, 10):
            g, n = plans[u][k]
            again = await c.call("gift", room="stage", gift=g, count=n, key=f"{u}-{k}")
            out.append((again, results[users.index(u)][k]))
        return out

    for pairs in await asyncio.gather(*(replay(u) for u in users)):
        for again, first in pairs:
            assert {k: v for k, v in again.items() if k != "id"} == {
                k: v for k, v in first.items() if k != "id"
            }
    for u in users:
        assert (await fans[u].ok("wallet"))["coins"] == leftover[u]
    await asyncio.sleep(scaled(0.2))
    assert len([e for e in observer.events if e["ev"] == "gift"]) == total_gifts
    assert (await server.audit())["ok"]
