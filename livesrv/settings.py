"""Settings: one frozen dataclass, built once from the environment and CLI flags.

Every tunable lives here and is passed explicitly; no module reads the environment.
Each field has a ``LIVESRV_<NAME>`` environment variable; CLI flags override it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
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
    # store
    data_dir: Path = Path("./livesrv-data")
    redis_url: str | None = None
    appendfsync: str = "everysec"
    shards: int = 16
    # security
    secret: str | None = None
    receipt_verifier: str = "hmac"  # "any" with demo unless set (livesrv/receipts.py)
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
    log_maxlen: int = 10_000
    replay_limit: int = 256
    send_buffer_limit: int = 1 << 20
    socket_sndbuf: int = 64 * 1024
    presence_refresh: float = 5.0  # seconds between a node's refreshes of its viewers
    presence_ttl: float = 20.0  # a viewer no node refreshed for this long is not counted
    # limits
    max_frame: int = 64 * 1024
    hello_timeout: float = 10.0
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
    settle_batch: int = 256
    settle_claim_ms: int = 5000
    settle_reap_ms: int = 600_000  # settlement consumers idle this long, holding nothing, go

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``LIVESRV_*`` variables, then apply non-None overrides.

        Args:
            env: The environment to read (``os.environ`` when None).
            **overrides: Values from CLI flags; None means "not given".

        Returns:
            The settings.

        Raises:
            ValueError: A variable does not parse as its field's type.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("LIVESRV_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
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
        raise ValueError(f"LIVESRV_{name.upper()}={raw!r} is not a valid {type_name}") from exc
