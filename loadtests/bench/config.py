"""What the benchmark scenarios share: the settings the bench server lifts, the gift it
sends, the sizes of a run (:class:`Plan`) and the run's options (:data:`OPTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"


# The bench server lifts the per-connection op rate limit and the daily spend cap so the
# load measures capacity, not policy; everything else is the default configuration.
BENCH_ENV = {
    "LIVESRV_OPS_PER_SECOND": "1000000",
    "LIVESRV_OPS_BURST": "1000000",
    "LIVESRV_DAY_LIMIT": "1000000000",
    # 256 KiB instead of 1 MiB per socket, so a viewer that never reads is cut within the
    # slow-consumer run (about 6 s at 40 KB/s) instead of minutes later
    "LIVESRV_SEND_BUFFER_LIMIT": "262144",
}
GIFT = "rose"
GIFT_COUNT = 2  # 2 coins a gift: exactly 1 diamond for the creator (5000 bps), so lag is exact
GRANT = 2_000_000
CHAT_LEN = 400  # characters of each chat message in the slow-consumer runs


@dataclass
class Plan:
    quick: bool
    concurrency: list[int]
    gift_seconds: float
    per_room: int
    ceiling_seconds: float
    ceiling_rounds: int
    ceiling_users: int
    ceiling_depth: int
    ceiling_tasks: int
    fanout_viewers: list[int]
    fanout_rate: float
    fanout_seconds: float
    fanout_drain: float
    slow_viewers: int
    slow_every: int
    slow_chat_rate: float
    slow_gift_rate: float
    slow_seconds: float
    conn_points: list[int]
    conn_rooms: int
    viewer_workers: int
    gifter_workers: int
    fanout_gifters: int
    sample_every: int
    joins_clients: int = 5000  # joins: clients into one room, joins_inflight at a time
    joins_inflight: int = 200
    storm_clients: int = 20000  # reconnect storm: all at once with join since ...
    storm_missed: int = 50  # ... this many events back

    @classmethod
    def full(cls) -> Plan:
        return cls(
            quick=False,
            concurrency=[1, 4, 16, 64, 256],
            gift_seconds=8.0,
            per_room=4,
            ceiling_seconds=4.0,
            ceiling_rounds=3,
            ceiling_users=64,
            ceiling_depth=64,
            ceiling_tasks=4,
            fanout_viewers=[1000, 5000, 10000],
            fanout_rate=200.0,
            fanout_seconds=10.0,
            fanout_drain=20.0,
            slow_viewers=5000,
            slow_every=20,
            slow_chat_rate=50.0,
            slow_gift_rate=100.0,
            slow_seconds=15.0,
            conn_points=[10000, 20000],
            conn_rooms=20,
            viewer_workers=2,
            gifter_workers=2,
            fanout_gifters=8,
            sample_every=20,
        )

    @classmethod
    def quick_plan(cls) -> Plan:
        return cls(
            quick=True,
            concurrency=[1, 8],
            gift_seconds=2.0,
            per_room=4,
            ceiling_seconds=1.0,
            ceiling_rounds=1,
            ceiling_users=8,
            ceiling_depth=32,
            ceiling_tasks=2,
            fanout_viewers=[200],
            fanout_rate=20.0,
            fanout_seconds=2.0,
            fanout_drain=8.0,
            slow_viewers=200,
            slow_every=20,
            slow_chat_rate=20.0,
            slow_gift_rate=20.0,
            slow_seconds=2.0,
            conn_points=[400],
            conn_rooms=2,
            viewer_workers=2,
            gifter_workers=2,
            fanout_gifters=2,
            sample_every=5,
            joins_clients=300,
            joins_inflight=50,
            storm_clients=500,
        )


@dataclass
class Options:
    """The options of the run in progress, set once by the command line (:mod:`.cli`).

    Attributes:
        profile_dir: ``--profile``: py-spy records every measured phase of livesrv here.
        server_workers: ``--server-workers``: ``livesrv serve --workers`` of the main server.
        settle: ``--settle``: where the main server settles (``SETTLE_MODES``).
        idle_timeout: Seconds a phase waits at most for the server to go idle.
        quiet_timeout: Seconds a phase waits at most for the rest of the machine to go quiet.
        quiet_limit: Cores other processes may use with the machine still counted quiet.
    """

    profile_dir: Path | None = None
    server_workers: int = 1
    settle: str = "process"
    idle_timeout: float = 60.0
    quiet_timeout: float = 90.0
    quiet_limit: float = 0.25


OPTIONS = Options()
"""The one instance the scenarios read."""
