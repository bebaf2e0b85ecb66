"""Every Redis key and channel name livesrv uses, in one place.

Cluster-ready: each script touches keys of one hash slot. A user's wallet, idempotency
records, spend window, streaks, subscriptions, ledger and settlement outbox share the
user's shard tag ``{sNN}``; a room's state shares the tag ``{r:ROOM}``; a product's state
shares ``{p:PRODUCT}``. Cross-slot movements are two idempotent steps (see settlement).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

PREFIX = "ls"


def shard_of(name: str, shards: int) -> int:
    """The shard a user (or receipt) id maps to; stable across processes."""
    return zlib.crc32(name.encode()) % shards


@dataclass(frozen=True)
class ShardKeys:
    """Keys of one user shard."""

    shard: int

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{s{self.shard}}}"

    @property
    def outbox(self) -> str:
        return f"{self.tag}:outbox"

    @property
    def ledger(self) -> str:
        return f"{self.tag}:ledger"

    @property
    def applied(self) -> str:
        """Set of settlement entry refs already credited to earners of this shard."""
        return f"{self.tag}:applied"

    @property
    def holdq(self) -> str:
        """Sorted set: earner -> earliest time a pending hold matures."""
        return f"{self.tag}:holdq"

    @property
    def wallets(self) -> str:
        """Set of the users with a wallet in this shard (for audit and admin)."""
        return f"{self.tag}:users"

    @property
    def withdrawals(self) -> str:
        """Sorted set of withdrawal ids by creation time."""
        return f"{self.tag}:wds"

    @property
    def withdrawal_seq(self) -> str:
        return f"{self.tag}:wdseq"

    @property
    def wallet_channel(self) -> str:
        return f"{self.tag}:wch"

    def withdrawal(self, wid: str) -> str:
        return f"{self.tag}:wd:{wid}"

    def receipt(self, receipt: str) -> str:
        return f"{self.tag}:rcpt:{receipt}"


@dataclass(frozen=True)
class UserKeys:
    """Keys of one user, all in the user's shard slot."""

    user: str
    shard: ShardKeys

    @classmethod
    def of(cls, user: str, shards: int) -> UserKeys:
        return cls(user, ShardKeys(shard_of(user, shards)))

    @property
    def wallet(self) -> str:
        return f"{self.shard.tag}:w:{self.user}"

    @property
    def spent(self) -> str:
        """Sorted set of spends in the rolling day window."""
        return f"{self.shard.tag}:day:{self.user}"

    @property
    def holds(self) -> str:
        """Sorted set of settled diamonds still in the hold period."""
        return f"{self.shard.tag}:holds:{self.user}"

    @property
    def orders(self) -> str:
        return f"{self.shard.tag}:orders:{self.user}"

    @property
    def settings(self) -> str:
        """Creator settings (subscription price)."""
        return f"{self.shard.tag}:cfg:{self.user}"

    @property
    def live_rooms(self) -> str:
        """Sorted set: the creator's live rooms -> ms claimed (the live-rooms-per-creator cap)."""
        return f"{self.shard.tag}:onair:{self.user}"

    def idem(self, key: str) -> str:
        return f"{self.shard.tag}:idem:{self.user}:{key}"

    def combo(self, room: str, gift: str) -> str:
        return f"{self.shard.tag}:combo:{self.user}:{room}:{gift}"

    def sub(self, creator: str) -> str:
        return f"{self.shard.tag}:sub:{self.user}:{creator}"


@dataclass(frozen=True)
class RoomKeys:
    """Keys of one room, all in the room's slot."""

    room: str

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{r:{self.room}}}"

    @property
    def meta(self) -> str:
        return f"{self.tag}:meta"

    @property
    def log(self) -> str:
        return f"{self.tag}:log"

    @property
    def evids(self) -> str:
        return f"{self.tag}:evids"

    @property
    def top(self) -> str:
        return f"{self.tag}:top"

    @property
    def viewers(self) -> str:
        return f"{self.tag}:viewers"

    @property
    def channel(self) -> str:
        return f"{self.tag}:ch"


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


# Sorted sets (every score 0, so ZRANGE BYLEX pages them by name).
LIVE_ROOMS = f"{PREFIX}:live"
PRODUCTS = f"{PREFIX}:catalog"
# The plain sets that held the same names before 1.x paged listings; a store that still
# has one is adopted into the sorted set on the next read (see ``paging.adopt_legacy``).
LEGACY_LIVE_ROOMS = f"{PREFIX}:rooms"
LEGACY_PRODUCTS = f"{PREFIX}:products"
ROOM_CHANNEL_PATTERN = f"{PREFIX}:{{r:*}}:ch"
