"""The rules of LIVE matches and hype trains, with no socket and an injected clock
(livesrv/services/live_rules.py; the store scripts follow them)."""

from __future__ import annotations

from livesrv.services import live_rules as r

W = 30_000  # one booster window


def test_a_gift_outside_a_window_counts_its_coins() -> None:
    assert r.points(100, 5_000, 0) == 100
    assert r.points(100, 5_000, 5_000) == 100  # the window ended exactly now


def test_a_booster_doubles_its_own_gift_and_the_next_ones_of_its_side() -> None:
    score, boost = r.score_side([(1_000, 5, True), (2_000, 10, False)], 0, 300_000, W)
    assert (score, boost) == (30, 31_000)


def test_booster_windows_queue_rather_than_stack() -> None:
    boost = r.queue_boost(0, 10_000, W)
    assert boost == 40_000
    boost = r.queue_boost(boost, 20_000, W)  # a second booster while the first runs
    assert boost == 70_000  # the second window starts where the first ends
    assert r.points(7, 69_999, boost) == 14  # x2, never x4
    assert r.points(7, 70_000, boost) == 7
    assert r.queue_boost(boost, 100_000, W) == 130_000  # after a gap: starts at the booster


def test_only_gifts_inside_the_match_count() -> None:
    gifts = [(999, 50, False), (1_000, 1, False), (4_999, 2, False), (5_000, 40, False)]
    assert r.score_side(gifts, 1_000, 5_000, W) == (3, 0)


def test_winner_draw_and_forfeit() -> None:
    assert r.winner({"a": 10, "b": 7}) == "a"
    assert r.winner({"a": 3, "b": 7}) == "b"
    assert r.winner({"a": 7, "b": 7}) is None
    assert r.winner({"a": 100, "b": 7}, forfeit="a") == "b"  # closing the room loses
    assert r.winner({"a": 0, "b": 0}, forfeit="b") == "a"


def test_hype_thresholds_rise() -> None:
    assert r.hype_thresholds(100, 5) == [100, 300, 600, 1000, 1500]
    assert [r.hype_level(t, [100, 300, 600]) for t in (0, 99, 100, 299, 300, 10_000)] == [
        0,
        0,
        1,
        1,
        2,
        3,
    ]


def train(**kw: int) -> r.HypeTrain:
    base = {"viewers": 3, "window_ms": 300_000, "countdown_ms": 60_000, "cooldown_ms": 120_000}
    return r.HypeTrain(thresholds=r.hype_thresholds(10, 3), **{**base, **kw})


def test_a_train_starts_at_the_third_distinct_gifter_within_the_window() -> None:
    t = train()
    assert t.gift("a", 5, 0) == []
    assert t.gift("a", 5, 1_000) == []  # the same viewer again: still one
    assert t.gift("b", 5, 2_000) == []
    assert t.gift("c", 5, 3_000) == ["hype_start"]
    assert (t.running, t.total, t.level, t.ends) == (True, 5, 0, 63_000)


def test_gifters_older_than_the_window_do_not_count() -> None:
    t = train()
    t.gift("a", 5, 0)
    t.gift("b", 5, 100_000)
    assert t.gift("c", 5, 300_000) == []  # a's gift fell out of the 5 minutes
    assert t.gift("d", 5, 300_001) == ["hype_start"]


def test_levels_pass_in_order_and_each_gift_refreshes_the_countdown() -> None:
    t = train()
    for i, user in enumerate("abc"):
        t.gift(user, 1, i)
    assert t.gift("a", 59, 50_000) == ["hype_level", "hype_level", "hype_level"]
    assert (t.total, t.level, t.ends) == (60, 3, 110_000)
    assert t.tick(109_999) is None
    end = t.tick(110_000)
    assert end == {"level": 3, "total": 60, "top": [["a", 59], ["c", 1]]}
    assert t.tick(200_000) is None  # once


def test_after_the_end_a_cooldown_holds_off_the_next_train() -> None:
    t = train(countdown_ms=1_000, cooldown_ms=10_000)
    for i, user in enumerate("abc"):
        t.gift(user, 1, i)
    assert t.gift("x", 1, 5_000) == []  # the countdown ran out: counted nowhere
    assert t.tick(5_000) is not None
    for i, user in enumerate("def"):
        assert t.gift(user, 1, 6_000 + i) == []  # cooling down until 12,002
    starts = [t.gift(u, 1, 13_000 + i) for i, u in enumerate("ghi")]
    assert starts == [[], [], ["hype_start"]]
