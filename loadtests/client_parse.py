"""Events parsed per second: the load workers' raw client against ``livesrv.client``.

One local TCP server answers the WebSocket handshake and then writes the same prepared
bytes to each client: ``--frames`` frames, each a batch of ``--batch`` gift events (as the
hub sends a busy room's tick). Each client reads until it has seen every event; the figure
is events / wall time from the client's "go" to its last event, on one core.

    python -m loadtests.client_parse --frames 20000 --batch 10

Clients:
    raw-count   loadtests/wsclient.py counting gift events in place (the load workers' fast
                path for a joined viewer with nothing outstanding)
    raw-decode  loadtests/wsclient.py + orjson.loads of every message (the workers' slow path)
    library     livesrv.client.Client: websockets framing, decode, seq check, event buffer
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import time
from typing import Any

import msgpack
import orjson

from livesrv import client as lib
from livesrv.wire.codec import ws_frame
from loadtests import wsclient

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def build_input(frames: int, batch: int, binary: bool) -> bytes:
    out = bytearray()
    seq = 0
    for _ in range(frames):
        events = []
        for _ in range(batch):
            seq += 1
            events.append(
                {
                    "ev": "gift",
                    "room": "bench",
                    "seq": seq,
                    "from": f"user{seq % 997}",
                    "gift": "rose",
                    "count": 1,
                    "combo": seq % 7 + 1,
                    "coins": 1,
                    "streak": True,
                    "ts": 1_700_000_000_000 + seq,
                }
            )
        if binary:
            out += ws_frame(msgpack.packb(events), 0x2)
        else:
            out += ws_frame(orjson.dumps(events), 0x1)
    return bytes(out)


async def serve(blob: bytes) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:] if line)
        )
        accept = base64.b64encode(
            hashlib.sha1(fields["sec-websocket-key"].encode() + GUID).digest()
        )
        proto = fields.get("sec-websocket-protocol", "").split(",")[0].strip()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + b"Sec-WebSocket-Accept: "
            + accept
            + (f"\r\nSec-WebSocket-Protocol: {proto}".encode() if proto else b"")
            + b"\r\n\r\n"
        )
        await reader.read(1)  # the client's "go" frame: it is ready to count
        writer.write(blob)
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def run_raw(url: str, total: int, decode: bool) -> float:
    done = asyncio.get_running_loop().create_future()
    seen = 0

    def on_message(payload: bytes) -> None:
        nonlocal seen
        msg = orjson.loads(payload)
        seen += sum(1 for m in msg if "ev" in m) if isinstance(msg, list) else 1
        if seen >= total and not done.done():
            done.set_result(None)

    ws = await wsclient.connect(url, on_message=on_message if decode else None)
    t0 = time.perf_counter()
    ws.send(b"go")
    if not decode:
        ws.count_pattern = b'"ev":"gift"'
        while ws.counted < total:
            await asyncio.sleep(0.001)
    else:
        await done
    elapsed = time.perf_counter() - t0
    ws.close()
    return total / elapsed


class _Counting(lib.Client):
    def __init__(self, total: int, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.total = total
        self.seen = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _deliver(self, ev: dict[str, Any]) -> None:
        super()._deliver(ev)
        self.seen += 1
        if self.seen >= self.total and not self.done.done():
            self.done.set_result(None)


async def run_library(url: str, total: int, codec: str) -> float:
    c = _Counting(total, url, None, codec=codec, reconnect=None)
    await c.open()
    t0 = time.perf_counter()
    await c.send_raw("go")
    await c.done
    elapsed = time.perf_counter() - t0
    await c.close()
    return total / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total = args.frames * args.batch
    text = await serve(build_input(args.frames, args.batch, binary=False))
    binary = await serve(build_input(args.frames, args.batch, binary=True))
    url_text = f"ws://127.0.0.1:{text.sockets[0].getsockname()[1]}/ws"
    url_bin = f"ws://127.0.0.1:{binary.sockets[0].getsockname()[1]}/ws"
    runs = {
        "raw-count (json)": lambda: run_raw(url_text, total, decode=False),
        "raw-decode (json)": lambda: run_raw(url_text, total, decode=True),
        "library (json)": lambda: run_library(url_text, total, "json"),
        "library (msgpack)": lambda: run_library(url_bin, total, "msgpack"),
    }
    print(f"{total} events in {args.frames} frames of {args.batch}; best of {args.repeat}")
    for name, run in runs.items():
        best = max([await run() for _ in range(args.repeat)])
        print(f"{name:20} {best:>12,.0f} events/s")
    text.close()
    binary.close()


if __name__ == "__main__":
    asyncio.run(main())
