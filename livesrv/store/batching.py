"""Calls of one script made in one event-loop iteration, sent as one call of its batch
script (``settle_batch.lua`` for ``settle.lua``): one store command and one reply instead of
one each. Only for a store that is not a cluster (a batch names keys of many slots).

Each call still gets its own result, or the batch's error: a batch that fails part-way
leaves the steps before the failure done, which is safe only for steps that are
idempotent on their own (``settle.lua`` is, by ref), as separate calls would be retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Runner = Callable[[str, list[str], list[Any]], Awaitable[Any]]


class StepBatcher:
    """Gathers the calls of one script and runs them as batches of its batch script.

    Args:
        run: Runs a script by name (:meth:`livesrv.store.facade.Backend.run`).
        batch: The batch script's name; it takes ARGV 1 (keys per call), ARGV 2 (arguments
            per call), then every call's keys and arguments, and returns each call's reply.
        limit: Calls per batch at most (a batch holds the store for all of them).
    """

    def __init__(self, run: Runner, batch: str, limit: int = 64) -> None:
        self._run = run
        self._batch = batch
        self._limit = limit
        self._queue: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue one call (same number of keys and arguments as every other); its reply."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((keys, args, fut))
        return fut

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        for i in range(0, len(queue), self._limit):
            task = asyncio.get_running_loop().create_task(self._send(queue[i : i + self._limit]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, calls: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> None:
        keys = [k for c in calls for k in c[0]]
        args: list[Any] = [len(calls[0][0]), len(calls[0][1])]
        for c in calls:
            args.extend(c[1])
        try:
            replies = await self._run(self._batch, keys, args)
        except asyncio.CancelledError:
            for _, _, fut in calls:
                fut.cancel()
            raise
        except Exception as exc:  # every call of the batch fails with it
            for _, _, fut in calls:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, _, fut), reply in zip(calls, replies, strict=True):
            if not fut.done():
                fut.set_result(reply)
