"""The ``livesrv`` command: serve, token, receipt, audit, settle."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import __version__, audit, fleet, logs
from .errors import LivesrvError, StoreError, Unavailable
from .event_loop import use_uvloop
from .services import receipts
from .settings import LEDGER_FIELDS, STORE_FIELDS, Settings
from .store.embedded import ServeLock, StoreHandle
from .store.facade import STORE_FAILURES, Backend
from .store.topology import host_port, split_seeds
from .wire import tokens


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="data directory (LIVESRV_DATA_DIR)")
    p.add_argument(
        "--redis-url",
        help="use this Redis/Valkey instead of the embedded store (LIVESRV_REDIS_URL); "
        "for a cluster, any master's URL or several separated by commas",
    )
    p.add_argument(
        "--secret", help="token signing key (LIVESRV_SECRET); default: kept in the data dir"
    )
    p.add_argument("--catalog", type=Path, help="catalogue JSON file (LIVESRV_CATALOG)")
    p.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help="text, or json: one object per line (LIVESRV_LOG_FORMAT, default text)",
    )


def _receipt_key(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--receipt-key",
        help="receipt signing key (LIVESRV_RECEIPT_KEY); default: derived from the secret",
    )


def _demo_and_hold(p: argparse.ArgumentParser, demo_help: str) -> None:
    """--demo and --hold-seconds: the fleet checks that every node and worker agrees on them."""
    p.add_argument("--demo", action="store_true", default=None, help=demo_help)
    p.add_argument(
        "--hold-seconds",
        type=int,
        help="diamond hold period (LIVESRV_HOLD_SECONDS, default 259200; 0 with --demo)",
    )


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="livesrv", description="Live-stream gifting server")
    ap.add_argument("--version", action="version", version=f"livesrv {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", help="bind address (LIVESRV_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="WebSocket port (LIVESRV_PORT, default 8765)")
    serve.add_argument(
        "--http-port", type=int, help="admin/metrics/demo port (LIVESRV_HTTP_PORT, default 8080)"
    )
    serve.add_argument(
        "--workers", type=int, help="processes sharing the ports (LIVESRV_WORKERS, default 1)"
    )
    _demo_and_hold(
        serve, "demo mode: /demo/login, starter coins, seeded products, no hold, any receipt"
    )
    serve.add_argument(
        "--appendfsync",
        choices=["always", "everysec", "no"],
        help="embedded store fsync policy (LIVESRV_APPENDFSYNC, default everysec)",
    )
    _receipt_key(serve)
    serve.add_argument(
        "--receipt-verifier",
        choices=sorted(receipts.VERIFIERS),
        help="how buy_coins receipts are checked (LIVESRV_RECEIPT_VERIFIER, default hmac; "
        "any with --demo)",
    )
    serve.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        default=None,
        help="run no settlement worker (another process settles: livesrv settle)",
    )
    serve.add_argument(
        "--settle-inline",
        dest="settle_process",
        action="store_false",
        default=None,
        help="settle in the node's event loop, not in a process of its own "
        "(LIVESRV_SETTLE_PROCESS=0)",
    )

    tok = sub.add_parser("token", help="print a signed token")
    _common(tok)
    tok.add_argument("user")
    tok.add_argument("--role", choices=tokens.ROLES, default="viewer")
    tok.add_argument("--ttl", type=int, default=tokens.DEFAULT_TTL, help="seconds")
    tok.add_argument("--birth-year", type=int, help="the user's birth year (claim by, age gates)")
    tok.add_argument("--region", help="the user's region, e.g. KR (claim rg, age gates)")

    rc = sub.add_parser("receipt", help="print signed coin-purchase receipts, one per id")
    _common(rc)
    _receipt_key(rc)
    rc.add_argument("--user", required=True, help="the buyer")
    rc.add_argument("--package", required=True, help="the coin package (e.g. p330)")
    rc.add_argument(
        "--id",
        dest="ids",
        metavar="ID",
        action="append",
        required=True,
        help="payment id, 1-64 of [A-Za-z0-9_.-]; repeat for more receipts",
    )
    rc.add_argument("--issued", type=int, help="issue time, unix seconds (default: now)")

    aud = sub.add_parser("audit", help="check the ledger invariants; exit 1 on a violation")
    _common(aud)
    aud.add_argument("--json", action="store_true", help="print the report as JSON")

    settle = sub.add_parser("settle", help="run the settlement worker alone")
    _common(settle)
    settle.add_argument("--once", action="store_true", help="settle what is due, then exit")
    _demo_and_hold(settle, "beside a `serve --demo`: no hold (LIVESRV_DEMO)")

    fl = sub.add_parser("fleet", help="print (or --reset) the settings every node must share")
    _common(fl)
    fl.add_argument(
        "--reset",
        action="store_true",
        help="delete the fleet record (after a migration); the next node to start writes it",
    )
    return ap


# The settings each command reads (None: all of them). Only these LIVESRV_* variables are
# parsed and checked, so a bad variable that a command ignores cannot stop it.
_LOGS = frozenset({"log_format"})  # every command logs
_KEYS = _LOGS | {"data_dir", "secret", "receipt_key"}
_LEDGER = _LOGS | STORE_FIELDS | LEDGER_FIELDS
SETTING_NAMES = frozenset(f.name for f in fields(Settings))
USES: dict[str, frozenset[str] | None] = {
    "serve": None,
    "token": _LOGS | {"data_dir", "secret"},
    "receipt": _KEYS,
    "audit": _LEDGER,
    "settle": _LEDGER,
    "fleet": _LEDGER,
}


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings of ``args.command``: its flags named as a Settings field (``--http-port``
    is ``http_port``) override the environment."""
    flags = {n: v for n, v in vars(args).items() if n in SETTING_NAMES}
    return Settings.from_env(only=USES[args.command], **flags)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args)
        logs.setup(os.environ.get("LIVESRV_LOG", "INFO"), settings.log_format)
        command = {
            "serve": cmd_serve,
            "token": cmd_token,
            "receipt": cmd_receipt,
            "audit": cmd_audit,
            "settle": cmd_settle,
            "fleet": cmd_fleet,
        }[args.command]
        return command(settings, args)
    except (StoreError, ValueError, LivesrvError) as exc:
        print(f"livesrv: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"livesrv: cannot listen on {_address_of(exc)}: the address is in use (another "
            "server?); stop it, or choose --port / --http-port (0: any free port)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


class DataDirError(ValueError):
    """A command that reads what serve keeps in the data dir was pointed at a data dir
    without it (it would otherwise make a new secret, or audit an empty new store)."""


def _need(settings: Settings, command: str, name: str, what: str, instead: str) -> None:
    """Raise DataDirError unless ``data_dir/name`` exists, naming the directory looked in
    and the ways to point the command at the right one."""
    data_dir = settings.data_dir
    if (data_dir / name).exists():
        return
    where = data_dir.resolve()
    why = "does not exist" if not data_dir.exists() else f"has no {name} (serve makes it)"
    raise DataDirError(
        f"{command} needs {what} kept in serve's data dir, but {where} {why}.\n"
        f"  Point {command} at the data dir serve uses (--data-dir DIR or LIVESRV_DATA_DIR; "
        f"the default ./livesrv-data is relative to the current directory), or {instead}."
    )


def _need_secret(settings: Settings, command: str, instead: str = "") -> None:
    if not settings.secret:
        give = "give the secret with --secret or LIVESRV_SECRET"
        _need(settings, command, "secret", "the signing secret", give + instead)


def _need_store(settings: Settings, command: str) -> None:
    if not settings.redis_url:
        use = "name a running store with --redis-url or LIVESRV_REDIS_URL"
        _need(settings, command, "store", "the store", use)


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    _need_secret(settings, "token")
    secret = tokens.resolve_secret(settings.secret, settings.data_dir)
    print(tokens.issue(secret, args.user, args.role, args.ttl, args.birth_year, args.region))
    return 0


def cmd_receipt(settings: Settings, args: argparse.Namespace) -> int:
    if settings.receipt_key:  # the key is all a receipt needs
        key = receipts.resolve_key(settings.receipt_key, "")
    else:
        _need_secret(settings, "receipt", " (or the key: --receipt-key, LIVESRV_RECEIPT_KEY)")
        key = receipts.resolve_key(None, tokens.resolve_secret(settings.secret, settings.data_dir))
    lines = [receipts.sign(key, args.user, args.package, rid, args.issued) for rid in args.ids]
    print("\n".join(lines))
    return 0


def _address_of(exc: OSError) -> str:
    """The address in a bind error's message ("... on address ('127.0.0.1', 8765) ...")."""
    text = str(exc)
    start, end = text.find("("), text.find(")")
    return text[start + 1 : end].replace("'", "").replace(", ", ":") if 0 <= start < end else text


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from .realtime.node import serve_node

    receipts.check_name(settings.receipt_verifier)
    lock = ServeLock(settings.data_dir)
    if not settings.redis_url and not lock.acquire():
        raise StoreError(f"another serve is running on {settings.data_dir}")
    tokens.resolve_secret(settings.secret, settings.data_dir)
    store = StoreHandle(settings, own=True)
    try:
        use_uvloop()
        if settings.workers > 1:
            from .realtime.processes import run_workers

            asyncio.run(_guard_fleet(settings, store.url))  # each worker checks again
            return run_workers(settings, store.url)
        serve_node(settings, store.url)
    finally:
        store.close()
        lock.release()
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when every invariant holds, 1 on a violation, 2 when the audit cannot run
    (store unreachable, a cluster master down, no store in the data dir, ...)."""
    _need_store(settings, "audit")
    store = StoreHandle(settings, own=False)
    try:
        report = asyncio.run(_audit(settings, store))
    except Exception as exc:  # noqa: BLE001 -- one line and exit 2, never a traceback
        return _cannot_run("audit", store.url, exc)
    finally:
        store.close()
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    else:
        print(audit.render(report))
    return 0 if report["ok"] else 1


async def _audit(settings: Settings, store: StoreHandle) -> dict[str, Any]:
    from .settlement import SettlementWorker

    b = Backend.create(settings, store.url)
    try:
        if store.embedded is not None:  # no serve is running: settle what it left first
            settled = await SettlementWorker(b).drain()
            if settled:
                print(f"settled {settled} outstanding entries first", file=sys.stderr)
        return await audit.run(b)
    finally:
        await b.close()


def cmd_settle(settings: Settings, args: argparse.Namespace) -> int:
    from .settlement import SettlementWorker

    _need_store(settings, "settle")
    store = StoreHandle(settings, own=False)

    async def go() -> None:
        b = Backend.create(settings, store.url)
        worker = SettlementWorker(b, name=f"settle-{socket.gethostname()}-{os.getpid()}")
        try:
            await fleet.guard_settler(b)
            if args.once:
                print(f"settled {await worker.drain()} entries")
            else:
                await worker.run()
        finally:
            await b.close()

    try:
        use_uvloop()
        asyncio.run(go())
    except (*STORE_FAILURES, Unavailable) as exc:
        return _cannot_run("settle", store.url, exc)
    finally:
        store.close()
    return 0


def _cannot_run(command: str, url: str, exc: BaseException) -> int:
    """Say in one line why ``command`` could not run against the store; exit status 2."""
    where = ", ".join(host_port(u) for u in split_seeds(url)) if url else "the store"
    cause = exc.__cause__ if isinstance(exc, Unavailable) and exc.__cause__ else exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    print(f"livesrv {command}: cannot run against {where}: {text}", file=sys.stderr)
    return 2


async def _guard_fleet(settings: Settings, url: str) -> None:
    """Refuse to start (FleetMismatch) when this node disagrees with the fleet's record."""
    b = Backend.create(settings, url)
    try:
        fleet.check_presence(settings)
        secret = tokens.resolve_secret(settings.secret, settings.data_dir)
        await fleet.guard_node(b, secret, receipts.resolve_key(settings.receipt_key, secret))
    finally:
        await b.close()


def cmd_fleet(settings: Settings, args: argparse.Namespace) -> int:
    """Print the fleet record, or delete it with ``--reset``."""
    _need_store(settings, "fleet")
    store = StoreHandle(settings, own=False)

    async def go() -> str:
        b = Backend.create(settings, store.url)
        try:
            if args.reset:
                had = await fleet.reset(b)
                return "fleet record deleted" if had else "there was no fleet record"
            return fleet.render(await fleet.show(b))
        finally:
            await b.close()

    try:
        print(asyncio.run(go()))
    finally:
        store.close()
    return 0
