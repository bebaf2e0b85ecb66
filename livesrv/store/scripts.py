"""The Lua scripts that move money, loaded once per client.

Each ``.lua`` file beside this module is one atomic step touching one hash slot. Scripts
run on the auto-pipelined connection (:mod:`.pipeline`) for ``redis://`` and ``unix://``
stores, on one such connection per master on a cluster (:mod:`.cluster`), else through
redis-py's ``register_script``; all send EVALSHA and load the script on NOSCRIPT, so a
restarted store is handled without special code.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from .cluster import ClusterScripts
from .durability import Durability
from .pipeline import AutoPipeline
from .topology import Topology

NAMES = tuple(
    sorted(
        p.name.removesuffix(".lua")
        for p in resources.files("livesrv.store").joinpath("lua").iterdir()
        if p.name.endswith(".lua")
    )
)


def source(name: str) -> str:
    """The text of one script."""
    return resources.files("livesrv.store").joinpath(f"lua/{name}.lua").read_text()


@dataclass(frozen=True)
class Scripts:
    """The registered scripts, by name."""

    by_name: dict[str, AsyncScript]
    pipeline: AutoPipeline | ClusterScripts | None = None
    shas: dict[str, str] | None = None

    @classmethod
    def register(
        cls,
        client: aioredis.Redis,
        url: str | None = None,
        topology: Topology | None = None,
        durability: Durability | None = None,
    ) -> Scripts:
        """Register every script: on a cluster ``topology``, over one auto-pipelined
        connection per master; else over one to ``url``. Replies wait for ``durability``."""
        by_name = {n: client.register_script(source(n)) for n in NAMES}
        pipeline: AutoPipeline | ClusterScripts
        if topology is not None and topology.cluster:
            pipeline = ClusterScripts(topology, durability=durability)
        elif url is None or not AutoPipeline.supports(url):
            if durability is not None and durability.waits:
                raise ValueError(f"durability {durability.name} needs a redis:// or unix:// URL")
            return cls(by_name)
        else:
            pipeline = AutoPipeline(url, durability=durability)
        return cls(by_name, pipeline, {n: pipeline.register(source(n)) for n in NAMES})

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        if self.pipeline is not None and self.shas is not None:
            return await self.pipeline.evalsha(self.shas[name], keys, args)
        return await self.by_name[name](keys=keys, args=args)

    @property
    def generation(self) -> int:
        """Changes whenever a store connection is made or lost (or, on a cluster, a slot is
        redirected): what was true of the store behind a slot may no longer be."""
        return self.pipeline.generation if self.pipeline is not None else 0

    async def close(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.close()
