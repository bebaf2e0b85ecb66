"""``python -m loadtests.script_overhead`` runs every script on a store of its own and writes
what the store counted for each (the figures themselves belong to docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

from loadtests import script_overhead
from tests.tools import run_tool


def test_the_script_overhead_tool_measures_every_script(tmp_path: Path) -> None:
    stdout, result = run_tool("script_overhead", "--calls", "300", out=tmp_path, seconds=60)
    assert result["calls_per_script"] == 300
    assert (result["keys"], result["arguments"]) == (18, 60)  # gift.lua's shape
    measured = result["usec_per_evalsha"]
    assert set(measured) == set(script_overhead.SCRIPTS)
    assert all(value > 0 for value in measured.values())  # the store counted every script
    for name in script_overhead.SCRIPTS:
        assert f"| {name} |" in stdout
