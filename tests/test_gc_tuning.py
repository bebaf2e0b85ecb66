"""Garbage collection of a serve process (``LIVESRV_GC_YOUNG``, :func:`tune_gc`): young
collections every ``gc_young`` allocations, what exists at start frozen out of every
collection, and cyclic garbage made later still collected."""

from __future__ import annotations

import gc
import weakref

import pytest

from livesrv.realtime.node import tune_gc
from livesrv.settings import Settings


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_tune_gc_sets_the_young_threshold_freezes_start_and_still_collects_cycles() -> None:
    before = gc.get_threshold()
    try:
        tune_gc(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
        assert gc.get_freeze_count() > 1000  # the modules and classes loaded so far
        garbage = Cycle()
        alive = weakref.ref(garbage)
        del garbage
        assert alive() is not None  # a cycle: no reference count frees it
        gc.collect()
        assert alive() is None  # made after the freeze: the collector still takes it
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_gc_young_defaults_and_bounds() -> None:
    assert Settings().gc_young == 10_000
    assert Settings.from_env({"LIVESRV_GC_YOUNG": "50000"}).gc_young == 50_000
    with pytest.raises(ValueError, match="LIVESRV_GC_YOUNG"):
        Settings.from_env({"LIVESRV_GC_YOUNG": "10"})
