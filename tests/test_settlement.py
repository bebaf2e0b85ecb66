"""Settlement closes the gap a crash can leave between a debit and its room event."""

import pytest

from livesrv.services import wallet
from livesrv.services.gifts import earners_of_gift, gift_digest, gift_event_id
from livesrv.services.rooms import event
from livesrv.settlement import GROUP, SettlementWorker
from tests.conftest import Running, ServerFactory


async def test_paid_gift_never_logged_is_logged_by_settlement(server: Running) -> None:
    """A node that died right after debiting never logged the gift: the worker logs it,
    once, and credits the creator."""
    creator = await server.connect("alice", "creator")
    await creator.ok("room_open", room="r1", title="t")
    await creator.ok("join", room="r1")
    await server.grant("bob", 100)
    ev = event(
        "gift",
        "r1",
        **{"from": "bob", "gift": "rose", "count": 7, "combo": 7, "coins": 7, "streak": True},
    )
    # the debit step alone, as the gift op does it, with no room log after it
    exp = wallet.generation_expiry(server.backend)
    await wallet.spend(
        server.backend,
        "bob",
        kind="gift",
        amount=7,
        key="lost-1",
        digest=gift_digest("r1", "rose", 7),
        payload={
            "room": "r1",
            "e": earners_of_gift(server.backend, "alice"),
            "ev": ev,
            "evid": gift_event_id("bob", "lost-1", exp),
            "x": exp,
        },
        extra_key=server.backend.user("bob").combo("r1", "rose"),
        exp=exp,
        params=(3000, 7),
    )
    logged = await creator.event("gift", lambda e: e["from"] == "bob")
    assert logged["count"] == 7 and logged["seq"] == 2
    await creator.event("wallet", lambda e: e["diamonds"] == 3)
    # the client's retry of the same key now answers the first result and logs nothing new
    bob = await server.connect("bob")
    await bob.ok("join", room="r1")
    retry = await bob.ok("gift", room="r1", gift="rose", count=7, key="lost-1")
    assert retry["coins"] == 93 and retry["combo"] == 7
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert [e["seq"] for e in creator.events if e["ev"] == "gift"] == [2]


async def test_an_unreadable_outbox_entry_fails_alone(make_server: ServerFactory) -> None:
    """An outbox entry the worker cannot read stays pending; the gifts read in the same
    batch are settled and acknowledged all the same."""
    server = await make_server(settle=False)
    creator = await server.connect("carol", "creator")
    await creator.ok("room_open", room="r2", title="t")
    await server.grant("dan", 100)
    dan = await server.connect("dan")
    await dan.ok("join", room="r2")
    outbox = server.backend.user("dan").shard.outbox
    await server.backend.redis.xadd(outbox, {"kind": "gift", "user": "dan", "p": "{not json"})
    for i in range(3):
        await dan.ok("gift", room="r2", gift="rose", count=2, key=f"after-{i}")
    worker = SettlementWorker(server.backend)
    await worker.ensure_groups()
    with pytest.raises(ValueError):  # one read: the bad entry and the three gifts together
        await worker.step()
    await creator.event("wallet", lambda e: e["diamonds"] == 3)  # 3 x 2 coins, half of it
    pending = await server.backend.redis.xpending(outbox, GROUP)
    assert pending["pending"] == 1  # only the unreadable one, never acknowledged
