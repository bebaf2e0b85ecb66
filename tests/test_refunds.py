"""Refunds and chargebacks of coin purchases, and accounts flagged as minors (issue 14,
items 2 and 3): docs/economy.md, "Refunds, chargebacks and minors".

The first tests run the clawback rules of livesrv.services.refunds without sockets; the
rest send the admin API bad bodies, unknown receipts and bad ids over the wire, against the
real store, and check that nothing moved. The refunds that move money (after gifts and
withdrawals, racing, minors, half done) are in test_refunds_money.py.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from livesrv.services.refunds import (
    Spend,
    attribute,
    clawback_diamonds,
    shortfall,
    split_clawback,
)
from tests.conftest import Running
from tests.refund_helpers import admin, audited, balances, buy

# -- the rules, no sockets --------------------------------------------------------------


def test_shortfall_is_the_receipts_coins_already_spent() -> None:
    assert shortfall(65, 65) == 0  # nothing spent
    assert shortfall(65, 100) == 0  # more than the receipt held
    assert shortfall(330, 30) == 300
    assert shortfall(330, 0) == 330
    assert shortfall(330, -50) == 330  # below zero already: all of it was spent


def test_attribution_takes_newest_first_skips_boxes_and_what_was_clawed() -> None:
    spends = [
        Spend("5-0", 100, 0, True),
        Spend("4-0", 40, 0, False),  # a treasure box: earned nobody
        Spend("3-0", 100, 100, True),  # clawed back whole before
        Spend("2-0", 100, 30, True),  # 70 left
        Spend("1-0", 500, 0, True),
    ]
    assert attribute(150, spends) == [("5-0", 100), ("2-0", 50)]
    assert attribute(170, spends) == [("5-0", 100), ("2-0", 70)]
    assert attribute(200, spends) == [("5-0", 100), ("2-0", 70), ("1-0", 30)]
    assert attribute(0, spends) == []
    # the spends run out: the platform carries the rest
    assert sum(c for _, c in attribute(10_000, spends)) == 670


def test_clawback_diamonds_and_where_they_come_from() -> None:
    # 300 coins of gifts at 5000 bps credited 150; 300 clawed back: -150
    assert clawback_diamonds(300, 300, 150, 5000) == -150
    # rounding carries: 3 roses credited 1; clawing one back leaves floor(2 / 2) = 1
    assert clawback_diamonds(3, 1, 1, 5000) == 0
    assert clawback_diamonds(3, 2, 1, 5000) == -1
    assert split_clawback(150, 100) == (100, 50)  # pending first, then available
    assert split_clawback(30, 100) == (30, 0)
    assert split_clawback(30, 0) == (0, 30)


# -- over the wire ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "refundx"},
        {"kind": 1},
        {"kind": "refund", "reason": ""},
        {"kind": "refund", "reason": "x" * 201},
        [],
        "refund",
    ],
    ids=["empty", "kind", "kind-type", "reason-empty", "reason-long", "list", "string"],
)
async def test_bad_refund_bodies_move_nothing(server: Running, body: Any) -> None:
    bob = await server.connect("rf7_bob")
    await buy(server, bob, "rf7_bob", "p65", "rf7-pay")
    status, reply = await admin(server, "POST", "/api/receipts/rf7-pay/refund", body)
    assert status == 400 and reply["error"]["code"] == "bad_request", reply
    assert (await balances(bob))["coins"] == 65
    status, shown = await admin(server, "GET", "/api/receipts/rf7-pay")
    assert status == 200 and shown["reversed"] is None
    await audited(server)


async def test_unknown_receipts_and_bad_ids(server: Running) -> None:
    status, reply = await admin(server, "POST", "/api/receipts/rf8-none/refund", {"kind": "refund"})
    assert status == 404 and reply["error"]["code"] == "not_found"
    status, reply = await admin(server, "POST", "/api/receipts/a%20b/refund", {"kind": "refund"})
    assert status == 400 and reply["error"]["code"] == "bad_request"
    status, reply = await admin(server, "POST", "/api/users/a%20b/minor")
    assert status == 400 and reply["error"]["code"] == "bad_request"
    viewer = {"Authorization": f"Bearer {server.token('rf8_v')}"}
    async with (
        aiohttp.ClientSession(headers=viewer) as http,
        http.post(f"{server.http_url}/api/users/rf8_v/minor") as resp,
    ):
        assert resp.status == 403
    await audited(server)
