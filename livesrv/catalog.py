"""The catalogue: coin packages, gifts, shares and prices (docs/economy.md), as data.

The built-in catalogue is ``catalog.json`` beside this module; an operator replaces it
with ``--catalog FILE`` of the same shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

BPS = 10_000


@dataclass(frozen=True)
class Package:
    id: str
    coins: int
    cents: int


@dataclass(frozen=True)
class Gift:
    id: str
    coins: int
    streak: bool


@dataclass(frozen=True)
class Catalog:
    packages: dict[str, Package]
    gifts: dict[str, Gift]
    streak_window_ms: int
    gift_share_bps: int
    sub_share_bps: int
    sub_prices: tuple[int, ...]
    sub_days: int
    shop_platform_bps: int
    default_commission_bps: int
    diamond_cents_num: int
    diamond_cents_den: int
    # -- paid pinned messages (issue 13) --
    # (minimum coins, seconds pinned), ascending by coins: a paid message pays at least the
    # first minimum and is pinned for the seconds of the highest tier its coins reach
    paid_chat_tiers: tuple[tuple[int, int], ...] = ((5, 0), (100, 120), (5000, 3600))
    paid_chat_share_bps: int = 5000
    series_share_bps: int = 7000  # -- series: the creator's share of a sale --

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        """Load a catalogue file, or the built-in one when ``path`` is None.

        Raises:
            ValueError: The file is not a valid catalogue.
        """
        if path is None:
            text = resources.files("livesrv").joinpath("catalog.json").read_text()
        else:
            text = Path(path).read_text()
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Catalog:
        try:
            cat = cls(
                packages={
                    k: Package(k, _int(v["coins"]), _int(v["cents"]))
                    for k, v in d["packages"].items()
                },
                gifts={
                    k: Gift(k, _int(v["coins"]), bool(v["streak"])) for k, v in d["gifts"].items()
                },
                streak_window_ms=_int(d.get("streak_window_ms", 3000)),
                gift_share_bps=_int(d.get("gift_share_bps", 5000)),
                sub_share_bps=_int(d.get("sub_share_bps", 5000)),
                sub_prices=tuple(_int(p) for p in d.get("sub_prices", [350, 700, 1750])),
                sub_days=_int(d.get("sub_days", 30)),
                shop_platform_bps=_int(d.get("shop_platform_bps", 800)),
                default_commission_bps=_int(d.get("default_commission_bps", 1000)),
                diamond_cents_num=_int(d.get("diamond_cents_num", 1)),
                diamond_cents_den=_int(d.get("diamond_cents_den", 2)),
                series_share_bps=_int(d.get("series_share_bps", 7000)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"invalid catalogue: {exc}") from exc
        cat = _with_paid_chat(cat, d)
        for bps in (
            cat.gift_share_bps,
            cat.sub_share_bps,
            cat.shop_platform_bps,
            cat.series_share_bps,
        ):
            if not 0 <= bps <= BPS:
                raise ValueError("invalid catalogue: shares are basis points 0..10000")
        if any(g.coins <= 0 for g in cat.gifts.values()) or any(
            p.coins <= 0 for p in cat.packages.values()
        ):
            raise ValueError("invalid catalogue: prices must be positive")
        return cat

    @property
    def default_sub_price(self) -> int:
        return self.sub_prices[0]

    def diamonds_to_cents(self, diamonds: int) -> int:
        return diamonds * self.diamond_cents_num // self.diamond_cents_den

    def to_wire(self) -> dict[str, Any]:
        """The ``catalog`` op's result."""
        return {
            "gifts": [
                {"gift": g.id, "coins": g.coins, "streak": g.streak} for g in self.gifts.values()
            ],
            "packages": [
                {"package": p.id, "coins": p.coins, "cents": p.cents}
                for p in self.packages.values()
            ],
            "sub_prices": list(self.sub_prices),
            # -- paid pinned messages: [min coins, seconds pinned] --
            "paid_chat_tiers": [list(t) for t in self.paid_chat_tiers],
        }


def _with_paid_chat(cat: Catalog, d: dict[str, Any]) -> Catalog:
    """The catalogue with its paid-message tiers and share (``paid_chat_tiers``: a list of
    ``[min_coins, seconds]``, minimums strictly ascending; ``paid_chat_share_bps``).

    Raises:
        ValueError: Bad tiers or share.
    """
    try:
        raw = d.get("paid_chat_tiers", [list(t) for t in cat.paid_chat_tiers])
        tiers = tuple((_int(c), _int(s)) for c, s in raw)
        share = _int(d.get("paid_chat_share_bps", cat.paid_chat_share_bps))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid catalogue: paid_chat_tiers: {exc}") from exc
    mins = [c for c, _ in tiers]
    if not tiers or mins[0] <= 0 or any(a >= b for a, b in zip(mins, mins[1:], strict=False)):
        raise ValueError("invalid catalogue: paid_chat_tiers minimums must ascend from >= 1")
    if any(s < 0 for _, s in tiers) or not 0 <= share <= BPS:
        raise ValueError("invalid catalogue: paid_chat seconds >= 0, share 0..10000 bps")
    return replace(cat, paid_chat_tiers=tiers, paid_chat_share_bps=share)


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{v!r} is not an integer")
    return v
