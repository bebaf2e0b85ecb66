"""Settlement's re-logging of room events: a paid spend whose event was never logged.

A gift, subscription or purchase is debited (with its outbox entry) and then its room event
is logged; a crash between the two leaves a debit nobody saw. When the settlement worker
reads such an entry it logs the event itself (each event once, by its id), and for a gifted
subscription it grants the recipient's period first (:func:`sub_gifts.finish_entry`), so
nothing paid for goes unseen.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from .services import rooms, sub_gifts
from .store.facade import Backend


def _pair(meta: Any) -> tuple[str, str]:
    """The room meta field an outbox entry's event sets when logged (``paid_chat``: the pin)."""
    return (str(meta[0]), str(meta[1])) if meta else ("", "")


def event_step(
    b: Backend, payload: dict[str, Any], fields: dict[str, str]
) -> Awaitable[Any] | None:
    """Log the room event of a paid spend if nobody did (a crash between the debit and
    the log); None when this process logged it itself, which is the common case.
    The streak or subscription end the debit computed is kept beside the payload, and
    past the key generation's expiry (``x``) the event is never logged (see rooms)."""
    ev = payload.get("ev")
    if not ev or not payload.get("evid") or payload["evid"] in b.logged:
        return None
    if fields.get("logged") == "1":  # logged in the debit's own atomic step (gift.lua)
        return None
    if fields["kind"] == "sub_gift":
        # -- gifted sub: grant the recipient's period, then log its event (each once) --
        return sub_gifts.finish_entry(b, payload)
    top_user = fields["user"] if ev["ev"] == "gift" else ""
    for name in ("combo", "until"):
        if name in fields:
            ev[name] = int(fields[name])
    return rooms.log_event(
        b,
        payload["room"],
        ev,
        evid=payload["evid"],
        top_user=top_user,
        top_coins=int(fields["coins"]) if top_user else 0,
        exp=int(payload.get("x", 0)),
        meta=_pair(payload.get("meta")),  # a paid pin with its event
    )
