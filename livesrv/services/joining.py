"""What a viewer learns about a room on joining it, besides the room itself: the part that
is the same for every viewer (:func:`room_view`: read once per batch of joiners of a room,
see ``realtime/replays.py``) and the part that is the viewer's own (:func:`member_view`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from ..errors import Banned, NotFound
from ..store.facade import Backend, now_ms
from ..store.keys import RoomKeys
from . import goals, match, modrules, paid_chat, shop, sub_tiers, treasure
from .rooms import TOP_N, RoomInfo, top_list


@dataclass(frozen=True)
class Entered:
    """What :func:`enter` read: the room, its viewer count and top gifters, and the
    moderation fields of the join reply (:func:`.modrules.join_fields`)."""

    info: RoomInfo
    viewers: int
    top: list[list[Any]]
    moderation: dict[str, Any]


async def enter(b: Backend, room: str, user: str, *, again: bool = False) -> Entered:
    """Check the ban, count the viewer in (not ``again``: a connection that joined the room
    before is already counted) and read what ``join`` returns of the room and its
    moderation, in one round trip (``room_join.lua``, in the room's slot).

    The viewer count is the distinct users seen in the room within ``presence_ttl``, on
    every node: each node refreshes its own viewers (:func:`.rooms.refresh_presence`), so
    the viewers of a node that died drop out of the count by themselves.

    Raises:
        Banned: ``user`` is banned from the room (checked first; nothing was written).
        NotFound: The room was never opened (and nothing was written).
    """
    k = RoomKeys(room)
    ttl = int(b.settings.presence_ttl * 1000)
    found = await b.run(
        "room_join",
        [k.meta, k.presence, k.top, k.banned, k.mods, k.muted],
        [user, TOP_N, ttl, "0" if again else "1"],
    )
    if found == ["banned"]:
        raise Banned()
    if not found:
        raise NotFound(f"no room {room!r}")
    flat_meta, viewers, flat_top, mods, muted_until = found
    meta = dict(zip(flat_meta[::2], flat_meta[1::2], strict=True))
    top = [(u, float(score)) for u, score in zip(flat_top[::2], flat_top[1::2], strict=True)]
    return Entered(
        RoomInfo.from_meta(room, meta),
        int(viewers),
        top_list(top),
        modrules.join_fields(mods, meta.get("slow"), muted_until, now_ms()),
    )


async def room_view(
    b: Backend, room: str, pinned: str | None, creator: str | None = None
) -> dict[str, Any]:
    """The fields of a ``join`` reply that every viewer of ``room`` gets alike:
    ``pinned_product`` (the pinned product's view, or None), ``pins``, ``boxes``,
    ``match``, ``goal`` and ``hype``; with the room's ``creator``, also the creator's
    ``sub_price`` and ``sub_tiers`` (:func:`.sub_tiers.tier_fields`).

    A shared snapshot: callers must not change it.
    """
    view: dict[str, Any] = {"pinned_product": None}
    if creator:
        view.update(sub_tiers.tier_fields(await sub_tiers.tiers_of(b, creator)))
    if pinned:
        with contextlib.suppress(NotFound):
            view["pinned_product"] = shop.product_view(await shop.get(b, pinned))
    view["pins"] = await paid_chat.pins(b, room)  # -- paid pins, treasure boxes --
    view["boxes"] = await treasure.join_view(b, room)
    view["match"] = await match.view(b, room)  # -- live match, goal, hype train --
    view.update(await goals.view(b, room))
    return view


async def member_view(b: Backend, user: str, creator: str | None) -> dict[str, Any]:
    """The viewer's own fields of a ``join`` reply: ``subscribed_until``, ``sub_tier`` and
    ``sub_months`` (when the room has a creator; its ``sub_price`` and ``sub_tiers`` are in
    :func:`room_view`)."""
    if not creator:
        return {}
    return await sub_tiers.viewer_fields(b, user, creator)  # one read-only script
