from tests.conftest import Running


async def test_gift_reaches_room_and_creator_earns(server: Running) -> None:
    creator = await server.connect("alice", "creator")
    viewer = await server.connect("bob")
    await creator.ok("room_open", room="r1", title="hi")
    await server.grant("bob", 100)
    await creator.ok("join", room="r1")
    await viewer.ok("join", room="r1")
    r = await viewer.ok("gift", room="r1", gift="rose", count=10, key="k1")
    assert r["coins"] == 90 and r["combo"] == 10
    ev = await creator.event("gift")
    assert ev["from"] == "bob" and ev["coins"] == 10
    w = await creator.event("wallet", lambda e: e["diamonds"] == 5)
    assert w["coins"] == 0
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
