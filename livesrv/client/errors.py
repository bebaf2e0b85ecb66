"""The client's exception tree: one class per protocol error code (docs/protocol.md).

Tree::

    ClientError
    ├── ProtocolError                 an error reply; ``.code`` and ``.message``
    │   ├── BadRequest                "bad_request"
    │   ├── Unauthorized              "unauthorized"
    │   ├── Forbidden                 "forbidden"
    │   ├── NotFound                  "not_found"
    │   ├── NotLive                   "not_live"
    │   ├── InsufficientFunds         "insufficient_funds"
    │   ├── OutOfStock                "out_of_stock"
    │   ├── LimitExceeded             "limit_exceeded"
    │   ├── RateLimited               "rate_limited"
    │   ├── IdempotencyConflict       "idempotency_conflict"
    │   ├── InvalidReceipt            "invalid_receipt"
    │   ├── Unavailable               "unavailable" (outcome unknown: retry with the same key)
    │   ├── Internal                  "internal"
    │   ├── Banned                    "banned" (moderation)
    │   ├── Muted                     "muted" (moderation; the error carries ``until``)
    │   ├── SlowMode                  "slow_mode" (moderation; ``retry_after_ms``)
    │   ├── BoxClosed                 "box_closed" (treasure box)
    │   ├── AgeRestricted             "age_restricted" (a money op below the minimum age)
    │   └── UnknownError              any code this client does not know
    ├── ConnectionLost                (also a ConnectionError) the reply can no longer come
    └── CallTimeout                   (also a TimeoutError) no reply within the call's timeout

The classes mirror the server's own tree (``livesrv.errors``) but do not import it: the
client depends on the wire contract, not on the server.
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Root of every error this client raises."""


class ProtocolError(ClientError):
    """An error reply from the server.

    Attributes:
        code: The protocol error code.
        message: The server's text, for people.
        reply: The whole reply map.
    """

    code = "internal"

    def __init__(self, message: str = "", reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reply = reply or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def details(self) -> dict[str, Any]:
        """The reply's whole ``error`` map (some codes add fields: ``until``, ...)."""
        error = self.reply.get("error")
        return error if isinstance(error, dict) else {}


class BadRequest(ProtocolError):
    code = "bad_request"


class Unauthorized(ProtocolError):
    code = "unauthorized"


class Forbidden(ProtocolError):
    code = "forbidden"


class NotFound(ProtocolError):
    code = "not_found"


class NotLive(ProtocolError):
    code = "not_live"


class InsufficientFunds(ProtocolError):
    code = "insufficient_funds"


class OutOfStock(ProtocolError):
    code = "out_of_stock"


class LimitExceeded(ProtocolError):
    code = "limit_exceeded"


class RateLimited(ProtocolError):
    code = "rate_limited"


class IdempotencyConflict(ProtocolError):
    code = "idempotency_conflict"


class InvalidReceipt(ProtocolError):
    code = "invalid_receipt"


class Unavailable(ProtocolError):
    code = "unavailable"


class Internal(ProtocolError):
    code = "internal"


class UnknownError(ProtocolError):
    """An error code this client does not know (a newer server); ``.code`` is the code sent."""

    def __init__(self, code: str, message: str = "", reply: dict[str, Any] | None = None) -> None:
        super().__init__(message, reply)
        self.code = code


class ConnectionLost(ClientError, ConnectionError):
    """The connection closed before the reply came (and the call is not retried).

    Attributes:
        close_code: The WebSocket close code, when one is known.
    """

    def __init__(self, message: str = "connection lost", close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class CallTimeout(ClientError, TimeoutError):
    """No reply within the call's timeout (a keyed op may still be retried with its key)."""


# -- moderation --


class Banned(ProtocolError):
    code = "banned"


class Muted(ProtocolError):
    """Muted in the room; the reply's error carries ``until`` (unix ms)."""

    code = "muted"


class SlowMode(ProtocolError):
    """Slow mode; the reply's error carries ``retry_after_ms``."""

    code = "slow_mode"


# -- end moderation --


class BoxClosed(ProtocolError):  # -- treasure box --
    """``box_claim`` after the box's countdown ended."""

    code = "box_closed"


class AgeRestricted(ProtocolError):  # -- age gates --
    """A money op refused: the token's birth year is below the minimum age (or missing
    where the server requires one)."""

    code = "age_restricted"


BY_CODE: dict[str, type[ProtocolError]] = {
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
        Internal,
        Banned,  # -- moderation --
        Muted,
        SlowMode,
        BoxClosed,  # -- treasure box --
        AgeRestricted,  # -- age gates --
    )
}


def error_for(reply: dict[str, Any]) -> ProtocolError:
    """The exception for a failure reply ``{"ok": false, "error": {code, message}}``."""
    error = reply.get("error")
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code", "internal"))
    message = str(error.get("message", ""))
    cls = BY_CODE.get(code)
    if cls is None:
        return UnknownError(code, message, reply)
    return cls(message, reply)
