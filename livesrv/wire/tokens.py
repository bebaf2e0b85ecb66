"""Session tokens: HS256 JWTs with claims ``sub``, ``role`` and ``exp``, and optionally ``by``
(the user's birth year) and ``rg`` (their region, ISO 3166-1 alpha-2) for the age gates
(livesrv/services/age.py; docs/protocol.md)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson
from jwt.utils import base64url_decode

from ..errors import BadRequest, Unauthorized

ROLES = ("viewer", "creator", "admin")
USER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # always fullmatch: "$" also matches before "\n"
DEFAULT_TTL = 24 * 3600
REGION = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2, upper case
MIN_BIRTH_YEAR = 1900


@dataclass(frozen=True)
class Identity:
    user: str
    role: str
    birth_year: int | None = None  # claim ``by``; None: the token does not say
    region: str | None = None  # claim ``rg``

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_creator(self) -> bool:
        return self.role in ("creator", "admin")


def issue(
    secret: str,
    user: str,
    role: str,
    ttl: int = DEFAULT_TTL,
    birth_year: int | None = None,
    region: str | None = None,
) -> str:
    """Sign a token for ``user`` with ``role`` valid for ``ttl`` seconds, carrying the user's
    ``birth_year`` (claim ``by``) and ``region`` (claim ``rg``) when given.

    Raises:
        BadRequest: The user id, role, ttl, birth year or region is not valid.
    """
    if not isinstance(user, str) or not USER_ID.fullmatch(user):
        raise BadRequest("user must be 1-64 of [A-Za-z0-9_.-]")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 366 * 86400:
        raise BadRequest("ttl must be an integer number of seconds, 1 to 31622400")
    now = int(time.time())
    claims: dict[str, object] = {"sub": user, "role": role, "exp": now + ttl}
    if birth_year is not None:
        this_year = time.gmtime(now).tm_year
        if not _is_int(birth_year) or not MIN_BIRTH_YEAR <= birth_year <= this_year:
            raise BadRequest(f"birth_year must be an integer {MIN_BIRTH_YEAR}-{this_year}")
        claims["by"] = birth_year
    if region is not None:
        if not isinstance(region, str) or not REGION.fullmatch(region.upper()):
            raise BadRequest("region must be a two-letter ISO 3166-1 code, e.g. KR")
        claims["rg"] = region.upper()
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: str, token: object) -> Identity:
    """Check a token and return who it names.

    Raises:
        Unauthorized: The token is missing, malformed, badly signed or expired.
    """
    if not isinstance(token, str) or not token:
        raise Unauthorized("token must be a string")
    claims = _plain_claims(secret, token)
    if claims is None:  # anything but a plain valid token of ours: PyJWT decides
        try:
            claims = jwt.decode(
                token, secret, algorithms=["HS256"], options={"require": ["sub", "role", "exp"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("invalid token") from exc
    user, role = claims.get("sub"), claims.get("role")
    if not isinstance(user, str) or not USER_ID.fullmatch(user) or role not in ROLES:
        raise Unauthorized("invalid token claims")
    by, rg = claims.get("by"), claims.get("rg")
    if by is not None and (not _is_int(by) or not MIN_BIRTH_YEAR <= by <= 9999):
        raise Unauthorized("invalid token claims")
    if rg is not None and (not isinstance(rg, str) or not REGION.fullmatch(rg)):
        raise Unauthorized("invalid token claims")
    return Identity(user, role, by, rg)


_HEADER = jwt.encode({}, "-" * 32, algorithm="HS256").partition(".")[0].encode()  # issue()'s
_PLAIN = frozenset(("sub", "role", "exp", "by", "rg"))
_MACS: dict[str, Any] = {}  # secret -> its HMAC-SHA256 with the key prepared once


def _plain_claims(secret: str, token: str) -> dict[str, Any] | None:
    """The claims of a token exactly as :func:`issue` makes them (its header, HS256, only
    our claims, an integer ``exp`` still ahead) when its signature checks out; else None,
    and :func:`jwt.decode` decides (and says why it refuses). This is the hot path of every
    ``hello``: PyJWT prepares the key and checks every registered claim on each call.

    Only tokens PyJWT would accept with the same claims are accepted here.
    """
    raw = token.encode("ascii", "replace")
    if raw.count(b".") != 2:
        return None
    header, payload, signature = raw.split(b".")
    if header != _HEADER:
        return None
    mac = _MACS.get(secret)
    if mac is None:
        if len(_MACS) > 8:
            _MACS.clear()
        mac = _MACS[secret] = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    mac = mac.copy()
    mac.update(raw[: len(header) + 1 + len(payload)])
    try:
        if not hmac.compare_digest(mac.digest(), base64url_decode(signature)):
            return None
        claims = orjson.loads(base64url_decode(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(claims, dict) or not claims.keys() <= _PLAIN:
        return None
    exp = claims.get("exp")
    if "sub" not in claims or "role" not in claims or type(exp) is not int:
        return None
    return claims if exp > time.time() else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_secret(given: str | None, data_dir: Path) -> str:
    """The signing secret: the given one, else the one kept in the data dir (made once)."""
    if given:
        return given
    path = data_dir / "secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    try:
        with path.open("x") as fh:  # first writer wins when two processes race
            fh.write(secret)
        path.chmod(0o600)
    except FileExistsError:
        return path.read_text().strip()
    return secret
