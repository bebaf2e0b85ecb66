"""What the refund tests share: the admin API calls, buying, balances, a room, the audit."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from livesrv import audit
from tests.client import Client
from tests.conftest import Running
from tests.timing import scaled


async def admin(server: Running, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {server.token('rf_ops', 'admin')}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, server.http_url + path, json=body) as resp,
    ):
        return resp.status, await resp.json()


async def refund(server: Running, rid: str, kind: str = "refund") -> dict[str, Any]:
    status, reply = await admin(server, "POST", f"/api/receipts/{rid}/refund", {"kind": kind})
    assert status == 200, reply
    return dict(reply)


async def buy(server: Running, c: Client, user: str, package: str, rid: str) -> int:
    r = await c.ok("buy_coins", package=package, receipt=server.receipt(user, package, rid))
    return int(r["coins"])


async def audited(server: Running) -> dict[str, dict[str, Any]]:
    report = await server.audit()
    assert report["ok"], audit.render(report)
    return {c["name"]: c for c in report["checks"]}


async def balances(c: Client) -> dict[str, int]:
    w = await c.ok("wallet")
    return {k: w[k] for k in ("coins", "diamonds", "pending")}


async def joined(server: Running, user: str, room: str) -> Client:
    c = await server.connect(user)
    await c.ok("join", room=room)
    return c


async def live(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title="refunds")
    return c


async def poll(probe: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(scaled(timeout)):
        while not await probe():
            await asyncio.sleep(0.05)
