"""The key namespace (:data:`PREFIX`) and the stable hash that spreads names over shards."""

from __future__ import annotations

import zlib

PREFIX = "ls"


def shard_of(name: str, shards: int) -> int:
    """The shard a user (or receipt) id maps to; stable across processes."""
    return zlib.crc32(name.encode()) % shards
