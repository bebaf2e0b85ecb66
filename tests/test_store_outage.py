"""``livesrv serve`` when its store goes away after start and comes back: the loops back off,
the log says "unavailable" once, "still unavailable" at most once per
``LIVESRV_STORE_DOWN_LOG_EVERY`` seconds with a count, and "back after" once; then the server
serves again."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from livesrv.store.embedded import EmbeddedStore
from livesrv.wire import tokens
from tests.client import Client
from tests.conftest import SECRET, livesrv_cmd
from tests.timing import scaled

LOOPS = ("settlement", "settlement upkeep")  # the loops that keep asking the store
EVERY = 1.0  # LIVESRV_STORE_DOWN_LOG_EVERY for this test


@pytest.fixture
def own_store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "store")
    store.start()
    yield store
    store.stop()


def lines(log: Path, loop: str, what: str) -> list[str]:
    """The log lines of ``loop`` that say ``what`` (one loop's name is a prefix of the
    other's, so the match is on ``<loop>: store <what>``)."""
    pattern = re.compile(rf"livesrv\.settlement: {re.escape(loop)}: store {re.escape(what)}")
    return [ln for ln in log.read_text().splitlines() if pattern.search(ln)]


async def until(check: object, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + scaled(seconds)
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_store_away_and_back_is_logged_a_few_times_then_serve_serves_again(
    own_store: EmbeddedStore, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}
    env.update(LIVESRV_SECRET=SECRET, LIVESRV_STORE_DOWN_LOG_EVERY=str(EVERY))
    args = (
        "serve", "--redis-url", own_store.url, "--port", "0", "--http-port", "0",
        "--data-dir", str(tmp_path / "d"), "--hold-seconds", "0",
    )  # fmt: skip
    with log.open("w") as err:
        proc = subprocess.Popen(
            livesrv_cmd(*args),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    try:
        assert proc.stdout is not None
        ws_url = (await asyncio.to_thread(proc.stdout.readline)).strip()
        await asyncio.to_thread(proc.stdout.readline)
        token = tokens.issue(SECRET, "outage_viewer", "viewer", 3600)
        c = await Client.open(ws_url)
        await c.ok("hello", token=token)
        assert (await c.ok("wallet"))["coins"] == 0

        await asyncio.to_thread(own_store.stop)
        away = time.monotonic()
        assert await c.error("wallet") == "unavailable"
        # stay away long enough for the throttled "still unavailable" lines
        for loop in LOOPS:
            await until(lambda loop=loop: lines(log, loop, "still unavailable"), loop)
        await asyncio.to_thread(own_store.start)
        outage = time.monotonic() - away
        for loop in LOOPS:
            await until(lambda loop=loop: lines(log, loop, "back after"), f"{loop} back")

        for loop in LOOPS:
            gone = lines(log, loop, "unavailable (")
            still = lines(log, loop, "still unavailable")
            back = lines(log, loop, "back after")
            assert len(gone) == 1, gone
            assert "retrying with back-off" in gone[0]
            # at most one line per EVERY seconds while away, each with its count
            assert 1 <= len(still) <= outage / EVERY + 1, (outage, still)
            counts = [int(m[1]) for s in still if (m := re.search(r"\((\d+) failed attempts", s))]
            assert counts == sorted(counts) and counts[0] >= 2, still
            assert len(back) == 1, back
            assert re.search(r"store back after \d+\.\d s \(\d+ failed attempts\)$", back[0])

        # the server serves again: the old connection and a new one both work
        async def wallet_works() -> bool:
            return bool((await c.call("wallet"))["ok"])

        deadline = time.monotonic() + scaled(20)
        while not await wallet_works():
            assert time.monotonic() < deadline, "the wallet never answered again"
            await asyncio.sleep(0.1)
        fresh = await Client.open(ws_url)
        await fresh.ok("hello", token=token)
        assert (await fresh.ok("wallet"))["coins"] == 0
        await fresh.close()
        await c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, scaled(30)) == 0
        if proc.stdout is not None:
            proc.stdout.close()
