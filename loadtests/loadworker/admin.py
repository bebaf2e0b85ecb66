"""Load worker commands that use the admin HTTP API: mint tokens, grant coins."""

from __future__ import annotations

import asyncio
from typing import Any

from .state import WorkerState


class AdminCommands(WorkerState):
    """Tokens and coins through the admin API, many requests at once."""

    # -- tokens -------------------------------------------------------------------------
    async def cmd_mint(
        self,
        http_url: str,
        admin_token: str,
        users: list[str],
        role: str,
        ttl: int = 7200,
        concurrency: int = 32,
    ) -> dict[str, Any]:
        """Mint tokens through the admin API ``POST /api/tokens``."""
        import aiohttp

        tokens: dict[str, str] = {}
        sem = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {admin_token}"}
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=conn, headers=headers) as session:

            async def one(user: str) -> None:
                async with sem:
                    for attempt in range(5):
                        async with session.post(
                            f"{http_url}/api/tokens", json={"user": user, "role": role, "ttl": ttl}
                        ) as resp:
                            if resp.status == 200:
                                tokens[user] = (await resp.json())["token"]
                                return
                            if attempt == 4:
                                raise RuntimeError(f"POST /api/tokens: {resp.status}")
                        await asyncio.sleep(0.1 * (attempt + 1))

            await asyncio.gather(*(one(u) for u in users))
        return {"tokens": tokens}

    async def cmd_grant(
        self,
        http_url: str,
        admin_token: str,
        users: list[str],
        coins: int,
        tag: str,
        concurrency: int = 16,
    ) -> dict[str, Any]:
        """Credit coins through ``POST /api/users/{user}/grant`` (idempotent by key)."""
        import aiohttp

        sem = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {admin_token}"}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def one(user: str) -> None:
                body = {"coins": coins, "key": f"bench-{tag}-{user}", "reason": "benchmark"}
                async with sem:
                    for attempt in range(5):  # 503 unavailable: retry with the same key
                        async with session.post(
                            f"{http_url}/api/users/{user}/grant", json=body
                        ) as resp:
                            if resp.status == 200:
                                return
                            if resp.status != 503 or attempt == 4:
                                raise RuntimeError(
                                    f"grant {user}: {resp.status} {await resp.text()}"
                                )
                        await asyncio.sleep(0.2 * (attempt + 1))

            await asyncio.gather(*(one(u) for u in users))
        return {"granted": len(users)}
