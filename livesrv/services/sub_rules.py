"""The rules of subscription tiers, upgrades and gifted subscriptions (sans-I/O).

A creator offers up to three tiers, each at a price from the catalogue's ``sub_prices``,
strictly ascending (tier 1 is the cheapest). A subscription runs in periods of
``sub_days``; each period paid (by the viewer or as a gift) adds one loyalty month. The
I/O is in :mod:`.sub_tiers` (subscribe, tiers) and :mod:`.sub_gifts` (gifted subs).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest
from ..wire.schema import IDENT

MAX_TIERS = 3
MAX_GIFTS = 50  # recipients of one sub_gift


# -- tiers ----------------------------------------------------------------------------


def default_tiers(tier1: int, allowed: Sequence[int]) -> tuple[int, ...]:
    """The tiers of a creator who never set any: tier 1 at ``tier1`` (``sub_price``, or the
    catalogue's first price), then the next catalogue prices above it, up to three tiers."""
    return (tier1, *[p for p in sorted(set(allowed)) if p > tier1][: MAX_TIERS - 1])


def check_tiers(prices: Any, allowed: Sequence[int]) -> tuple[int, ...]:
    """A creator's new tier prices, checked.

    Raises:
        BadRequest: Not 1-3 integers, one not in the catalogue, or not strictly ascending.
    """
    if not isinstance(prices, list) or not 1 <= len(prices) <= MAX_TIERS:
        raise BadRequest(f"prices must hold 1-{MAX_TIERS} prices, tier 1 first")
    allowed_text = ", ".join(map(str, allowed))
    for i, p in enumerate(prices):
        if isinstance(p, bool) or not isinstance(p, int) or p not in allowed:
            raise BadRequest(f"prices[{i}] must be one of {allowed_text}")
    if any(a >= b for a, b in zip(prices, prices[1:], strict=False)):
        raise BadRequest("each tier must cost more than the tier below it")
    return tuple(prices)


def parse_tiers(raw: str | None) -> tuple[int, ...] | None:
    """The stored tiers (``"350,700"``), or None when the creator never set any."""
    if not raw:
        return None
    return tuple(int(p) for p in raw.split(","))


def with_tier1(tiers: tuple[int, ...], price: int) -> tuple[int, ...]:
    """The tiers after ``sub_price`` sets tier 1: higher tiers that no longer cost more
    than the tier below them are dropped."""
    return (price, *[p for p in tiers[1:] if p > price])


# -- subscribing and upgrading --------------------------------------------------------


@dataclass(frozen=True)
class SubState:
    """A viewer's subscription to one creator as stored: ``until`` (unix s, 0 none), the
    ``tier`` and per-period ``price`` last paid (0: not recorded), loyalty ``months``."""

    until: int = 0
    tier: int = 0
    price: int = 0
    months: int = 0

    def active(self, now_ms: int) -> bool:
        return self.until * 1000 > now_ms

    def current_tier(self, now_ms: int) -> int:
        """The tier of an active subscription (1 when none was recorded), else 0."""
        return (self.tier or 1) if self.active(now_ms) else 0


@dataclass(frozen=True)
class Plan:
    """What one ``subscribe`` does: ``mode`` new | renew | upgrade, the coins it charges
    (``amount``) and the subscription after it."""

    mode: str
    tier: int
    price: int  # the tier's price per period, recorded for later upgrades
    amount: int
    until: int
    months: int

    @property
    def periods(self) -> int:
        """Loyalty months this step adds: one per period paid, none for an upgrade."""
        return 0 if self.mode == "upgrade" else 1


def prorate(new: int, old: int, remaining_ms: int, period_ms: int) -> int:
    """The coins an upgrade costs: the price difference for the time left, rounded up
    (the viewer pays ``ceil``; the platform never gives a coin away, never makes one).

    ``ceil(max(0, new - old) x max(0, remaining_ms) / period_ms)``, exact in integers.
    """
    diff = max(0, new - old) * max(0, remaining_ms)
    return -(-diff // period_ms)


def plan(
    state: SubState, tier: int | None, prices: Sequence[int], now_ms: int, period_s: int
) -> Plan:
    """The plan of a ``subscribe`` at ``tier`` (None: the current tier, or tier 1).

    Not active: a new period from now. Active at the same tier: one more period from its
    end (a renewal). Active at a lower tier: an upgrade for the rest of the time already
    paid, charged pro rata (:func:`prorate`); the end and the months stay.

    Raises:
        BadRequest: The creator has no such tier, or it is a downgrade (refused: the
            subscription keeps its tier until it ends).
    """
    current = state.current_tier(now_ms)
    want = tier or current or 1
    if want > len(prices):
        raise BadRequest(f"this creator offers tiers 1-{len(prices)}")
    price = prices[want - 1]
    if not current:
        until = now_ms // 1000 + period_s
        return Plan("new", want, price, price, until, state.months + 1)
    if want == current:
        return Plan("renew", want, price, price, state.until + period_s, state.months + 1)
    if want < current:
        raise BadRequest(
            f"downgrades are refused: this subscription is tier {current} until "
            f"{state.until}; subscribe at tier {want} once it has ended"
        )
    old = state.price or prices[min(current, len(prices)) - 1]
    amount = prorate(price, old, state.until * 1000 - now_ms, period_s * 1000)
    return Plan("upgrade", want, price, amount, state.until, state.months)


def badge(state: SubState, now_ms: int) -> dict[str, int] | None:
    """The chat badge of a subscriber (``{tier, months}``), None for anyone else."""
    if not state.active(now_ms):
        return None
    return {"tier": state.current_tier(now_ms), "months": state.months}


# -- gifted subscriptions -------------------------------------------------------------


def check_recipients(to: Any, gifter: str, creator: str) -> list[str]:
    """Chosen recipients, checked: distinct user ids, neither the gifter nor the creator.

    Raises:
        BadRequest: Anything else.
    """
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_GIFTS:
        raise BadRequest(f"to must hold 1-{MAX_GIFTS} users")
    for i, user in enumerate(to):
        if not isinstance(user, str) or not IDENT.fullmatch(user):
            raise BadRequest(f"to[{i}] must be a user id (1-64 of [A-Za-z0-9_.-])")
        if user in (gifter, creator):
            raise BadRequest(f"to[{i}]: you cannot gift a subscription to yourself or the creator")
    if len(set(to)) != len(to):
        raise BadRequest("to must not name a user twice")
    return list(to)


def gift_seed(gifter: str, key: str) -> int:
    """The seed of a random choice of recipients: fixed by the gifter and key, so a retry
    that has to choose again (it never does once the debit is made) chooses alike."""
    return int.from_bytes(hashlib.sha256(f"{gifter}\n{key}".encode()).digest()[:8], "big")


def shuffled(candidates: Iterable[str], seed: int) -> list[str]:
    """The candidates in the random order of ``seed`` (the same set gives the same order)."""
    order = sorted(set(candidates))
    random.Random(seed).shuffle(order)
    return order


def pick(order: Sequence[str], excluded: set[str], n: int) -> list[str]:
    """The first ``n`` of ``order`` not in ``excluded`` (fewer when there are not enough)."""
    out: list[str] = []
    for user in order:
        if user not in excluded:
            out.append(user)
            if len(out) == n:
                break
    return out


def gift_ref(gifter: str, key: str, exp: int, i: int) -> str:
    """The id of the ``i``-th gift (1-based) of a ``sub_gift`` key generation: the
    recipient's record keeps it, so the gift's period is granted once."""
    return f"{gifter}|{exp}|{i}|{key}"


def gift_key(key: str, i: int) -> str:
    """The ledger key of the ``i``-th gift of a ``sub_gift`` (one movement per gift)."""
    return f"{key}#{i}"


def grant(
    state: SubState, tier: int, price: int, now_s: int, period_s: int
) -> tuple[SubState, int]:
    """A gifted period on the recipient's record (``sub_grant.lua`` does the same in the
    store): it runs from now, or from the end of a running subscription, which keeps the
    higher of the two tiers. Returns the new state and the months it adds (1)."""
    active = state.until > now_s
    base = state.until if active else now_s
    if active and (state.tier or 1) >= tier:
        keep_tier, keep_price = state.tier or 1, state.price
    else:
        keep_tier, keep_price = tier, price
    return SubState(base + period_s, keep_tier, keep_price, state.months + 1), 1
