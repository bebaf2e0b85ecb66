"""Settings as an operator meets them: each command reads only the settings it uses, every
value is checked against its range, and a bad one stops the command with exit status 2 and
one line naming the variable or flag, the value and what is allowed. Every setting has a
row in README's configuration table."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis

from livesrv.settings import RULES, Settings
from livesrv.store.embedded import EmbeddedStore
from livesrv.wire import tokens
from tests.client import Client
from tests.conftest import SECRET, ServeProcess, livesrv_cmd
from tests.timing import scaled

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}
    return subprocess.run(
        livesrv_cmd(*args),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env={**base, **(env or {})},
    )


def variable(name: str) -> str:
    return "LIVESRV_" + name.upper()


# -- documentation and the rule table ------------------------------------------------------


def test_every_setting_has_a_readme_row() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|")]
    missing = [
        variable(f.name)
        for f in fields(Settings)
        if not any(re.search(rf"`{variable(f.name)}(`|=)", row) for row in rows)
    ]
    assert missing == [], f"settings without a row in README's configuration table: {missing}"


def test_every_numeric_setting_has_a_range() -> None:
    numeric = [f.name for f in fields(Settings) if str(f.type) in ("int", "float")]
    assert [n for n in numeric if n not in RULES] == []
    assert set(RULES) <= {f.name for f in fields(Settings)}


# -- ranges -------------------------------------------------------------------------------

BAD = [
    ("port", "70000", "an integer 0-65535"),
    ("port", "-1", "an integer 0-65535"),
    ("http_port", "65536", "an integer 0-65535"),
    ("workers", "0", "an integer 1-1024"),
    ("shards", "0", "an integer 1-16384"),
    ("appendfsync", "sometimes", "always | everysec | no"),
    ("durability", "quorum", "auto | master | replicas | aof | replicas+aof"),
    ("durability_timeout_ms", "0", "an integer >= 1"),
    ("hello_timeout", "0", "a number > 0"),
    ("hello_timeout", "-2.5", "a number > 0"),
    ("presence_ttl", "nan", "a number > 0"),
    ("ops_per_second", "inf", "a number > 0"),
    ("http_keepalive_timeout", "0", "a number > 0"),
    ("settle_batch", "0", "an integer 1-100000"),
    ("settle_claim_ms", "0", "an integer >= 1"),
    ("hold_seconds", "-1", "an integer >= 0"),
    ("max_connections", "-5", "an integer >= 0"),
    ("redis_url", "http://10.0.0.1:6379", "redis://, rediss:// or unix:// URLs"),
    ("host", " ", "a non-empty address"),
]


@pytest.mark.parametrize(("name", "raw", "allowed"), BAD)
def test_a_variable_out_of_range_is_refused_with_its_name_value_and_range(
    name: str, raw: str, allowed: str
) -> None:
    with pytest.raises(ValueError) as exc:
        Settings.from_env({variable(name): raw})
    assert str(exc.value).startswith(f"{variable(name)}={raw} is not allowed")
    assert f"must be {allowed}" in str(exc.value)


def test_a_flag_out_of_range_is_named_as_the_flag() -> None:
    with pytest.raises(ValueError, match=r"^--http-port 70000 is not allowed: must be an "):
        Settings.from_env({}, http_port=70000)


def test_a_value_that_does_not_parse_names_the_range() -> None:
    with pytest.raises(ValueError) as exc:
        Settings.from_env({"LIVESRV_WORKERS": "two"})
    assert str(exc.value) == (
        "LIVESRV_WORKERS='two' is not a valid int (allowed: an integer 1-1024)"
    )


GOOD: list[tuple[str, str, Any]] = [
    ("port", "0", 0),
    ("port", "65535", 65535),
    ("workers", "1", 1),
    ("appendfsync", "no", "no"),
    ("durability", "replicas+aof", "replicas+aof"),
    ("durability_replicas", "0", 0),
    ("hold_seconds", "0", 0),
    ("presence_refresh", "0.5", 0.5),
    ("redis_url", "redis://a:1, rediss://b:2", "redis://a:1, rediss://b:2"),
    ("redis_url", "unix:///tmp/x.sock", "unix:///tmp/x.sock"),
]


@pytest.mark.parametrize(("name", "raw", "value"), GOOD)
def test_edge_values_are_accepted(name: str, raw: str, value: Any) -> None:
    assert getattr(Settings.from_env({variable(name): raw}), name) == value


def test_only_the_named_settings_are_read() -> None:
    env = {"LIVESRV_PORT": "abc", "LIVESRV_WORKERS": "0", "LIVESRV_SECRET": "s" * 40}
    s = Settings.from_env(env, only={"data_dir", "secret"})
    assert (s.secret, s.port, s.workers) == ("s" * 40, Settings().port, 1)
    with pytest.raises(ValueError, match="LIVESRV_PORT"):
        Settings.from_env(env)


# -- per command, over the CLI -------------------------------------------------------------


def test_token_ignores_a_bad_serve_setting_and_serve_refuses_it(tmp_path: Path) -> None:
    """The case from the field: a shell with LIVESRV_PORT=abc exported could not mint a token."""
    env = {"LIVESRV_PORT": "abc", "LIVESRV_HTTP_PORT": "-1", "LIVESRV_SECRET": SECRET}
    tok = run("token", "settings_alice", env=env)
    assert tok.returncode == 0, tok.stderr
    claims = jwt.decode(tok.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "settings_alice"

    d = tmp_path / "d"
    serve = run("serve", "--data-dir", str(d), env=env)
    assert (serve.returncode, serve.stdout) == (2, "")
    assert serve.stderr == (
        "livesrv: LIVESRV_PORT='abc' is not a valid int (allowed: an integer 0-65535)\n"
    )
    assert not d.exists()
    flag = run("serve", "--data-dir", str(d), "--port", "70000", env={"LIVESRV_SECRET": SECRET})
    assert (flag.returncode, flag.stdout) == (2, "")
    assert flag.stderr == ("livesrv: --port 70000 is not allowed: must be an integer 0-65535\n")
    assert not d.exists()


def test_store_commands_check_the_store_settings_and_ignore_the_network_ones(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (("audit",), ("settle", "--once"), ("fleet",)):
        # a bad serve-only setting is not read: the command gets as far as the data dir
        r = run(*command, "--data-dir", str(empty), env={"LIVESRV_WORKERS": "0"})
        assert r.returncode == 2 and "has no store" in r.stderr, r.stderr
        assert "WORKERS" not in r.stderr
        # a bad store or settlement setting stops it first, named
        for name, raw, allowed in (
            ("appendfsync", "sometimes", "always | everysec | no"),
            ("settle_batch", "0", "an integer 1-100000"),
            ("shards", "0", "an integer 1-16384"),
        ):
            r = run(*command, "--data-dir", str(empty), env={variable(name): raw})
            assert (r.returncode, r.stdout) == (2, ""), r.stderr
            assert r.stderr == (
                f"livesrv: {variable(name)}={raw} is not allowed: must be {allowed}\n"
            )


async def test_serve_accepts_appendfsync_no_by_flag_as_by_variable(
    serve_process: Any, tmp_path: Path
) -> None:
    for i, (extra, env) in enumerate(
        [(("--appendfsync", "no"), {}), ((), {"LIVESRV_APPENDFSYNC": "no"})]
    ):
        d = tmp_path / f"d{i}"
        p: ServeProcess = serve_process("--hold-seconds", "0", *extra, data_dir=d, env=env)
        store = redis.Redis(unix_socket_path=str(EmbeddedStore(d).socket), decode_responses=True)
        try:
            assert store.config_get("appendfsync") == {"appendfsync": "no"}
        finally:
            store.close()
        c = await Client.open(p.ws_url)
        await c.ok("hello", token=tokens.issue(SECRET, f"fsync_no_{i}", "viewer", 3600))
        assert (await c.ok("wallet"))["coins"] == 0
        await c.close()
