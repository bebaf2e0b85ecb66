"""The hub's tick (:class:`livesrv.realtime.ticks.Ticker`), without a socket or a store: the
flush goes out at every tick even while the store part of an earlier tick still waits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from livesrv.realtime.ticks import Ticker
from tests.timing import until


class SlowStore:
    """A tick's store part that waits until released, counting its starts."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()
        self.fail = False

    async def refresh(self) -> None:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail:
            raise RuntimeError("a bug in the store part")


async def test_flushes_go_on_while_the_store_part_of_a_tick_waits() -> None:
    flushed: list[int] = []
    store = SlowStore()
    ticker = Ticker(lambda: flushed.append(1), store.refresh)
    try:
        for _ in range(5):
            await ticker.tick()
            await asyncio.sleep(0)
        assert len(flushed) == 5  # every tick sent its events, none waited for the store
        assert store.started == 1  # one store part at a time: the others were not started
        store.release.set()
        await until(lambda: not ticker.refreshing)
        await ticker.tick()
        await until(lambda: store.started == 2)  # once it finished, the next tick starts one
        assert len(flushed) == 6
    finally:
        await ticker.close()


async def test_a_failing_flush_or_store_part_is_logged_and_the_ticks_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SlowStore()
    store.fail = True
    store.release.set()
    calls: list[int] = []

    def flush() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in the flush")

    ticker = Ticker(flush, store.refresh)
    try:
        with caplog.at_level(logging.ERROR, logger="livesrv.realtime.ticks"):
            await ticker.tick()
            await until(lambda: not ticker.refreshing)
            await ticker.tick()
            await until(lambda: store.started == 2)
        assert len(calls) == 2
        messages = [r.getMessage() for r in caplog.records]
        assert "hub flush failed; going on" in messages
        assert "hub tick failed; going on" in messages
    finally:
        await ticker.close()


async def test_closing_cancels_a_store_part_still_waiting() -> None:
    store = SlowStore()
    ticker = Ticker(lambda: None, store.refresh)
    await ticker.tick()
    await until(lambda: store.started == 1)
    assert ticker.refreshing
    await ticker.close()
    assert store.cancelled == 1 and not ticker.refreshing
