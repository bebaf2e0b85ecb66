"""Sans-I/O tests of one room's feed (:mod:`livesrv.realtime.feed`): seqs in, batches and
gap fetches out, with no socket and no store."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson

from livesrv.realtime.feed import OPEN_END, Gap, Member, RoomFeed, deliver, drain, flush_slice
from livesrv.realtime.ticks import next_due
from livesrv.services.rooms import RoomInfo
from livesrv.wire.codec import JSON_CODEC, MSGPACK_CODEC, Codec


def info(seq: int, **over: Any) -> RoomInfo:
    base = dict(
        room="r",
        creator="alice",
        title="t",
        live=True,
        seq=seq,
        session=1,
        subscribers_only=False,
        pinned=None,
        likes=0,
    )
    return RoomInfo(**{**base, **over})


def logged(seq: int, name: str = "chat", **fields: Any) -> dict[str, Any]:
    return {"ev": name, "room": "r", "seq": seq, **fields}


def seqs(batch: list[dict[str, Any]]) -> list[int]:
    return [ev["seq"] for ev in batch if "seq" in ev]


def test_events_in_order_are_batched_once_each_and_duplicates_dropped() -> None:
    feed = RoomFeed("r")
    feed.learn(info(5))
    for s in (6, 7, 7, 5, 8):
        assert feed.accept(logged(s)) is None
    assert seqs(feed.take_batch()) == [6, 7, 8]
    assert feed.take_batch() == []
    assert feed.last_seq == 8 and feed.info is not None and feed.info.seq == 8


def test_an_event_ahead_asks_for_the_gap_and_is_accepted_after_the_fill() -> None:
    feed = RoomFeed("r")
    feed.learn(info(5))
    ahead = logged(9)
    gap = feed.accept(ahead)
    assert gap == Gap(5, 9)
    assert feed.pending == []  # nothing queued until the gap is filled
    feed.fill([logged(6), logged(7), logged(8)], gap, skipped=False)
    assert feed.accept(ahead, filled=True) is None
    assert seqs(feed.take_batch()) == [6, 7, 8, 9]


def test_an_event_after_seqs_the_store_never_held_is_delivered_with_the_jump() -> None:
    feed = RoomFeed("r")
    feed.learn(info(4))  # this node saw up to 4; a failover lost 3 and 4 and seq jumped
    jumped = logged(1_000_003)
    gap = feed.accept(jumped)
    assert gap == Gap(4, 1_000_003)
    feed.fill([], gap, skipped=False)  # the log holds nothing in between
    assert feed.accept(jumped, filled=True) is None
    assert seqs(feed.take_batch()) == [1_000_003]
    assert feed.accept(logged(1_000_004)) is None  # and on from there


def test_a_gap_the_log_no_longer_holds_whole_skips_to_the_newest_events() -> None:
    feed = RoomFeed("r")
    feed.learn(info(5))
    gap = feed.accept(logged(500))
    assert gap == Gap(5, 500)
    feed.fill([logged(s) for s in range(300, 500)], gap, skipped=True)
    assert feed.accept(logged(500), filled=True) is None
    batch = seqs(feed.take_batch())
    assert batch == list(range(300, 501))  # the seq jumps: members catch up with join since


def test_a_fill_ignores_events_outside_the_gap_and_out_of_order() -> None:
    feed = RoomFeed("r")
    feed.learn(info(5))
    gap = feed.accept(logged(8))
    assert gap is not None
    feed.fill([logged(7), logged(6), logged(8), logged(9)], gap, skipped=False)
    assert seqs(feed.pending) == [6]  # 7 came before 6; 8 and 9 are not in the gap
    assert feed.accept(logged(8), filled=True) is None  # delivered with the jump over 7
    assert feed.accept(logged(7)) is None  # too late now: already passed
    assert seqs(feed.take_batch()) == [6, 8]


def test_after_the_subscription_is_renewed_everything_after_the_last_seq_is_fetched() -> None:
    feed = RoomFeed("r")
    assert feed.gap_to_end() is None  # nothing delivered yet: nothing to catch up on
    feed.learn(info(3))
    assert feed.gap_to_end() == Gap(3, OPEN_END)


def test_events_buffered_before_the_join_read_are_dropped_when_the_read_includes_them() -> None:
    feed = RoomFeed("r")
    feed.accept(logged(4))  # arrived before the room was read: no seq yet, kept
    feed.accept(logged(6))
    feed.unlogged({"ev": "viewers", "room": "r", "count": 2})
    feed.learn(info(5))
    assert [ev.get("seq") for ev in feed.take_batch()] == [6, None]


def test_unlogged_events_are_coalesced_to_the_newest_of_each_kind() -> None:
    feed = RoomFeed("r")
    feed.learn(info(1))
    for total in (3, 9, 12):
        feed.unlogged({"ev": "like", "room": "r", "total": total})
    feed.accept(logged(2))
    feed.unlogged({"ev": "viewers", "room": "r", "count": 4})
    feed.unlogged({"ev": "viewers", "room": "r", "count": 5})
    batch = feed.take_batch()
    assert [(ev["ev"], ev.get("total", ev.get("count", ev.get("seq")))) for ev in batch] == [
        ("like", 12),
        ("chat", 2),
        ("viewers", 5),
    ]
    assert feed.viewers == 5 and feed.info is not None and feed.info.likes == 12


def test_the_cached_room_follows_its_logged_events() -> None:
    feed = RoomFeed("r")
    feed.learn(info(1, live=False, creator=None, session=0))
    feed.accept(logged(2, "room_open", title="Hello", creator="bob"))
    room = feed.info
    assert room is not None
    assert (room.live, room.title, room.creator, room.session) == (True, "Hello", "bob", 1)
    assert feed.top_changed  # a new session: a new leaderboard goes out
    feed.accept(logged(3, "pinned", product="pen"))
    assert room.pinned == "pen"
    feed.unlogged({"ev": "chat_mode", "room": "r", "subscribers_only": True})
    assert room.subscribers_only
    feed.accept(logged(4, "room_closed"))
    assert not room.live and room.seq == 4


# -- delivery: what each member's socket is sent -------------------------------------------


class Sink:
    """A listener that keeps the messages its frames hold (one WebSocket frame each)."""

    def __init__(self, user: str, codec: Codec = JSON_CODEC) -> None:
        self.user, self.codec = user, codec
        self.frames: list[Any] = []

    def send_frame(self, frame: bytes) -> None:
        n = frame[1] & 0x7F
        payload = frame[2 + {126: 2, 127: 8}.get(n, 0) :]
        message = msgpack.unpackb(payload) if self.codec.binary else orjson.loads(payload)
        self.frames.append(message if isinstance(message, list) else [message])

    def events(self) -> list[dict[str, Any]]:
        return [ev for frame in self.frames for ev in frame]


def member(user: str, seq: int = 0, codec: Codec = JSON_CODEC) -> Member:
    return Member(Sink(user, codec), last_seq=seq, backlog=None)


def sink(m: Member) -> Sink:
    assert isinstance(m.listener, Sink)
    return m.listener


def test_deliver_sends_each_member_only_what_it_has_not_seen_in_its_codec() -> None:
    fresh, ahead, slow = member("a", 5), member("b", 7, MSGPACK_CODEC), member("c", 9)
    joining = Member(Sink("d"), last_seq=6)  # backlog: still being brought up to date
    batch = [logged(6), logged(7), {"ev": "viewers", "room": "r", "count": 3}, logged(8)]
    assert deliver([fresh, ahead, slow, joining], batch) == 3
    assert seqs(sink(fresh).events()) == [6, 7, 8] and len(sink(fresh).frames) == 1
    assert seqs(sink(ahead).events()) == [8]
    assert [e["ev"] for e in sink(ahead).events()] == ["viewers", "chat"]
    assert sink(slow).events() == [batch[2]]  # nothing logged it has not seen
    assert joining.backlog == batch and sink(joining).frames == []
    assert (fresh.last_seq, ahead.last_seq, slow.last_seq) == (8, 8, 9)


def big_room(n: int, seq: int = 5) -> RoomFeed:
    feed = RoomFeed("r")
    feed.learn(info(seq))
    for i in range(n):
        m = member(f"u{i}", seq)
        feed.add(m.listener, m)
    return feed


def test_a_spread_room_sends_each_slice_its_events_once_in_order() -> None:
    feed = big_room(12)
    slices = 3
    turn = 0
    for s in range(6, 16):  # one event before each slice flush
        feed.accept(logged(s))
        turn += 1
        flush_slice(feed, turn, slices)
    for _ in range(slices):  # every slice catches up
        turn += 1
        flush_slice(feed, turn, slices)
    for m in feed.members.values():
        assert seqs(sink(m).events()) == list(range(6, 16)), m.slot
        # about one frame per slices flushes, not one per event
        assert len(sink(m).frames) <= 10 // slices + 1
    assert feed.queues is not None and not any(feed.queues)


def test_members_who_join_or_leave_a_spread_room_mid_cycle_get_exactly_their_events() -> None:
    feed = big_room(6)
    slices = 3
    feed.accept(logged(6))
    flush_slice(feed, 0, slices)  # spread from now on; slices 1 and 2 still owe event 6
    late = member("late", 6)  # joined having seen 6 (its join read the room at seq 6)
    feed.add(late.listener, late)
    leaver = next(m for m in feed.members.values() if m.slot % slices == late.slot % slices)
    if leaver is late:
        leaver = next(m for m in feed.members.values() if m is not late)
    assert feed.remove(leaver.listener) is leaver and feed.remove(leaver.listener) is None
    before = len(sink(leaver).frames)
    feed.accept(logged(7))
    for turn in range(1, 2 * slices + 1):  # two whole cycles
        flush_slice(feed, turn, slices)
    assert seqs(sink(late).events()) == [7]
    assert len(sink(leaver).frames) == before  # nothing after it left
    for m in feed.members.values():
        assert seqs(sink(m).events())[-1] == 7 and m.last_seq == 7


def test_a_slice_flush_coalesces_unlogged_events_per_slice() -> None:
    feed = big_room(4)
    for count in (1, 2, 3):
        feed.unlogged({"ev": "viewers", "room": "r", "count": count})
        flush_slice(feed, 1, 2)  # always the same slice: the other one waits
    flush_slice(feed, 2, 2)
    for m in feed.members.values():
        viewers = [e["count"] for e in sink(m).events() if e["ev"] == "viewers"]
        assert viewers == ([1, 2, 3] if m.slot % 2 == 1 else [3])  # the newest only


def test_drain_delivers_what_every_slice_waits_for_and_stops_spreading() -> None:
    feed = big_room(6)
    feed.accept(logged(6))
    flush_slice(feed, 0, 3)  # slice 0 now, slices 1 and 2 wait
    feed.accept(logged(7))  # pending, not queued yet: the ticks send it after the drain
    delivered = drain(feed)
    assert feed.queues is None and seqs(feed.pending) == [7]
    assert delivered == sum(1 for m in feed.members.values() if m.slot % 3 != 0)
    for m in feed.members.values():
        assert seqs(sink(m).events()) == [6] and m.last_seq == 6


def test_ticks_keep_a_fixed_period_and_skip_the_times_a_long_tick_missed() -> None:
    assert next_due(1.0, 0.04, 1.01) == 1.04  # on time: the next one, whatever the tick took
    later = next_due(1.0, 0.04, 1.139)  # fell behind by three periods: no burst to catch up
    assert abs(later - 1.16) < 1e-9
