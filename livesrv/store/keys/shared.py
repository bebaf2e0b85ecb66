"""Keys no single user, room or product owns: the sharded name indexes (live rooms,
products, due treasure boxes) with the single keys earlier versions kept, the running
matches and a match's record (two rooms share it), and the fleet's shared settings."""

from __future__ import annotations

from dataclasses import dataclass

from .base import PREFIX, shard_of

INDEX_SHARDS = 16  # fixed: a name's index key must not change while the store holds it


@dataclass(frozen=True)
class NameIndex:
    """A name index (live rooms, products) split over :data:`INDEX_SHARDS` sorted sets.

    One key would put every open, close, create and listing on one hash slot, so one
    cluster master; each name lives in the shard its crc32 picks
    (``ls:{ix:KIND:NN}:names``, every score 0, so ZRANGE BYLEX pages it by name), and a
    listing merges the shards. ``old_zset`` (1.x) and ``old_set`` (before paged listings)
    are the single keys earlier versions kept the same names in; they are still read and
    adopted (see ``paging.adopt_legacy``).
    """

    kind: str
    old_zset: str
    old_set: str

    @property
    def legacy(self) -> tuple[str, str]:
        return (self.old_zset, self.old_set)

    def key(self, n: int) -> str:
        return f"{PREFIX}:{{ix:{self.kind}:{n:02d}}}:names"

    @property
    def keys(self) -> list[str]:
        return [self.key(n) for n in range(INDEX_SHARDS)]

    def key_for(self, name: str) -> str:
        """The index shard that holds ``name``."""
        return self.key(shard_of(name, INDEX_SHARDS))


# The single sorted sets of 1.x (before index shards), and the plain sets before 1.x paged
# listings; a store that still has one is adopted into the index shards on the next read.
LIVE_ROOMS = f"{PREFIX}:live"
PRODUCTS = f"{PREFIX}:catalog"
LEGACY_LIVE_ROOMS = f"{PREFIX}:rooms"
LEGACY_PRODUCTS = f"{PREFIX}:products"
LIVE_INDEX = NameIndex("live", LIVE_ROOMS, LEGACY_LIVE_ROOMS)
PRODUCT_INDEX = NameIndex("catalog", PRODUCTS, LEGACY_PRODUCTS)
# -- treasure box -- sorted sets "room|box" -> opening time (unix ms), split by box id over
# INDEX_SHARDS keys: the settlement worker of any node opens what is due (treasure.py).
BOX_DUE = NameIndex("boxdue", f"{PREFIX}:boxdue", f"{PREFIX}:boxdue:set")
# -- live match -- a match's record (its own slot), and the running matches by end time
# (sorted set, one key; the settlement upkeep ends any match no node ticked in time).


def match_key(match: str) -> str:
    """Hash: one match (rooms, creators, state, starts, ends, result)."""
    return f"{PREFIX}:{{m:{match}}}:match"


MATCHES_DUE = f"{PREFIX}:matchdue"


# Hash: what every node on this store must agree on (livesrv/fleet.py), one key.
FLEET = f"{PREFIX}:fleet"
