"""Sans-I/O tests of the session tokens (:mod:`livesrv.wire.tokens`): issue, verify,
the roles, and the secret kept in the data directory.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest

from livesrv.errors import BadRequest, Unauthorized
from livesrv.wire import tokens

SECRET = "unit-secret-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("role", ["viewer", "creator", "admin"])
def test_token_round_trip(role: str) -> None:
    token = tokens.issue(SECRET, "user_1.x-y", role, ttl=60)
    who = tokens.verify(SECRET, token)
    assert who == tokens.Identity("user_1.x-y", role)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "user_1.x-y" and claims["role"] == role
    assert int(time.time()) + 55 <= claims["exp"] <= int(time.time()) + 61
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_identity_roles() -> None:
    assert not tokens.Identity("a", "viewer").is_creator
    assert tokens.Identity("a", "creator").is_creator
    assert not tokens.Identity("a", "creator").is_admin
    assert tokens.Identity("a", "admin").is_creator and tokens.Identity("a", "admin").is_admin


@pytest.mark.parametrize(
    ("user", "role", "ttl"),
    [
        ("", "viewer", 60),
        ("bad user", "viewer", 60),
        ("u" * 65, "viewer", 60),
        ("u", "owner", 60),
        ("u", "", 60),
        ("u", "viewer", 0),
        ("u", "viewer", -5),
        ("u", "viewer", 1.5),
        ("u", "viewer", True),
        ("u", "viewer", 367 * 86400),
    ],
)
def test_issue_refuses(user: str, role: str, ttl: Any) -> None:
    with pytest.raises(BadRequest):
        tokens.issue(SECRET, user, role, ttl)


def _sign(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short key for HS512 is the point of one case
        return jwt.encode(claims, secret, algorithm=alg)


def test_verify_expired() -> None:
    token = _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) - 10})
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(SECRET, token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        None,
        42,
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60}, "other-secret" * 3),
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60}, alg="HS512"),
        _sign({"sub": "u", "role": "owner", "exp": int(time.time()) + 60}),
        _sign({"sub": "bad user", "role": "viewer", "exp": int(time.time()) + 60}),
        _sign({"sub": 5, "role": "viewer", "exp": int(time.time()) + 60}),
        _sign({"role": "viewer", "exp": int(time.time()) + 60}),
        _sign({"sub": "u", "exp": int(time.time()) + 60}),
        _sign({"sub": "u", "role": "viewer"}),
        jwt.encode({"sub": "u", "role": "admin", "exp": int(time.time()) + 60}, "", "none"),
    ],
    ids=lambda t: str(t)[:12],
)
def test_verify_refuses(token: Any) -> None:
    with pytest.raises(Unauthorized):
        tokens.verify(SECRET, token)


def _tampered() -> str:
    """A token of ours whose payload was changed after signing (same header)."""
    head, _, sig = tokens.issue(SECRET, "u", "viewer", ttl=60).split(".")
    other = tokens.issue(SECRET, "u", "admin", ttl=60).split(".")[1]
    return f"{head}.{other}.{sig}"


@pytest.mark.parametrize(
    "token",
    [
        tokens.issue(SECRET, "u", "viewer", ttl=60),
        tokens.issue(SECRET, "u", "creator", ttl=60, birth_year=2001, region="kr"),
        _sign({"sub": "u", "role": "viewer", "exp": time.time() + 60}),  # a float exp
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60, "iat": 1}),
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60, "aud": "x"}),
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60, "nbf": 4e9}),
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60, "iat": "x"}),
        _sign({"sub": "u", "role": "viewer", "exp": str(int(time.time()) + 60)}),
        _sign({"sub": "u", "role": "viewer", "exp": True}),
        _tampered(),
        tokens.issue(SECRET, "u", "viewer", ttl=60) + "A",
        tokens.issue(SECRET, "u", "viewer", ttl=60).replace(".", "..", 1),
        "é.é.é",
    ],
    ids=lambda t: str(t)[-12:],
)
def test_verify_agrees_with_pyjwt(token: str) -> None:
    """verify's own check of plain tokens (the hot path of every hello) accepts exactly
    what PyJWT accepts, and refuses the rest."""
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.InvalidTokenError:
        with pytest.raises(Unauthorized):
            tokens.verify(SECRET, token)
        return
    who = tokens.verify(SECRET, token)
    assert (who.user, who.role, who.birth_year) == (claims["sub"], claims["role"], claims.get("by"))


def test_resolve_secret(tmp_path: Path) -> None:
    assert tokens.resolve_secret("given", tmp_path) == "given"
    made = tokens.resolve_secret(None, tmp_path / "d")
    assert len(made) >= 32
    assert tokens.resolve_secret(None, tmp_path / "d") == made  # kept in the data dir
    assert (tmp_path / "d" / "secret").stat().st_mode & 0o077 == 0
