"""The ops of Series, paid premium content (one service call each)."""

from __future__ import annotations

from typing import Any

from ..services import paging, series
from .optable import Caller, op

# -- series (services/series.py; rules: services/series_rules.py) --


@op("series_publish")
async def _series_publish(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await series.publish(
        s.b,
        s.identity,
        series=a["series"],
        title=a["title"],
        description=a.get("description") or "",
        price=a["price"],
        episodes=a["episodes"],
    )


@op("series_get")
async def _series_get(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await series.read(s.b, s.identity, a["series"])


@op("series_buy")
async def _series_buy(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await series.buy(s.b, s.user, a["series"], a["key"])


@op("series_price")
async def _series_price(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await series.set_price(s.b, s.identity, a["series"], a["price"])


@op("series_unpublish")
async def _series_unpublish(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await series.unpublish(s.b, s.identity, a["series"])


@op("series_list")
async def _series_list(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    limit = paging.page_limit(a.get("limit"))
    return await series.listing(s.b, a["creator"], s.user, a.get("cursor"), limit)


# -- end series --
