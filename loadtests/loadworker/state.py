"""What a load worker holds, shared by its command groups: its pipe to the parent, its
index, the source addresses it connects from, and its clients by kind.
"""

from __future__ import annotations

from collections import Counter
from multiprocessing.connection import Connection

from .client import Client


class WorkerState:
    """This process's connections and where the next one comes from."""

    def __init__(self, pipe: Connection, index: int, source_ips: list[str]) -> None:
        self.pipe = pipe
        self.index = index
        self.source_ips = source_ips or [None]  # type: ignore[list-item]
        self._ip_i = 0
        self.viewers: list[Client] = []
        self.creators: list[Client] = []
        self.gifters: list[Client] = []
        self.errors: Counter[str] = Counter()

    def _next_ip(self) -> str | None:
        ip = self.source_ips[self._ip_i % len(self.source_ips)]
        self._ip_i += 1
        return ip
