"""One room's feed on one node, sans I/O: seq ordering, gaps, tick batches, coalescing.

Messages and seqs go in (:meth:`RoomFeed.accept`, :meth:`RoomFeed.unlogged`,
:meth:`RoomFeed.fill`); out come the batch to send at a tick (:meth:`RoomFeed.take_batch`,
then :func:`deliver`) and, when a logged event arrives ahead of the next seq, the range to
fetch from the room log first (:class:`Gap`). The hub (``hub.py``) does the I/O around it:
the store subscription, the log reads, the sockets. Tested with no socket
(tests/test_feed.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..services.rooms import RoomInfo
from ..wire.codec import Codec

OPEN_END = 1 << 62  # "no upper bound" for a gap fetch
SLOTS = 60  # members are dealt slots 0..59 in turn; a big room's slice is slot % slices
_slots = itertools.cycle(range(SLOTS))


class Listener(Protocol):
    """What a feed needs of a connection."""

    user: str
    codec: Codec

    def send_frame(self, frame: bytes) -> None: ...


@dataclass(eq=False, slots=True)  # one per connection per room: no __dict__
class Member:
    """One connection in one room. While ``backlog`` is a list the member is still being
    brought up to date (join/replay) and events wait there."""

    listener: Listener
    last_seq: int = 0
    backlog: list[dict[str, Any]] | None = field(default_factory=list)
    slot: int = field(default_factory=lambda: next(_slots))  # its slice in a big room


@dataclass(frozen=True)
class Gap:
    """Logged events ``after`` < seq < ``upto`` must be read from the room log (and given
    to :meth:`RoomFeed.fill`) before the event that revealed the gap is accepted."""

    after: int
    upto: int


@dataclass(eq=False)
class RoomFeed:
    """What this node holds of one room: its members, the events waiting for the next
    tick, the last seq delivered, and the counters the tick publishes."""

    room: str
    info: RoomInfo | None = None
    members: dict[Listener, Member] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int | None = None
    likes_local: int = 0
    viewers_changed: bool = False
    viewers_at: float = 0.0  # when this node last published the room's viewer count
    top_changed: bool = False
    viewers: int = 0
    hype_checked: float = 0.0  # when this node last looked for the end of a hype train
    # A big room's events waiting for each slice of its members (None: not spread)
    queues: list[list[dict[str, Any]]] | None = None
    # A spread room's members by slot, kept in step with ``members`` by :meth:`add` and
    # :meth:`remove` (None: not built; only a big room's slice flush builds it)
    slots: list[dict[Listener, Member]] | None = None

    def add(self, listener: Listener, member: Member) -> None:
        """Make ``member`` the room's member for ``listener``."""
        self.members[listener] = member
        if self.slots is not None:
            self.slots[member.slot][listener] = member

    def remove(self, listener: Listener) -> Member | None:
        """Take ``listener`` out of the room; its member, or None if it was none."""
        member = self.members.pop(listener, None)
        if member is not None and self.slots is not None:
            self.slots[member.slot].pop(listener, None)
        return member

    def slice_members(self, g: int, slices: int) -> list[Member]:
        """The members whose ``slot % slices`` is ``g``, without looking at the others."""
        if self.slots is None:
            self.slots = [{} for _ in range(SLOTS)]
            for listener, m in self.members.items():
                self.slots[m.slot][listener] = m
        slots = self.slots
        return [m for s in range(g, SLOTS, slices) for m in slots[s].values()]

    def learn(self, info: RoomInfo) -> None:
        """The room as read from the store (on a join): events already buffered that the
        read includes are dropped."""
        self.info = info
        if self.last_seq is None:
            self.last_seq = info.seq
            self.pending = [ev for ev in self.pending if "seq" not in ev or ev["seq"] > info.seq]

    def accept(self, ev: dict[str, Any], *, filled: bool = False) -> Gap | None:
        """A logged event from the store: queued if it is the next seq (or the feed has no
        seq yet), dropped if already seen; a :class:`Gap` when it is ahead (nothing queued:
        :meth:`fill` the gap, then accept it again with ``filled``: it is then queued even
        if the log did not hold every seq before it, and members see the jump)."""
        seq = ev["seq"]
        if self.last_seq is not None:
            if seq <= self.last_seq:
                return None
            if seq > self.last_seq + 1 and not filled:
                return Gap(self.last_seq, seq)
            self.last_seq = seq
        self._logged(ev)
        return None

    def fill(self, missing: list[dict[str, Any]], gap: Gap, skipped: bool) -> None:
        """The log's events for ``gap`` (at most ``replay_limit``, the newest; ``skipped``:
        older ones were left out). Members then see the seq jump over what was skipped and
        catch up with ``join since``."""
        if self.last_seq is None:
            return
        if skipped and missing:
            self.last_seq = missing[0]["seq"] - 1
        for ev in missing:
            if ev["seq"] < gap.upto and ev["seq"] == self.last_seq + 1:
                self.last_seq = ev["seq"]
                self._logged(ev)

    def gap_to_end(self) -> Gap | None:
        """Everything after the last seq (after the subscription was renewed)."""
        return None if self.last_seq is None else Gap(self.last_seq, OPEN_END)

    def unlogged(self, ev: dict[str, Any]) -> None:
        """An unlogged event (viewers, like total, chat mode): queued, coalesced at the tick."""
        name = ev["ev"]
        if name == "viewers":
            self.viewers = ev["count"]
        elif self.info is not None:
            self.info.apply_unlogged(ev)
        self.pending.append(ev)

    def take_batch(self) -> list[dict[str, Any]]:
        """What the tick sends: every logged event, the newest of each unlogged kind."""
        batch, self.pending = coalesce(self.pending), []
        return batch

    def _logged(self, ev: dict[str, Any]) -> None:
        self.pending.append(ev)
        if ev["ev"] in ("gift", "room_open"):
            self.top_changed = True
        if self.info is not None:
            self.info.apply(ev)


def deliver(
    members: Iterable[Member],
    batch: list[dict[str, Any]],
    out: dict[Listener, list[bytes]] | None = None,
) -> int:
    """Send one batch to members, encoding it once per codec. Returns frames written.

    A member's events are those with no seq or a seq above its ``last_seq``; the shared
    frame is used whenever that is the whole batch. With ``out``, each member's frame is
    added to its list there instead (the tick writes each connection's frames at once).
    """
    if not batch:
        return 0
    seqs = [ev["seq"] for ev in batch if "seq" in ev]
    # first/last: with no seq in the batch every member gets all of it and keeps its seq
    first, last = (seqs[0], seqs[-1]) if seqs else (OPEN_END, -1)
    whole = batch if len(batch) > 1 else batch[0]
    frames: dict[Codec, bytes] = {}
    common: Codec | None = None  # the codec of the first member: most have the same one
    shared = b""
    written = 0
    for m in members:  # the hot loop of fan-out: one pass per member, no call it can skip
        if m.backlog is not None:
            m.backlog.extend(batch)
            continue
        listener = m.listener
        codec = listener.codec
        seen = m.last_seq
        if seen < first:
            if codec is common:
                frame = shared
            else:
                frame = frames.get(codec) or frames.setdefault(codec, codec.frame(whole))
                if common is None:
                    common, shared = codec, frame
        else:
            mine = [ev for ev in batch if ev.get("seq", seen + 1) > seen]
            if not mine:
                continue
            frame = codec.frame(mine if len(mine) > 1 else mine[0])
        if out is None:
            listener.send_frame(frame)
        else:
            out.setdefault(listener, []).append(frame)
        written += 1
        if last > seen:
            m.last_seq = last
    return written


def flush_slice(rc: RoomFeed, turn: int, slices: int) -> tuple[int, list[dict[str, Any]]]:
    """A big room's flush, spread: one slice of its members at a time.

    The room's pending events join every slice's queue; slice ``turn % slices`` (the
    members whose ``slot % slices`` is that) gets its queue now, in one frame. Called every
    ``flush_ms / slices``, each member gets a batch every ``flush_ms`` and the room's writes
    are spread evenly over that time, instead of all of them at one tick (the last member
    of a 5,000-member room would then be the whole flush behind the first).

    Returns:
        (deliveries, events taken from the room now): the caller looks for bans in them.
    """
    fresh = rc.take_batch() if rc.pending else []
    queues = rc.queues
    if queues is None or len(queues) != slices:
        drain(rc)
        queues = rc.queues = [[] for _ in range(slices)]
    if fresh:
        for q in queues:
            q.extend(fresh)
    g = turn % slices
    batch = queues[g]
    if not batch:
        return 0, fresh
    queues[g] = []
    batch = coalesce(batch)
    return deliver(rc.slice_members(g, slices), batch) * len(batch), fresh


def drain(rc: RoomFeed) -> int:
    """Deliver what every slice of a spread room still waits for, and stop spreading it
    (the room became small, or a ban must reach the banned user before it is ejected).
    Returns deliveries."""
    queues, rc.queues = rc.queues, None
    rc.slots = None
    if not queues:
        return 0
    slices = len(queues)
    by_slice: list[list[Member]] = [[] for _ in range(slices)]
    for m in rc.members.values():
        by_slice[m.slot % slices].append(m)
    delivered = 0
    for members, batch in zip(by_slice, queues, strict=True):
        if batch:
            batch = coalesce(batch)
            delivered += deliver(members, batch) * len(batch)
    return delivered


def coalesce(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep every logged event, and only the newest of each unlogged kind."""
    newest: dict[str, int] = {}
    for i, ev in enumerate(events):
        if "seq" not in ev:
            newest[ev["ev"]] = i
    if len(newest) == sum(1 for ev in events if "seq" not in ev):
        return events
    return [ev for i, ev in enumerate(events) if "seq" in ev or newest[ev["ev"]] == i]
