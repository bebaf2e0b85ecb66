"""Payment receipts: proof that a coin package was paid for (sans-I/O).

``buy_coins {package, receipt}`` credits coins only for a receipt that a
:class:`ReceiptVerifier` accepts. The verifier returns the receipt's *id*: the identity of
the payment, and the idempotency identity of the purchase. A payment backend may sign the
same id again at another time; both receipts name one payment and credit once.

Verifiers (setting ``receipt_verifier``, ``LIVESRV_RECEIPT_VERIFIER``):

- ``hmac`` (the default): the payment backend signs each receipt with HMAC-SHA256 under the
  receipt key (setting ``receipt_key``; by default derived from the server secret, see
  :func:`derive_key`). Format (docs/protocol.md, "Receipts")::

      v1.<id>.<issued unix seconds>.<base64url HMAC-SHA256, no padding>

  signed over ``livesrv-receipt-v1``, user, package, id and issued time, one per line.
- ``any``: accepts any receipt string and uses the whole string as the id (the default
  with ``--demo``, for the demo page and local play; never in production).

Store verifiers (App Store, Google Play, Stripe, ...) plug in at :data:`VERIFIERS`: add a
factory there that takes the :class:`VerifierConfig` and returns an object with a
``verify(user, package, receipt, now=None) -> receipt_id`` method that raises
:class:`~livesrv.errors.InvalidReceipt` for anything it cannot prove paid. The returned
id must be the store's own stable transaction id (App Store ``transactionId``, Google Play
``orderId``, Stripe PaymentIntent id), at most 64 of ``[A-Za-z0-9_.-]`` so it can key the
claim. Verifiers are called on the request path and must not block: one that needs a
network call belongs in the payment backend, which then issues an ``hmac`` receipt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import BadRequest, InvalidReceipt

VERSION = "v1"
RECEIPT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # user ids and package ids
ISSUED = re.compile(r"^(0|[1-9][0-9]{0,11})$")
SIG = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, base64url without padding
MAX_FUTURE_S = 300
"""A receipt issued more than this many seconds in the future is refused (clock skew)."""
MAX_LENGTH = len(VERSION) + 1 + 64 + 1 + 12 + 1 + 43
"""The longest well-formed ``hmac`` receipt (124 characters); the wire field allows 200."""
KEY_LABEL = b"livesrv receipt key v1"
_DOMAIN = "livesrv-receipt-v1"


class ReceiptVerifier(Protocol):
    """Turns a receipt presented by ``user`` for ``package`` into its payment id."""

    name: str

    def verify(self, user: str, package: str, receipt: str, now: float | None = None) -> str:
        """Check ``receipt`` and return its receipt id.

        Args:
            user: The buyer (the session's user).
            package: The coin package bought.
            receipt: The receipt string as the client sent it.
            now: Unix time in seconds (the clock when None).

        Returns:
            The receipt id: the payment's identity; one id credits once.

        Raises:
            InvalidReceipt: The receipt does not prove this payment.
        """
        ...


@dataclass(frozen=True)
class VerifierConfig:
    """What a verifier factory gets: the resolved receipt key and the settings' name."""

    name: str
    key: bytes


def derive_key(secret: str) -> bytes:
    """The default receipt key: HMAC-SHA256(server secret, "livesrv receipt key v1").

    Derived rather than the token secret itself, so a leaked receipt key signs no tokens.
    """
    return hmac.new(secret.encode(), KEY_LABEL, hashlib.sha256).digest()


def resolve_key(receipt_key: str | None, secret: str) -> bytes:
    """The receipt key: the configured one (its UTF-8 bytes), else derived from ``secret``."""
    return receipt_key.encode() if receipt_key else derive_key(secret)


def _message(user: str, package: str, receipt_id: str, issued: int) -> bytes:
    return f"{_DOMAIN}\n{user}\n{package}\n{receipt_id}\n{issued}".encode()


def signature(key: bytes, user: str, package: str, receipt_id: str, issued: int) -> str:
    """The base64url (unpadded) HMAC-SHA256 of one receipt's fields under ``key``."""
    mac = hmac.new(key, _message(user, package, receipt_id, issued), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign(key: bytes, user: str, package: str, receipt_id: str, issued: int | None = None) -> str:
    """Make an ``hmac`` receipt: what a payment backend sends the client after a payment.

    Args:
        key: The receipt key (:func:`resolve_key`).
        user: The buyer's user id.
        package: The coin package id.
        receipt_id: The payment's id, 1-64 of ``[A-Za-z0-9_.-]``.
        issued: Unix seconds (now when None).

    Returns:
        ``v1.<id>.<issued>.<signature>``.

    Raises:
        BadRequest: A field is not well formed.
    """
    if not NAME.fullmatch(user):
        raise BadRequest("user must be 1-64 of [A-Za-z0-9_.-]")
    if not NAME.fullmatch(package):
        raise BadRequest("package must be 1-64 of [A-Za-z0-9_.-]")
    if not RECEIPT_ID.fullmatch(receipt_id):
        raise BadRequest("receipt id must be 1-64 of [A-Za-z0-9_.-]")
    issued = int(time.time()) if issued is None else issued
    if not ISSUED.fullmatch(str(issued)):
        raise BadRequest("issued must be unix seconds, 0 to 999999999999")
    sig = signature(key, user, package, receipt_id, issued)
    return f"{VERSION}.{receipt_id}.{issued}.{sig}"


@dataclass(frozen=True)
class Parsed:
    receipt_id: str
    issued: int
    sig: str


def parse(receipt: str) -> Parsed:
    """Split an ``hmac`` receipt into its parts (the id may itself hold dots).

    Raises:
        InvalidReceipt: Not of the form ``v1.<id>.<issued>.<signature>``.
    """
    head, dot, rest = receipt.partition(".")
    parts = rest.rsplit(".", 2)
    if head != VERSION or not dot or len(parts) != 3:
        raise InvalidReceipt("a receipt looks like v1.<id>.<issued>.<signature>")
    receipt_id, issued, sig = parts
    if not (RECEIPT_ID.fullmatch(receipt_id) and ISSUED.fullmatch(issued) and SIG.fullmatch(sig)):
        raise InvalidReceipt("a receipt looks like v1.<id>.<issued>.<signature>")
    return Parsed(receipt_id, int(issued), sig)


class HmacVerifier:
    """Receipts signed by the payment backend with the shared receipt key."""

    name = "hmac"

    def __init__(self, key: bytes) -> None:
        self._key = key

    def verify(self, user: str, package: str, receipt: str, now: float | None = None) -> str:
        p = parse(receipt)
        expected = signature(self._key, user, package, p.receipt_id, p.issued)
        if not hmac.compare_digest(expected.encode(), p.sig.encode()):
            raise InvalidReceipt("the receipt is not signed for this user and package")
        now = time.time() if now is None else now
        if p.issued > now + MAX_FUTURE_S:
            raise InvalidReceipt("the receipt is issued in the future")
        return p.receipt_id


class AnyVerifier:
    """Accepts every receipt; the whole string is the id (demo and local play only)."""

    name = "any"

    def verify(self, user: str, package: str, receipt: str, now: float | None = None) -> str:
        if not receipt:
            raise InvalidReceipt("the receipt is empty")
        return receipt


VerifierFactory = Callable[[VerifierConfig], ReceiptVerifier]

VERIFIERS: dict[str, VerifierFactory] = {
    "hmac": lambda config: HmacVerifier(config.key),
    "any": lambda config: AnyVerifier(),
    # Store verifiers plug in here, e.g. "appstore": AppStoreVerifier.from_config, taking
    # what they need (bundle id, root certificates) from settings added for them.
}
"""Receipt verifiers by the name ``LIVESRV_RECEIPT_VERIFIER`` selects."""


def check_name(name: str) -> VerifierFactory:
    """The factory of the verifier called ``name``.

    Raises:
        ValueError: No verifier has that name.
    """
    factory = VERIFIERS.get(name)
    if factory is None:
        names = ", ".join(sorted(VERIFIERS))
        raise ValueError(f"LIVESRV_RECEIPT_VERIFIER={name!r} is not one of {names}")
    return factory


def make_verifier(name: str, receipt_key: str | None, secret: str) -> ReceiptVerifier:
    """Build the configured verifier.

    Args:
        name: The ``receipt_verifier`` setting.
        receipt_key: The ``receipt_key`` setting (None: derived from the secret).
        secret: The server's token secret.

    Raises:
        ValueError: No verifier has that name.
    """
    return check_name(name)(VerifierConfig(name, resolve_key(receipt_key, secret)))
