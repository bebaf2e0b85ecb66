"""Keys of a user shard and of one user, all in the shard's slot (tag ``{sNN}``).

A user's wallet, idempotency records, spend window, streaks, subscriptions, ledger and the
settlement outbox share the user's shard tag, so each money step is one slot; a receipt's
records live in the shard its id maps to. The SCAN patterns here let the audit find every
receipt claim, reversal and subscription record.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import PREFIX, shard_of


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


# -- subscription tiers (services/sub_tiers.py): the audit finds every record by SCAN
SUB_RECORDS_MATCH = f"{PREFIX}:{{s*}}:subr:*"


def sub_record_of(key: str) -> tuple[str, str] | None:
    """(user, creator) of a subscription record's key; None for any other key."""
    tag, _, rest = key.partition("}")
    parts = rest.split(":")
    if not tag.startswith(f"{PREFIX}:{{s") or len(parts) != 4 or parts[1] != "subr":
        return None
    return parts[2], parts[3]
