"""Who gets a WebSocket connection on a node's port: the listen backlog against the
kernel's cap, the process's connection budget, the Origin allow-list, the subprotocols a
request offers, and the HTTP answer that refuses an upgrade. Plain rules; ``node.py``
applies them to each upgrade request."""

from __future__ import annotations

import logging
import resource
from pathlib import Path

from picows import WSUpgradeRequest, WSUpgradeResponse, WSUpgradeResponseWithListener

from ..settings import Settings

log = logging.getLogger(__name__)

FD_RESERVE = 256  # descriptors kept for the store connections, listeners, logs and files


def offered_subprotocols(request: WSUpgradeRequest) -> tuple[str, ...]:
    """The subprotocols an upgrade request offers, in its order (``Sec-WebSocket-Protocol``
    may come as several headers, each a comma list)."""
    return tuple(
        name.strip()
        for value in request.headers.getall("Sec-WebSocket-Protocol", ())
        for name in value.split(",")
        if name.strip()
    )


def refusal(status: int, text: str) -> WSUpgradeResponseWithListener:
    """An HTTP answer instead of the upgrade (the connection closes after it)."""
    headers = {"Server": "livesrv", "Content-Type": "text/plain; charset=utf-8"}
    response = WSUpgradeResponse.create_error_response(status, text.encode(), headers)
    return WSUpgradeResponseWithListener(response, None)


def ws_budget(settings: Settings, fd_limit: int | None) -> int:
    """How many WebSocket connections one process accepts.

    ``max_connections`` when set; else what the open-file limit leaves after the admin
    port's ``http_max_connections`` and :data:`FD_RESERVE`, so that neither kind of client
    can take the descriptors the other (or the store) needs.

    Args:
        settings: The settings.
        fd_limit: The process's soft open-file limit (None: unlimited).
    """
    if settings.max_connections > 0:
        return settings.max_connections
    if fd_limit is None:
        return 1 << 20
    return max(16, fd_limit - settings.http_max_connections - FD_RESERVE)


SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


def somaxconn() -> int | None:
    """The kernel's cap on a listen backlog (``net.core.somaxconn``), None when unknown."""
    try:
        return int(SOMAXCONN.read_text().strip())
    except (OSError, ValueError):
        return None


def check_backlog(backlog: int, cap: int | None) -> bool:
    """Warn when the kernel caps ``listen_backlog`` lower than asked; True when it does."""
    if cap is None or cap >= backlog:
        return False
    log.warning(
        "LIVESRV_LISTEN_BACKLOG is %d but net.core.somaxconn caps it at %d: a connect storm "
        "beyond %d pending connections per listening socket (LIVESRV_LISTEN_QUEUES of them) "
        "makes clients retry (raise it with sysctl -w net.core.somaxconn=%d)",
        backlog,
        cap,
        cap,
        backlog,
    )
    return True


def fd_limit() -> int | None:
    """The process's soft open-file limit, None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def allowed_origins(setting: str) -> list[str | None] | None:
    """The ``Origin`` values a WebSocket handshake may carry (others get 403), or None
    for any. A request without ``Origin`` (not a browser) is always allowed: the list stops
    other sites' pages from using a visitor's browser, nothing more."""
    names = [o.strip().rstrip("/") for o in setting.split(",") if o.strip()]
    if not names:
        return None
    return [None, *names]
