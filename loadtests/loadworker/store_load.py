"""Load worker command for the store's ceiling: the recorded gift scripts as pre-encoded
RESP ``EVALSHA``s, pipelined, replies parsed by hiredis.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from .state import WorkerState


class StoreCommands(WorkerState):
    """The recorded gift scripts, driven straight at the store."""

    # -- the store's ceiling ------------------------------------------------------------
    async def cmd_ceiling(
        self,
        store_url: str,
        sources: dict[str, str],
        templates: list[list[list[Any]]],
        marker: str,
        start_at: float,
        duration: float,
        depth: int,
        tasks: int,
        tag: str,
    ) -> dict[str, Any]:
        """Drive the recorded gift scripts straight at the store, pipelined.

        Each of ``tasks`` connections writes ``depth`` gifts at once (every gift's script
        calls, each gift with a fresh idempotency key) and reads the replies back, again and
        again. Commands are pre-encoded RESP with a fixed-width key slot, replies parsed by
        hiredis, so the store, not this client, is what runs out of breath.
        """
        import hiredis
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(store_url)
        shas = {name: await client.script_load(src) for name, src in sources.items()}
        await client.aclose()
        width = 16
        slot = b"@" * width
        prepared: list[list[bytes]] = []
        calls_per_gift = len(templates[0]) if templates else 1
        for calls in templates:
            blob = b"".join(
                _resp(
                    [
                        "EVALSHA",
                        shas[name],
                        str(len(keys)),
                        *(str(a).replace(marker, slot.decode()) for a in [*keys, *args]),
                    ]
                )
                for name, keys, args in calls
            )
            prepared.append(blob.split(slot))
        errors: Counter[str] = Counter()
        ok = 0
        end_at = start_at + duration
        path = store_url.removeprefix("unix://")
        wi = int(self.index)
        # the key is fixed width (16): k + 2-char tag + worker + task + serial; the tag
        # makes every round's keys new, so no gift takes the idempotent-replay path
        tag_b = tag.encode()[-2:].rjust(2, b"0")

        async def pump(t: int) -> None:
            nonlocal ok
            if store_url.startswith("unix://"):
                reader, writer = await asyncio.open_unix_connection(path)
            else:
                host, _, port = store_url.split("//", 1)[1].split("/", 1)[0].rpartition(":")
                reader, writer = await asyncio.open_connection(host, int(port))
            parser = hiredis.Reader()
            serial = 0
            while time.time() < end_at:
                chunks = []
                for _ in range(depth):
                    serial += 1
                    key = b"k%s%02d%02d%09d" % (tag_b, wi % 100, t % 100, serial)
                    chunks.append(key.join(prepared[serial % len(prepared)]))
                writer.write(b"".join(chunks))
                want = depth * calls_per_gift
                got = 0
                while got < want:
                    data = await reader.read(1 << 16)
                    if not data:
                        raise ConnectionError("store closed the connection")
                    parser.feed(data)
                    got += _drain_replies(parser, errors)
                ok += depth
            writer.close()

        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t_begin = time.time()
        await asyncio.gather(*(pump(t) for t in range(tasks)))
        t_end = time.time()
        failed = sum(errors.values())
        return {
            "ok": ok - failed // max(calls_per_gift, 1),
            "errors": dict(errors),
            "t_begin": t_begin,
            "t_end": t_end,
        }


def _drain_replies(parser: Any, errors: Counter[str]) -> int:
    """Take every complete reply from a hiredis reader; count the failed ones by kind.

    spend answers ``[status, reply]``: anything but a fresh debit is an error, "dup"
    included (a replayed key would be a cheaper path than a real gift).
    """
    got = 0
    while True:
        r = parser.gets()
        if r is False:
            return got
        got += 1
        if isinstance(r, Exception):
            errors[str(r)[:40]] += 1
        elif isinstance(r, list) and r and isinstance(r[0], bytes) and r[0] != b"ok":
            errors[r[0].decode(errors="replace")] += 1


def _resp(parts: list[str]) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        b = p.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)
