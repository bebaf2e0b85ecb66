"""Coin-purchase receipts (docs/protocol.md, Receipts): only a receipt the configured
verifier accepts credits coins; an unverifiable one is ``invalid_receipt`` and writes
nothing; a purchase is identified by its receipt id, so a re-signed receipt credits nothing
more. The first half runs livesrv.services.receipts without sockets; the second goes over
the wire."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from livesrv.errors import BY_CODE, BadRequest, InvalidReceipt
from livesrv.services import receipts
from livesrv.settings import Settings
from livesrv.wire.schema import parse
from tests.client import JSON, MSGPACK
from tests.conftest import SECRET, Running, ServerFactory

KEY = receipts.derive_key(SECRET)
NOW = 1_750_000_000
GOOD = receipts.sign(KEY, "bob", "p65", "pay-1", NOW)


def body(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}


def tamper(receipt: str) -> str:
    """The same receipt with the last signature character changed."""
    return receipt[:-1] + ("A" if receipt[-1] != "A" else "B")


# -- livesrv.services.receipts, no sockets -----------------------------------------------


def test_sign_then_verify_returns_the_receipt_id() -> None:
    r = receipts.sign(KEY, "bob", "p65", "pay.0001-x_y", NOW)
    assert r.startswith("v1.pay.0001-x_y.1750000000.") and len(r.rsplit(".", 1)[1]) == 43
    v = receipts.HmacVerifier(KEY)
    assert v.verify("bob", "p65", r, now=NOW) == "pay.0001-x_y"
    assert v.verify("bob", "p65", r, now=NOW + 10 * 365 * 86400) == "pay.0001-x_y"  # no expiry


def test_the_same_id_signed_at_another_time_is_the_same_id() -> None:
    v = receipts.HmacVerifier(KEY)
    a = receipts.sign(KEY, "bob", "p65", "pay-1", NOW)
    b = receipts.sign(KEY, "bob", "p65", "pay-1", NOW + 60)
    assert a != b
    assert v.verify("bob", "p65", a, now=NOW + 60) == v.verify("bob", "p65", b, now=NOW + 60)


@pytest.mark.parametrize(
    ("user", "package", "make"),
    [
        ("eve", "p65", lambda: receipts.sign(KEY, "bob", "p65", "pay-1", NOW)),
        ("bob", "p1321", lambda: receipts.sign(KEY, "bob", "p65", "pay-1", NOW)),
        ("bob", "p65", lambda: tamper(receipts.sign(KEY, "bob", "p65", "pay-1", NOW))),
        ("bob", "p65", lambda: receipts.sign(SECRET.encode(), "bob", "p65", "pay-1", NOW)),
        ("bob", "p65", lambda: receipts.sign(KEY, "bob", "p65", "pay-1", NOW + 301)),
        # the signature covers the issue time and the id
        ("bob", "p65", lambda: GOOD.replace(".17", ".16")),
        ("bob", "p65", lambda: GOOD.replace("-1", "-2")),
    ],
    ids=["other-user", "other-package", "tampered", "token-key", "future", "time", "id"],
)
def test_refused(user: str, package: str, make: Any) -> None:
    with pytest.raises(InvalidReceipt):
        receipts.HmacVerifier(KEY).verify(user, package, make(), now=NOW)


def test_a_little_clock_skew_is_accepted() -> None:
    r = receipts.sign(KEY, "bob", "p65", "pay-1", NOW + 300)
    assert receipts.HmacVerifier(KEY).verify("bob", "p65", r, now=NOW) == "pay-1"


SIG = "A" * 43


@pytest.mark.parametrize(
    "receipt",
    [
        "",
        "receipt-0001",
        "v1",
        f"v1.pay-1.{NOW}",
        f"v2.pay-1.{NOW}.{SIG}",
        f"v1..{NOW}.{SIG}",
        f"v1.pay-1.0{NOW}.{SIG}",
        f"v1.pay-1.-1.{SIG}",
        f"v1.pay-1.{NOW}.{SIG}=",
        f"v1.pay-1.{NOW}.{SIG[:-1]}",
        f"v1.pay 1.{NOW}.{SIG}",
        f"v1.{'x' * 65}.{NOW}.{SIG}",
    ],
)
def test_malformed_receipts_are_invalid(receipt: str) -> None:
    with pytest.raises(InvalidReceipt):
        receipts.HmacVerifier(KEY).verify("bob", "p65", receipt, now=NOW)


@pytest.mark.parametrize(
    ("user", "package", "rid"), [("b b", "p65", "x"), ("bob", "", "x"), ("bob", "p65", "x" * 65)]
)
def test_sign_refuses_bad_fields(user: str, package: str, rid: str) -> None:
    with pytest.raises(BadRequest):
        receipts.sign(KEY, user, package, rid, NOW)


def test_keys() -> None:
    derived = receipts.derive_key(SECRET)
    assert derived == receipts.resolve_key(None, SECRET) == receipts.resolve_key("", SECRET)
    assert derived not in (SECRET.encode(), receipts.derive_key(SECRET + "x"))
    assert receipts.resolve_key("k-from-settings", SECRET) == b"k-from-settings"


def test_the_longest_receipt_fits_the_wire_field() -> None:
    longest = receipts.sign(KEY, "u" * 64, "p" * 64, "r" * 64, 999_999_999_999)
    assert len(longest) == receipts.MAX_LENGTH
    req = parse({"id": 1, "op": "buy_coins", "package": "p65", "receipt": longest})
    assert req.args["receipt"] == longest


def test_any_verifier_takes_the_whole_string_as_the_id() -> None:
    v = receipts.make_verifier("any", None, SECRET)
    assert v.verify("bob", "p65", "receipt-0001") == "receipt-0001"


def test_verifier_registry_and_settings() -> None:
    assert isinstance(receipts.make_verifier("hmac", None, SECRET), receipts.HmacVerifier)
    with pytest.raises(ValueError, match="LIVESRV_RECEIPT_VERIFIER"):
        receipts.make_verifier("appstore", None, SECRET)
    assert Settings.from_env({}).receipt_verifier == "hmac"
    assert Settings.from_env({}, demo=True).receipt_verifier == "any"
    assert Settings.from_env({"LIVESRV_DEMO": "1"}).receipt_verifier == "any"
    env = {"LIVESRV_DEMO": "1", "LIVESRV_RECEIPT_VERIFIER": "hmac", "LIVESRV_RECEIPT_KEY": "k"}
    s = Settings.from_env(env)
    assert (s.receipt_verifier, s.receipt_key) == ("hmac", "k")
    assert Settings.from_env({}, demo=True, receipt_verifier="hmac").receipt_verifier == "hmac"
    assert BY_CODE["invalid_receipt"] is InvalidReceipt


# -- over the wire ---------------------------------------------------------------------------


@pytest.fixture(params=[JSON, MSGPACK], ids=["json", "msgpack"])
def codec(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def receipt_keys(server: Running) -> list[str]:
    return [k async for k in server.backend.redis.scan_iter(match="*rcpt:*")]


async def test_an_invented_receipt_credits_nothing_and_writes_nothing(
    server: Running, codec: str
) -> None:
    c = await server.connect("inv1", codec=codec)
    for invented in ("receipt-0001", "v1.x.1.sig", "r" * 64, f"v1.pay-1.{NOW}.{SIG}"):
        reply = await c.call("buy_coins", package="p1321", receipt=invented)
        assert reply["ok"] is False and reply["error"]["code"] == "invalid_receipt", reply
    assert (await c.ok("wallet"))["coins"] == 0
    assert await receipt_keys(server) == []
    report = await server.audit()
    assert report["ok"]
    assert [x for x in report["checks"] if x["name"] == "coins_conserved"][0]["credited"] == 0


async def test_forged_receipts_are_refused(server: Running, codec: str) -> None:
    c = await server.connect("forge1", codec=codec)
    now = int(time.time())
    good = server.receipt("forge1", "p65", "pay-f1")
    forged = {
        "tampered": tamper(good),
        "other user": server.receipt("forge2", "p65", "pay-f2"),
        "other package": server.receipt("forge1", "p1321", "pay-f3"),
        "future": server.receipt("forge1", "p65", "pay-f4", issued=now + 600),
        "token key": receipts.sign(SECRET.encode(), "forge1", "p65", "pay-f5"),
    }
    for what, receipt in forged.items():
        reply = await c.call("buy_coins", package="p65", receipt=receipt)
        assert reply["ok"] is False and reply["error"]["code"] == "invalid_receipt", what
    assert (await c.ok("wallet"))["coins"] == 0
    assert await receipt_keys(server) == []
    # the genuine receipt still credits: nothing above used its id up
    assert body(await c.ok("buy_coins", package="p65", receipt=good)) == {"coins": 65}


async def test_a_valid_receipt_credits_once_even_when_signed_again(
    server: Running, codec: str
) -> None:
    c = await server.connect("once1", codec=codec)
    other = await server.connect("once1", codec=codec)  # a second device
    now = int(time.time())
    first = server.receipt("once1", "p330", "pay-o1", issued=now - 3600)
    assert body(await c.ok("buy_coins", package="p330", receipt=first)) == {"coins": 330}
    assert body(await c.ok("buy_coins", package="p330", receipt=first)) == {"coins": 330}
    for issued in (now, now + 120):  # the backend signs the same payment again
        again = server.receipt("once1", "p330", "pay-o1", issued=issued)
        assert again != first
        assert body(await other.ok("buy_coins", package="p330", receipt=again)) == {"coins": 330}
    assert (await c.ok("wallet"))["coins"] == 330
    report = await server.audit()
    assert report["ok"]
    checks = {x["name"]: x for x in report["checks"]}
    assert checks["coins_conserved"]["credited"] == 330
    assert checks["idempotency"]["receipts"] == 1


async def test_any_mode_accepts_anything(make_server: ServerFactory, codec: str) -> None:
    server = await make_server(receipt_verifier="any")
    c = await server.connect("any1", codec=codec)
    r = await c.ok("buy_coins", package="p65", receipt="receipt-0001")
    assert body(r) == {"coins": 65}
    assert body(await c.ok("buy_coins", package="p65", receipt="receipt-0001")) == {"coins": 65}
    assert body(await c.ok("buy_coins", package="p65", receipt="~ any ~")) == {"coins": 130}


async def test_admin_signs_receipts(server: Running) -> None:
    admin = {"Authorization": f"Bearer {server.token('ops1', 'admin')}"}
    viewer = {"Authorization": f"Bearer {server.token('adm1')}"}
    url = server.http_url + "/api/receipts"
    req = {"user": "adm1", "package": "p660", "id": "pay-a1"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=req, headers=admin) as resp:
            assert resp.status == 200
            got = await resp.json()
        async with http.post(url, json=req, headers=viewer) as resp:
            assert resp.status == 403
        async with http.post(url, json={**req, "package": "p99"}, headers=admin) as resp:
            assert resp.status == 404
        async with http.post(url, json={**req, "id": "a b"}, headers=admin) as resp:
            assert resp.status == 400
    assert got["id"] == "pay-a1" and got["receipt"].startswith("v1.pay-a1.")
    c = await server.connect("adm1")
    assert body(await c.ok("buy_coins", package="p660", receipt=got["receipt"])) == {"coins": 660}
