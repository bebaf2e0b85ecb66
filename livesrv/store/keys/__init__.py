"""Every Redis key and channel name livesrv uses, in one package.

Cluster-ready: each script touches keys of one hash slot. A user's wallet, idempotency
records, spend window, streaks, subscriptions, ledger and settlement outbox share the
user's shard tag ``{sNN}``; a room's state shares the tag ``{r:ROOM}``; a product's state
shares ``{p:PRODUCT}``. Cross-slot movements are two idempotent steps (see settlement).

The key names are stored data: a name once written must never change. One module per owner
of a slot: :mod:`.users` (a user shard and its users), :mod:`.rooms` (a room),
:mod:`.products` (a product, a series), :mod:`.shared` (the name indexes and the other keys
no single owner holds); :mod:`.base` has the namespace and the shard hash. Import the names
from this package.
"""

from __future__ import annotations

from .base import PREFIX, shard_of
from .products import ProductKeys, series_key
from .rooms import RoomKeys
from .shared import (
    BOX_DUE,
    FLEET,
    INDEX_SHARDS,
    LEGACY_LIVE_ROOMS,
    LEGACY_PRODUCTS,
    LIVE_INDEX,
    LIVE_ROOMS,
    MATCHES_DUE,
    PRODUCT_INDEX,
    PRODUCTS,
    NameIndex,
    match_key,
)
from .users import (
    RECEIPTS_MATCH,
    REVERSALS_MATCH,
    SUB_RECORDS_MATCH,
    ShardKeys,
    UserKeys,
    receipt_id_of,
    sub_record_of,
)

__all__ = [
    "BOX_DUE",
    "FLEET",
    "INDEX_SHARDS",
    "LEGACY_LIVE_ROOMS",
    "LEGACY_PRODUCTS",
    "LIVE_INDEX",
    "LIVE_ROOMS",
    "MATCHES_DUE",
    "PREFIX",
    "PRODUCTS",
    "PRODUCT_INDEX",
    "RECEIPTS_MATCH",
    "REVERSALS_MATCH",
    "SUB_RECORDS_MATCH",
    "NameIndex",
    "ProductKeys",
    "RoomKeys",
    "ShardKeys",
    "UserKeys",
    "match_key",
    "receipt_id_of",
    "series_key",
    "shard_of",
    "sub_record_of",
]
