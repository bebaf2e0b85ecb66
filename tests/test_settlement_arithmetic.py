"""Sans-I/O tests of settlement arithmetic (:mod:`livesrv.settlement_credits`): credits of an
outbox entry, diamonds for coins, carried remainders, and ``settle.lua``'s formula.
"""

from __future__ import annotations

import json
import random

import pytest

from livesrv import settlement_credits
from livesrv.store import scripts


def test_credits_for_an_outbox_entry() -> None:
    fields = {
        "kind": "gift",
        "user": "bob",
        "coins": "7",
        "key": "k1",
        "p": json.dumps({"room": "r", "e": [["alice", "gift:5000", 5000]]}),
    }
    assert settlement_credits.credits_for(3, "1700-0", fields) == [
        settlement_credits.Credit("alice", "gift:5000", 5000, 7, "3:1700-0:0")
    ]


def test_credits_for_several_earners_have_distinct_refs() -> None:
    fields = {
        "coins": "100",
        "p": json.dumps({"e": [["seller", "shop:8200", 8200], ["host", "shop:1000", 1000]]}),
    }
    credits = settlement_credits.credits_for(0, "5-1", fields)
    assert [(c.earner, c.bps, c.coins, c.ref) for c in credits] == [
        ("seller", 8200, 100, "0:5-1:0"),
        ("host", 1000, 100, "0:5-1:1"),
    ]


@pytest.mark.parametrize(
    ("coins", "bps", "diamonds"),
    [
        (0, 5000, 0),
        (1, 5000, 0),
        (2, 5000, 1),
        (3, 5000, 1),
        (34999, 5000, 17499),
        (10_000, 10_000, 10_000),
        (7, 0, 0),
        (1, 9999, 0),
        (10_001, 9999, 9999),
    ],
)
def test_diamonds_for(coins: int, bps: int, diamonds: int) -> None:
    assert settlement_credits.diamonds_for(coins, bps) == diamonds


def _carry(spends: list[int], bps: int) -> list[int]:
    """What the worker credits per entry: floor(total x share) - credited so far."""
    earned = credited = 0
    out = []
    for coins in spends:
        earned += coins
        target = settlement_credits.diamonds_for(earned, bps)
        out.append(target - credited)
        credited = target
    return out


def test_two_roses_make_one_diamond() -> None:
    assert _carry([1, 1], 5000) == [0, 1]
    assert _carry([1, 1, 1, 1, 1], 5000) == [0, 1, 0, 1, 0]


def test_remainders_are_never_lost() -> None:
    rng = random.Random(7)
    for bps in (5000, 8200, 1000, 3333, 1):
        spends = [rng.randrange(1, 35000) for _ in range(500)]
        deltas = _carry(spends, bps)
        assert all(d >= 0 for d in deltas)
        assert sum(deltas) == sum(spends) * bps // 10_000


def _lua_target(earned: int, bps: int) -> int:
    # settle.lua's overflow-safe form of floor(earned x bps / 10000)
    return (earned // 10_000) * bps + ((earned % 10_000) * bps) // 10_000


def test_settle_script_formula_matches_diamonds_for() -> None:
    lua = scripts.source("settle")
    assert "math.floor(earned / 10000) * bps + math.floor((earned % 10000) * bps / 10000)" in lua
    rng = random.Random(11)
    cases = [(e, b) for e in range(0, 30_001, 7) for b in (1, 800, 1000, 5000, 9999, 10_000)]
    cases += [(rng.randrange(1 << 50), rng.randrange(10_001)) for _ in range(2000)]
    for earned, bps in cases:
        assert _lua_target(earned, bps) == settlement_credits.diamonds_for(earned, bps)
