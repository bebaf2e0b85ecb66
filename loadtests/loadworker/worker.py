"""A load worker process: one event loop (uvloop when installed) running the parent's
commands one at a time, each handled by a ``cmd_NAME`` method of one command group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
from multiprocessing.connection import Connection
from typing import Any

from .admin import AdminCommands
from .creators import CreatorCommands
from .gifters import GifterCommands
from .joiners import JoinerCommands
from .store_load import StoreCommands
from .viewers import ViewerCommands


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Worker(
    AdminCommands,
    CreatorCommands,
    ViewerCommands,
    GifterCommands,
    StoreCommands,
    JoinerCommands,
):
    """Holds this process's connections and runs the parent's commands."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, self.pipe.recv)
            name = cmd.get("cmd")
            if name == "exit":
                await self.cmd_close_all()
                self.pipe.send({"_ok": True})
                return
            try:
                handler = getattr(self, "cmd_" + name)
                result = await handler(**cmd.get("args", {}))
                result["_ok"] = True
            except Exception as exc:  # reported to the parent, which fails the run
                result = {"_ok": False, "_error": f"{type(exc).__name__}: {exc}"}
            self.pipe.send(result)

    async def cmd_close_all(self) -> dict[str, Any]:
        for group in (self.viewers, self.gifters, self.creators):
            for c in group:
                if c.ws is not None:
                    c.ws.close()
        await asyncio.sleep(0.1)
        for group in (self.viewers, self.gifters, self.creators):
            for c in group:
                if c.ws is not None:
                    c.ws.abort()
        self.viewers, self.gifters, self.creators = [], [], []
        return {}

    async def cmd_ping(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def worker_main(pipe: Connection, index: int, source_ips: list[str]) -> None:
    """Entry point of a worker process."""
    raise_nofile()
    worker = Worker(pipe, index, source_ips)
    try:
        import uvloop

        uvloop.run(worker.run())
    except ImportError:
        asyncio.run(worker.run())
