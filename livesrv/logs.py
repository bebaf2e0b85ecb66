"""Logging: set-up (text or JSON lines on stderr) and the start-up line.

``--log-format json`` (``LIVESRV_LOG_FORMAT``) writes one JSON object per line with ``ts``
(UTC, ISO 8601), ``level``, ``logger``, ``msg``, the record's extra fields (``extra=`` of
the logging call: an access line's ``method``, ``path``, ``status``, ``ms``...) and, for an
error, ``exc`` (the traceback). The text format is one readable line per record.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from . import __version__
from .settings import Settings

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

log = logging.getLogger("livesrv")
access_log = logging.getLogger("livesrv.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return orjson.dumps(out, default=str).decode()


def setup(level: str = "INFO", fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Send every log record at ``level`` and above to ``stream`` (stderr) in ``fmt``.

    Replaces the handlers a previous call installed, so it can be called again.

    Raises:
        ValueError: An unknown format or level.
    """
    if fmt not in FORMATS:
        raise ValueError(f"the log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"LIVESRV_LOG={level!r} is not a log level (DEBUG, INFO, WARNING...)")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # livesrv writes its own access lines (livesrv.access); these would repeat them.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def redact(url: str) -> str:
    """A store URL (or comma-separated seeds) with any password replaced by ``***``."""
    out = []
    for seed in url.split(","):
        parts = urlsplit(seed.strip())
        if parts.password is not None:
            user = parts.username or ""
            host = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=f"{user}:***@{host}")
        out.append(urlunsplit(parts))
    return ",".join(out)


def startup(
    settings: Settings, ws_url: str, http_url: str, durability: str = "", *, settling: str
) -> None:
    """Log the one line that says what this serve is: version, URLs, store, durability (the
    policy in force, or the configured one when the caller has no store connection), and
    where it settles."""
    durability = durability or settings.durability
    if settings.redis_url:
        store = redact(settings.redis_url)
    else:
        store = f"embedded in {settings.data_dir} (appendfsync {settings.appendfsync})"
    fields = {
        "version": __version__,
        "ws_url": ws_url,
        "http_url": http_url,
        "store": store,
        "workers": settings.workers,
        "durability": durability,
        "demo": settings.demo,
        "settle": settling,
    }
    log.info(
        "livesrv %s serving %s and %s; store %s; %d worker(s); durability %s; settling %s%s",
        __version__,
        ws_url,
        http_url,
        store,
        settings.workers,
        durability,
        settling,
        "; demo mode" if settings.demo else "",
        extra=fields,
    )


def ws_open(address: Any) -> str:
    """Log a WebSocket connection's ``ws open`` access line; return its peer as text."""
    if isinstance(address, tuple) and len(address) >= 2:
        peer = f"{address[0]}:{address[1]}"
    else:
        peer = str(address)
    access_log.info("ws open %s", peer, extra={"peer": peer})
    return peer


def ws_close(peer: str, user: str, opened: float, code: int | None) -> None:
    """Log the ``ws close`` access line: who (``-`` before hello), how long since
    ``opened`` (``time.monotonic()``), and the close code this server sent (its own, or
    the client's echoed; 1006 when none was sent)."""
    seconds = round(time.monotonic() - opened, 3)
    code = 1006 if code is None else code
    user = user or "-"
    access_log.info(
        "ws close %s user=%s %.3f s code %d",
        peer,
        user,
        seconds,
        code,
        extra={"peer": peer, "user": user, "seconds": seconds, "close_code": code},
    )
