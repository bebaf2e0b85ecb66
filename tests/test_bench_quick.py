"""The benchmark harness in --quick mode: it runs end to end with zero errors and every
event delivered. Speed is not asserted here (that is what the full run is for)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest.importorskip("psutil")
pytest.importorskip("aiohttp")


@pytest.mark.timeout(170)
def test_bench_quick_runs_clean(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.bench",
            "--quick",
            "--no-progress",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=160,
    )
    out = tmp_path / "bench-quick.json"
    assert out.exists(), f"no result file\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    summary = result["summary"]
    assert summary["errors"] == 0, json.dumps(summary, indent=1)
    assert summary["delivery_complete"], json.dumps(summary, indent=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the last line says where it wrote what
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"results written to {tmp_path}: "), last
    assert "bench-quick.json" in last.split(": ", 1)[1].split(", "), last

    # gifts: every level sent some, none failed, every gift was settled
    assert result["gifts"], "no gift level ran"
    for level in result["gifts"]:
        assert level["ok"] > 0
        assert level["errors"] == {}
        assert level["settlement"]["unsettled"] == 0, level["settlement"]
        # the store's time per gift: in scripts, and in the commands (scripts' and clients')
        ops = level["store_ops_per_gift"]
        assert ops["script_us"] > 0 and ops["command_us"] > 0, ops
        assert 0 <= level["server_kernel_cpu_s"] <= level["server_cpu_s"], level
    assert result["ceiling"].get("ok", 0) > 0, result["ceiling"]
    assert result["ceiling"]["errors"] == {}
    # and after all of it, the books balance: the audit of the server's store
    assert result["audit"]["exit"] == 0, result["audit"]
    assert result["audit"]["last_line"] == "audit: all invariants hold", result["audit"]

    # fan-out: every reader of livesrv got every gift event, in order, none cut
    livesrv_runs = [r for r in result["fanout"] if r["server"] == "livesrv"]
    assert livesrv_runs and any(r["server"] == "naive" for r in result["fanout"])
    slow = result["slow"]
    for run in [*livesrv_runs, slow["baseline"], slow["with_slow"]]:
        assert run["connected"] == run["viewers"]
        assert run["gifts_ok"] == run["gifts_sent"]
        assert run["readers_complete"] == run["readers"]
        assert run["events_delivered"] == run["events_expected"]
        assert run["seq_gaps"] == 0 and run["seq_dups"] == 0
        assert run["readers_closed"] == 0
        assert run["event_latency_ms"]["samples"] > 0
        assert 0 <= run["server_kernel_cpu_s"] <= run["server_cpu_s"], run
    assert slow["with_slow"]["slow"]["viewers"] > 0

    # idle connections were all accepted and measured
    for point in result["connections"]["points"]:
        assert point["failed"] == 0
        assert point["kib_per_connection"] > 0

    # the report renders the run's tables, the targets first, each met or not
    shown = subprocess.run(
        [sys.executable, "-m", "loadtests.report", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    text = shown.stdout
    assert text.index("### Targets") < text.index("### Gifts") < text.index("### Fan-out")
    peak = f"{summary['gift_peak_per_s']:,.0f}/s at {summary['gift_peak_concurrency']} gifters"
    assert f"| gifts: reply p99 < 20 ms at the best concurrency | {peak}" in text, text
    assert "| every money invariant holds after the load (`livesrv audit`) | exit **0**" in text
