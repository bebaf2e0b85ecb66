"""The Lua scripts that move money, loaded once per client.

Each ``.lua`` file beside this module is one atomic step touching one hash slot.
``register_script`` sends EVALSHA and falls back to loading the script on NOSCRIPT, so a
restarted store is handled without special code.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

NAMES = tuple(
    sorted(
        p.name.removesuffix(".lua")
        for p in resources.files("livesrv").joinpath("scripts").iterdir()
        if p.name.endswith(".lua")
    )
)


def source(name: str) -> str:
    """The text of one script."""
    return resources.files("livesrv").joinpath(f"scripts/{name}.lua").read_text()


@dataclass(frozen=True)
class Scripts:
    """The registered scripts of one client, by name."""

    by_name: dict[str, AsyncScript]

    @classmethod
    def register(cls, client: aioredis.Redis) -> Scripts:
        return cls({n: client.register_script(source(n)) for n in NAMES})

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self.by_name[name](keys=keys, args=args)
