"""Sans-I/O tests of the hub's fan-out (:mod:`livesrv.realtime.hub`): ``deliver`` encodes
once per codec and filters by seq; ``coalesce`` keeps logged and newest unlogged events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from livesrv.realtime.feed import Member, coalesce, deliver
from livesrv.wire.codec import JSON, JSON_CODEC, MSGPACK, MSGPACK_CODEC, Codec
from tests.frames import unframe


@dataclass(eq=False)
class FakeListener:
    user: str
    codec: Codec
    frames: list[bytes] = field(default_factory=list)

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def messages(self) -> list[Any]:
        out = []
        for frame in self.frames:
            _, _, payload = unframe(frame)
            value = self.codec.decode(payload if self.codec.binary else payload.decode())
            out.append(value)
        return out


def _ev(name: str, seq: int | None = None, **fields: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"ev": name, "room": "r", **fields}
    if seq is not None:
        ev["seq"] = seq
    return ev


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    real = Codec.frame

    def counting(self: Codec, message: Any) -> bytes:
        counts[self.name] = counts.get(self.name, 0) + 1
        return real(self, message)

    monkeypatch.setattr(Codec, "frame", counting)
    return counts


def test_deliver_encodes_once_per_codec(encodes: dict[str, int]) -> None:
    listeners = [FakeListener(f"j{i}", JSON_CODEC) for i in range(5)]
    listeners += [FakeListener(f"m{i}", MSGPACK_CODEC) for i in range(4)]
    members = [Member(x, last_seq=1, backlog=None) for x in listeners]
    batch = [_ev("gift", 2, coins=1), _ev("like", total=3), _ev("gift", 3, coins=5)]
    assert deliver(members, batch) == 9
    assert encodes == {JSON: 1, MSGPACK: 1}
    # the very same bytes go to every socket of a codec
    assert len({id(x.frames[0]) for x in listeners[:5]}) == 1
    assert len({id(x.frames[0]) for x in listeners[5:]}) == 1
    for x in listeners:
        assert x.messages() == [batch]
    assert all(m.last_seq == 3 for m in members)


def test_deliver_single_event_is_a_map_not_a_list() -> None:
    x = FakeListener("a", MSGPACK_CODEC)
    deliver([Member(x, backlog=None)], [_ev("viewers", count=2)])
    assert x.messages() == [{"ev": "viewers", "room": "r", "count": 2}]


def test_deliver_empty_batch_sends_nothing() -> None:
    x = FakeListener("a", JSON_CODEC)
    assert deliver([Member(x, backlog=None)], []) == 0
    assert x.frames == []


def test_deliver_filters_what_a_member_already_has(encodes: dict[str, int]) -> None:
    fresh = FakeListener("fresh", JSON_CODEC)
    behind = FakeListener("behind", JSON_CODEC)
    ahead = FakeListener("ahead", JSON_CODEC)
    done = FakeListener("done", JSON_CODEC)
    members = [
        Member(fresh, last_seq=4, backlog=None),
        Member(behind, last_seq=5, backlog=None),  # has seq 5 from its replay
        Member(ahead, last_seq=6, backlog=None),
        Member(done, last_seq=9, backlog=None),
    ]
    batch = [_ev("chat", 5), _ev("viewers", count=1), _ev("chat", 6)]
    assert deliver(members, batch) == 4
    assert fresh.messages() == [batch]
    assert behind.messages() == [[batch[1], batch[2]]]
    # only the unlogged event is new to these two
    assert ahead.messages() == [batch[1]]
    assert done.messages() == [batch[1]]
    assert [m.last_seq for m in members] == [6, 6, 6, 9]
    assert encodes[JSON] == 4  # the shared frame once, plus one per filtered member


def test_deliver_skips_a_member_with_nothing_new() -> None:
    x = FakeListener("a", JSON_CODEC)
    m = Member(x, last_seq=10, backlog=None)
    assert deliver([m], [_ev("gift", 9), _ev("gift", 10)]) == 0
    assert x.frames == [] and m.last_seq == 10


def test_deliver_unlogged_only_batch_reaches_everyone() -> None:
    xs = [FakeListener("a", JSON_CODEC), FakeListener("b", JSON_CODEC)]
    members = [Member(xs[0], last_seq=0, backlog=None), Member(xs[1], last_seq=50, backlog=None)]
    assert deliver(members, [_ev("like", total=9)]) == 2
    assert [m.last_seq for m in members] == [0, 50]


def test_deliver_holds_events_for_a_member_being_synced() -> None:
    waiting = FakeListener("w", JSON_CODEC)
    live = FakeListener("l", JSON_CODEC)
    wm = Member(waiting, last_seq=0)  # backlog is a list: join still in progress
    lm = Member(live, last_seq=0, backlog=None)
    batch1 = [_ev("gift", 1)]
    batch2 = [_ev("like", total=1), _ev("gift", 2)]
    assert deliver([wm, lm], batch1) == 1
    assert deliver([wm, lm], batch2) == 1
    assert waiting.frames == [] and wm.backlog == [*batch1, *batch2]
    # once synced (as Hub.synced does) the backlog goes out, filtered by last_seq
    wm.last_seq = 1
    held, wm.backlog = wm.backlog, None
    assert deliver([wm], held) == 1
    assert waiting.messages() == [batch2]
    assert wm.last_seq == 2


def test_coalesce_keeps_logged_and_newest_unlogged() -> None:
    events = [
        _ev("like", total=1),
        _ev("gift", 1),
        _ev("like", total=2),
        _ev("viewers", count=1),
        _ev("gift", 2),
        _ev("viewers", count=3),
        _ev("top", top=[["a", 1]]),
    ]
    out = coalesce(events)
    assert out == [events[1], events[2], events[4], events[5], events[6]]
    assert [e["seq"] for e in out if "seq" in e] == [1, 2]


def test_coalesce_without_duplicates_is_unchanged() -> None:
    events = [_ev("gift", 1), _ev("like", total=1), _ev("chat", 2), _ev("viewers", count=2)]
    assert coalesce(events) == events
    assert coalesce([]) == []


def test_coalesce_many_likes_become_one() -> None:
    events = [_ev("like", total=t) for t in range(1, 101)]
    assert coalesce(events) == [events[-1]]
