"""Prometheus metrics of one livesrv process (its own registry, so tests can run many), or
of the whole process group under ``serve --workers N``.

With workers, each process writes its values to memory-mapped files in a directory of the
run (``DATA_DIR/metrics/run-<pid of serve>``, made at start, removed at exit, and left-overs
of dead runs removed at the next start), and ``/metrics``, whichever worker answers, reads
them all: counters and histograms are summed over every worker the run had, gauges over
the live ones (``livesum``), the settlement backlog is the most recent reading.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger(__name__)
RUN_PREFIX = "run-"


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None, *, own_gc: bool = False) -> None:
        """The metrics of this process.

        Args:
            multiprocess_dir: The run's directory when this process is one of several
                (``--workers``, or a node beside its settlement process:
                :func:`enable_multiprocess` was called in this process), else None.
            own_gc: With ``multiprocess_dir``: this process is the run's only node, so its
                scrapes add its own garbage collections (one process's figures).
        """
        self.multiprocess_dir = multiprocess_dir
        self.own_gc = own_gc
        r = self.registry = CollectorRegistry()
        if multiprocess_dir is None:  # each worker's collector is its own: not summed
            # full collections (generation 2) stop the event loop (LIVESRV_GC_YOUNG)
            GCCollector(registry=r)
        self._op_children: dict[tuple[str, str], Any] = {}
        self.connections = Gauge(
            "livesrv_connections",
            "Open WebSocket connections (all workers)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.worker_connections = Gauge(
            "livesrv_worker_connections",
            "Open WebSocket connections of each worker process (label pid with --workers)",
            registry=r,
            multiprocess_mode="liveall",
        )
        self.rooms = Gauge(
            "livesrv_rooms",
            "Rooms with members on this node (summed over workers: a room with members on "
            "two workers counts twice)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ops = Counter(
            "livesrv_ops",
            "Requests by op and result (ok or error code)",
            ["op", "result"],
            registry=r,
        )
        self.coins_spent = Counter(
            "livesrv_coins_spent",
            "Coins spent, by kind (gift, sub, shop, paid_chat, box)",
            ["kind"],
            registry=r,
        )
        self.events_delivered = Counter(
            "livesrv_events_delivered", "Events written to sockets", registry=r
        )
        self.slow_consumers = Counter(
            "livesrv_slow_consumers_cut", "Connections cut with 4409", registry=r
        )
        self.ws_refused = Counter(
            "livesrv_ws_refused",
            "WebSocket handshakes answered 503: the connection budget was full",
            registry=r,
        )
        self.settled = Counter("livesrv_settlement_entries", "Outbox entries settled", registry=r)
        self.settle_lag = Histogram(
            "livesrv_settlement_lag_seconds",
            "From a spend being recorded to its diamonds being credited",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.settle_backlog = Gauge(
            "livesrv_settlement_backlog",
            "Outbox entries not yet settled (undelivered + pending)",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.boxes_opened = Counter(  # -- treasure box --
            "livesrv_boxes_opened", "Treasure boxes opened and paid out", registry=r
        )
        self.matches_started = Counter(  # -- live match, goals, hype train --
            "livesrv_matches_started", "LIVE matches started (accepted)", registry=r
        )
        self.matches_ended = Counter(
            "livesrv_matches_ended",
            "LIVE matches ended, by reason (time, closed, admin)",
            ["reason"],
            registry=r,
        )
        self.goals_reached = Counter(
            "livesrv_goals_reached", "LIVE goals reached, by kind", ["kind"], registry=r
        )
        self.hype_trains_ended = Counter(
            "livesrv_hype_trains_ended",
            "Hype trains ended, by the level reached",
            ["level"],
            registry=r,
        )
        self.replay_reads = Counter(  # -- join since: coalesced replays (realtime/replays.py) --
            "livesrv_room_replay_reads",
            "Room-log reads made for join since replays (one per room per batch of joiners)",
            registry=r,
        )
        self.replay_joiners = Counter(
            "livesrv_room_replay_joiners",
            "Joiners served a join since replay (from those reads)",
            registry=r,
        )
        self.series_sales = Counter(  # -- series --
            "livesrv_series_sales",
            "Series sold (counted as the settlement worker pays the creator)",
            registry=r,
        )
        self.refunds = Counter(  # -- refunds and minors (services/refunds.py) --
            "livesrv_refunds",
            "Coin purchases reversed, by kind (refund or chargeback); a repeat counts once",
            ["kind"],
            registry=r,
        )
        self.diamonds_clawed = Counter(
            "livesrv_diamonds_clawed",
            "Diamonds taken back from earners by refund and minor clawbacks (at settlement)",
            registry=r,
        )
        self.minors_flagged = Counter(
            "livesrv_minors_flagged", "Accounts flagged as minors by an admin", registry=r
        )

    def op(self, name: str, result: str) -> None:
        """Count one request; the labelled child is cached (this runs for every request)."""
        child = self._op_children.get((name, result))
        if child is None:
            child = self._op_children[(name, result)] = self.ops.labels(name, result)
        child.inc()

    def live(self, what: str, label: str) -> None:
        """Count one LIVE milestone (the backend's ``on_live``): ``match_started``,
        ``match_ended`` (label: the reason), ``goal_reached`` (the kind), ``hype_ended``
        (the level)."""
        if what == "match_started":
            self.matches_started.inc()
        elif what == "match_ended":
            self.matches_ended.labels(label).inc()
        elif what == "goal_reached":
            self.goals_reached.labels(label).inc()
        elif what == "hype_ended":
            self.hype_trains_ended.labels(label).inc()

    def sync(self, rooms: int, delivered: int) -> None:
        """Copy the figures the hub and server keep as plain numbers (cheaper on their hot
        paths) into the metrics; each worker does it every second and before a scrape."""
        self.rooms.set(rooms)
        self.events_delivered._value.set(delivered)  # noqa: SLF001

    def sync_replays(self, reads: int, joiners: int) -> None:
        """Copy the hub's replay counts (:class:`livesrv.realtime.replays.Replays`)."""
        self.replay_reads._value.set(reads)  # noqa: SLF001
        self.replay_joiners._value.set(joiners)  # noqa: SLF001

    def render(self) -> bytes:
        """The Prometheus text of this process, or of every worker of the run."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        if self.own_gc:
            GCCollector(registry=registry)
        return generate_latest(registry)


def run_dir(data_dir: Path) -> Path:
    """Make a fresh, empty metrics directory for this run under ``data_dir``, and remove
    those of earlier runs whose process is gone. A serve on an external store may have no
    writable data dir (a read-only file system, ``--secret`` given): then a private
    temporary directory."""
    parent = data_dir / "metrics"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(f"{parent} is not writable")
    except OSError as exc:
        path = Path(tempfile.mkdtemp(prefix=f"livesrv-metrics-{RUN_PREFIX}"))
        log.warning("metrics of this run's processes go to %s (%s)", path, exc)
        return path
    for old in parent.glob(RUN_PREFIX + "*"):
        pid = old.name.removeprefix(RUN_PREFIX)
        if not pid.isdigit() or not _alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(old, ignore_errors=True)
    path = parent / f"{RUN_PREFIX}{os.getpid()}"
    path.mkdir()
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def enable_multiprocess(path: Path) -> None:
    """Make every metric this process creates from now on write to ``path`` (call it in
    a worker before its :class:`Metrics`). prometheus-client reads the directory from its
    environment variable."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]


def worker_gone(path: Path, pid: int) -> None:
    """A worker exited: its live gauges stop counting (its counters still do)."""
    with contextlib.suppress(OSError):
        mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def remove_run_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
