"""Running a measuring tool of ``loadtests/`` as a user would: ``python -m loadtests.NAME``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.timing import scaled

REPO = Path(__file__).parent.parent


def run_tool(name: str, *args: str, out: Path, seconds: float) -> tuple[str, dict[str, Any]]:
    """Run ``python -m loadtests.NAME ARGS --out OUT`` from the repository; it must exit 0.

    Returns:
        What it printed, and the result it wrote (``OUT/NAME.json``).
    """
    done = subprocess.run(
        [sys.executable, "-m", f"loadtests.{name}", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=scaled(seconds),
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads((out / f"{name}.json").read_text())
