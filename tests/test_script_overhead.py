"""``python -m loadtests.script_overhead`` runs every script on a store of its own and writes
what the store counted for each (the figures themselves belong to docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadtests import script_overhead
from tests.timing import scaled


def test_the_script_overhead_tool_measures_every_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.script_overhead", "--calls", "300"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "script_overhead.json").read_text())
    assert result["calls_per_script"] == 300
    assert (result["keys"], result["arguments"]) == (18, 60)  # gift.lua's shape
    measured = result["usec_per_evalsha"]
    assert set(measured) == set(script_overhead.SCRIPTS)
    assert all(value > 0 for value in measured.values())  # the store counted every script
    for name in script_overhead.SCRIPTS:
        assert f"| {name} |" in done.stdout
