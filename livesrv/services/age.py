"""Age gates (sans-I/O): whether a token's user may spend money.

A token may carry the user's birth year (claim ``by``) and region (claim ``rg``,
livesrv/wire/tokens.py). Every op in :data:`livesrv.wire.schema.MONEY_OPS` (buying coins,
gifting, subscribing, shop buys, paid messages, treasure box drops, series buys) is checked
here once, by the session, before its handler runs: a refusal is ``age_restricted`` and
nothing moves.

The rules (docs/protocol.md, "Age gates"):

* The age is the one the user reaches during the current calendar year (UTC):
  ``year(now) - by``. A token carries a year, not a date, so the server counts the user as
  of age from 1 January of the year they reach it; this is how South Korea's youth law
  counts (19 from 1 January of the year one turns 19). A deployment that must be sure of
  the exact birthday sets the minimum one higher.
* The minimum is ``min_age_by_region[rg]`` when the token's region has an entry, else
  ``min_age``.
* A token without a birth year: refused when ``require_age`` is set (a payments
  deployment that issues tokens from a verified profile), else allowed (tokens minted
  before age gates, and deployments that verify age elsewhere).
"""

from __future__ import annotations

import time

from ..errors import AgeRestricted
from ..settings import Settings
from ..wire.tokens import Identity


def age_in_year(birth_year: int, now: float) -> int:
    """The age reached during the calendar year (UTC) of ``now`` (unix seconds)."""
    return time.gmtime(now).tm_year - birth_year


def minimum_age(region: str | None, settings: Settings) -> int:
    """The minimum age for a user of ``region`` (None: no region claim)."""
    if region is not None:
        override = settings.region_min_ages.get(region)
        if override is not None:
            return override
    return settings.min_age


def allowed(birth_year: int | None, region: str | None, now: float, settings: Settings) -> bool:
    """Whether a user born in ``birth_year`` in ``region`` may spend money at ``now``."""
    if birth_year is None:
        return not settings.require_age
    return age_in_year(birth_year, now) >= minimum_age(region, settings)


def require(who: Identity, now: float, settings: Settings) -> None:
    """Refuse a money op for ``who`` when :func:`allowed` says no.

    Raises:
        AgeRestricted: Below the minimum age, or no birth year where one is required.
    """
    if allowed(who.birth_year, who.region, now, settings):
        return
    if who.birth_year is None:
        raise AgeRestricted("this server needs your birth year (token claim by) to spend money")
    raise AgeRestricted(
        f"you must be {minimum_age(who.region, settings)} or older to spend money here"
    )
