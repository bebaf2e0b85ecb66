"""The Lua scripts that move money, loaded once per client.

Each ``.lua`` file in ``lua/`` is one atomic step touching one hash slot. Scripts run on
the auto-pipelined connection (:mod:`.pipeline`), one per master on a cluster
(:mod:`.cluster`); both send EVALSHA and load the script on NOSCRIPT, so a restarted store
is handled without special code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

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
    """The text of one script. A line ``--@step NAME`` includes script NAME as a local
    function ``NAME(KEYS, ARGV)`` returning what that script returns (``gift.lua``)."""
    text = resources.files("livesrv.store").joinpath(f"lua/{name}.lua").read_text()
    return STEP.sub(_step, text)


STEP = re.compile(r"^--@step (\w+)$", re.MULTILINE)


def _step(m: re.Match[str]) -> str:
    name = m.group(1)
    return f"local function {name}(KEYS, ARGV)\n{source(name)}\nend"


@dataclass(frozen=True)
class Scripts:
    """The registered scripts, by name, on the auto-pipelined connection (one per master
    on a cluster)."""

    pipeline: AutoPipeline | ClusterScripts
    shas: dict[str, str]

    @classmethod
    def register(
        cls, url: str, topology: Topology | None = None, durability: Durability | None = None
    ) -> Scripts:
        """Register every script: on a cluster ``topology``, over one auto-pipelined
        connection per master; else over one to ``url``. Replies wait for ``durability``.

        Raises:
            ValueError: ``url`` is not ``redis://``, ``rediss://`` or ``unix://``.
        """
        pipeline: AutoPipeline | ClusterScripts
        if topology is not None and topology.cluster:
            pipeline = ClusterScripts(topology, durability=durability)
        else:
            pipeline = AutoPipeline(url, durability=durability)
        return cls(pipeline, {n: pipeline.register(source(n)) for n in NAMES})

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self.pipeline.evalsha(self.shas[name], keys, args)

    @property
    def generation(self) -> int:
        """Changes whenever a store connection is made or lost (or, on a cluster, a slot is
        redirected): what was true of the store behind a slot may no longer be."""
        return self.pipeline.generation

    async def close(self) -> None:
        await self.pipeline.close()
