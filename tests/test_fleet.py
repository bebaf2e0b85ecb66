"""Several nodes on one store: the fleet guards and viewer presence across nodes.

A node whose money settings (shard count, catalogue, hold, receipt checks) differ from
the ones the first node recorded refuses to start, naming the setting, both values and
the fix; ``livesrv serve`` and ``livesrv settle`` exit 2 with that message. Viewer counts
are distinct users on every node, and the viewers of a node that was SIGKILLed drop out
of the counts by themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from livesrv.fleet import FleetMismatch
from livesrv.wire import tokens
from tests.client import Client
from tests.conftest import SECRET, Running, ServeProcess, ServerFactory, livesrv_cmd
from tests.timing import scaled

Serve = Callable[..., ServeProcess]
BUILT_IN = Path(__file__).resolve().parent.parent / "livesrv" / "catalog.json"
FAST_PRESENCE = {"presence_refresh": 0.5, "presence_ttl": 2.0}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a livesrv command to completion with only the given LIVESRV_* variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}
    return subprocess.run(
        livesrv_cmd(*args),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env={**base, "LIVESRV_SECRET": SECRET, **(env or {})},
    )


async def arun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, *args, env=env)


def serve_args(store: str, data_dir: Path) -> tuple[str, ...]:
    """``livesrv serve`` on the test store with the settings of the in-process nodes."""
    return (
        "serve",
        "--redis-url",
        store,
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--http-port",
        "0",
        "--hold-seconds",
        "0",
    )


async def connect(url: str, user: str, role: str = "viewer") -> Client:
    c = await Client.open(url)
    await c.ok("hello", token=tokens.issue(SECRET, user, role, 3600))
    return c


async def viewers_after(client: Client, seen: int, count: int, timeout: float = 10) -> None:
    """Wait for a ``viewers`` event with ``count`` among the events after the first ``seen``."""
    await client.wait(
        lambda: any(e["ev"] == "viewers" and e["count"] == count for e in client.events[seen:]),
        timeout,
    )


def viewer_counts(client: Client) -> list[int]:
    return [e["count"] for e in client.events if e["ev"] == "viewers"]


async def room_with_creator(node: Running, creator: str, room: str) -> Client:
    c = await node.connect(creator, "creator")
    await c.ok("room_open", room=room, title="fleet")
    await c.ok("join", room=room)
    return c


# -- fleet guards ----------------------------------------------------------------------


async def test_nodes_with_the_same_settings_share_a_room(make_server: ServerFactory) -> None:
    a = await make_server()
    b = await make_server()
    creator = await room_with_creator(a, "fl_cr1", "fl_same")
    fan = await b.connect("fl_fan1")
    assert (await fan.ok("join", room="fl_same"))["viewers"] == 2
    await creator.event("viewers", lambda e: e["count"] == 2)


async def test_serve_with_other_shards_exits_2_naming_the_fix(
    make_server: ServerFactory, flushed: str, tmp_path: Path
) -> None:
    a = await make_server()  # LIVESRV_SHARDS=16: the first node writes the fleet record
    await a.grant("fl_rich", 100)
    r = await arun(*serve_args(flushed, tmp_path / "b"), env={"LIVESRV_SHARDS": "8"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""  # no URLs: it never listened
    assert "LIVESRV_SHARDS is 16 in the fleet record but 8 on this node" in r.stderr
    assert "start this node with LIVESRV_SHARDS=16" in r.stderr
    assert "`livesrv fleet --reset` after migrating" in r.stderr
    # nothing changed: the record still says 16 and the first node serves balances
    shown = await arun("fleet", "--redis-url", flushed)
    assert shown.returncode == 0 and "shards: 16" in shown.stdout.splitlines()
    rich = await a.connect("fl_rich")
    assert (await rich.ok("wallet"))["coins"] == 100

    # after a migration: reset the record, and the next node to start writes its own
    reset = await arun("fleet", "--redis-url", flushed, "--reset")
    assert (reset.returncode, reset.stdout.strip()) == (0, "fleet record deleted")
    empty = await arun("fleet", "--redis-url", flushed)
    assert empty.stdout.strip() == "no fleet record: the next node to start writes one"
    again = await arun("settle", "--once", "--redis-url", flushed, env={"LIVESRV_SHARDS": "8"})
    assert again.returncode == 0, again.stderr
    assert "shards: 8" in (await arun("fleet", "--redis-url", flushed)).stdout.splitlines()


async def test_another_catalogue_refuses_and_the_same_one_reformatted_starts(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    a = await make_server()
    data = json.loads(BUILT_IN.read_text())
    same = tmp_path / "same.json"
    same.write_text(json.dumps(data, indent=4, sort_keys=True))  # same contents, new layout
    data["gifts"]["rose"]["coins"] = 2
    dearer = tmp_path / "dearer.json"
    dearer.write_text(json.dumps(data))
    with pytest.raises(FleetMismatch) as refused:
        await make_server(catalog=dearer)
    text = str(refused.value)
    assert "the catalogue (--catalog / LIVESRV_CATALOG" in text
    found = re.search(r"is (sha256:\w+) in the fleet record but (sha256:\w+) on this node", text)
    assert found is not None and found[1] != found[2], text
    assert "start this node with the fleet's catalogue (the built-in catalogue)" in text
    b = await make_server(catalog=same)
    await room_with_creator(a, "fl_cr2", "fl_cat")
    fan = await b.connect("fl_fan2")
    assert (await fan.ok("join", room="fl_cat"))["viewers"] == 2


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"hold_seconds": 3600},
            [
                "LIVESRV_HOLD_SECONDS (--hold-seconds; 0 by default with --demo) is 0 in the "
                "fleet record but 3600 on this node",
                "start this node with --hold-seconds 0 (LIVESRV_HOLD_SECONDS=0)",
            ],
        ),
        (
            {"receipt_verifier": "any"},
            [
                "is hmac in the fleet record but any on this node",
                "start this node with --receipt-verifier hmac",
            ],
        ),
        (
            {"demo": True},
            ["LIVESRV_DEMO", "is 0 in the fleet record but 1", "without --demo"],
        ),
        (
            {"receipt_key": "another-receipt-key"},
            ["the receipt key", "the same --secret and --receipt-key as the other nodes"],
        ),
    ],
    ids=["hold", "receipt_verifier", "demo", "receipt_key"],
)
async def test_other_money_settings_refuse(
    make_server: ServerFactory, override: dict[str, object], expected: list[str]
) -> None:
    a = await make_server()
    with pytest.raises(FleetMismatch) as refused:
        await make_server(**override)
    for fragment in expected:
        assert fragment in str(refused.value)
    assert (await (await a.connect("fl_still")).ok("wallet"))["coins"] == 0


async def test_settle_with_another_hold_exits_2(make_server: ServerFactory, flushed: str) -> None:
    await make_server()  # hold 0
    r = await arun("settle", "--once", "--redis-url", flushed)  # the default 72 h hold
    assert r.returncode == 2, r.stdout + r.stderr
    assert "is 0 in the fleet record but 259200 on this node" in r.stderr


async def test_a_refused_node_writes_nothing(make_server: ServerFactory, flushed: str) -> None:
    settled = await arun(
        "settle", "--once", "--redis-url", flushed, env={"LIVESRV_HOLD_SECONDS": "0"}
    )
    assert settled.returncode == 0, settled.stderr
    written = (await arun("fleet", "--redis-url", flushed)).stdout.splitlines()
    assert {"shards: 16", "hold_seconds: 0"} <= set(written)
    assert not any(line.startswith(("secret:", "receipt_verifier:")) for line in written)
    with pytest.raises(FleetMismatch, match="LIVESRV_SHARDS is 16 in the fleet record but 8"):
        await make_server(shards=8)
    assert (await arun("fleet", "--redis-url", flushed)).stdout.splitlines() == written
    a = await make_server()  # agrees: adds what a settle worker does not record
    shown = (await arun("fleet", "--redis-url", flushed)).stdout.splitlines()
    assert "receipt_verifier: hmac" in shown and any(x.startswith("secret: hmac:") for x in shown)
    assert (await (await a.connect("fl_after")).ok("wallet"))["coins"] == 0


async def test_presence_periods_are_checked(make_server: ServerFactory) -> None:
    with pytest.raises(ValueError, match="LIVESRV_PRESENCE_TTL"):
        await make_server(presence_refresh=5.0, presence_ttl=8.0)


# -- viewer presence -----------------------------------------------------------------


async def test_a_user_on_two_nodes_stays_counted_when_leaving_one(
    make_server: ServerFactory,
) -> None:
    a = await make_server(**FAST_PRESENCE)
    b = await make_server(**FAST_PRESENCE)
    creator = await room_with_creator(a, "fl_cr3", "fl_two")
    on_a = await a.connect("fl_both")
    on_b = await b.connect("fl_both")
    await on_a.ok("join", room="fl_two")
    assert (await on_b.ok("join", room="fl_two"))["viewers"] == 2  # distinct users
    seen = len(creator.events)
    await on_a.ok("leave", room="fl_two")
    # node b's next refresh counts the user in again
    async with asyncio.timeout(scaled(10)):
        while (await creator.ok("rooms"))["rooms"][0]["viewers"] != 2:
            await asyncio.sleep(0.05)
    seen = len(creator.events)
    await on_b.ok("leave", room="fl_two")
    await viewers_after(creator, seen, 1)


async def test_viewers_of_a_killed_node_leave_the_counts(
    make_server: ServerFactory, serve_process: Serve, flushed: str, tmp_path: Path
) -> None:
    survivor = await make_server(presence_refresh=1.0, presence_ttl=3.0)
    p = serve_process(
        "--redis-url",
        flushed,
        "--hold-seconds",
        "0",
        data_dir=tmp_path / "doomed",
        env={"LIVESRV_PRESENCE_REFRESH": "1", "LIVESRV_PRESENCE_TTL": "3"},
    )
    creator = await room_with_creator(survivor, "fl_cr4", "fl_kill")
    local = await survivor.connect("fl_local")
    await local.ok("join", room="fl_kill")
    doomed = [await connect(p.ws_url, f"fl_doomed{i}") for i in range(3)]
    doomed.append(await connect(p.ws_url, "fl_local"))  # also on the survivor
    for c in doomed:
        await c.ok("join", room="fl_kill")
    joined = time.monotonic()
    await creator.event("viewers", lambda e: e["count"] == 5)
    # live viewers stay counted across two whole ttl periods (both nodes refresh them)
    async with asyncio.timeout(scaled(15)):
        while time.monotonic() - joined < 2 * 3.0:
            await asyncio.sleep(0.1)
    counts = viewer_counts(creator)
    assert counts[counts.index(5) :] == [5] * (len(counts) - counts.index(5))
    watcher = await survivor.connect("fl_watcher")
    assert (await watcher.ok("join", room="fl_kill"))["viewers"] == 6
    await creator.event("viewers", lambda e: e["count"] == 6)

    seen = len(creator.events)
    p.signal(signal.SIGKILL)
    killed = time.monotonic()
    await asyncio.to_thread(p.wait)
    await viewers_after(creator, seen, 3, timeout=30)
    assert time.monotonic() - killed < scaled(30)
    assert (await creator.ok("rooms"))["rooms"][0]["viewers"] == 3
    late = await survivor.connect("fl_late")
    assert (await late.ok("join", room="fl_kill"))["viewers"] == 4
    for c in doomed:
        await c.close()
