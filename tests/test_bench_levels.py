"""The gifts phase's levels: a concurrency given again in ``--concurrency`` must run with
gifters, rooms and keys of its own, or its gifts would be idempotent replays of the
earlier level's (nothing moved, and a rate several times the real one)."""

from __future__ import annotations

from loadtests.bench.gifts import level_labels


def test_each_level_has_names_of_its_own() -> None:
    labels = level_labels([64, 64, 16, 64])
    assert len(set(labels)) == 4


def test_a_level_given_once_keeps_its_concurrency_as_its_name() -> None:
    # result files and profiles of the usual runs keep their names (gifts-c64, ...)
    assert level_labels([1, 4, 16, 64, 256]) == ["1", "4", "16", "64", "256"]
    assert level_labels([64, 64])[0] == "64"
