"""Property: no sequence of client requests blinds ``livesrv audit`` (issue 8, item 2).

Random sequences of gift / buy / subscribe / withdraw / grant with keys from a small pool,
with waits for key expiry and replays, run over the wire against a real server whose
idempotency records live one second. After each sequence: the audit passes, balances and
stock equal a model computed here, the leaderboard counts each charged gift once, and no
withdrawal was ever overwritten.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from livesrv import audit
from tests.client import Client
from tests.conftest import Running, ServerFactory
from tests.timing import scaled

POOL = ("k0", "k1")
SEED = 800  # coins granted to the viewer (under a key outside the pool) before a run
GIFT, GIFT_COINS = "finger_heart", 5
PRICE, STOCK, SUB = 7, 5, 350
SHARES = {"gift": 5000, "sub": 5000, "shop": 8200, "commission": 1000}  # catalogue, bps
MARGIN_MS = 300  # a record with less life left than this is waited out, not raced

OP = st.one_of(
    st.tuples(st.just("gift"), st.sampled_from(POOL), st.integers(1, 3)),
    st.tuples(st.just("buy"), st.sampled_from(POOL), st.integers(1, 2)),
    st.tuples(st.just("subscribe"), st.sampled_from(POOL), st.just(0)),
    st.tuples(st.just("withdraw"), st.sampled_from(POOL), st.integers(1, 12)),
    st.tuples(st.just("grant"), st.sampled_from(POOL), st.sampled_from([40, 400])),
)
# a run of requests; then, after waiting until every key expired or not, the same run
# again (replays, or new requests with reused keys), then a few more requests
RUNS = st.tuples(st.lists(OP, min_size=1, max_size=6), st.booleans(), st.lists(OP, max_size=3))


@dataclass
class Model:
    """What the books must say, computed from the requests and the key rules alone."""

    coins: int = SEED
    stock: int = STOCK
    earned: Counter[str] = field(default_factory=Counter)
    withdrawn: int = 0
    gifted: int = 0
    gifts: int = 0
    records: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any]]] = field(
        default_factory=dict
    )
    withdrawals: dict[str, int] = field(default_factory=dict)

    @property
    def diamonds(self) -> int:
        return sum(c * SHARES[k] // 10_000 for k, c in self.earned.items()) - self.withdrawn


@dataclass
class Scene:
    server: Running
    http: aiohttp.ClientSession
    n: int
    viewer: Client
    creator: Client
    model: Model = field(default_factory=Model)

    @property
    def names(self) -> tuple[str, str, str, str]:
        return f"pv{self.n}", f"pc{self.n}", f"pr{self.n}", f"pp{self.n}"

    def idem(self, op: str, key: str) -> str:
        v, c, _, _ = self.names
        b = self.server.backend
        if op == "grant":
            return b.user(v).idem("grant:" + key)
        return b.user(c if op == "withdraw" else v).idem(key)

    async def alive(self, op: str, key: str) -> bool:
        """Whether the key's record will outlive the next request; one about to expire is
        polled until it is gone."""
        idem = self.idem(op, key)
        redis = self.server.backend.redis
        async with asyncio.timeout(scaled(10)):
            while True:
                pttl = await redis.pttl(idem)
                if pttl == -2 or pttl >= MARGIN_MS:
                    return pttl != -2
                await asyncio.sleep(0.02)

    async def grant(self, coins: int, key: str) -> dict[str, Any]:
        v = self.names[0]
        async with self.http.post(
            f"{self.server.http_url}/api/users/{v}/grant",
            json={"coins": coins, "key": key, "reason": "prop"},
            headers={"Authorization": "Bearer " + self.server.token("ops", "admin")},
        ) as resp:
            body: dict[str, Any] = await resp.json()
            return body if resp.status == 200 else {"error": body["error"]}


async def request(s: Scene, op: str, key: str, arg: int) -> dict[str, Any]:
    """Send one request over the wire; the reply body, or {"error": code}."""
    _, _, room, product = s.names
    if op == "grant":
        r = await s.grant(arg, key)
        return {"error": r["error"]["code"]} if "error" in r else r
    if op == "gift":
        r = await s.viewer.call("gift", room=room, gift=GIFT, count=arg, key=key)
    elif op == "buy":
        r = await s.viewer.call("buy", room=room, product=product, qty=arg, key=key)
    elif op == "subscribe":
        r = await s.viewer.call("subscribe", room=room, key=key)
    else:
        await s.server.settle()
        r = await s.creator.call("withdraw", diamonds=arg, key=key)
    if not r.pop("ok"):
        return {"error": r["error"]["code"]}
    r.pop("id")
    return r


def expect_fresh(m: Model, op: str, arg: int) -> str | None:
    """Apply a request with no live record to the model; the error code it must get."""
    if op == "grant":
        m.coins += arg
    elif op == "gift":
        if m.coins < arg * GIFT_COINS:
            return "insufficient_funds"
        m.coins -= arg * GIFT_COINS
        m.earned["gift"] += arg * GIFT_COINS
        m.gifted += arg * GIFT_COINS
        m.gifts += 1
    elif op == "buy":
        if m.stock < arg:
            return "out_of_stock"
        if m.coins < arg * PRICE:
            return "insufficient_funds"
        m.coins -= arg * PRICE
        m.stock -= arg
        m.earned["shop"] += arg * PRICE
        m.earned["commission"] += arg * PRICE
    elif op == "subscribe":
        if m.coins < SUB:
            return "insufficient_funds"
        m.coins -= SUB
        m.earned["sub"] += SUB
    else:
        if m.diamonds < arg:
            return "insufficient_funds"
        m.withdrawn += arg
    return None


async def step(s: Scene, op: str, key: str, arg: int) -> None:
    m = s.model
    who = ("grant" if op == "grant" else "c" if op == "withdraw" else "v", key)
    alive = await s.alive(op, key)
    assert alive == (who in m.records), (op, key, "record and model disagree")
    if alive:
        sig, first = m.records[who]
        reply = await request(s, op, key, arg)
        if sig == (op, arg):
            assert reply == first, (op, key, "a replay must answer the first result")
        else:
            assert reply == {"error": "idempotency_conflict"}, (op, key, reply)
        return
    code = expect_fresh(m, op, arg)
    reply = await request(s, op, key, arg)
    if code is not None:
        assert reply == {"error": code}, (op, key, arg, reply)
        return
    assert "error" not in reply, (op, key, arg, reply)
    m.records[who] = ((op, arg), reply)
    if op == "withdraw":
        assert reply["withdrawal"] not in m.withdrawals, "a withdrawal id was reused"
        m.withdrawals[reply["withdrawal"]] = arg
    if op in ("gift", "buy", "subscribe", "grant"):
        assert reply["coins"] == m.coins


async def expire_all(s: Scene) -> None:
    """Poll until every record of the pool is gone, then forget them in the model."""
    for op in ("gift", "withdraw", "grant"):
        for key in POOL:
            idem = s.idem(op, key)
            async with asyncio.timeout(scaled(10)):
                while await s.server.backend.redis.exists(idem):
                    await asyncio.sleep(0.02)
    s.model.records.clear()


async def check_books(s: Scene) -> None:
    m = s.model
    v, c, room, product = s.names
    await s.server.settle()
    report = await audit.run(s.server.backend)
    assert report["ok"], [x for x in report["checks"] if not x["ok"]]
    assert (await s.viewer.ok("wallet"))["coins"] == m.coins
    assert (await s.creator.ok("wallet"))["diamonds"] == m.diamonds
    mine = (await s.creator.ok("withdrawals"))["withdrawals"]
    assert {w["withdrawal"]: w["diamonds"] for w in mine} == m.withdrawals
    # the chat is logged after every gift, so once it arrives every gift event has too
    # (before joining again: a join answers the room as of its seq, and live events up to
    # that seq not yet delivered are not sent after it)
    await s.creator.ok("chat", room=room, text="end")
    await s.creator.event("chat", lambda e: e["from"] == c)
    assert len([e for e in s.creator.events if e["ev"] == "gift"]) == m.gifts
    joined = await s.creator.ok("join", room=room)
    assert joined["pinned_product"]["stock"] == m.stock
    assert joined["top"] == ([[v, m.gifted]] if m.gifted else [])


async def run_example(
    server: Running, http: aiohttp.ClientSession, n: int, run: tuple[list[Any], bool, list[Any]]
) -> None:
    ops, wait, more = run
    v, c, room, product = f"pv{n}", f"pc{n}", f"pr{n}", f"pp{n}"
    creator = await server.connect(c, "creator")
    await creator.ok("room_open", room=room, title="prop")
    await creator.ok("join", room=room)
    await creator.ok("product_create", product=product, title="P", price=PRICE, stock=STOCK)
    await creator.ok("pin", room=room, product=product)
    await server.grant(v, SEED, key=f"seed-{n}")
    viewer = await server.connect(v)
    await viewer.ok("join", room=room)
    s = Scene(server, http, n, viewer, creator)
    try:
        for op, key, arg in ops:
            await step(s, op, key, arg)
        if wait:
            await expire_all(s)
        for op, key, arg in [*ops, *more]:
            await step(s, op, key, arg)
        await check_books(s)
    finally:
        await viewer.close()
        await creator.close()


async def test_no_request_sequence_blinds_the_audit(make_server: ServerFactory) -> None:
    server = await make_server(idempotency_ttl=1, min_withdrawal=1)
    loop = asyncio.get_running_loop()
    numbers = itertools.count()
    async with aiohttp.ClientSession() as http:

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            # no shrinking: every example waits for real key expiry, and a run is short
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        )
        @given(run=RUNS)
        def prop(run: tuple[list[Any], bool, list[Any]]) -> None:
            # hypothesis drives from this thread; the server and clients stay on the loop
            example = run_example(server, http, next(numbers), run)
            asyncio.run_coroutine_threadsafe(example, loop).result(scaled(60))

        await asyncio.to_thread(prop)
