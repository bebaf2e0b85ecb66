"""What a run concludes and writes: the summary (headline figures, ratios, the error count
and whether delivery was complete) and the result files (JSON, and PNG plots).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, the ratios, the error count and whether delivery was complete."""
    s: dict[str, Any] = {}
    errors = _summarize_gifts(res, s)
    fan_errors, complete = _summarize_fanout(res, s)
    errors += fan_errors
    conns = res.get("connections") or {}
    for p in conns.get("points", []):
        errors += p["failed"]
    s["kib_per_idle_connection"] = {
        str(p["connections"]): p["kib_per_connection"] for p in conns.get("points", [])
    }
    from .joins import errors_of  # -- join and reconnect storms --

    join_errors, joins_complete = errors_of(res, s)
    audit = res.get("audit")
    if audit is not None:  # livesrv audit of the main server's store after the load
        s["audit_exit"] = audit["exit"]
        errors += audit["exit"] != 0
    s["errors"] = errors + join_errors
    s["delivery_complete"] = complete and joins_complete
    return s


def _summarize_gifts(res: dict[str, Any], s: dict[str, Any]) -> int:
    levels = res.get("gifts") or []
    errors = sum(sum(lv["errors"].values()) + (lv["ok"] == 0) for lv in levels)
    ceil_ = res.get("ceiling") or {}
    errors += sum(ceil_.get("errors", {}).values())
    if not levels:
        return errors
    peak = max(levels, key=lambda lv: lv["gifts_per_s"])
    s["gift_peak_per_s"] = peak["gifts_per_s"]
    s["gift_peak_concurrency"] = peak["concurrency"]
    s["gift_peak_latency_ms"] = peak["latency_ms"]
    s["settlement_lag_ms"] = peak["settlement"]["lag_ms"]
    s["unsettled"] = peak["settlement"]["unsettled"]
    if ceil_.get("gifts_per_s"):
        s["ceiling_gifts_per_s"] = ceil_["gifts_per_s"]
        s["throughput_vs_ceiling"] = round(peak["gifts_per_s"] / ceil_["gifts_per_s"], 3)
    return errors


def _run_failed(run: dict[str, Any]) -> tuple[int, bool]:
    """(errors, complete) of one livesrv fan-out run."""
    errors = run["connect_failed"] + sum(run["gift_errors"].values())
    complete = (
        run["readers_complete"] == run["readers"]
        and not run["seq_gaps"]
        and not run["readers_closed"]
    )
    return errors, complete


def _summarize_fanout(res: dict[str, Any], s: dict[str, Any]) -> tuple[int, bool]:
    errors, complete = 0, True
    fan: dict[str, Any] = {}
    for run in res.get("fanout") or []:
        fan.setdefault(str(run["viewers"]), {})[run["server"]] = run
        if run["server"] == "livesrv":  # the baseline falls behind by design
            e, ok = _run_failed(run)
            errors, complete = errors + e, complete and ok
    s["fanout"] = {
        v: {
            "livesrv_events_per_s": pair["livesrv"]["events_per_s"],
            "naive_events_per_s": pair["naive"]["events_per_s"],
            "ratio": round(pair["livesrv"]["events_per_s"] / pair["naive"]["events_per_s"], 2),
            "livesrv_p99_ms": pair["livesrv"]["event_latency_ms"]["p99"],
            "naive_p99_ms": pair["naive"]["event_latency_ms"]["p99"],
        }
        for v, pair in fan.items()
        if "livesrv" in pair and "naive" in pair and pair["naive"]["events_per_s"]
    }
    slow = res.get("slow")
    if slow:
        for run in (slow["baseline"], slow["with_slow"]):
            e, ok = _run_failed(run)
            errors, complete = errors + e, complete and ok
        s["slow"] = {
            "readers_p99_ms": [
                slow["baseline"]["event_latency_ms"]["p99"],
                slow["with_slow"]["event_latency_ms"]["p99"],
            ],
            "rss_max_mb": [
                slow["baseline"]["server_rss_mb"]["max"],
                slow["with_slow"]["server_rss_mb"]["max"],
            ],
            "slow_ended": slow["with_slow"]["slow"]["ended"],
            "slow_consumers_cut_total": slow["with_slow"]["slow_consumers_cut_total"],
        }
    return errors, complete


def write_json(result: dict[str, Any], out: Path, name: str) -> Path:
    """Write ``result`` as ``out/name.json`` (``out`` is made if missing); return the path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=1))
    return path


def write(result: dict[str, Any], out: Path, name: str) -> None:
    """Write ``out/name.json`` and, when matplotlib is installed, the plots beside it (their
    names go into the result, which is written again)."""
    write_json(result, out, name)
    try:
        from loadtests import plots

        result["plots"] = plots.render(result, out, prefix=name)
    except ImportError as exc:  # matplotlib is optional for the quick run
        result["plots"] = {"error": str(exc)}
    write_json(result, out, name)


def stamp() -> str:
    """The wall-clock time a run started or finished, as written in its results."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def say(what: str) -> None:
    """One progress line of a multi-setup run (``[HH:MM:SS] what``)."""
    print(f"[{time.strftime('%H:%M:%S')}] {what}", flush=True)
