"""Series (paid premium content): the rules, sans-I/O.

A series is a creator's list of episodes (titles and content URLs livesrv stores but does
not host) sold for one price in coins. This module checks what a creator publishes and
shapes what a reader sees; :mod:`livesrv.services.series` does the I/O.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from ..errors import BadRequest

TITLE_MAX = 100
DESCRIPTION_MAX = 2000
EPISODES_MAX = 50
EPISODE_TITLE_MAX = 100
URL_MAX = 500
PRICE_MAX = 1_000_000
URL_SCHEMES = ("https", "http")


def check_url(url: Any, where: str) -> str:
    """An episode's content URL: absolute ``https``/``http`` with a host, printable ASCII
    without spaces, at most :data:`URL_MAX` characters.

    Raises:
        BadRequest: Anything else (``javascript:``, ``data:``, relative, no host...).
    """
    if not isinstance(url, str) or not 1 <= len(url) <= URL_MAX:
        raise BadRequest(f"{where}.url must be a string of 1-{URL_MAX} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise BadRequest(f"{where}.url must be printable ASCII without spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise BadRequest(f"{where}.url is not a valid URL") from None
    if parts.scheme.lower() not in URL_SCHEMES or not host:
        raise BadRequest(f"{where}.url must be an absolute http(s) URL with a host")
    return url


def check_episodes(raw: list[Any]) -> list[dict[str, str]]:
    """The episodes a creator publishes: 1-:data:`EPISODES_MAX` maps of exactly ``title``
    (1-:data:`EPISODE_TITLE_MAX` characters) and ``url`` (:func:`check_url`), in order.

    Raises:
        BadRequest: Naming the first bad episode and field.
    """
    if not 1 <= len(raw) <= EPISODES_MAX:
        raise BadRequest(f"episodes must hold 1-{EPISODES_MAX} episodes")
    out = []
    for i, ep in enumerate(raw):
        where = f"episodes[{i}]"
        if not isinstance(ep, dict) or set(ep) != {"title", "url"}:
            raise BadRequest(f"{where} must be a map of exactly title and url")
        title = ep["title"]
        if not isinstance(title, str) or not 1 <= len(title) <= EPISODE_TITLE_MAX:
            raise BadRequest(f"{where}.title must be 1-{EPISODE_TITLE_MAX} characters")
        out.append({"title": title, "url": check_url(ep["url"], where)})
    return out


def check_price(price: int) -> int:
    """A series price in coins (1-:data:`PRICE_MAX`).

    Raises:
        BadRequest: Out of range.
    """
    if not 1 <= price <= PRICE_MAX:
        raise BadRequest(f"price must be between 1 and {PRICE_MAX}")
    return price


def earners(creator: str, share_bps: int) -> list[list[Any]]:
    """Who earns from a sale and at what share (the outbox entry's ``e``): the creator."""
    return [[creator, f"series:{share_bps}", share_bps]]


def can_read(raw: dict[str, str], user: str, purchased: bool, admin: bool = False) -> bool:
    """Whether ``user`` gets the episode URLs: a buyer, the creator, an admin."""
    return purchased or admin or raw.get("creator") == user


def view(raw: dict[str, str], *, urls: bool) -> dict[str, Any]:
    """A stored series as a reader sees it: every episode's title, and its URL when
    ``urls`` (a buyer, the creator, an admin)."""
    episodes = orjson.loads(raw["episodes"])
    return {
        "series": raw["series"],
        "creator": raw["creator"],
        "title": raw["title"],
        "description": raw["description"],
        "price": int(raw["price"]),
        "published": raw["published"] == "1",
        "created": int(raw["created"]),
        "episodes": [
            {"title": e["title"], **({"url": e["url"]} if urls else {})} for e in episodes
        ],
    }


def summary(raw: dict[str, str]) -> dict[str, Any]:
    """A series in a listing: no episodes, only how many there are."""
    out = view(raw, urls=False)
    out["episodes"] = len(out["episodes"])
    return out


def listed(raw: dict[str, str], viewer: str | None) -> bool:
    """Whether a listing shows this series to ``viewer`` (None: an admin): published ones
    to everybody, unpublished ones to their creator and admins only."""
    return raw.get("published") == "1" or viewer is None or raw.get("creator") == viewer
