"""Keys of what is sold outside a room's slot: a shop product (tag ``{p:PRODUCT}``) and a
series (tag ``{sr:SERIES}``), each in its own slot."""

from __future__ import annotations

from dataclasses import dataclass

from .base import PREFIX


@dataclass(frozen=True)
class ProductKeys:
    product: str

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{p:{self.product}}}"

    @property
    def meta(self) -> str:
        return f"{self.tag}:meta"

    @property
    def reservations(self) -> str:
        """Hash: "user|key" -> reservation state (stock held for a purchase in flight)."""
        return f"{self.tag}:res"

    @property
    def reservation_queue(self) -> str:
        """Sorted set of open reservations by time, for the sweeper."""
        return f"{self.tag}:resq"

    @property
    def reservation_expiry(self) -> str:
        """Sorted set: "user|key" -> expiry of its key generation (finished reservations
        are deleted once it passes)."""
        return f"{self.tag}:resx"


def series_key(series: str) -> str:
    """Hash: one series (creator, title, description, price, episodes json, published)."""
    return f"{PREFIX}:{{sr:{series}}}:meta"
