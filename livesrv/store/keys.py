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

    def withdrawal(self, wid: str) -> str:
        return f"{self.tag}:wd:{wid}"

    def receipt(self, receipt: str) -> str:
        """A receipt id's claim record ("user|package"), in the id's shard; never expires."""
        return f"{self.tag}:rcpt:{receipt}"

    def receipt_reversal(self, receipt: str) -> str:
        """Hash: a receipt's refund or chargeback (kind, user, coins, ...), in the id's shard;
        written once, never expires (services/refunds.py)."""
        return f"{self.tag}:rrev:{receipt}"


RECEIPTS_MATCH = f"{PREFIX}:{{s*}}:rcpt:*"
"""SCAN pattern that finds every receipt claim record (and more: see :func:`receipt_id_of`)."""


def receipt_id_of(key: str) -> str | None:
    """The receipt id of a claim record's key; None for any other key (``RECEIPTS_MATCH``
    also matches, e.g., the idempotency record of a purchase)."""
    tag, _, rest = key.partition("}")
    head = f"{PREFIX}:{{s"
    if not (tag.startswith(head) and tag[len(head) :].isdigit() and rest.startswith(":rcpt:")):
        return None
    return rest[len(":rcpt:") :]


REVERSALS_MATCH = f"{PREFIX}:{{s*}}:rrev:*"
"""SCAN pattern that finds every receipt reversal record (refund or chargeback)."""


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
    def wallet_channel(self) -> str:
        """The user's wallet updates (a shard channel in the user's slot: a node subscribes
        to the users signed in on it only)."""
        return f"{self.shard.tag}:wch:{self.user}"

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

    def sub_record(self, creator: str) -> str:
        """Hash: the user's subscription to ``creator`` beside its end (:meth:`sub`): tier,
        price per period, loyalty months, and ``g:REF`` per gifted period granted (kept
        forever; services/sub_rules.py)."""
        return f"{self.shard.tag}:subr:{self.user}:{creator}"

    # -- refunds and minors (services/refunds.py) --

    @property
    def spends(self) -> str:
        """Sorted set: the user's outbox entry ids -> ms spent; written by spend.lua with the
        debit, never expires (a refund's clawback walks it newest first)."""
        return f"{self.shard.tag}:sx:{self.user}"

    @property
    def clawed(self) -> str:
        """Hash: outbox entry id -> coins of that spend clawed back so far; ``r:<id>`` -> 1
        once the spend is reversed (a minor's refund). Never expires."""
        return f"{self.shard.tag}:claw:{self.user}"

    def refund(self, receipt: str) -> str:
        """A receipt's refund step in the buyer's shard: the first reply; never expires."""
        return f"{self.shard.tag}:rfd:{self.user}:{receipt}"

    # -- end refunds and minors --

    # -- series (services/series.py) --

    @property
    def series_access(self) -> str:
        """Hash: series id -> "price|ms" the user bought it at; written by spend.lua in the
        same step as the debit, never expires."""
        return f"{self.shard.tag}:sra:{self.user}"

    @property
    def series_index(self) -> str:
        """Sorted set (every score 0, paged by name): the series this creator published."""
        return f"{self.shard.tag}:srs:{self.user}"

    # -- end series --


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

    def event_id(self, evid: str) -> str:
        """The record of a logged event id (its seq), so a retried event logs once; ``-``
        is a placeholder key for events without an id (the script then never reads it)."""
        return f"{self.tag}:ev:{evid or '-'}"

    @property
    def log(self) -> str:
        return f"{self.tag}:log"

    @property
    def top(self) -> str:
        return f"{self.tag}:top"

    @property
    def presence(self) -> str:
        """Sorted set: viewer -> last seen (store clock, ms), refreshed by each viewer's node.

        (Before 1.x a hash ``:viewers`` counted connections; it is no longer read.)
        """
        return f"{self.tag}:seen"

    @property
    def channel(self) -> str:
        return f"{self.tag}:ch"

    # -- moderation (livesrv/services/moderation.py, moderate.lua, chat_gate.lua) --

    @property
    def mods(self) -> str:
        """Set of the room's moderators (appointed by its creator)."""
        return f"{self.tag}:mods"

    @property
    def banned(self) -> str:
        """Set of the users banned from the room."""
        return f"{self.tag}:banned"

    @property
    def muted(self) -> str:
        """Hash: muted user -> until (unix ms); an entry past its time is dropped on read."""
        return f"{self.tag}:muted"

    @property
    def deleted(self) -> str:
        """Sorted set of the seqs of deleted chat lines (score = seq), trimmed with the log."""
        return f"{self.tag}:deleted"

    def slow(self, user: str) -> str:
        """A user's slow-mode mark: exists (with a ttl) while the user must wait to chat."""
        return f"{self.tag}:slow:{user}"

    # -- end moderation --

    # -- paid pins and treasure boxes (services/paid_chat.py, services/treasure.py) --

    @property
    def boxes(self) -> str:
        """Sorted set: the room's open treasure boxes -> opening time (unix ms); bounded."""
        return f"{self.tag}:boxes"

    def box(self, box: str) -> str:
        """Hash: one treasure box (dropper, coins, opens, state, claim counter, split)."""
        return f"{self.tag}:box:{box}"

    def box_claims(self, box: str) -> str:
        """Sorted set: a box's claimers -> claim order (1, 2, ...)."""
        return f"{self.tag}:boxc:{box}"

    # -- end paid pins and treasure boxes --

    # -- live match, goal, hype train (services/match.py, services/goals.py) --

    @property
    def match(self) -> str:
        """Hash: this room's side of its current match (id, other, start, ends, score,
        boost, ended); counted by room_event.lua with the gift's logging."""
        return f"{self.tag}:match"

    @property
    def match_supporters(self) -> str:
        """Sorted set: this side's supporters -> match points (current match)."""
        return f"{self.tag}:msup"

    @property
    def goal(self) -> str:
        """Hash: the room's goal (id, kind, gift, target, progress, done)."""
        return f"{self.tag}:goal"

    @property
    def hype(self) -> str:
        """Hash: the room's hype train (state, ends, cool, total, level, n)."""
        return f"{self.tag}:hype"

    @property
    def hype_recent(self) -> str:
        """Sorted set: recent gifters -> last gift (ms), to start a train."""
        return f"{self.tag}:hrec"

    @property
    def hype_contributors(self) -> str:
        """Sorted set: the running train's contributors -> coins."""
        return f"{self.tag}:hcon"

    @property
    def mechanics(self) -> list[str]:
        """KEYS 5-10 of room_event.lua (the counting of gifts and subscriptions)."""
        return [
            self.match,
            self.match_supporters,
            self.goal,
            self.hype,
            self.hype_recent,
            self.hype_contributors,
        ]

    # -- end live match, goal, hype train --


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


def series_key(series: str) -> str:
    """Hash: one series (creator, title, description, price, episodes json, published)."""
    return f"{PREFIX}:{{sr:{series}}}:meta"


# Hash: what every node on this store must agree on (livesrv/fleet.py), one key.
FLEET = f"{PREFIX}:fleet"

# -- subscription tiers (services/sub_tiers.py): the audit finds every record by SCAN
SUB_RECORDS_MATCH = f"{PREFIX}:{{s*}}:subr:*"


def sub_record_of(key: str) -> tuple[str, str] | None:
    """(user, creator) of a subscription record's key; None for any other key."""
    tag, _, rest = key.partition("}")
    parts = rest.split(":")
    if not tag.startswith(f"{PREFIX}:{{s") or len(parts) != 4 or parts[1] != "subr":
        return None
    return parts[2], parts[3]
