"""Load worker commands for viewers: connect and join, count what arrives, let the slow
ones read again, close.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from typing import Any

from .client import GIFT_PATTERNS, Client, OpError, open_client
from .state import WorkerState


class ViewerCommands(WorkerState):
    """Many viewers joined to a room; a few sampled, some slow (never reading)."""

    # -- viewers ------------------------------------------------------------------------
    async def cmd_viewers_connect(
        self,
        url: str,
        tokens: list[str],
        room: str | None,
        sample_every: int = 20,
        slow_every: int = 0,
        slow_rcvbuf: int = 4096,
        concurrency: int = 64,
        first_index: int = 0,
    ) -> dict[str, Any]:
        """Connect viewers (hello, then join ``room`` when given). Slow ones stop reading."""
        sem = asyncio.Semaphore(concurrency)
        failures: Counter[str] = Counter()
        t0 = time.perf_counter()

        retried: Counter[str] = Counter()

        async def attempt(i: int, token: str) -> str | None:
            gi = first_index + i
            slow = bool(slow_every) and gi % slow_every == slow_every - 1
            sample = not slow and gi % sample_every == 0
            client: Client | None = None
            try:
                client, _ = await open_client(
                    url,
                    token,
                    source_ip=self._next_ip(),
                    sample=sample,
                    rcvbuf=slow_rcvbuf if slow else None,
                )
                if room:
                    await client.request("join", room=room)
                    client.room = room
                    if not sample and not slow and client.ws is not None:
                        client.ws.count_pattern = GIFT_PATTERNS[0]
            except (TimeoutError, OSError, OpError, ConnectionError) as exc:
                if client is not None and client.ws is not None:
                    client.ws.abort()
                return type(exc).__name__ + ":" + str(getattr(exc, "code", ""))
            client.slow = slow
            if slow:
                assert client.ws is not None
                client.ws.pause()
            self.viewers.append(client)
            return None

        async def one(i: int, token: str) -> None:
            async with sem:
                reason = await attempt(i, token)
            if reason is None:
                return
            retried[reason] += 1  # a real client reconnects; once here, and it is counted
            async with sem:
                reason = await attempt(i, token)
            if reason is not None:
                failures[reason] += 1

        await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
        return {
            "connected": len(self.viewers),
            "failed": sum(failures.values()),
            "failures": dict(failures),
            "retried": dict(retried),
            "seconds": time.perf_counter() - t0,
        }

    async def cmd_viewers_reset(self) -> dict[str, Any]:
        for v in self.viewers:
            v.reset()
        return {}

    async def cmd_viewers_progress(self) -> dict[str, Any]:
        """The fewest gifts any reading viewer has counted: cheap enough to poll while
        events still arrive (``viewers_collect`` copies every sample, and would hold this
        worker's event loop, and so its viewers' reads, while the last events come in)."""
        counts = [v.total_gifts() for v in self.viewers if not v.slow]
        return {"fewest": min(counts, default=0), "readers": len(counts)}

    async def cmd_viewers_collect(self) -> dict[str, Any]:
        fast = [v for v in self.viewers if not v.slow]
        lat = array("d")
        lat_t = array("d")
        for v in fast:
            if v.lat is not None:
                lat.extend(v.lat)
                lat_t.extend(v.lat_t)
        closed = Counter(
            str(v.ws.close_code) for v in self.viewers if v.ws is not None and v.ws.close_code
        )
        return {
            "gift_counts": [v.total_gifts() for v in fast],
            "slow_gift_counts": [v.total_gifts() for v in self.viewers if v.slow],
            "latencies": lat.tobytes(),
            "latency_times": lat_t.tobytes(),
            "recv_by_from": [v.recv_by_from for v in fast if v.sample],
            "gaps": sum(v.gaps for v in fast),
            "dups": sum(v.dups for v in fast),
            "last_recv": max((v.last_gift() for v in fast), default=0.0),
            "closed": dict(closed),
            "closed_fast": sum(1 for v in fast if v.ws is not None and v.ws.close_code),
        }

    async def cmd_slow_resume(self, wait: float = 5.0) -> dict[str, Any]:
        """Let the slow viewers read again; after ``wait`` s report how each one ended."""
        slow = [v for v in self.viewers if v.slow]
        for v in slow:
            assert v.ws is not None
            v.ws.resume()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if all(v.ws is not None and v.ws.close_code for v in slow):
                break
            await asyncio.sleep(0.2)
        codes = Counter(str(v.ws.close_code) if v.ws and v.ws.close_code else "open" for v in slow)
        return {"slow": len(slow), "codes": dict(codes)}

    async def cmd_viewers_close(self) -> dict[str, Any]:
        for v in self.viewers:
            if v.ws is not None:
                v.ws.close()
        await asyncio.sleep(0.2)
        for v in self.viewers:
            if v.ws is not None:
                v.ws.abort()
        n = len(self.viewers)
        self.viewers = []
        return {"closed": n}
