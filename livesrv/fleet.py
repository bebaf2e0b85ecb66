"""Fleet guards: the settings every node on one store must share, checked at start.

Nodes on one store must agree on anything that decides where money lives or how much
moves: the user shard count (where a wallet is), the catalogue (prices and shares), the
diamond hold, how receipts are checked and with which key, demo mode (starter coins),
and the token secret. A node that disagrees would silently split balances or mint
coins, so it refuses to start instead.

The first node (``serve`` or ``settle``) writes its values into one store hash
(:data:`~livesrv.store.keys.FLEET`, field by field with HSETNX, in ``fleet.lua``); every
later node compares its own values with what is stored, and a mismatch raises
:class:`FleetMismatch` naming the setting, the fleet's value, this node's value and how
to fix it (``livesrv serve`` exits 2 with that message). Secrets are never stored: their
place holds a check value (an HMAC of a fixed label under the key).

``livesrv fleet`` prints the record; ``livesrv fleet --reset`` deletes it (after a
migration, so that the next node to start writes the new values).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from .catalog import Catalog
from .errors import StoreError
from .settings import Settings
from .store.facade import Backend, store_errors
from .store.keys import FLEET

RESET_HINT = "reset the fleet record with `livesrv fleet --reset` after migrating the store"
CHECK_LABEL = b"livesrv fleet check v1"


class FleetMismatch(StoreError):
    """This node's settings differ from the ones the fleet's first node recorded."""


@dataclass(frozen=True)
class Agreement:
    """One thing every node must agree on: its record field, its name for an operator, and
    the fix (``{fleet}`` is the recorded value)."""

    field: str
    setting: str
    fix: str


AGREEMENTS = (
    Agreement(
        "shards",
        "LIVESRV_SHARDS",
        f"start this node with LIVESRV_SHARDS={{fleet}}, or {RESET_HINT}",
    ),
    Agreement(
        "catalog",
        "the catalogue (--catalog / LIVESRV_CATALOG; value: digest of its contents)",
        "start this node with the fleet's catalogue ({source}), or stop every node, give "
        f"them all the new catalogue and {RESET_HINT}",
    ),
    Agreement(
        "hold_seconds",
        "LIVESRV_HOLD_SECONDS (--hold-seconds; 0 by default with --demo)",
        f"start this node with --hold-seconds {{fleet}} (LIVESRV_HOLD_SECONDS={{fleet}}), or "
        f"stop every node and {RESET_HINT}",
    ),
    Agreement(
        "receipt_verifier",
        "LIVESRV_RECEIPT_VERIFIER (--receipt-verifier; `any` by default with --demo)",
        "start this node with --receipt-verifier {fleet} (LIVESRV_RECEIPT_VERIFIER={fleet})",
    ),
    Agreement(
        "demo",
        "LIVESRV_DEMO (--demo: starter coins for every demo login)",
        "start this node {demo_fix}",
    ),
    Agreement(
        "receipt_key",
        "the receipt key (--receipt-key / LIVESRV_RECEIPT_KEY, else derived from --secret; "
        "value: a check value, not the key)",
        "start this node with the same --secret and --receipt-key as the other nodes",
    ),
    Agreement(
        "secret",
        "the token secret (--secret / LIVESRV_SECRET; value: a check value, not the secret)",
        "start this node with the same --secret (LIVESRV_SECRET) as the other nodes",
    ),
)
BY_FIELD = {a.field: a for a in AGREEMENTS}
SETTLE_FIELDS = ("shards", "catalog", "hold_seconds")
"""What a ``livesrv settle`` worker must agree on (it signs no tokens and checks no receipts)."""


def check_value(key: bytes) -> str:
    """A short fingerprint of a key that does not reveal it."""
    return "hmac:" + hmac.new(key, CHECK_LABEL, hashlib.sha256).hexdigest()[:16]


def catalog_digest(catalog: Catalog) -> str:
    """A digest of the catalogue's contents (independent of the file's layout)."""
    body = orjson.dumps(dataclasses.asdict(catalog), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(body).hexdigest()[:16]


def own_record(
    settings: Settings,
    catalog: Catalog,
    *,
    secret: str | None = None,
    receipt_key: bytes | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, str]:
    """This node's values of the fleet agreements (``only``: just these fields).

    Args:
        settings: The node's settings.
        catalog: The catalogue it loaded.
        secret: The token secret (None: not compared).
        receipt_key: The receipt key (None: not compared).
        only: The fields to compare (None: all that are known).
    """
    values = {
        "shards": str(settings.shards),
        "catalog": catalog_digest(catalog),
        "hold_seconds": str(settings.hold_seconds),
        "receipt_verifier": settings.receipt_verifier,
        "demo": "1" if settings.demo else "0",
    }
    if receipt_key is not None:
        values["receipt_key"] = check_value(receipt_key)
    if secret is not None:
        values["secret"] = check_value(secret.encode())
    wanted = set(values if only is None else only)
    return {k: v for k, v in values.items() if k in wanted}


def mismatches(stored: dict[str, str], own: dict[str, str]) -> list[str]:
    """One message per agreement where this node differs from the fleet record (sans-I/O).

    A field the record lacks (written by an older node, or by ``settle``) is not a
    mismatch: :func:`guard` adds it.
    """
    out = []
    for a in AGREEMENTS:
        fleet, mine = stored.get(a.field), own.get(a.field)
        if fleet is None or mine is None or fleet == mine:
            continue
        fix = a.fix.format(
            fleet=fleet,
            source=stored.get("catalog_source", "the file the first node used"),
            demo_fix="with --demo" if fleet == "1" else "without --demo (LIVESRV_DEMO=0)",
        )
        out.append(f"{a.setting} is {fleet} in the fleet record but {mine} on this node: {fix}")
    return out


def describe(stored: dict[str, str]) -> str:
    """Why a node refused: the lines of :func:`mismatches` under a heading."""
    who = stored.get("written_by", "the first node")
    return f"this node disagrees with the fleet on this store (record written by {who})"


async def guard(b: Backend, own: dict[str, str], *, catalog_source: str = "") -> None:
    """Record this node's values where the fleet has none yet, then compare. A node that
    disagrees writes nothing.

    Args:
        b: The store.
        own: This node's values (:func:`own_record`).
        catalog_source: Where this node's catalogue came from (shown in a later mismatch).

    Raises:
        FleetMismatch: A value differs from the recorded one; the message names each.
        Unavailable: The store cannot be reached.
    """
    meta = {
        "written_by": f"{socket.gethostname()} pid {os.getpid()}",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "catalog_source": catalog_source or "the built-in catalogue",
    }
    args = [len(own), *(x for kv in [*own.items(), *meta.items()] for x in kv)]
    flat = await b.run("fleet", [FLEET], args)
    stored = dict(zip(flat[::2], flat[1::2], strict=True))
    problems = mismatches(stored, own)
    if problems:
        raise FleetMismatch("\n  ".join([describe(stored) + ":", *problems]))


async def guard_node(b: Backend, secret: str, receipt_key: bytes) -> None:
    """:func:`guard` for a serving node: every agreement."""
    s = b.settings
    own = own_record(s, b.catalog, secret=secret, receipt_key=receipt_key)
    await guard(b, own, catalog_source=str(s.catalog) if s.catalog else "")


async def guard_settler(b: Backend) -> None:
    """:func:`guard` for a ``livesrv settle`` worker: what settlement depends on."""
    s = b.settings
    own = own_record(s, b.catalog, only=SETTLE_FIELDS)
    await guard(b, own, catalog_source=str(s.catalog) if s.catalog else "")


async def show(b: Backend) -> dict[str, str]:
    """The fleet record (empty when no node has started since the last reset)."""
    async with store_errors():
        return dict(await b.redis.hgetall(FLEET))


async def reset(b: Backend) -> bool:
    """Delete the fleet record. Returns whether there was one."""
    async with store_errors():
        return bool(await b.redis.delete(FLEET))


def render(record: dict[str, str]) -> str:
    """The record as ``livesrv fleet`` prints it, one ``field: value`` line each."""
    if not record:
        return "no fleet record: the next node to start writes one"
    known = [a.field for a in AGREEMENTS if a.field in record]
    rest = sorted(k for k in record if k not in BY_FIELD)
    return "\n".join(f"{k}: {record[k]}" for k in [*known, *rest])


def check_presence(settings: Settings) -> None:
    """The presence periods must leave room for a late refresh.

    Raises:
        ValueError: ``presence_ttl`` is not more than twice ``presence_refresh``.
    """
    if settings.presence_refresh <= 0 or settings.presence_ttl <= 2 * settings.presence_refresh:
        raise ValueError(
            f"LIVESRV_PRESENCE_TTL ({settings.presence_ttl:g}) must be more than twice "
            f"LIVESRV_PRESENCE_REFRESH ({settings.presence_refresh:g}), which must be positive"
        )
