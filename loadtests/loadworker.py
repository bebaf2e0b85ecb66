"""Load-generating worker processes: many protocol clients per process, driven by the bench.

The parent (``bench.py``) starts several of these with ``multiprocessing`` and talks to each
over a pipe: one command at a time (a dict ``{"cmd": NAME, "args": {...}}``), one result
back. Each worker runs one event loop (uvloop when installed) holding thousands of
connections made with :mod:`loadtests.wsclient`.

Hot paths are kept cheap on purpose:
- requests are pre-encoded frames (a bytes template filled with ``%``);
- most viewers do not decode events at all: they count gift events with ``bytes.count``
  on the raw frame; one viewer in ``sample_every`` decodes every frame to record event
  latency (now - ``ts``) and check that ``seq`` has no gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from array import array
from collections import Counter
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from . import wsclient

GIFT_PATTERNS = (b'"ev":"gift"', b'"ev": "gift"')


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def now_ms() -> float:
    return time.time() * 1000.0


class OpError(Exception):
    """An error reply: ``code`` is the protocol error code."""

    def __init__(self, op: str, code: str, message: str = "") -> None:
        super().__init__(f"{op}: {code} {message}")
        self.op = op
        self.code = code


class Client:
    """One protocol session: request/reply by id, events counted or decoded."""

    __slots__ = (
        "ws",
        "pending",
        "next_id",
        "sample",
        "gifts",
        "events",
        "lat",
        "last_seq",
        "gaps",
        "dups",
        "last_recv",
        "wallet",
        "slow",
        "user",
        "room",
        "recv_by_from",
        "lat_t",
    )

    def __init__(self, *, sample: bool = False, wallet: bool = False) -> None:
        self.ws: wsclient.WSClient | None = None
        self.pending: dict[int, tuple[asyncio.Future[dict[str, Any]], float, str]] = {}
        self.next_id = 0
        self.sample = sample
        self.gifts = 0  # gift events received since the last reset
        self.events = 0  # decoded events of any kind (sampled clients only)
        self.lat: array[float] | None = array("d") if sample else None
        self.lat_t: array[float] = array("d")  # receive time of each latency sample
        # sampled viewers keep each gift event's receive time by sender, to pair the k-th
        # event from a gifter with the k-th gift that gifter sent (end-to-end latency)
        self.recv_by_from: dict[str, list[float]] = {}
        self.last_seq: dict[str, int] = {}
        self.gaps = 0
        self.dups = 0
        self.last_recv = 0.0
        self.wallet: list[tuple[float, int]] | None = [] if wallet else None
        self.slow = False
        self.user = ""
        self.room = ""

    # -- receiving ----------------------------------------------------------------------
    def on_message(self, payload: bytes) -> None:
        if not self.pending and not self.sample and self.wallet is None:
            # fast path: a joined viewer with nothing outstanding only counts gift events
            n = payload.count(GIFT_PATTERNS[0]) or payload.count(GIFT_PATTERNS[1])
            if n:
                self.gifts += n
                self.last_recv = time.time()
            elif b'"id"' in payload:
                self._decode(payload)
            return
        self._decode(payload)

    def _decode(self, payload: bytes) -> None:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        now = time.time()
        if isinstance(msg, list):
            for m in msg:
                self._one(m, now)
        else:
            self._one(msg, now)

    def _one(self, m: dict[str, Any], now: float) -> None:
        if "ev" in m:
            ev = m["ev"]
            self.events += 1
            if ev == "gift":
                self.gifts += 1
                self.last_recv = now
                if self.lat is not None:
                    if "ts" in m:
                        self.lat.append(now * 1000.0 - m["ts"])
                        self.lat_t.append(now)
                    sender = m.get("from", "")
                    times = self.recv_by_from.get(sender)
                    if times is None:
                        times = self.recv_by_from[sender] = []
                    times.append(now)
            seq = m.get("seq")
            if seq is not None and self.sample:
                room = m.get("room", "")
                last = self.last_seq.get(room)
                if last is not None:
                    if seq > last + 1:
                        self.gaps += seq - last - 1
                    elif seq <= last:
                        self.dups += 1
                self.last_seq[room] = max(seq, last or 0)
            if ev == "wallet" and self.wallet is not None:
                self.wallet.append((now, int(m.get("diamonds", 0)) + int(m.get("pending", 0))))
            return
        rid = m.get("id")
        entry = self.pending.pop(rid, None) if rid is not None else None
        if entry is not None and not entry[0].done():
            entry[0].set_result(m)

    # -- requests -----------------------------------------------------------------------
    def send_op(self, op: str, frame_payload: bytes) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """Send an already encoded request whose id is ``self.next_id`` (see :meth:`new_id`)."""
        rid = self.next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = (fut, time.perf_counter(), op)
        assert self.ws is not None
        self.ws.send(frame_payload)
        return rid, fut

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def request(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        rid = self.new_id()
        payload = orjson.dumps({"id": rid, "op": op, **args})
        _, fut = self.send_op(op, payload)
        try:
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(rid, None)
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise OpError(op, str(err.get("code")), str(err.get("message", "")))
        return reply

    def total_gifts(self) -> int:
        return self.gifts + (self.ws.counted if self.ws is not None else 0)

    def last_gift(self) -> float:
        return max(self.last_recv, self.ws.last_count if self.ws is not None else 0.0)

    def reset(self) -> None:
        if self.ws is not None:
            self.ws.counted = 0
            self.ws.last_count = 0.0
        self.gifts = 0
        self.events = 0
        if self.lat is not None:
            self.lat = array("d")
        self.lat_t = array("d")
        self.recv_by_from = {}
        self.gaps = 0
        self.dups = 0
        self.last_recv = 0.0


async def open_client(
    url: str,
    token: str,
    *,
    source_ip: str | None,
    sample: bool = False,
    wallet: bool = False,
    rcvbuf: int | None = None,
) -> tuple[Client, dict[str, Any]]:
    client = Client(sample=sample, wallet=wallet)
    client.ws = await wsclient.connect(
        url, on_message=client.on_message, source_ip=source_ip, rcvbuf=rcvbuf
    )
    hello = await client.request("hello", token=token)
    client.user = str(hello.get("user", ""))
    return client, hello


def percentiles(values: Iterable[float], qs: Iterable[float] = (50, 90, 99)) -> dict[str, float]:
    data = sorted(values)
    out: dict[str, float] = {}
    for q in qs:
        if not data:
            out[f"p{int(q)}"] = float("nan")
            continue
        k = min(len(data) - 1, max(0, int(round(q / 100.0 * (len(data) - 1)))))
        out[f"p{int(q)}"] = data[k]
    return out


class Worker:
    """Holds this process's connections and runs the parent's commands."""

    def __init__(self, pipe: Connection, index: int, source_ips: list[str]) -> None:
        self.pipe = pipe
        self.index = index
        self.source_ips = source_ips or [None]  # type: ignore[list-item]
        self._ip_i = 0
        self.viewers: list[Client] = []
        self.creators: list[Client] = []
        self.gifters: list[Client] = []
        self.errors: Counter[str] = Counter()

    def _next_ip(self) -> str | None:
        ip = self.source_ips[self._ip_i % len(self.source_ips)]
        self._ip_i += 1
        return ip

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

    # -- creators -----------------------------------------------------------------------
    async def cmd_open_rooms(self, url: str, rooms: list[tuple[str, str]]) -> dict[str, Any]:
        """Connect one creator per room (token, room), open the room, keep it connected."""
        for token, room in rooms:
            client, _ = await open_client(url, token, source_ip=self._next_ip(), wallet=True)
            client.room = room
            await client.request("room_open", room=room, title=f"bench {room}")
            self.creators.append(client)
        return {"opened": len(rooms)}

    async def cmd_wallets(self) -> dict[str, Any]:
        """The wallet events each creator received: ``{user: [(time, diamonds+pending)]}``."""
        return {"wallets": {c.user: list(c.wallet or []) for c in self.creators}}

    async def cmd_reset_wallets(self) -> dict[str, Any]:
        for c in self.creators:
            if c.wallet is not None:
                c.wallet.clear()
        return {}

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

    # -- gifters ------------------------------------------------------------------------
    async def cmd_gifters_connect(self, url: str, gifters: list[tuple[str, str]]) -> dict[str, Any]:
        """Connect gifters (token, room) and join their rooms."""
        for token, room in gifters:
            client, _ = await open_client(url, token, source_ip=self._next_ip())
            await client.request("join", room=room)
            client.room = room
            self.gifters.append(client)
        return {"gifters": len(self.gifters)}

    async def cmd_gifters_close(self) -> dict[str, Any]:
        for g in self.gifters:
            if g.ws is not None:
                g.ws.close()
        self.gifters = []
        return {}

    async def cmd_gifts_closed_loop(
        self,
        start_at: float,
        duration: float,
        gift: str = "rose",
        count: int = 1,
        tag: str = "c",
        record_acks: bool = False,
    ) -> dict[str, Any]:
        """Every gifter sends a gift, waits for its reply, repeats, until the end time.

        Returns counts, error codes, reply latencies (ms, as packed doubles) and, when
        ``record_acks``, the ack times with the room of each gift.
        """
        lat = array("d")
        errors: Counter[str] = Counter()
        acks: list[tuple[float, str]] = []
        end_at = start_at + duration
        coins_each = count

        async def loop_one(g: Client, gi: int) -> int:
            template = (
                b'{"id":%d,"op":"gift","room":"'
                + g.room.encode()
                + b'","gift":"'
                + gift.encode()
                + b'","count":'
                + str(count).encode()
                + b',"key":"'
                + f"{tag}-{self.index}-{gi}-".encode()
                + b'%d"}'
            )
            sent = 0
            while time.time() < end_at:
                rid = g.new_id()
                t0 = time.perf_counter()
                _, fut = g.send_op("gift", template % (rid, rid))
                try:
                    reply = await asyncio.wait_for(fut, 30.0)
                except TimeoutError:
                    g.pending.pop(rid, None)
                    errors["timeout"] += 1
                    continue
                t1 = time.perf_counter()
                sent += 1
                if reply.get("ok"):
                    lat.append((t1 - t0) * 1000.0)
                    if record_acks:
                        acks.append((time.time(), g.room))
                else:
                    errors[str((reply.get("error") or {}).get("code"))] += 1
            return sent

        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t_begin = time.time()
        sent = await asyncio.gather(*(loop_one(g, i) for i, g in enumerate(self.gifters)))
        t_end = time.time()
        return {
            "sent": sum(sent),
            "ok": len(lat),
            "errors": dict(errors),
            "latencies": lat.tobytes(),
            "acks": acks,
            "coins_each": coins_each,
            "t_begin": t_begin,
            "t_end": t_end,
        }

    async def cmd_gifts_rate(
        self,
        start_at: float,
        duration: float,
        rate: float,
        gift: str = "rose",
        tag: str = "r",
        drain: float = 30.0,
        chat_rate: float = 0.0,
        chat_len: int = 400,
    ) -> dict[str, Any]:
        """Open loop: gifts at a fixed total rate, round-robin over this worker's gifters.

        With ``chat_rate``, the gifters also send chat messages of ``chat_len`` characters
        at that rate (more bytes per viewer, for the slow-consumer runs).
        """
        chat_task = None
        chats: list[asyncio.Future[dict[str, Any]]] = []
        if chat_rate > 0:
            chat_task = asyncio.ensure_future(
                self._chat_rate(start_at, duration, chat_rate, chat_len, chats)
            )
        lat = array("d")
        errors: Counter[str] = Counter()
        futs: list[tuple[asyncio.Future[dict[str, Any]], float]] = []
        templates = [
            b'{"id":%d,"op":"gift","room":"'
            + g.room.encode()
            + b'","gift":"'
            + gift.encode()
            + b'","count":1,"key":"'
            + f"{tag}-{self.index}-{i}-".encode()
            + b'%d"}'
            for i, g in enumerate(self.gifters)
        ]
        total = int(rate * duration)
        sends: dict[str, list[float]] = {g.user: [] for g in self.gifters}
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t_first = time.time()
        for n in range(total):
            due = start_at + n / rate
            wait = due - time.time()
            if wait > 0.001:
                await asyncio.sleep(wait)
            g = self.gifters[n % len(self.gifters)]
            sends[g.user].append(time.time())
            rid = g.new_id()
            t0 = time.perf_counter()
            _, fut = g.send_op("gift", templates[n % len(self.gifters)] % (rid, rid))
            fut.add_done_callback(
                lambda f, t0=t0: (
                    lat.append((time.perf_counter() - t0) * 1000.0)
                    if not f.cancelled() and f.result().get("ok")
                    else None
                )
            )
            futs.append((fut, t0))
        t_last = time.time()
        if chat_task is not None:
            await chat_task
        if futs or chats:
            await asyncio.wait([f for f, _ in futs] + chats, timeout=drain)
        chats_ok = _tally(chats, errors, "chat ")
        _tally([f for f, _ in futs], errors, "")
        for g in self.gifters:
            g.pending.clear()
        return {
            "sent": total,
            "ok": len(lat),
            "errors": dict(errors),
            "latencies": lat.tobytes(),
            "sends": sends,
            "chats_ok": chats_ok,
            "t_first": t_first,
            "t_last_sent": t_last,
        }

    async def cmd_creators_close(self) -> dict[str, Any]:
        for c in self.creators:
            if c.ws is not None:
                c.ws.close()
        self.creators = []
        return {}

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

    async def _chat_rate(
        self,
        start_at: float,
        duration: float,
        rate: float,
        length: int,
        out: list[asyncio.Future[dict[str, Any]]],
    ) -> None:
        text = ("lorem ipsum dolor sit amet " * (length // 27 + 1))[:length]
        total = int(rate * duration)
        for n in range(total):
            wait = start_at + n / rate - time.time()
            if wait > 0.001:
                await asyncio.sleep(wait)
            g = self.gifters[n % len(self.gifters)]
            rid = g.new_id()
            payload = orjson.dumps({"id": rid, "op": "chat", "room": g.room, "text": text})
            out.append(g.send_op("chat", payload)[1])

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


def _tally(futs: list[asyncio.Future[dict[str, Any]]], errors: Counter[str], prefix: str) -> int:
    """Count ok replies; add each failure (error code, or timeout) to ``errors``."""
    ok = 0
    for fut in futs:
        if not fut.done():
            errors[prefix + "timeout"] += 1
        elif fut.result().get("ok"):
            ok += 1
        else:
            errors[prefix + str((fut.result().get("error") or {}).get("code"))] += 1
    return ok


def _resp(parts: list[str]) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        b = p.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def worker_main(pipe: Connection, index: int, source_ips: list[str]) -> None:
    """Entry point of a worker process."""
    raise_nofile()
    worker = Worker(pipe, index, source_ips)
    try:
        import uvloop

        uvloop.run(worker.run())
    except ImportError:
        asyncio.run(worker.run())
