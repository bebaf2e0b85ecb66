"""The one exception tree of livesrv.

Every error a client can see is a subclass of :class:`LivesrvError` carrying its protocol
error ``code``; :func:`livesrv.realtime.session` maps them to error replies in one place.

Tree::

    LivesrvError                      code "internal"
    ├── BadRequest                    "bad_request"
    ├── Unauthorized                  "unauthorized"   (closes with 4401 on hello)
    ├── Forbidden                     "forbidden"
    ├── NotFound                      "not_found"
    ├── NotLive                       "not_live"
    ├── InsufficientFunds             "insufficient_funds"
    ├── OutOfStock                    "out_of_stock"
    ├── LimitExceeded                 "limit_exceeded"
    ├── RateLimited                   "rate_limited"
    ├── IdempotencyConflict           "idempotency_conflict"
    ├── InvalidReceipt                "invalid_receipt" (buy_coins: the receipt proves no payment)
    ├── Banned                        "banned"         (moderation: banned from the room)
    ├── Muted                         "muted"          (moderation: muted in the room, until when)
    ├── SlowMode                      "slow_mode"      (moderation: one chat per N s, retry after)
    ├── BoxClosed                     "box_closed"     (box_claim after the box's countdown)
    ├── AgeRestricted                 "age_restricted" (a money op below the minimum age)
    └── Unavailable                   "unavailable"    (outcome unknown: retry with the same key)
        └── KeyExpired                (the key's lifetime ended mid-request: retry)
    StoreError                        (the store cannot be started or reached; not a reply)
"""

from __future__ import annotations


class LivesrvError(Exception):
    """Root of every error that becomes a protocol error reply."""

    code = "internal"
    default_message = "internal error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadRequest(LivesrvError):
    code = "bad_request"
    default_message = "bad request"


class Unauthorized(LivesrvError):
    code = "unauthorized"
    default_message = "send hello with a valid token first"


class Forbidden(LivesrvError):
    code = "forbidden"
    default_message = "not allowed"


class NotFound(LivesrvError):
    code = "not_found"
    default_message = "not found"


class NotLive(LivesrvError):
    code = "not_live"
    default_message = "the room is not live"


class InsufficientFunds(LivesrvError):
    code = "insufficient_funds"
    default_message = "not enough coins"


class OutOfStock(LivesrvError):
    code = "out_of_stock"
    default_message = "not enough stock"


class LimitExceeded(LivesrvError):
    code = "limit_exceeded"
    default_message = "limit exceeded"


class RateLimited(LivesrvError):
    code = "rate_limited"
    default_message = "too many requests, slow down"


class IdempotencyConflict(LivesrvError):
    code = "idempotency_conflict"
    default_message = "this key was already used with different arguments"


class InvalidReceipt(LivesrvError):
    code = "invalid_receipt"
    default_message = "the receipt is not a valid payment receipt"


# -- moderation --


class Banned(LivesrvError):
    code = "banned"
    default_message = "you are banned from this room"


class Muted(LivesrvError):
    """Chat refused while muted; the error reply also carries ``until`` (unix ms)."""

    code = "muted"
    default_message = "you are muted in this room"

    def __init__(self, message: str | None = None, until: int = 0) -> None:
        super().__init__(message)
        self.extra = {"until": until}


class SlowMode(LivesrvError):
    """Chat refused by slow mode; the error reply also carries ``retry_after_ms``."""

    code = "slow_mode"
    default_message = "slow mode: wait before chatting again"

    def __init__(self, message: str | None = None, retry_after_ms: int = 0) -> None:
        super().__init__(message)
        self.extra = {"retry_after_ms": retry_after_ms}


# -- end moderation --


class BoxClosed(LivesrvError):  # -- treasure box --
    code = "box_closed"
    default_message = "this treasure box is no longer open for claims"


class AgeRestricted(LivesrvError):  # -- age gates --
    code = "age_restricted"
    default_message = "you must be of the minimum age to spend money"


class Unavailable(LivesrvError):
    code = "unavailable"
    default_message = "the store is unavailable; retry with the same key"


class KeyExpired(Unavailable):
    """The key's lifetime ended between two steps of one request; the last step moved
    nothing. Services retry it themselves (a new key generation); a client that still
    sees it retries like any ``unavailable``."""

    default_message = "the idempotency key expired while in use; retry"


class StoreError(Exception):
    """The embedded store could not be started, or the configured one cannot be reached."""


BY_CODE: dict[str, type[LivesrvError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        NotLive,
        InsufficientFunds,
        OutOfStock,
        LimitExceeded,
        RateLimited,
        IdempotencyConflict,
        InvalidReceipt,
        Unavailable,
        Banned,  # -- moderation --
        Muted,
        SlowMode,
        BoxClosed,  # -- treasure box --
        AgeRestricted,  # -- age gates --
    )
}


class CloseCode:
    """WebSocket close codes of protocol v1."""

    TOO_BIG = 1009
    GOING_AWAY = 1001
    KEEPALIVE_TIMEOUT = 1011  # answered no ping for a whole LIVESRV_PING_INTERVAL
    ABUSE = 4400
    UNAUTHORIZED = 4401
    HELLO_TIMEOUT = 4408
    SLOW_CONSUMER = 4409
    RATE_LIMIT = 4429
    TOO_MANY_CONNECTIONS = 4430


ERROR_CODES = (*BY_CODE, LivesrvError.code)
