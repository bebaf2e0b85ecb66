"""``python -m loadtests.store_memory`` sends keyed gifts through a real serve and its store,
waits for their settlement, and says where the store's bytes went (the figures themselves
belong to docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

from loadtests import store_memory
from tests.tools import run_tool


def test_the_store_memory_tool_accounts_for_every_gift(tmp_path: Path) -> None:
    stdout, result = run_tool("store_memory", "--gifts", "640", out=tmp_path, seconds=120)
    assert result["gifts"] == 640
    assert result["used_memory_after"] > result["used_memory_before"]
    kinds = result["by_kind"]
    assert set(kinds) == set(store_memory.KINDS)
    # one idempotency record and one room event id per gift (each key was new), plus the
    # records of the 64 grants
    assert kinds["idempotency records"]["keys"] == 640 + store_memory.GIFTERS
    assert kinds["room event ids"]["keys"] == 640
    assert kinds["room logs"]["keys"] == store_memory.ROOMS
    assert all(v["bytes"] > 0 for v in kinds.values())  # every kind holds some of it
    for kind in store_memory.KINDS:
        assert f"| {kind} |" in stdout
