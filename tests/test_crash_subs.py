"""Crash test of gifted subscriptions: SIGKILL a real ``livesrv serve`` while viewers gift
``EACH`` subs at a time to random viewers present, start it again on the same data dir, retry
every unacknowledged ``sub_gift`` with its key, and check that every gift moved exactly
once: each gifter paid ``EACH`` periods per key, the recipients hold exactly that many loyalty
months, the room logged one gifted ``sub`` event per gift, the creator earned its share,
and ``livesrv audit`` (with ``subs_paid``) exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

from tests.client import Client
from tests.conftest import ServeProcess
from tests.test_crash import (  # noqa: F401  (_no_livesrv_env: the autouse fixture)
    ENV,
    Op,
    Serve,
    Viewer,
    _no_livesrv_env,
    api,
    applied_unacknowledged,
    audit_passes,
    close_all,
    connect,
    retry_unacknowledged,
    room_log,
    sigkill,
    stop,
    storm,
)
from tests.timing import until

ROOM = "giftsubs"
PRICE = 350  # tier 1
EACH = 3  # subscriptions per key, each to another viewer present and not yet subscribed
GRANT = 11_000  # 10 keys of 3 gifts at 350: 10,500
# 50 keys, at most 40 in flight (8 per gifter): some are still unanswered at the kill; 150
# recipients among the 200 present
GIFTERS, KEYS_EACH, POOL = 5, 10, 200


async def _pool(p: ServeProcess) -> list[Client]:
    """The viewers present to receive gifts (each joins the room)."""

    async def one(i: int) -> Client:
        c = await connect(p, f"crowd{i:03d}")
        await c.ok("join", room=ROOM)
        return c

    return list(await asyncio.gather(*(one(i) for i in range(POOL))))


async def test_sigkill_serve_during_sub_gifts(serve_process: Serve, tmp_path: Path) -> None:
    d = tmp_path / "crash"
    p = serve_process("--hold-seconds", "0", data_dir=d, env=ENV)
    creator = await connect(p, "substar", "creator")
    await creator.ok("room_open", room=ROOM, title="crash")
    crowd = await _pool(p)
    gifters = []
    for i in range(GIFTERS):
        plan = [Op("sub_gift", f"sg{j}", {"count": EACH}, EACH * PRICE) for j in range(KEYS_EACH)]
        v = Viewer(f"subgifter{i}", plan)
        await api(p.http_url, "POST", f"/api/users/{v.user}/grant", {"coins": GRANT, "key": "g"})
        v.client = await connect(p, v.user)
        await v.client.ok("join", room=ROOM)
        gifters.append(v)
    keys = GIFTERS * KEYS_EACH

    acked = await storm(gifters, ROOM, lambda: sigkill(p), after=2)
    assert await asyncio.to_thread(p.wait) == -signal.SIGKILL
    await close_all([], creator, *crowd)
    assert 0 < acked < keys

    p2 = serve_process("--hold-seconds", "0", data_dir=d, env=ENV)
    in_doubt = await applied_unacknowledged(p2, gifters, GRANT)  # paid, reply lost
    crowd = await _pool(p2)  # present again, for the keys that never reached the store
    assert await retry_unacknowledged(p2, gifters, ROOM) == keys - acked
    # a retry of every key, acknowledged or not, moves nothing more
    for v in gifters:
        assert v.client is not None
        for o in v.plan:
            again = await v.client.ok(o.op, room=ROOM, key=o.key, **o.args)
            assert again["recipients"] == v.acked[o.key]["recipients"]
        assert (await v.client.ok("wallet"))["coins"] == GRANT - v.spent

    received = Counter[str]()
    for v in gifters:
        for r in v.acked.values():
            assert len(set(r["recipients"])) == EACH and r["paid"] == EACH * PRICE
            received.update(r["recipients"])
    assert sum(received.values()) == keys * EACH
    months = {}
    for i, c in enumerate(crowd):
        j = await c.ok("join", room=ROOM)
        months[f"crowd{i:03d}"] = j["sub_months"]
    for v in gifters:  # the other gifters are viewers present too
        assert v.client is not None
        months[v.user] = (await v.client.ok("join", room=ROOM))["sub_months"]
    assert {u: n for u, n in months.items() if n} == dict(received)

    expected = keys * EACH * PRICE * 5000 // 10_000

    async def creator_paid() -> bool:
        w = await api(p2.http_url, "GET", "/api/users/substar/wallet")
        assert w["diamonds"] <= expected, w
        return bool(w["diamonds"] == expected)

    await until(creator_paid, 30)
    events = [e for e in await room_log(p2, ROOM) if e["ev"] == "sub"]
    assert len(events) == keys * EACH  # one per gift: none lost, none twice
    assert all(e["gifted"] is True and e["tier"] == 1 for e in events)
    assert Counter(e["by"] for e in events) == {v.user: EACH * KEYS_EACH for v in gifters}
    assert Counter(e["from"] for e in events) == received

    report = await audit_passes(d)
    line = next(ln for ln in report.splitlines() if "subs_paid" in ln)
    assert f"loyalty_months={keys * EACH}" in line and f"gifted_granted={keys * EACH}" in line
    await close_all(gifters, *crowd)
    await stop(p2)
    await audit_passes(d)
    print(
        f"sub gift crash: {keys} keys of {EACH} gifts, {acked} acknowledged before SIGKILL, "
        f"{in_doubt // (EACH * PRICE)} more paid but unacknowledged"
    )
