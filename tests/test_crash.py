"""Crash tests: SIGKILL a real ``livesrv serve`` while many clients move money with keys.

After the kill, serve is started again on the same data dir (it must recover the embedded
store by itself: one that shut down with it, or one killed too, leaving a stale pid file
and socket), every key that was not acknowledged is retried with the same arguments, and
then every key must have moved money exactly once: balances, diamonds after settlement,
stock, orders, subscription ends and room events all add up, and ``livesrv audit`` (the
real command) exits 0 with serve running and again after it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosed

from livesrv.store.embedded import EmbeddedStore
from livesrv.wire import tokens
from tests.client import MSGPACK, Client
from tests.conftest import SECRET, ServeProcess, livesrv_cmd
from tests.timing import scaled, until

Serve = Callable[..., ServeProcess]
ADMIN = tokens.issue(SECRET, "ops", "admin", 3600)
# many requests per connection, and a quick claim of what the killed worker had read
ENV = {
    "LIVESRV_OPS_PER_SECOND": "100000",
    "LIVESRV_OPS_BURST": "100000",
    "LIVESRV_SETTLE_CLAIM_MS": "1000",
}
GIFTS = {"rose": 1, "panda": 5, "rainbow_puke": 100}
MONTH = 30 * 86400


@dataclass(frozen=True)
class Op:
    """One keyed money op of a viewer's plan, and the coins it costs."""

    op: str
    key: str
    args: dict[str, Any]
    cost: int


@dataclass
class Viewer:
    user: str
    plan: list[Op]
    client: Client | None = None
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def spent(self) -> int:
        return sum(o.cost for o in self.plan)


async def api(http_url: str, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, http_url + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}
        ) as resp,
    ):
        assert resp.status < 300, (resp.status, await resp.text())
        return await resp.json()


async def connect(p: ServeProcess, user: str, role: str = "viewer", codec: str = MSGPACK) -> Client:
    c = await Client.open(p.ws_url, codec)
    await c.ok("hello", token=tokens.issue(SECRET, user, role, 3600))
    return c


async def storm(viewers: list[Viewer], room: str, kill: Callable[[], None], after: int) -> int:
    """Every viewer sends its plan in ``room``: :func:`storm_in_rooms` with one room."""
    return await storm_in_rooms({room: viewers}, kill, after)


async def storm_in_rooms(
    rooms: dict[str, list[Viewer]], kill: Callable[[], None], after: int
) -> int:
    """Every viewer sends its plan in its room (8 requests in flight each); once ``after``
    ops were acknowledged, ``kill`` runs. Returns how many ops were acknowledged before the
    kill (answers already on their way when it ran included)."""
    killed = asyncio.Event()
    everyone = [v for vs in rooms.values() for v in vs]

    def acked() -> int:
        return sum(len(v.acked) for v in everyone)

    def kill_once() -> None:
        if not killed.is_set():
            kill()
            killed.set()

    async def one(v: Viewer, room: str, o: Op, window: asyncio.Semaphore) -> None:
        assert v.client is not None
        async with window:
            if killed.is_set():
                return
            try:
                r = await v.client.call(o.op, room=room, key=o.key, **o.args)
            except (ConnectionError, ConnectionClosed, TimeoutError):
                return  # no answer: not acknowledged
        assert r["ok"], r
        v.acked[o.key] = r
        if acked() >= after:
            kill_once()  # at once: while a poll waited, a fast server could answer them all

    async def send(v: Viewer, room: str) -> None:
        window = asyncio.Semaphore(8)
        await asyncio.gather(*(one(v, room, o, window) for o in v.plan))

    async def killer() -> None:  # the kill, also when fewer than ``after`` ever answer
        async with asyncio.timeout(scaled(60)):
            while not killed.is_set() and acked() < after:
                await asyncio.sleep(0.005)
        kill_once()

    await asyncio.gather(killer(), *(send(v, r) for r, vs in rooms.items() for v in vs))
    return acked()


async def applied_unacknowledged(p: ServeProcess, viewers: list[Viewer], granted: int) -> int:
    """Coins the store took for ops whose reply never reached the client (the case the
    retries must not pay for twice)."""
    total = 0
    for v in viewers:
        coins = (await api(p.http_url, "GET", f"/api/users/{v.user}/wallet"))["coins"]
        acked_cost = sum(o.cost for o in v.plan if o.key in v.acked)
        assert granted - coins >= acked_cost  # every acknowledged op is kept
        total += granted - coins - acked_cost
    return total


async def retry_unacknowledged(p: ServeProcess, viewers: list[Viewer], room: str) -> int:
    """Reconnect every viewer to the new serve and retry each unacknowledged key."""
    retried = 0

    async def again(v: Viewer) -> None:
        nonlocal retried
        if v.client is not None:
            await v.client.close()
        v.client = await connect(p, v.user)
        await v.client.ok("join", room=room)
        for o in v.plan:
            if o.key not in v.acked:
                v.acked[o.key] = await v.client.ok(o.op, room=room, key=o.key, **o.args)
                retried += 1

    await asyncio.gather(*(again(v) for v in viewers))
    return retried


async def room_log(p: ServeProcess, room: str) -> list[dict[str, Any]]:
    """Every logged event of a room: replayed by a fresh client with ``join since=0`` (the
    newest replay_limit of them), the older ones paged with ``history``."""
    c = await connect(p, "auditor")
    try:
        j = await c.ok("join", room=room, since=0)
        await c.wait(lambda: any(e.get("seq") == j["seq"] for e in c.events) or j["seq"] == 0)
        events = [e for e in c.events if "seq" in e and e["seq"] <= j["seq"]]
        before = j["replay_from"] if j["gap"] else None
        while before is not None:
            page = await c.ok("history", room=room, before=before)
            events = page["events"] + events
            before = page["next"]
        seqs = [e["seq"] for e in events]
        # every seq once, in order, from 1; a restarted store (it may have lost its last
        # writes) makes the room's seq jump by 1,000,000 once per restart, past any it lost
        steps = [b - a for a, b in zip(seqs, seqs[1:], strict=False)]
        assert seqs[:1] == [1] and seqs[-1] == j["seq"], seqs
        assert all(s == 1 or s >= 1_000_000 for s in steps), seqs
        return events
    finally:
        await c.close()


def audit_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}
    return subprocess.run(
        livesrv_cmd("audit", "--data-dir", str(data_dir)),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env=env,
    )


async def audit_passes(data_dir: Path) -> str:
    r = await asyncio.to_thread(audit_cli, data_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("audit: all invariants hold")
    return r.stdout


async def stop(p: ServeProcess) -> None:
    p.signal(signal.SIGTERM)
    assert await asyncio.to_thread(p.wait) == 0


def sigkill(p: ServeProcess, store_pid: int | None = None) -> None:
    p.signal(signal.SIGKILL)
    if store_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(store_pid, signal.SIGKILL)


async def close_all(viewers: list[Viewer], *more: Client) -> None:
    for c in [*(v.client for v in viewers if v.client), *more]:
        await c.close()


@pytest.fixture(autouse=True)
def _no_livesrv_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve must use its own embedded store and settings, whatever the shell exports."""
    for name in list(os.environ):
        if name.startswith("LIVESRV_") and not name.startswith("LIVESRV_TEST_"):
            monkeypatch.delenv(name)


# -- gifts ----------------------------------------------------------------------------------


async def test_sigkill_serve_during_a_gift_storm(serve_process: Serve, tmp_path: Path) -> None:
    d = tmp_path / "crash"
    p = serve_process("--hold-seconds", "0", data_dir=d, env=ENV)
    creator = await connect(p, "star", "creator")
    await creator.ok("room_open", room="live", title="crash")
    granted = 60_000
    viewers = []
    for i in range(12):
        plan = [
            Op("gift", f"k{j}", {"gift": g, "count": 1 + j % 5}, GIFTS[g] * (1 + j % 5))
            for j in range(200)
            for g in [("rose", "panda", "rainbow_puke")[(i + j) % 3]]
        ]
        v = Viewer(f"fan{i:02d}", plan)
        await api(p.http_url, "POST", f"/api/users/{v.user}/grant", {"coins": granted, "key": "g"})
        v.client = await connect(p, v.user)
        await v.client.ok("join", room="live")
        viewers.append(v)
    total = sum(v.spent for v in viewers)
    keys = sum(len(v.plan) for v in viewers)

    t0 = time.perf_counter()
    acked = await storm(viewers, "live", lambda: sigkill(p), after=keys // 3)
    rate = acked / (time.perf_counter() - t0)
    assert await asyncio.to_thread(p.wait) == -signal.SIGKILL
    await creator.close()
    assert 0 < acked < keys

    p2 = serve_process("--hold-seconds", "0", data_dir=d, env=ENV)
    in_doubt = await applied_unacknowledged(p2, viewers, granted)
    retried = await retry_unacknowledged(p2, viewers, "live")
    assert retried == keys - acked

    for v in viewers:
        assert v.client is not None
        assert (await v.client.ok("wallet"))["coins"] == granted - v.spent
    expected = total * 5000 // 10000

    async def creator_paid() -> bool:
        w = await api(p2.http_url, "GET", "/api/users/star/wallet")
        assert w["diamonds"] <= expected, w
        return bool(w["diamonds"] == expected)

    await until(creator_paid, 30)
    gifts = [e for e in await room_log(p2, "live") if e["ev"] == "gift"]
    assert len(gifts) == keys  # every key's gift logged once: none lost, none twice
    assert sum(e["coins"] for e in gifts) == total
    assert Counter(e["from"] for e in gifts) == {v.user: len(v.plan) for v in viewers}

    report = await audit_passes(d)
    assert f"spent={total}" in report
    await close_all(viewers)
    await stop(p2)
    await audit_passes(d)  # and with no serve running
    print(
        f"gift crash: {keys} keys, {acked} acknowledged before SIGKILL ({rate:.0f}/s), "
        f"{retried} retried ({in_doubt} coins applied but unacknowledged); "
        f"{total} coins -> {expected} diamonds"
    )


# -- gifts, subscriptions and purchases ------------------------------------------------------


def mixed_plan(i: int, prices: dict[str, int], sub_price: int) -> list[Op]:
    plan = []
    for j in range(120):
        kind = j % 10
        if kind == 0:
            plan.append(Op("subscribe", f"s{j}", {}, sub_price))
        elif kind in (1, 4, 7):
            product = ("tee", "mug")[(i + j) % 2]
            qty = 1 + (i + j) % 3
            plan.append(Op("buy", f"b{j}", {"product": product, "qty": qty}, prices[product] * qty))
        else:
            g = ("rose", "panda", "rainbow_puke")[(i * 7 + j) % 3]
            plan.append(Op("gift", f"g{j}", {"gift": g, "count": 2}, GIFTS[g] * 2))
    return plan


async def test_sigkill_serve_and_store_during_mixed_spending(
    serve_process: Serve, tmp_path: Path
) -> None:
    """Gifts, subscriptions and shop purchases together; serve and its store are both
    SIGKILLed (the store's pid file and socket stay behind). The store runs with
    ``appendfsync always``, the policy under which a killed store keeps every step it
    acknowledged: with ``everysec`` it postpones its AOF writes (up to 2 s) while an fsync
    is slow, and a kill then takes acknowledged steps with it."""
    d = tmp_path / "mixed"
    env = {**ENV, "LIVESRV_APPENDFSYNC": "always"}
    p = serve_process(data_dir=d, env=env)  # the default 72 h hold: diamonds stay pending
    store = EmbeddedStore(d)
    store_pid = int(store.pidfile.read_text())
    http = p.http_url
    products = {
        "tee": {"seller": "brand", "price": 30, "stock": 5000, "commission": 1500},
        "mug": {"seller": "brand", "price": 12, "stock": 5000},
    }
    for name, spec in products.items():
        await api(http, "POST", "/api/products", {"product": name, "title": name, **spec})
    await api(http, "PUT", "/api/creators/host/sub_price", {"price": 700})
    host = await connect(p, "host", "creator")
    await host.ok("room_open", room="mall", title="mixed")
    await host.ok("pin", room="mall", product="tee")
    prices = {name: int(spec["price"]) for name, spec in products.items()}

    granted = 100_000
    viewers = []
    started = int(time.time())
    for i in range(10):
        v = Viewer(f"buyer{i:02d}", mixed_plan(i, prices, 700))
        await api(http, "POST", f"/api/users/{v.user}/grant", {"coins": granted, "key": "g"})
        v.client = await connect(p, v.user)
        await v.client.ok("join", room="mall")
        viewers.append(v)
    ops = [o for v in viewers for o in v.plan]

    acked = await storm(viewers, "mall", lambda: sigkill(p, store_pid), after=len(ops) // 3)
    assert await asyncio.to_thread(p.wait) == -signal.SIGKILL
    await host.close()
    assert 0 < acked < len(ops)
    assert store.pidfile.exists()  # a killed store leaves its pid file

    p2 = serve_process(data_dir=d, env=env)
    assert int(store.pidfile.read_text()) != store_pid
    in_doubt = await applied_unacknowledged(p2, viewers, granted)
    retried = await retry_unacknowledged(p2, viewers, "mall")
    assert retried == len(ops) - acked
    finished = int(time.time())

    # coins: each key paid once
    for v in viewers:
        assert v.client is not None
        assert (await v.client.ok("wallet"))["coins"] == granted - v.spent
    # stock and orders: each purchase key took its units once and made one order
    sold = Counter[str]()
    for o in ops:
        if o.op == "buy":
            sold[o.args["product"]] += o.args["qty"]
    http = p2.http_url
    listed = {x["product"]: x for x in (await api(http, "GET", "/api/products"))["products"]}
    for name, spec in products.items():
        assert listed[name]["stock"] == spec["stock"] - sold[name]
    for v in viewers:
        orders = (await api(http, "GET", f"/api/orders?user={v.user}"))["orders"]
        buys = [o for o in v.plan if o.op == "buy"]
        assert len(orders) == len(buys)
        assert {o["order"] for o in orders} == {v.acked[b.key]["order"] for b in buys}
    # subscriptions: each key added exactly 30 days
    for v in viewers:
        assert v.client is not None
        subs = sum(1 for o in v.plan if o.op == "subscribe")
        subscribed_until = (await v.client.ok("join", room="mall"))["subscribed_until"]
        assert started <= subscribed_until - subs * MONTH <= finished
        assert max(r["until"] for k, r in v.acked.items() if k.startswith("s")) == subscribed_until

    # diamonds (all pending for the hold), per earner and kind, remainders carried
    spent = Counter[str]()
    for o in ops:
        spent[o.op if o.op != "buy" else o.args["product"]] += o.cost
    expect = {
        "host": spent["gift"] * 5000 // 10000
        + spent["subscribe"] * 5000 // 10000
        + spent["tee"] * 1500 // 10000
        + spent["mug"] * 1000 // 10000,
        "brand": spent["tee"] * 7700 // 10000 + spent["mug"] * 8200 // 10000,
    }

    async def earners_paid() -> bool:
        got = {}
        for user in expect:
            w = await api(http, "GET", f"/api/users/{user}/wallet")
            assert w["diamonds"] == 0, w
            got[user] = w["pending"]
        assert all(got[u] <= expect[u] for u in expect), (got, expect)
        return got == expect

    await until(earners_paid, 30)
    # room events: one per key, none lost to the crash, none doubled by the retries
    events = Counter(e["ev"] for e in await room_log(p2, "mall"))
    assert events["gift"] == sum(1 for o in ops if o.op == "gift")
    assert events["sub"] == sum(1 for o in ops if o.op == "subscribe")
    assert events["purchase"] == sum(1 for o in ops if o.op == "buy")

    report = await audit_passes(d)
    assert f"spent={sum(o.cost for o in ops)}" in report
    assert f"units_sold={sum(sold.values())}, units_reserved=0" in report
    await close_all(viewers)
    await stop(p2)
    await audit_passes(d)
    print(
        f"mixed crash: {len(ops)} keys ({dict(Counter(o.op for o in ops))}), {acked} "
        f"acknowledged before SIGKILL, {retried} retried ({in_doubt} coins applied but "
        f"unacknowledged); diamonds {expect}"
    )
