"""``python -m loadtests.store_memory`` sends keyed gifts through a real serve and its store,
waits for their settlement, and says where the store's bytes went (the figures themselves
belong to docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadtests import store_memory
from tests.timing import scaled


def test_the_store_memory_tool_accounts_for_every_gift(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.store_memory", "--gifts", "640", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "store_memory.json").read_text())
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
        assert f"| {kind} |" in done.stdout
