"""The ``livesrv`` command as an operator runs it: real processes, a real embedded store.

serve prints its two URLs first; token resolves the secret like serve does; audit exits
0 when the ledger holds and non-zero when it does not, with or without a serve running;
settle --once settles what is due; SIGTERM closes clients with 1001 and exits 0; a second
serve on the same data dir refuses; files a crash left behind are recovered.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import redis

from livesrv.services import receipts
from livesrv.settings import Settings
from livesrv.store.embedded import EmbeddedStore
from livesrv.store.keys import UserKeys
from livesrv.wire import tokens
from tests.client import Client
from tests.conftest import SECRET, ServeProcess, livesrv_cmd
from tests.timing import scaled

Serve = Callable[..., ServeProcess]
ADMIN = tokens.issue(SECRET, "ops", "admin", 3600)
FAST = ("--hold-seconds", "0")
ENV_SECRET = "secret-from-the-environment-0123456789abcdef"
FLAG_SECRET = "secret-from-the-command-line-0123456789abcdef"


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a livesrv command to completion (with no secret in the environment unless given)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIVESRV_")}
    return subprocess.run(
        livesrv_cmd(*args),
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        env={**base, "PYTHONPATH": str(Path(__file__).parent.parent), **(env or {})},
        cwd=cwd,
    )


async def arun(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, *args, **kw)


async def api(p: ServeProcess, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, p.http_url + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}
        ) as resp,
    ):
        assert resp.status < 300, (resp.status, await resp.text())
        return await resp.json()


async def hello(
    p: ServeProcess, user: str, role: str = "viewer", token: str | None = None
) -> Client:
    c = await Client.open(p.ws_url)
    await c.ok("hello", token=token or tokens.issue(SECRET, user, role, 3600))
    return c


async def some_gifts(p: ServeProcess, n: int = 5) -> tuple[Client, Client]:
    """A creator's room with a viewer who sent ``n`` keyed roses of count 3."""
    creator = await hello(p, "cr", "creator")
    await creator.ok("room_open", room="r", title="cli")
    await api(p, "POST", "/api/users/fan/grant", {"coins": 1000, "key": "g1"})
    fan = await hello(p, "fan")
    await fan.ok("join", room="r")
    for i in range(n):
        await fan.ok("gift", room="r", gift="rose", count=3, key=f"k{i}")
    return creator, fan


def audit_args(data_dir: Path, *more: str) -> tuple[str, ...]:
    return ("audit", "--data-dir", str(data_dir), *more)


# -- serve -----------------------------------------------------------------------------


async def test_serve_prints_two_urls_and_sigterm_closes_with_1001(
    serve_process: Serve, tmp_path: Path
) -> None:
    p = serve_process(*FAST, data_dir=tmp_path / "d")
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/ws", p.ws_url), p.ws_url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", p.http_url), p.http_url
    assert p.ws_url.split(":")[2].split("/")[0] != "0"
    async with aiohttp.ClientSession() as http, http.get(p.http_url + "/healthz") as resp:
        assert resp.status == 200
    clients = [await hello(p, f"u{i}") for i in range(3)]
    store_pid = int((tmp_path / "d" / "store" / "store.pid").read_text())

    p.signal(signal.SIGTERM)
    for c in clients:
        assert await c.closed() == 1001
        await c.close()
    assert await asyncio.to_thread(p.wait) == 0
    assert p.proc.stdout is not None
    assert p.proc.stdout.read() == ""  # nothing but the two URL lines
    # the embedded store was stopped with it
    deadline = time.monotonic() + scaled(10)
    while _running(store_pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not _running(store_pid)
    assert not (tmp_path / "d" / "store" / "store.pid").exists()


async def test_serve_keeps_balances_across_restarts(serve_process: Serve, tmp_path: Path) -> None:
    d = tmp_path / "d"
    p = serve_process(*FAST, data_dir=d)
    creator, fan = await some_gifts(p, 4)
    await creator.close()
    await fan.close()
    p.signal(signal.SIGTERM)
    assert await asyncio.to_thread(p.wait) == 0
    p2 = serve_process(*FAST, data_dir=d)
    assert (await api(p2, "GET", "/api/users/fan/wallet"))["coins"] == 1000 - 12
    # what was not settled before the stop is settled after the restart
    async with asyncio.timeout(scaled(15)):
        while (await api(p2, "GET", "/api/users/cr/wallet"))["diamonds"] != 6:
            await asyncio.sleep(0.1)


async def test_second_serve_on_the_same_data_dir_refuses(
    serve_process: Serve, tmp_path: Path
) -> None:
    d = tmp_path / "d"
    p = serve_process(*FAST, data_dir=d)
    second = await arun("serve", "--data-dir", str(d), "--port", "0", "--http-port", "0")
    assert second.returncode == 2
    assert second.stdout == ""
    assert "another serve is running" in second.stderr
    # the first one is unharmed
    c = await hello(p, "still")
    assert (await c.ok("wallet"))["coins"] == 0
    await c.close()


async def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = await arun(
            "serve", "--data-dir", str(tmp_path / "d"), "--port", str(port), "--http-port", "0"
        )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in r.stderr
    assert "--port" in r.stderr


async def test_stale_pid_and_socket_files_are_recovered(
    serve_process: Serve, tmp_path: Path
) -> None:
    """What a killed serve and store leave behind: a pid file naming a dead process and a
    socket file nobody listens on."""
    d = tmp_path / "d"
    store = EmbeddedStore(d)
    store.dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.pidfile.write_text(f"{dead.pid}\n")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(store.socket))
    stale.close()
    assert store.socket.exists()

    p = serve_process(*FAST, data_dir=d)
    c = await hello(p, "u")
    assert (await c.ok("wallet"))["coins"] == 0
    await c.close()
    assert int(store.pidfile.read_text()) != dead.pid


async def test_a_pid_file_naming_another_process_leaves_it_alone(
    serve_process: Serve, tmp_path: Path
) -> None:
    """After a reboot, the stale pid may belong to an unrelated process: it must live on."""
    d = tmp_path / "d"
    store = EmbeddedStore(d)
    store.dir.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        store.pidfile.write_text(f"{bystander.pid}\n")
        p = serve_process(*FAST, data_dir=d)
        c = await hello(p, "u")
        await c.ok("wallet")
        await c.close()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


async def test_a_store_left_running_is_adopted(serve_process: Serve, tmp_path: Path) -> None:
    """A store whose serve died without taking it down is adopted, data and all, and
    stopped when the adopting serve stops."""
    d = tmp_path / "d"
    left = EmbeddedStore(d)
    await asyncio.to_thread(left.start)
    try:
        assert left.process is not None
        pid = left.process.pid
        client = redis.Redis(unix_socket_path=str(left.socket))
        client.set("left-behind", "yes")
        client.close()
        p = serve_process(*FAST, data_dir=d)
        assert int(left.pidfile.read_text()) == pid
        c = await hello(p, "u")
        await c.ok("wallet")
        await c.close()
        client = redis.Redis(unix_socket_path=str(left.socket))
        assert client.get("left-behind") == b"yes"
        client.close()
        p.signal(signal.SIGTERM)
        assert await asyncio.to_thread(p.wait) == 0
        assert await asyncio.to_thread(left.process.wait, scaled(10)) == 0
    finally:
        await asyncio.to_thread(left.stop)


# -- token -------------------------------------------------------------------------------


def _claims(token: str, secret: str) -> dict[str, Any]:
    return jwt.decode(token.strip(), secret, algorithms=["HS256"])  # type: ignore[no-any-return]


async def test_token_secret_resolution(serve_process: Serve, tmp_path: Path) -> None:
    d = tmp_path / "d"
    # before any serve made the secret, token refuses rather than make one of its own
    early = await arun("token", "alice", "--data-dir", str(d))
    assert (early.returncode, early.stdout) == (2, "")
    assert f"{d} does not exist" in early.stderr and not d.exists()

    # serve makes the secret; token signs with it, and serve accepts what token signed
    p = serve_process(*FAST, data_dir=d, env={"LIVESRV_SECRET": ""})
    kept = (d / "secret").read_text().strip()
    assert len(kept) >= 32
    assert (d / "secret").stat().st_mode & 0o777 == 0o600
    r = await arun("token", "alice", "--role", "creator", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    claims = _claims(r.stdout, kept)
    assert (claims["sub"], claims["role"]) == ("alice", "creator")
    assert abs(claims["exp"] - (time.time() + tokens.DEFAULT_TTL)) < 60
    r2 = await arun("token", "bob", "--ttl", "60", env={"LIVESRV_DATA_DIR": str(d)})
    claims2 = _claims(r2.stdout, kept)
    assert (claims2["sub"], claims2["role"]) == ("bob", "viewer")
    assert abs(claims2["exp"] - (time.time() + 60)) < 30
    c = await Client.open(p.ws_url)
    assert (await c.ok("hello", token=r.stdout.strip()))["role"] == "creator"
    await c.close()
    wrong = await Client.open(p.ws_url)
    assert await wrong.error("hello", token=ADMIN) == "unauthorized"
    assert await wrong.closed() == 4401
    await wrong.close()

    # the environment, then the flag, take precedence over the kept secret
    r3 = await arun("token", "carol", "--data-dir", str(d), env={"LIVESRV_SECRET": ENV_SECRET})
    assert _claims(r3.stdout, ENV_SECRET)["sub"] == "carol"
    r4 = await arun(
        "token",
        "dave",
        "--secret",
        FLAG_SECRET,
        "--data-dir",
        str(d),
        env={"LIVESRV_SECRET": ENV_SECRET},
    )
    assert _claims(r4.stdout, FLAG_SECRET)["sub"] == "dave"
    assert (d / "secret").read_text().strip() == kept

    bad_user = await arun("token", "not ok", "--data-dir", str(d))
    assert bad_user.returncode != 0 and "user" in bad_user.stderr
    bad_role = await arun("token", "x", "--role", "king", "--data-dir", str(d))
    assert bad_role.returncode == 2 and bad_role.stdout == ""


NEEDS_DATA_DIR = {
    "token": (("token", "alice"), "the signing secret", "--secret or LIVESRV_SECRET"),
    "receipt": (
        ("receipt", "--user", "u", "--package", "p65", "--id", "pay-1"),
        "the signing secret",
        "--receipt-key",
    ),
    "audit": (("audit",), "the store", "--redis-url or LIVESRV_REDIS_URL"),
    "settle": (("settle", "--once"), "the store", "--redis-url or LIVESRV_REDIS_URL"),
    "fleet": (("fleet",), "the store", "--redis-url or LIVESRV_REDIS_URL"),
}


@pytest.mark.parametrize("command", sorted(NEEDS_DATA_DIR))
async def test_commands_run_elsewhere_say_they_have_no_data_dir(
    command: str, tmp_path: Path
) -> None:
    """Run from another directory (the default data dir is relative), a command that needs
    serve's data dir names the directory it looked in and how to point it at the right one,
    exits 2 and makes nothing: no new secret, no new empty store to audit."""
    args, what, instead = NEEDS_DATA_DIR[command]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = await arun(*args, cwd=elsewhere)
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    looked = elsewhere / "livesrv-data"
    assert f"{command} needs {what} kept in serve's data dir, but {looked} does not exist" in (
        r.stderr
    )
    assert "--data-dir DIR or LIVESRV_DATA_DIR" in r.stderr and instead in r.stderr
    assert "Traceback" not in r.stderr
    assert list(elsewhere.iterdir()) == []

    # a data dir that exists but is not serve's (no secret, no store): the same refusal
    empty = tmp_path / "empty"
    empty.mkdir()
    r2 = await arun(*args, env={"LIVESRV_DATA_DIR": str(empty)})
    assert (r2.returncode, r2.stdout) == (2, ""), r2.stderr
    name = "secret" if what == "the signing secret" else "store"
    assert f"but {empty} has no {name} (serve makes it)" in r2.stderr
    assert list(empty.iterdir()) == []


# -- receipt ----------------------------------------------------------------------------


async def test_receipt_command_mints_receipts_serve_accepts(
    serve_process: Serve, tmp_path: Path
) -> None:
    d = tmp_path / "d"
    p = serve_process(*FAST, data_dir=d, env={"LIVESRV_SECRET": ""})  # the kept secret
    r = await arun(
        "receipt", "--user", "rbuyer", "--package", "p330", "--id", "pay-1", "--id", "pay.2",
        "--data-dir", str(d),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [x.split(".")[1] for x in lines] == ["pay-1", "pay"]
    assert lines[1].startswith("v1.pay.2.") and len(lines) == 2
    kept = (d / "secret").read_text().strip()
    c = await hello(p, "rbuyer", token=tokens.issue(kept, "rbuyer", "viewer", 3600))
    tampered = lines[0][:-1] + ("A" if lines[0][-1] != "A" else "B")
    assert await c.error("buy_coins", package="p330", receipt=tampered) == "invalid_receipt"
    assert await c.error("buy_coins", package="p330", receipt="pay-1") == "invalid_receipt"
    assert (await c.ok("wallet"))["coins"] == 0
    assert (await c.ok("buy_coins", package="p330", receipt=lines[0]))["coins"] == 330
    assert (await c.ok("buy_coins", package="p330", receipt=lines[1]))["coins"] == 660
    # a replay answers the first result and credits nothing
    assert (await c.ok("buy_coins", package="p330", receipt=lines[0]))["coins"] == 330
    assert (await c.ok("wallet"))["coins"] == 660
    # signed with another secret or another receipt key: refused
    other = await arun(
        "receipt", "--user", "rbuyer", "--package", "p330", "--id", "pay-3",
        "--secret", FLAG_SECRET,
    )  # fmt: skip
    assert await c.error("buy_coins", package="p330", receipt=other.stdout.strip()) == (
        "invalid_receipt"
    )
    assert (await c.ok("wallet"))["coins"] == 660
    await c.close()

    # --receipt-key and LIVESRV_RECEIPT_KEY name the key; --issued the time
    args = ("receipt", "--user", "u", "--package", "p65", "--id", "x", "--issued", "1700000000")
    want = receipts.sign(b"k-123", "u", "p65", "x", 1_700_000_000)
    by_flag = await arun(*args, "--receipt-key", "k-123", "--secret", FLAG_SECRET)
    by_env = await arun(*args, "--secret", FLAG_SECRET, env={"LIVESRV_RECEIPT_KEY": "k-123"})
    assert by_flag.stdout.strip() == by_env.stdout.strip() == want
    bad = await arun(
        "receipt", "--user", "u", "--package", "p65", "--id", "a b", "--data-dir", str(d)
    )
    assert bad.returncode == 2 and bad.stdout == "" and "receipt id" in bad.stderr


async def test_demo_serve_accepts_any_receipt_and_a_plain_serve_does_not(
    serve_process: Serve, tmp_path: Path
) -> None:
    demo = serve_process(*FAST, "--demo", data_dir=tmp_path / "demo")
    c = await hello(demo, "dbuyer")
    assert (await c.ok("buy_coins", package="p65", receipt="demo-anything"))["coins"] == 65
    await c.close()
    plain = serve_process(*FAST, data_dir=tmp_path / "plain")
    c = await hello(plain, "pbuyer")
    assert await c.error("buy_coins", package="p65", receipt="demo-any") == "invalid_receipt"
    got = await api(plain, "POST", "/api/receipts", {"user": "pbuyer", "package": "p65", "id": "q"})
    assert (await c.ok("buy_coins", package="p65", receipt=got["receipt"]))["coins"] == 65
    await c.close()
    refused = await arun(
        "serve", "--data-dir", str(tmp_path / "x"), env={"LIVESRV_RECEIPT_VERIFIER": "nope"}
    )
    assert refused.returncode == 2 and "LIVESRV_RECEIPT_VERIFIER" in refused.stderr


# -- audit and settle ---------------------------------------------------------------------


async def test_audit_exit_codes(serve_process: Serve, tmp_path: Path) -> None:
    d = tmp_path / "d"
    p = serve_process(*FAST, data_dir=d)
    creator, fan = await some_gifts(p)
    await creator.event("wallet", lambda e: e["diamonds"] == 7)

    ok = await arun(*audit_args(d))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines[:-1]] == ["PASS"] * 11  # refunds_whole, subs_paid
    assert lines[-1] == "audit: all invariants hold"
    assert "coins_conserved: credited=1000, held=985, spent=15" in ok.stdout
    as_json = await arun(*audit_args(d, "--json"))
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and report["ok"] is True and len(report["checks"]) == 11

    # a balance changed behind the ledger's back
    store = EmbeddedStore(d)
    raw = redis.Redis(unix_socket_path=str(store.socket))
    wallet_key = UserKeys.of("fan", Settings().shards).wallet
    raw.hincrby(wallet_key, "coins", 40)
    bad = await arun(*audit_args(d))
    assert bad.returncode == 1, bad.stdout
    assert "FAIL  coins_conserved: credited=1000, held=1025, spent=15" in bad.stdout
    assert bad.stdout.strip().endswith("audit: VIOLATIONS FOUND")
    raw.hincrby(wallet_key, "coins", -40)
    raw.close()
    await creator.close()
    await fan.close()

    # and with no serve running: audit starts the store itself, and stops it again
    p.signal(signal.SIGTERM)
    assert await asyncio.to_thread(p.wait) == 0
    stopped = await arun(*audit_args(d))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not store.pidfile.exists()


async def test_settle_once(serve_process: Serve, tmp_path: Path) -> None:
    d = tmp_path / "d"
    p = serve_process("--no-settle", data_dir=d)  # default hold: diamonds settle as pending
    creator, fan = await some_gifts(p, 6)
    await asyncio.sleep(0.3)
    assert await api(p, "GET", "/api/users/cr/wallet") == {"coins": 0, "diamonds": 0, "pending": 0}
    # no worker has read the outbox yet: the audit shows it all as still to settle
    waiting = await arun(*audit_args(d, "--json"))
    assert waiting.returncode == 1, waiting.stdout + waiting.stderr
    (settled,) = [
        c for c in json.loads(waiting.stdout)["checks"] if c["name"] == "settled_exactly_once"
    ]
    assert (settled["ok"], settled["backlog"], settled["unsettled"]) == (False, 6, 6)

    r = await arun("settle", "--once", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "settled 6 entries"
    assert await api(p, "GET", "/api/users/cr/wallet") == {"coins": 0, "diamonds": 0, "pending": 9}
    ev = await creator.event("wallet", lambda e: e["pending"] == 9)
    assert ev["diamonds"] == 0
    again = await arun("settle", "--once", "--data-dir", str(d))
    assert again.stdout.strip() == "settled 0 entries"
    assert (await arun(*audit_args(d))).returncode == 0
    await creator.close()
    await fan.close()


async def test_settle_beside_a_demo_serve_takes_demo_too(
    serve_process: Serve, tmp_path: Path
) -> None:
    d = tmp_path / "d"
    p = serve_process("--demo", "--no-settle", data_dir=d)  # demo: no hold
    creator, fan = await some_gifts(p, 2)
    refused = await arun("settle", "--once", "--data-dir", str(d))  # the default 72 h hold
    assert refused.returncode == 2 and "LIVESRV_HOLD_SECONDS" in refused.stderr
    r = await arun("settle", "--once", "--demo", "--data-dir", str(d))
    assert (r.returncode, r.stdout.strip()) == (0, "settled 2 entries"), r.stderr
    assert await api(p, "GET", "/api/users/cr/wallet") == {"coins": 0, "diamonds": 3, "pending": 0}
    await creator.close()
    await fan.close()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True)
def _no_livesrv_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LIVESRV_") and not name.startswith("LIVESRV_TEST_"):
            monkeypatch.delenv(name)
