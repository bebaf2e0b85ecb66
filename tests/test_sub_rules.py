"""Subscription tiers, upgrades and gifted subs (issue 14, item 4): the rules without
sockets: tier prices, the pro-rata arithmetic of an upgrade, the plan of a subscribe, the
choice of recipients, a gifted period, the chat badge, the op schemas and the audit check.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import orjson
import pytest

from livesrv.audit_subs import check_subs
from livesrv.errors import BadRequest
from livesrv.services import sub_rules as rules
from livesrv.services.sub_rules import SubState
from livesrv.wire.schema import parse

ALLOWED = (350, 700, 1750)
DAY_S = 86400
PERIOD_S = 30 * DAY_S
PERIOD_MS = PERIOD_S * 1000
NOW_MS = 1_800_000_000_123


# -- tiers ----------------------------------------------------------------------------


def test_default_tiers_follow_the_catalogue_from_tier_1() -> None:
    assert rules.default_tiers(350, ALLOWED) == (350, 700, 1750)
    assert rules.default_tiers(700, ALLOWED) == (700, 1750)
    assert rules.default_tiers(1750, ALLOWED) == (1750,)
    assert rules.default_tiers(350, (350, 500, 700, 1750)) == (350, 500, 700)


def test_tier_prices_are_checked() -> None:
    assert rules.check_tiers([350], ALLOWED) == (350,)
    assert rules.check_tiers([350, 1750], ALLOWED) == (350, 1750)
    bad: list[tuple[Any, str]] = [
        ([], "1-3 prices"),
        ([350, 700, 1750, 1750], "1-3 prices"),
        ("350", "1-3 prices"),
        ([500], r"prices\[0\] must be one of 350, 700, 1750"),
        ([350, True], r"prices\[1\]"),
        ([350, "700"], r"prices\[1\]"),
        ([700, 350], "more than the tier below"),
        ([350, 350], "more than the tier below"),
    ]
    for prices, message in bad:
        with pytest.raises(BadRequest, match=message):
            rules.check_tiers(prices, ALLOWED)
    assert rules.parse_tiers(None) is None and rules.parse_tiers("") is None
    assert rules.parse_tiers("350,1750") == (350, 1750)
    assert rules.with_tier1((350, 700, 1750), 700) == (700, 1750)
    assert rules.with_tier1((350, 700), 1750) == (1750,)


# -- pro rata -------------------------------------------------------------------------


def test_prorate_examples() -> None:
    assert rules.prorate(700, 350, PERIOD_MS // 2, PERIOD_MS) == 175
    assert rules.prorate(1750, 350, PERIOD_MS, PERIOD_MS) == 1400
    assert rules.prorate(1750, 350, 2 * PERIOD_MS, PERIOD_MS) == 2800  # two periods ahead
    assert rules.prorate(1750, 350, 1, PERIOD_MS) == 1  # any time left costs a coin
    assert rules.prorate(1750, 700, 0, PERIOD_MS) == 0
    assert rules.prorate(1750, 700, -5, PERIOD_MS) == 0
    assert rules.prorate(350, 700, PERIOD_MS, PERIOD_MS) == 0  # never a refund
    # 15 days and 1 ms left of 30: 350 x (15 days + 1 ms) / 30 days = 175.0000001 -> 176
    assert rules.prorate(700, 350, 15 * DAY_S * 1000 + 1, PERIOD_MS) == 176


def test_prorate_is_the_exact_ceiling() -> None:
    rnd = random.Random(7)
    for _ in range(5000):
        new, old = rnd.randint(1, 10**6), rnd.randint(1, 10**6)
        remaining = rnd.randint(-(10**6), 10 * PERIOD_MS)
        exact = Fraction(max(0, new - old) * max(0, remaining), PERIOD_MS)
        paid = rules.prorate(new, old, remaining, PERIOD_MS)
        assert isinstance(paid, int) and paid - 1 < exact <= paid  # the viewer pays ceil


# -- subscribe plans ------------------------------------------------------------------


def test_plan_new_renew_upgrade_and_refusals() -> None:
    prices = (350, 700, 1750)
    now_s = NOW_MS // 1000
    new = rules.plan(SubState(), None, prices, NOW_MS, PERIOD_S)
    assert new == rules.Plan("new", 1, 350, 350, now_s + PERIOD_S, 1)
    assert new.periods == 1
    ended = SubState(until=now_s - 1, tier=3, price=1750, months=4)
    assert rules.plan(ended, 2, prices, NOW_MS, PERIOD_S) == rules.Plan(
        "new", 2, 700, 700, now_s + PERIOD_S, 5
    )
    # active at tier 2: renewing (no tier, or the same) adds a period at its price
    active = SubState(until=now_s + 10 * DAY_S, tier=2, price=700, months=5)
    renew = rules.plan(active, None, prices, NOW_MS, PERIOD_S)
    assert renew == rules.Plan("renew", 2, 700, 700, active.until + PERIOD_S, 6)
    assert rules.plan(active, 2, prices, NOW_MS, PERIOD_S) == renew
    # upgrade to tier 3: (1750 - 700) x 10 days / 30 days = 350, rounded up, same end
    up = rules.plan(active, 3, prices, NOW_MS, PERIOD_S)
    remaining = active.until * 1000 - NOW_MS  # 10 days less 123 ms
    assert up == rules.Plan("upgrade", 3, 1750, -(-1050 * remaining // PERIOD_MS), active.until, 5)
    assert up.amount == 350 and up.periods == 0
    # the price paid counts, not today's price of the old tier
    paid_less = SubState(until=active.until, tier=2, price=350, months=5)
    assert rules.plan(paid_less, 3, prices, NOW_MS, PERIOD_S).amount == 467  # 1400/3 -> 467
    # a subscription from before tiers (no record): tier 1 at today's tier-1 price
    legacy = SubState(until=now_s + 15 * DAY_S)
    assert rules.plan(legacy, 2, prices, NOW_MS, PERIOD_S).amount == 175
    with pytest.raises(BadRequest, match="downgrades are refused"):
        rules.plan(active, 1, prices, NOW_MS, PERIOD_S)
    with pytest.raises(BadRequest, match="tiers 1-2"):
        rules.plan(SubState(), 3, (350, 700), NOW_MS, PERIOD_S)


def test_active_to_the_millisecond_and_the_badge() -> None:
    until = NOW_MS // 1000 + 1
    s = SubState(until=until, tier=2, price=700, months=3)
    assert s.active(until * 1000 - 1) and not s.active(until * 1000)
    assert rules.badge(s, until * 1000 - 1) == {"tier": 2, "months": 3}
    assert rules.badge(s, until * 1000) is None
    assert rules.badge(SubState(until=until, months=1), NOW_MS) == {"tier": 1, "months": 1}
    assert SubState(until=until).current_tier(until * 1000) == 0


# -- gifted subscriptions -------------------------------------------------------------


def test_chosen_recipients_are_checked() -> None:
    assert rules.check_recipients(["a", "b"], "gifter", "cr") == ["a", "b"]
    bad: list[tuple[Any, str]] = [
        ([], "1-50 users"),
        (["u"] * 51, "1-50 users"),
        ("a", "1-50 users"),
        (["a", 5], r"to\[1\] must be a user id"),
        (["a b"], r"to\[0\] must be a user id"),
        (["gifter"], "yourself or the creator"),
        (["a", "cr"], "yourself or the creator"),
        (["a", "b", "a"], "twice"),
    ]
    for to, message in bad:
        with pytest.raises(BadRequest, match=message):
            rules.check_recipients(to, "gifter", "cr")


def test_random_choice_is_fixed_by_the_key() -> None:
    viewers = [f"v{i:02d}" for i in range(40)]
    seed = rules.gift_seed("gifter", "k1")
    assert seed == rules.gift_seed("gifter", "k1") != rules.gift_seed("gifter", "k2")
    order = rules.shuffled(viewers, seed)
    assert sorted(order) == viewers and order != viewers
    assert rules.shuffled(reversed(viewers), seed) == order  # the set decides, not its order
    assert rules.shuffled(viewers, rules.gift_seed("other", "k1")) != order
    picked = rules.pick(order, set(order[:3]), 10)
    assert picked == order[3:13]
    assert rules.pick(order[:5], {order[0]}, 10) == order[1:5]  # fewer than asked
    # gift refs and ledger keys are distinct per gift and per key generation
    refs = {rules.gift_ref("g", "k", x, i) for x in (1, 2) for i in range(1, 11)}
    assert len(refs) == 20
    assert [rules.gift_key("k", i) for i in (1, 10)] == ["k#1", "k#10"]


def test_a_gifted_period() -> None:
    now = NOW_MS // 1000
    fresh, months = rules.grant(SubState(months=2), 2, 700, now, PERIOD_S)
    assert (fresh, months) == (SubState(now + PERIOD_S, 2, 700, 3), 1)
    # on a running subscription: from its end, keeping the higher tier
    running = SubState(now + 100, 3, 1750, 4)
    assert rules.grant(running, 1, 350, now, PERIOD_S)[0] == SubState(
        now + 100 + PERIOD_S, 3, 1750, 5
    )
    low = SubState(now + 100, 1, 350, 1)
    assert rules.grant(low, 2, 700, now, PERIOD_S)[0] == SubState(now + 100 + PERIOD_S, 2, 700, 2)


# -- schemas --------------------------------------------------------------------------


def test_op_schemas() -> None:
    base = {"id": 1, "op": "sub_gift", "room": "r", "key": "k"}
    assert parse({**base, "count": 10}).args == {"room": "r", "key": "k", "count": 10}
    assert parse({**base, "to": ["a"], "tier": 3}).args["to"] == ["a"]
    for extra, message in (
        ({"count": 0}, "count must be between 1 and 50"),
        ({"count": 51}, "count must be between 1 and 50"),
        ({"tier": 4, "count": 1}, "tier must be between 1 and 3"),
        ({"to": "a"}, "to must be a list"),
        ({"to": ["a"] * 51}, "1-50 items"),
    ):
        with pytest.raises(BadRequest, match=message):
            parse({**base, **extra})
    sub = {"id": 1, "op": "subscribe", "room": "r", "key": "k"}
    assert parse({**sub, "tier": 2}).args["tier"] == 2
    with pytest.raises(BadRequest, match="tier must be between 1 and 3"):
        parse({**sub, "tier": 0})
    with pytest.raises(BadRequest, match="1-3 items"):
        parse({"id": 1, "op": "sub_tiers", "prices": [350, 700, 1750, 3500]})


# -- the audit check ------------------------------------------------------------------


def _entry(kind: str, user: str, key: str, coins: int, sub: dict[str, Any]) -> Any:
    p = {"room": "r", "e": [["cr", "sub:5000", 5000]], "sub": sub}
    return (
        0,
        "1-0",
        {
            "kind": kind,
            "user": user,
            "key": key,
            "coins": str(coins),
            "p": orjson.dumps(p).decode(),
        },
    )


def test_audit_check_counts_months_and_pairs_gifts() -> None:
    outbox = [
        _entry("sub", "v", "s1", 350, {"creator": "cr", "tier": 1, "period": 1}),
        _entry("sub", "v", "s2", 467, {"creator": "cr", "tier": 3, "period": 0}),  # upgrade
        _entry("sub_gift", "g", "k#1", 700, {"to": "v", "creator": "cr", "tier": 2, "ref": "r1"}),
        _entry("sub_gift", "g", "k#2", 700, {"to": "w", "creator": "cr", "tier": 2, "ref": "r2"}),
        (0, "1-0", {"kind": "gift", "user": "v", "key": "x", "coins": "1", "p": "{}"}),
    ]
    records = {
        ("v", "cr"): {"months": 2, "tier": 3, "refs": ["r1"]},
        ("w", "cr"): {"months": 1, "tier": 2, "refs": ["r2"]},
    }
    ok = check_subs({"outbox": outbox, "sub_records": records})
    assert ok["ok"], ok
    assert (ok["records"], ok["loyalty_months"], ok["periods_paid"], ok["gifted"]) == (2, 3, 1, 2)

    lost = {("v", "cr"): {"months": 2, "tier": 3, "refs": ["r1", "r9"]}}
    bad = check_subs({"outbox": outbox, "sub_records": lost})
    assert not bad["ok"]
    assert bad["months_mismatches"] == [
        {"user": "v", "creator": "cr", "months": 2, "paid_periods": 1, "gifted_periods": 2}
    ]
    assert [g["ref"] for g in bad["paid_not_granted"]] == ["r2"]
    assert bad["granted_not_paid"] == [{"ref": "r9", "user": "v", "creator": "cr"}]
