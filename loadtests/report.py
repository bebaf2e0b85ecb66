"""Markdown tables from a bench result, for docs/benchmarks.md.

python -m loadtests.report loadtests/results/bench.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _ms(d: dict[str, Any] | None, key: str) -> str:
    v = (d or {}).get(key)
    return "-" if v is None else f"{v:,.1f}"


def _n(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _share(seconds: float | None, of: float) -> str:
    """``seconds`` as a share of ``of`` seconds (``-`` when not recorded: older results)."""
    return "-" if seconds is None else f"{seconds / max(of, 1e-9):.0%}"


def _target(target: str, measured: str, met: bool) -> str:
    """One row of the targets table."""
    return f"| {target} | {measured} | {'yes' if met else 'no'} |"


def targets(r: dict[str, Any]) -> list[str]:
    """The performance targets (issue 15), each met or not in this run; a row is left out
    when its phase did not run."""
    s = r["summary"]
    rows = ["| target | measured | met |", "| --- | --- | --- |"]
    rows += _join_targets(r)
    rows += _gift_targets(r)
    kib = s.get("kib_per_idle_connection", {}).get("20000")
    if kib is not None:
        rows.append(
            _target(
                "memory: <= 10 KiB RSS per idle joined connection at 20,000",
                f"**{kib:.2f} KiB**",
                kib <= 10,
            )
        )
    five = next(
        (f for f in r.get("fanout", []) if f["server"] == "livesrv" and f["viewers"] == 5000),
        None,
    )
    if five:
        p99 = five["event_latency_ms"]["p99"]
        per_cpu = five.get("deliveries_per_cpu_s") or 0  # not in older results
        rows.append(
            _target(
                "fan-out at 5,000 viewers: every reader complete, event p99 <= 100 ms, "
                ">= 2M deliveries per server CPU-second",
                f"{five['readers_complete']:,}/{five['readers']:,} complete, **p99 {p99:,.1f} "
                f"ms**, **{per_cpu / 1e6:.2f}M** per CPU-second",
                five["readers_complete"] == five["readers"]
                and (p99 or 1e9) <= 100
                and per_cpu >= 2_000_000,
            )
        )
    audit = r.get("audit")
    if audit is not None:
        rows.append(
            _target(
                "every money invariant holds after the load (`livesrv audit`)",
                f"exit **{audit['exit']}** in {audit['seconds']:,.1f} s: {audit['last_line']}",
                audit["exit"] == 0,
            )
        )
    slow = s.get("slow")
    if slow:
        p99s = slow["readers_p99_ms"]
        rss = slow["rss_max_mb"]
        cut = slow.get("slow_consumers_cut_total") or 0
        rows.append(
            _target(
                "slow consumers (5% never read): memory flat, readers' p99 unchanged, cut "
                "with 4409",
                f"server RSS max {rss[0]:,.0f} -> {rss[1]:,.0f} MiB, readers' p99 "
                f"{p99s[0]:,.0f} -> {p99s[1]:,.0f} ms, cut {cut:,.0f} of the slow ones",
                cut > 0 and p99s[1] <= 1.25 * p99s[0] and rss[1] <= rss[0] * 1.1,
            )
        )
    return rows


def _join_targets(r: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    s = r["summary"]
    rates = s.get("joins", {})
    mine = rates.get("livesrv")
    if mine:
        peers = "; ".join(
            f"{name} {v['joins_per_s']:,.0f}/s ({v['cpu_ms_per_join']} ms)"
            for name, v in rates.items()
            if name != "livesrv"
        )
        overflows = mine["listen_overflows"] or 0
        rows.append(
            _target(
                "joins: >= 5,000 connect + hello + join per second into one room, no listen "
                "overflow at 200 in flight",
                f"**{mine['joins_per_s']:,.0f}/s**, {mine['cpu_ms_per_join']} ms of server CPU "
                f"per join, {overflows:,} overflows" + (f"; {peers}" if peers else ""),
                mine["joins_per_s"] >= 5000 and overflows == 0,
            )
        )
    storm = (r.get("joins") or {}).get("storm")
    if storm:
        rows.append(
            _target(
                f"storm: {storm['clients']:,} `join since` all caught up, gap-free, within "
                "10 s, the room log read once per batch",
                f"**{storm['seconds']:,.1f} s**, {storm['gaps']} gaps, {storm['dups']} "
                f"duplicates, {storm['replay_reads']} log reads "
                f"({storm['joiners_per_read'] or 0:,.0f} joiners per read)",
                storm["seconds"] <= 10
                and storm["gaps"] == 0
                and storm["dups"] == 0
                and storm["joined"] == storm["clients"]
                and (storm["joiners_per_read"] or 0) > 1,
            )
        )
    return rows


def _gift_targets(r: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    s = r["summary"]
    peak = s.get("gift_peak_per_s")
    if peak is None:
        return rows
    p99 = s["gift_peak_latency_ms"]["p99"]
    rows.append(
        _target(
            "gifts: reply p99 < 20 ms at the best concurrency",
            f"{peak:,.0f}/s at {s['gift_peak_concurrency']} gifters, **p99 {p99:,.1f} ms**",
            (p99 or 1e9) < 20,
        )
    )
    ratio = s.get("throughput_vs_ceiling")
    if ratio is not None:
        rows.append(
            _target(
                "gifts: >= 0.70 of the store's ceiling (same run)",
                f"{peak:,.0f} / {s['ceiling_gifts_per_s']:,.0f} gifts/s = **{ratio:.2f}**",
                ratio >= 0.7,
            )
        )
    vs = [(lv["concurrency"], lv.get("vs_plain")) for lv in r.get("gifts", [])]
    vs = [(c, x) for c, x in vs if x is not None]
    if vs:
        rows.append(
            _target(
                "gifts: >= 2x the plain one-script gift server at every concurrency",
                " / ".join(f"{x:.2f}" for _, x in vs)
                + " at "
                + " / ".join(str(c) for c, _ in vs)
                + " gifters",
                all(x >= 2 for _, x in vs),
            )
        )
    lag = s.get("settlement_lag_ms")
    if lag:
        rows.append(
            _target(
                "settlement lag p99 < 100 ms at the peak gift rate",
                f"p50 {lag['p50']:,.0f} ms, **p99 {lag['p99']:,.0f} ms**",
                (lag["p99"] or 1e9) < 100,
            )
        )
    return rows


def gifts(r: dict[str, Any]) -> list[str]:
    rows = [
        "| gifters | rooms | gifts/s | reply p50 ms | p99 ms | settlement lag p50 ms | p99 ms "
        "| server CPU | store CPU | server waiting for a core | store us per gift: in scripts "
        "/ in commands |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lv in r.get("gifts", []):
        st = lv["settlement"]["lag_ms"]
        rows.append(
            f"| {lv['concurrency']} | {lv['rooms']} | {lv['gifts_per_s']:,.0f} | "
            f"{_ms(lv['latency_ms'], 'p50')} | {_ms(lv['latency_ms'], 'p99')} | "
            f"{_n(st['p50'])} | {_n(st['p99'])} | "
            f"{lv['server_cpu_s'] / max(lv['seconds'], 1e-9):.0%} | "
            f"{lv['store_cpu_share']:.0%} | "
            f"{_share(lv.get('server_runq_wait_s'), lv['seconds'])} | "
            f"{_store_us(lv.get('store_ops_per_gift') or {})} |"
        )
    c = r.get("ceiling") or {}
    if c.get("gifts_per_s"):
        rows.append(
            f"| store ceiling | - | **{c['gifts_per_s']:,.0f}** | - | - | - | - | "
            f"{c['server_cpu_s_meanwhile'] / max(c['seconds'], 1e-9):.0%} | "
            f"{c['store_cpu_share']:.0%} | - | - |"
        )
    return rows


def _store_us(ops: dict[str, Any]) -> str:
    if "script_us" not in ops:
        return "-"
    return f"{ops['script_us']:,.0f} / {ops['command_us']:,.0f}"


def fanout(r: dict[str, Any]) -> list[str]:
    rows = [
        "| viewers | server | offered events/s | delivered events/s | event latency p50 ms "
        "| p99 ms | gift sent -> event p50 ms | p99 ms | complete readers | server CPU "
        "| of it in the kernel | deliveries per server CPU-second |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in r.get("fanout", []):
        rows.append(
            f"| {run['viewers']:,} | {run['server']} | {run['offered_events_per_s']:,.0f} | "
            f"**{run['events_per_s']:,.0f}** | {_ms(run['event_latency_ms'], 'p50')} | "
            f"{_ms(run['event_latency_ms'], 'p99')} | {_ms(run['end_to_end_ms'], 'p50')} | "
            f"{_ms(run['end_to_end_ms'], 'p99')} | "
            f"{run['readers_complete']:,}/{run['readers']:,} | "
            f"{run['server_cpu_s'] / max(run['wall_s'], 1e-9):.0%} | "
            f"{_share(run.get('server_kernel_cpu_s'), run['server_cpu_s'])} | "
            f"{run.get('deliveries_per_cpu_s', 0):,} |"
        )
    ratios = r["summary"].get("fanout", {})
    if ratios:
        rows.append("")
        rows.append("| viewers | livesrv / naive events/s |")
        rows.append("| ---: | ---: |")
        for v, x in ratios.items():
            rows.append(f"| {int(v):,} | **{x['ratio']:.1f}x** |")
    return rows


def slow(r: dict[str, Any]) -> list[str]:
    sl = r.get("slow")
    if not sl:
        return []
    rows = [
        "| run | readers | slow | events/s | readers p50 ms | p99 ms | server RSS start/max/end "
        "MiB | slow ones ended | cut (metric) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for key, label in (("baseline", "all read"), ("with_slow", f"{sl['fraction']:.0%} never read")):
        run = sl[key]
        rss = run["server_rss_mb"]
        ended = (run.get("slow") or {}).get("ended", {})
        rows.append(
            f"| {label} | {run['readers']:,} | {(run.get('slow') or {}).get('viewers', 0)} | "
            f"{run['events_per_s']:,.0f} | {_ms(run['event_latency_ms'], 'p50')} | "
            f"{_ms(run['event_latency_ms'], 'p99')} | {rss['start']} / {rss['max']} / "
            f"{rss['end']} | {ended or '-'} | {_n(run.get('slow_consumers_cut_total'))} |"
        )
    return rows


def connections(r: dict[str, Any]) -> list[str]:
    c = r.get("connections")
    if not c:
        return []
    rows = [
        "| idle connections | server RSS MiB | baseline MiB | KiB per connection | store MiB |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in c["points"]:
        rows.append(
            f"| {p['connections']:,} | {p['server_rss_mb']} | {p['baseline_rss_mb']} | "
            f"**{p['kib_per_connection']}** | {p['store_rss_mb']} |"
        )
    return rows


def profiles(r: dict[str, Any], top: int = 12) -> list[str]:
    """The hottest livesrv/store-client functions of the profiled phases (with --profile)."""
    phases: list[tuple[str, dict[str, Any]]] = []
    levels = r.get("gifts") or []
    if levels:
        peak = max(levels, key=lambda lv: lv["gifts_per_s"])
        if peak.get("profile"):
            phases.append((f"gifts, {peak['concurrency']} gifters", peak["profile"]))
    for run in r.get("fanout") or []:
        if run["server"] == "livesrv" and run.get("profile") and run["viewers"] >= 5000:
            phases.append((f"fan-out, {run['viewers']:,} viewers", run["profile"]))
    out: list[str] = []
    for title, prof in phases:
        out += [
            f"**{title}** ({prof['samples']:,} samples; share of samples in which the function "
            "was on the stack, and share spent in the function itself)",
            "",
            "| on stack | function | | self | function |",
            "| ---: | --- | --- | ---: | --- |",
        ]
        skip = ("<module> (", "main (livesrv/cli", "cmd_serve (", "Runner.run (")
        inc = [x for x in prof["inclusive_pct"] if not x[0].startswith(skip)][:top]
        slf = prof["self_pct"][:top]
        for i in range(max(len(inc), len(slf))):
            a = inc[i] if i < len(inc) else ["", ""]
            b = slf[i] if i < len(slf) else ["", ""]
            out.append(f"| {a[1]}% | `{a[0]}` | | {b[1]}% | `{b[0]}` |")
        out.append("")
    return out


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        f"Run: {r['started']} to {r['finished']}, mode {r['mode']}; machine: {m['cpus']} CPUs "
        f"({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, open files {m['nofile']}.",
        "",
        "### Targets",
        *(
            [
                "A quick run: its sizes are too small for these targets (they are the full "
                "run's), and its slow consumers are not cut in so short a run.",
                "",
            ]
            if r["mode"] == "quick"
            else []
        ),
        *targets(r),
        "",
        "### Gifts",
        *gifts(r),
        "",
        "### Fan-out",
        *fanout(r),
        "",
        "### Slow consumers",
        *slow(r),
        "",
        "### Idle connections",
        *connections(r),
        "",
        "### Profiles",
        *profiles(r),
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "loadtests/results/bench.json")
    if not path.is_file():
        sys.exit(
            f"no results at {path}: run python -m loadtests.bench first; it prints where it "
            "wrote them (bench.json, or bench-quick.json with --quick)"
        )
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
