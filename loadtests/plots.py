"""PNG plots of a bench result (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LIVESRV = "#1f77b4"
NAIVE = "#d62728"
CEIL = "#2ca02c"


def render(result: dict[str, Any], out: Path, prefix: str = "bench") -> dict[str, str]:
    """Write every plot the result has data for; returns {name: file name}."""
    files: dict[str, str] = {}
    for name, fn in (
        ("gifts", _gifts),
        ("fanout", _fanout),
        ("settlement", _settlement),
        ("slow", _slow),
        ("connections", _connections),
    ):
        fig = fn(result)
        if fig is None:
            continue
        path = out / f"{prefix}-{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        files[name] = path.name
    return files


def _gifts(r: dict[str, Any]) -> Any:
    levels = r.get("gifts")
    if not levels:
        return None
    c = [lv["concurrency"] for lv in levels]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(c, [lv["gifts_per_s"] for lv in levels], "o-", color=LIVESRV, label="livesrv")
    ceil_ = (r.get("ceiling") or {}).get("gifts_per_s")
    if ceil_:
        ax1.axhline(ceil_, color=CEIL, ls="--", label=f"store ceiling ({ceil_:,.0f}/s)")
        ax1.axhline(0.4 * ceil_, color=CEIL, ls=":", lw=1, label="40% of ceiling")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("concurrent gifters (one request in flight each)")
    ax1.set_ylabel("gifts acknowledged / s")
    ax1.set_title("Gift throughput")
    ax1.legend(loc="lower right")
    ax1.grid(alpha=0.3)
    ax2.plot(c, [lv["latency_ms"]["p50"] for lv in levels], "o-", color=LIVESRV, label="p50")
    ax2.plot(c, [lv["latency_ms"]["p99"] for lv in levels], "s--", color=LIVESRV, label="p99")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("concurrent gifters")
    ax2.set_ylabel("gift reply latency (ms)")
    ax2.set_title("Gift reply latency")
    ax2.legend()
    ax2.grid(alpha=0.3, which="both")
    return fig


def _fanout(r: dict[str, Any]) -> Any:
    runs = r.get("fanout")
    if not runs:
        return None
    sizes = sorted({run["viewers"] for run in runs})
    by = {(run["server"], run["viewers"]): run for run in runs}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.38
    xs = range(len(sizes))
    for k, (kind, color) in enumerate((("livesrv", LIVESRV), ("naive", NAIVE))):
        vals = [by[(kind, v)]["events_per_s"] if (kind, v) in by else 0 for v in sizes]
        bars = ax1.bar([x + (k - 0.5) * width for x in xs], vals, width, color=color, label=kind)
        ax1.bar_label(bars, labels=[f"{v / 1000:,.0f}k" for v in vals], fontsize=8)
    offered = [
        by[("livesrv", v)]["offered_events_per_s"] if ("livesrv", v) in by else 0 for v in sizes
    ]
    ax1.plot(list(xs), offered, "k_", ms=30, mew=2, label="offered")
    ax1.set_xticks(list(xs), [f"{v:,}" for v in sizes])
    ax1.set_xlabel(f"viewers in one room (gift rate {runs[0]['gift_rate']:.0f}/s)")
    ax1.set_ylabel("gift events delivered / s")
    ax1.set_title("Fan-out throughput")
    ax1.legend()
    for kind, color in (("livesrv", LIVESRV), ("naive", NAIVE)):
        pts = [(v, by[(kind, v)]["event_latency_ms"]) for v in sizes if (kind, v) in by]
        ax2.plot(
            [v for v, _ in pts],
            [max(lat["p50"] or 0.01, 0.01) for _, lat in pts],
            "o-",
            color=color,
            label=f"{kind} p50",
        )
        ax2.plot(
            [v for v, _ in pts],
            [max(lat["p99"] or 0.01, 0.01) for _, lat in pts],
            "s--",
            color=color,
            label=f"{kind} p99",
        )
    ax2.axhline(250, color="grey", ls=":", lw=1, label="250 ms")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("viewers")
    ax2.set_ylabel("event latency, now - ts (ms)")
    ax2.set_title("Event delivery latency")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3, which="both")
    return fig


def _settlement(r: dict[str, Any]) -> Any:
    levels = r.get("gifts")
    if not levels:
        return None
    peak = max(levels, key=lambda lv: lv["gifts_per_s"])
    cdf = peak["settlement"]["cdf"]
    if not cdf:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([v for _, v in cdf], [q for q, _ in cdf], color=LIVESRV)
    ax.axvline(1000, color="grey", ls=":", lw=1, label="1 s")
    ax.set_xlabel("gift acknowledged -> creator's diamonds credited (ms)")
    ax.set_ylabel("percentile")
    ax.set_title(f"Settlement lag at {peak['gifts_per_s']:,.0f} gifts/s")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _slow(r: dict[str, Any]) -> Any:
    slow = r.get("slow")
    if not slow:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label, color in (
        ("baseline", "all read", LIVESRV),
        ("with_slow", f"{slow['fraction']:.0%} never read", NAIVE),
    ):
        tl = slow[key]["rss_timeline"]
        ax1.plot([t for t, _ in tl], [v for _, v in tl], color=color, label=f"{label}: server RSS")
        tcp = slow[key].get("tcp_mem_timeline") or []
        if tcp:
            ax1.plot(
                [t for t, _ in tl][: len(tcp)],
                tcp,
                color=color,
                ls="--",
                label=f"{label}: kernel TCP buffers",
            )
    ax1.set_xlabel("seconds into the gift burst")
    ax1.set_ylabel("MiB")
    ax1.set_ylim(bottom=0)
    ax1.set_title(f"Memory, {slow['baseline']['viewers']:,} viewers")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    names = ["p50", "p90", "p99"]
    for k, (key, label, color) in enumerate(
        (("baseline", "all read", LIVESRV), ("with_slow", "readers, with slow ones", NAIVE))
    ):
        lat = slow[key]["event_latency_ms"]
        ax2.bar(
            [i + (k - 0.5) * 0.38 for i in range(3)],
            [lat[n] or 0 for n in names],
            0.38,
            color=color,
            label=label,
        )
    ax2.set_xticks(range(3), names)
    ax2.set_ylabel("event latency of readers (ms)")
    ax2.set_title("Readers' latency")
    ax2.legend()
    return fig


def _connections(r: dict[str, Any]) -> Any:
    pts = (r.get("connections") or {}).get("points")
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [p["connections"] for p in pts]
    bars = ax.bar([f"{x:,}" for x in xs], [p["kib_per_connection"] for p in pts], color=LIVESRV)
    ax.bar_label(bars, fmt="%.1f KiB")
    ax.axhline(20, color="grey", ls=":", lw=1, label="20 KiB")
    ax.set_xlabel("idle connections (hello + join)")
    ax.set_ylabel("server RSS per connection (KiB)")
    ax.set_title("Memory per idle connection")
    ax.legend()
    return fig
