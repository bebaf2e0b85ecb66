"""Settings: one frozen dataclass, built once from the environment and CLI flags.

Every tunable lives here and is passed explicitly; no module reads the environment.
Each field has a ``LIVESRV_<NAME>`` environment variable; CLI flags override it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields, replace
from math import isfinite
from pathlib import Path
from typing import Any

HOUR = 3600


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything livesrv can be configured with.

    Grouped by purpose: network, store, security, economy, fan-out, limits.
    """

    # network
    host: str = "127.0.0.1"
    port: int = 8765
    http_port: int = 8080
    workers: int = 1
    # pending connections the kernel queues per listening socket (capped by
    # net.core.somaxconn); a connect storm beyond them costs clients 1-7 s SYN retries
    listen_backlog: int = 4096
    # WebSocket listening sockets per process on the one port (SO_REUSEPORT): the accept
    # queues hold listen_backlog x listen_queues pending connections of a connect storm
    # (livesrv/realtime/listeners.py)
    listen_queues: int = 4
    log_format: str = "text"  # text | json: one JSON object per line (livesrv/logs.py)
    # allocations between two young garbage collections of a serve process (Python's
    # default is 700): with tens of thousands of connections, full collections of every
    # object ran many times in a join storm (docs/benchmarks.md, "Garbage collection")
    gc_young: int = 10_000
    # store
    data_dir: Path = Path("./livesrv-data")
    redis_url: str | None = None
    appendfsync: str = "everysec"
    shards: int = 16
    store_down_log_every: float = 30.0  # seconds between "store still unavailable" lines
    # when a money reply may be sent (docs/design.md, "Durability"): auto | master |
    # replicas | aof | replicas+aof; auto is replicas when every master has one, else master
    durability: str = "auto"
    durability_replicas: int = 1  # replicas that must hold a write before its reply
    durability_timeout_ms: int = 1000  # longer without them: ``unavailable`` (retry is safe)
    # security
    secret: str | None = None
    receipt_verifier: str = "hmac"  # "any" with demo unless set (livesrv/services/receipts.py)
    receipt_key: str | None = None  # None: derived from the secret
    # economy
    catalog: Path | None = None
    demo: bool = False
    hold_seconds: int = 72 * HOUR
    day_limit: int = 500_000
    min_withdrawal: int = 2000
    demo_coins: int = 5000
    idempotency_ttl: int = 7 * 24 * HOUR
    # fan-out
    tick_ms: int = 40
    big_room: int = 1000  # members on a node from which a room's flushes are spread
    big_room_flush_ms: int = 80  # how often each member of a big room gets its batch
    log_maxlen: int = 10_000
    replay_limit: int = 256
    send_buffer_limit: int = 1 << 20
    socket_sndbuf: int = 64 * 1024
    presence_refresh: float = 5.0  # seconds between a node's refreshes of its viewers
    presence_ttl: float = 20.0  # a viewer no node refreshed for this long is not counted
    # limits
    max_frame: int = 64 * 1024
    hello_timeout: float = 10.0
    ping_interval: float = 20.0  # seconds between keepalive pings; no pong by the next: 1011
    ops_per_second: float = 60.0
    ops_burst: int = 120
    abuse_limit: int = 20
    max_connections: int = 0  # WebSocket connections per process; 0: from the fd limit
    max_connections_per_user: int = 10
    max_rooms_per_connection: int = 20
    max_live_rooms_per_creator: int = 5
    allowed_origins: str = ""  # comma-separated WebSocket Origin allow-list; empty: any
    http_max_connections: int = 256
    http_header_timeout: float = 10.0
    http_keepalive_timeout: float = 15.0
    settle: bool = True
    # serve settles in a process of its own beside its node(s) (False: in the node's event
    # loop, sharing it with the sessions; docs/design.md, "Where settlement runs")
    settle_process: bool = True
    settle_batch: int = 256
    settle_claim_ms: int = 5000
    settle_reap_ms: int = 600_000  # settlement consumers idle this long, holding nothing, go
    # -- live match, goals, hype train (services/match.py, services/goals.py) --
    match_duration: float = 300.0  # seconds a LIVE match runs
    match_invite_ttl: float = 60.0  # seconds an invitation can be accepted
    match_booster_gift: str = "rocket"  # the gift that starts a x2 window for its side
    match_boost_seconds: float = 30.0  # length of one x2 window (windows queue)
    match_final_seconds: float = 30.0  # the "last seconds" mark before the end
    hype_viewers: int = 3  # distinct gifters within hype_window that start a hype train (0: off)
    hype_window: float = 300.0
    hype_countdown: float = 60.0  # seconds a train runs after its last contribution
    hype_cooldown: float = 300.0  # seconds after a train ends before another can start
    hype_level_coins: int = 100  # level k of a train needs level_coins x k(k+1)/2 coins
    hype_levels: int = 5
    # -- treasure box --
    box_max_open: int = 5  # open treasure boxes per room at once
    box_max_claimers: int = 1000  # claims one box takes
    box_min_seconds: int = 10  # a box's countdown: at least ...
    box_max_seconds: int = 300  # ... and at most
    # -- age gates (livesrv/services/age.py) --
    min_age: int = 18  # the age money ops need (token claim ``by``, the birth year)
    min_age_by_region: str = "KR=19"  # per token region (claim ``rg``): "KR=19,JP=20"
    require_age: bool = False  # a token without a birth year: refused money ops (else allowed)
    minor_refund_days: int = 30  # flagged as a minor: the spends of this many days are reversed

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        only: Collection[str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from ``LIVESRV_*`` variables, then apply non-None overrides, and
        check each value against its field's rule (:data:`RULES`).

        Args:
            env: The environment to read (``os.environ`` when None).
            only: The fields to read from the environment (None: all). A command reads only
                the settings it uses, so a bad variable it ignores cannot stop it; the
                other fields keep their defaults.
            **overrides: Values from CLI flags; None means "not given".

        Returns:
            The settings.

        Raises:
            ValueError: A variable does not parse as its field's type, or a variable or
                flag is outside its allowed values (the message names it, the value and
                what is allowed).
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        shown: dict[str, str] = {}  # each value as given, for the error messages
        for f in fields(cls):
            if only is not None and f.name not in only:
                continue
            raw = env.get("LIVESRV_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, str(f.type), raw)
                shown[f.name] = f"LIVESRV_{f.name.upper()}={raw}"
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
                shown[name] = f"--{name.replace('_', '-')} {value}"
        for name, value in values.items():
            _check(name, value, shown[name])
        settings = cls(**values)
        if (
            settings.demo
            and overrides.get("hold_seconds") is None
            and "LIVESRV_HOLD_SECONDS" not in env
        ):
            settings = replace(settings, hold_seconds=0)
        if (
            settings.demo
            and overrides.get("receipt_verifier") is None
            and not env.get("LIVESRV_RECEIPT_VERIFIER")
        ):
            settings = replace(settings, receipt_verifier="any")
        return settings

    @property
    def hold_ms(self) -> int:
        return self.hold_seconds * 1000

    @property
    def url_host(self) -> str:
        """``host`` as a URL writes it (:func:`url_host`)."""
        return url_host(self.host)

    @property
    def region_min_ages(self) -> dict[str, int]:
        """``min_age_by_region`` as a map: region code -> minimum age."""
        return parse_region_ages(self.min_age_by_region)


# Settings a command that opens the store reads (``Settings.from_env(only=...)``): where the
# store is and how it is laid out, and what the ledger's scripts and settlement need.
STORE_FIELDS = frozenset(
    {
        "data_dir",
        "redis_url",
        "appendfsync",
        "shards",
        "durability",
        "durability_replicas",
        "durability_timeout_ms",
        "store_down_log_every",
    }
)
LEDGER_FIELDS = frozenset(
    {
        "catalog",
        "demo",
        "hold_seconds",
        "day_limit",
        "min_withdrawal",
        "demo_coins",
        "idempotency_ttl",
        "log_maxlen",
        "presence_refresh",
        "presence_ttl",
        "settle_batch",
        "settle_claim_ms",
        "settle_reap_ms",
    }
)


def _parse(name: str, type_name: str, raw: str) -> Any:
    try:
        if type_name.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if "Path" in type_name:
            return Path(raw)
        return raw
    except ValueError as exc:
        rule = RULES.get(name)
        allowed = f" (allowed: {rule.text})" if rule else ""
        raise ValueError(
            f"LIVESRV_{name.upper()}={raw!r} is not a valid {type_name.split(' ')[0]}{allowed}"
        ) from exc


@dataclass(frozen=True)
class Rule:
    """The values a setting accepts: ``ok`` says whether one is allowed, ``text`` says
    which are (as error messages state it)."""

    text: str
    ok: Callable[[Any], bool]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value)


def between(lo: int, hi: int | None = None) -> Rule:
    """Integers from ``lo`` to ``hi`` (no upper bound when None)."""
    text = f"an integer {lo}-{hi}" if hi is not None else f"an integer >= {lo}"
    return Rule(text, lambda v: _number(v) and v >= lo and (hi is None or v <= hi))


def positive() -> Rule:
    """Finite numbers above zero."""
    return Rule("a number > 0", lambda v: _number(v) and v > 0)


def one_of(*names: str) -> Rule:
    return Rule(" | ".join(names), lambda v: v in names)


def _store_urls(value: Any) -> bool:
    seeds = [s.strip() for s in str(value).split(",") if s.strip()]
    return bool(seeds) and all(s.partition("://")[0] in STORE_SCHEMES for s in seeds)


def _seconds(lo: float, hi: float) -> Rule:
    """Seconds (an integer or a fraction) from ``lo`` to ``hi`` (live match, hype train)."""
    return Rule(f"{lo} to {hi} seconds", lambda v: _number(v) and lo <= v <= hi)


def url_host(host: str) -> str:
    """A host as a URL writes it: an IPv6 address in brackets (``ws://[::1]:8765``)."""
    return f"[{host}]" if ":" in host else host


def parse_region_ages(text: str) -> dict[str, int]:
    """Parse ``"KR=19,JP=20"`` (an empty string: no overrides).

    Raises:
        ValueError: An entry is not ``CC=AGE`` (two capital letters, an integer 0-150).
    """
    ages: dict[str, int] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        region, eq, age = entry.partition("=")
        region, age = region.strip(), age.strip()
        if not eq or not re.fullmatch(r"[A-Z]{2}", region) or not re.fullmatch(r"\d{1,3}", age):
            raise ValueError(entry)
        if int(age) > 150:
            raise ValueError(entry)
        ages[region] = int(age)
    return ages


def _region_ages_ok(value: Any) -> bool:
    try:
        parse_region_ages(str(value))
    except ValueError:
        return False
    return True


STORE_SCHEMES = ("redis", "rediss", "unix")
PORT = between(0, 65535)
RULES: dict[str, Rule] = {
    "host": Rule("a non-empty address", lambda v: bool(str(v).strip())),
    "port": PORT,
    "http_port": PORT,
    "workers": between(1, 1024),
    "listen_backlog": between(1, 1 << 20),
    "listen_queues": between(1, 64),
    "gc_young": between(100, 10_000_000),
    "log_format": one_of("text", "json"),
    "redis_url": Rule("redis://, rediss:// or unix:// URLs, separated by commas", _store_urls),
    "appendfsync": one_of("always", "everysec", "no"),
    "shards": between(1, 16384),
    "store_down_log_every": positive(),
    "durability": one_of("auto", "master", "replicas", "aof", "replicas+aof"),
    "durability_replicas": between(0),
    "durability_timeout_ms": between(1),
    "hold_seconds": between(0),
    "day_limit": between(1),
    "min_withdrawal": between(1),
    "demo_coins": between(0),
    "idempotency_ttl": between(1),
    "tick_ms": between(1, 60_000),
    "big_room": between(1),
    "big_room_flush_ms": between(1, 60_000),
    "log_maxlen": between(1),
    "replay_limit": between(1),
    "send_buffer_limit": between(1),
    "socket_sndbuf": between(0),
    "presence_refresh": positive(),
    "presence_ttl": positive(),
    "max_frame": between(1),
    "hello_timeout": positive(),
    "ping_interval": _seconds(0.1, 3600),
    "ops_per_second": positive(),
    "ops_burst": between(1),
    "abuse_limit": between(1),
    "max_connections": between(0),
    "max_connections_per_user": between(1),
    "max_rooms_per_connection": between(1),
    "max_live_rooms_per_creator": between(1),
    "http_max_connections": between(1),
    "http_header_timeout": positive(),
    "http_keepalive_timeout": positive(),
    "settle_batch": between(1, 100_000),
    "settle_claim_ms": between(1),
    "settle_reap_ms": between(1),
    # -- live match, goals, hype train --
    "match_duration": _seconds(0.1, 86400),
    "match_invite_ttl": _seconds(0.1, 86400),
    "match_booster_gift": Rule("a gift id", lambda v: bool(str(v).strip())),
    "match_boost_seconds": _seconds(0.1, 3600),
    "match_final_seconds": _seconds(0, 3600),
    "hype_viewers": between(0, 1000),
    "hype_window": _seconds(0.1, 86400),
    "hype_countdown": _seconds(0.1, 86400),
    "hype_cooldown": _seconds(0, 86400),
    "hype_level_coins": between(1, 1_000_000_000),
    "hype_levels": between(1, 100),
    # -- treasure box --
    "box_max_open": between(1, 1000),
    "box_max_claimers": between(1, 100_000),
    "box_min_seconds": between(1, 3600),
    "box_max_seconds": between(1, 3600),
    # -- age gates --
    "min_age": between(0, 150),
    "minor_refund_days": between(0, 3650),
    "min_age_by_region": Rule(
        "comma-separated REGION=AGE entries, e.g. KR=19,JP=20 (ages 0-150)", _region_ages_ok
    ),
}


def _check(name: str, value: Any, shown: str) -> None:
    """Raise ValueError naming the flag or variable and its value (``shown``) and the rule."""
    rule = RULES.get(name)
    if rule is not None and not rule.ok(value):
        raise ValueError(f"{shown} is not allowed: must be {rule.text}")
