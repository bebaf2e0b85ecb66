"""The op table's shape: what an op handler gets (the calling session, as a Protocol) and
the registry the session dispatches on. The handlers themselves: ``ops.py`` (the economy
and rooms), ``ops_live.py`` (moderation, paid pins, boxes, match, goals), ``ops_series.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from ..errors import Forbidden
from ..services import moderation
from ..services.receipts import ReceiptVerifier
from ..services.rooms import RoomInfo
from ..settings import Settings
from ..store.facade import Backend
from ..wire.tokens import Identity
from .feed import Listener
from .hub import Hub


class Caller(Listener, Protocol):
    """What an op needs of the session that received it (``session.py``): a listener the
    hub can send to, and who it is."""

    b: Backend
    in_rooms: set[str]

    @property
    def node(self) -> CallerNode: ...

    @property
    def identity(self) -> Identity: ...

    def send(self, message: Any) -> None: ...

    def joined(self, room: str) -> RoomInfo: ...

    def member_of(self, room: str) -> RoomInfo | None: ...

    async def room(self, room: str) -> RoomInfo: ...


class CallerNode(Protocol):
    """What an op needs of the node: settings, the hub, the receipt verifier."""

    settings: Settings
    hub: Hub
    receipts: ReceiptVerifier


class Then(NamedTuple):
    """An op result with work to do right after its reply is written (join's replay)."""

    result: dict[str, Any]
    after: Callable[[], None]


Handler = Callable[[Caller, dict[str, Any]], Awaitable["dict[str, Any] | Then"]]
OPS: dict[str, Handler] = {}


def op(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        OPS[name] = fn
        return fn

    return register


async def joined(s: Caller, room: str) -> RoomInfo:
    """``s.joined(room)``; a user banned from the room (so removed from it) is told so.

    Raises:
        Banned: Banned from the room. Forbidden: Not in it.
    """
    try:
        return s.joined(room)
    except Forbidden:
        await moderation.require_not_banned(s.b, room, s.user)
        raise
