"""py-spy recordings of the server during a measured phase, and a summary of them.

``start`` launches ``py-spy record`` on a pid (and its subprocesses); ``stop`` ends it with
SIGINT (py-spy then writes its output), renders a flame graph SVG from the raw stacks and
returns the hottest functions: inclusive share for livesrv's own functions and the store
client's, and self share for everything.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any


def start(pid: int, stem: Path, rate: int = 100) -> dict[str, Any] | None:
    exe = shutil.which("py-spy")
    if exe is None:
        return None
    raw = stem.with_suffix(".txt")
    proc = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--subprocesses",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {"proc": proc, "raw": raw, "stem": stem}


def stop(spy: dict[str, Any] | None) -> dict[str, Any] | None:
    if spy is None:
        return None
    proc: subprocess.Popen[bytes] = spy["proc"]
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    raw: Path = spy["raw"]
    if not raw.exists():
        return None
    return summarize(raw)


def _frame(f: str) -> tuple[str, str]:
    name, _, where = f.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return name, path


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    """Hottest functions of a raw py-spy recording (``stack count`` lines)."""
    incl: Counter[str] = Counter()
    selfc: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        # py-spy names each process (``--subprocesses``) by its command line, which holds
        # local paths: not a function, not written into the results
        frames = [_frame(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            frames = [("(no Python frame)", "")]
        seen = set()
        for name, path in frames:
            short = "/".join(path.split("/")[-2:])
            if "livesrv/" in path or "redis/" in path or "websockets/" in path:
                key = f"{name} ({short})"
                if key not in seen:
                    seen.add(key)
                    incl[key] += count
        name, path = frames[-1]
        selfc[f"{name} ({'/'.join(path.split('/')[-2:])})"] += count
    pct = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "file": raw.name,
        "inclusive_pct": [[k, pct(v)] for k, v in incl.most_common(top)],
        "self_pct": [[k, pct(v)] for k, v in selfc.most_common(top)],
    }
