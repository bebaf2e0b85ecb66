"""The command line of the benchmark harness: ``python -m loadtests.bench [flags]``.

Without ``--cluster`` or ``--durability`` it runs the single-server suite
(:mod:`.suite`), sized by ``--quick`` and the size flags; it prints the summary and, last,
the directory and files written; the exit status is 1 if any request failed or any event
was not delivered.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..servers import SETTLE_MODES
from . import suite
from .config import OPTIONS, RESULTS, Plan


def build_parser() -> argparse.ArgumentParser:
    """The command line: every flag of ``python -m loadtests.bench``."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench", description="livesrv benchmark harness"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="results directory (default loadtests/results, or loadtests/results/quick with "
        "--quick: ignored by git); printed at the end",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma list of: gifts,ceiling,fanout,slow,connections,joins",
    )
    parser.add_argument(
        "--joins", default="", help="joins: CLIENTS[,IN_FLIGHT] into one room, e.g. 5000,200"
    )
    parser.add_argument(
        "--storm", type=int, default=None, help="reconnect storm clients (0: no storm)"
    )
    parser.add_argument("--viewers", default="", help="fan-out sizes, e.g. 1000,5000,10000")
    parser.add_argument("--rate", type=float, default=None, help="fan-out gifts per second")
    parser.add_argument("--concurrency", default="", help="gift concurrency levels, e.g. 1,16")
    parser.add_argument("--ceiling-rounds", type=int, default=None, help="rounds of the ceiling")
    parser.add_argument(
        "--server-workers", type=int, default=1, help="livesrv serve --workers for the main server"
    )
    parser.add_argument(
        "--settle",
        choices=SETTLE_MODES,
        default="process",
        help="where the main server settles: process (serve's default, a process of its "
        "own), inline (serve --settle-inline), separate (serve --no-settle beside a "
        "`livesrv settle`)",
    )
    parser.add_argument(  # the name earlier runs in docs/benchmarks.md were made with
        "--settle-process",
        dest="settle",
        action="store_const",
        const="separate",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="3 nodes on a 3-master local cluster beside 3 nodes on one standalone store "
        "(loadtests/bench/cluster.py; with --quick: small sizes)",
    )
    parser.add_argument(
        "--durability",
        action="store_true",
        help="gifts on a 3-master, 3-replica cluster with LIVESRV_DURABILITY master and "
        "replicas side by side (loadtests/bench/durability.py)",
    )
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=None,
        help="seconds each phase waits for the rest of the machine to go quiet "
        "(default 90, 3 with --quick)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record each measured phase of livesrv with py-spy into DIR",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run what the command line asks; 0 when nothing failed and every event arrived."""
    args = build_parser().parse_args(argv)
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS
    if args.durability:
        from . import durability

        return durability.main(args.quick, args.out)
    if args.cluster:
        from . import cluster

        return cluster.main(args.quick, args.out)
    plan = Plan.quick_plan() if args.quick else Plan.full()
    if args.viewers:
        plan.fanout_viewers = [int(v) for v in args.viewers.split(",")]
    if args.rate:
        plan.fanout_rate = args.rate
    if args.joins:
        sizes = [int(v) for v in args.joins.split(",")]
        plan.joins_clients = sizes[0]
        plan.joins_inflight = sizes[1] if len(sizes) > 1 else plan.joins_inflight
    if args.storm is not None:
        plan.storm_clients = args.storm
    OPTIONS.server_workers = args.server_workers
    OPTIONS.settle = args.settle
    if args.ceiling_rounds:
        plan.ceiling_rounds = args.ceiling_rounds
    if args.concurrency:
        plan.concurrency = [int(v) for v in args.concurrency.split(",")]
    only = {o.strip() for o in args.only.split(",") if o.strip()} or None
    if args.quick:
        OPTIONS.idle_timeout = 4.0
        OPTIONS.quiet_timeout = 3.0
    if args.quiet_timeout is not None:
        OPTIONS.quiet_timeout = args.quiet_timeout
    if args.profile is not None:
        OPTIONS.profile_dir = args.profile
        args.profile.mkdir(parents=True, exist_ok=True)
    result = suite.run(plan, args.out, only=only, progress=not args.no_progress)
    print(json.dumps(result["summary"], indent=1))
    name = "bench-quick" if plan.quick else "bench"
    written = sorted(p.name for p in args.out.glob(f"{name}*"))
    print(f"results written to {args.out.resolve()}: {', '.join(written)}")
    s = result["summary"]
    return 0 if s["errors"] == 0 and s["delivery_complete"] else 1
