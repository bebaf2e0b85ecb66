"""Prometheus metrics of one livesrv process (its own registry, so tests can run many)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._op_children: dict[tuple[str, str], Any] = {}
        self.connections = Gauge("livesrv_connections", "Open WebSocket connections", registry=r)
        self.rooms = Gauge("livesrv_rooms", "Rooms with members on this node", registry=r)
        self.ops = Counter(
            "livesrv_ops",
            "Requests by op and result (ok or error code)",
            ["op", "result"],
            registry=r,
        )
        self.coins_spent = Counter(
            "livesrv_coins_spent", "Coins spent, by kind (gift, sub, shop)", ["kind"], registry=r
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
        )

    def op(self, name: str, result: str) -> None:
        """Count one request; the labelled child is cached (this runs for every request)."""
        child = self._op_children.get((name, result))
        if child is None:
            child = self._op_children[(name, result)] = self.ops.labels(name, result)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
