"""Per-room fan-out: one store subscription per room per node, one encode per batch.

Logged room events are published by the store scripts; every node delivers what it
receives to its local members, in seq order, with no seq skipped or repeated (a gap in
what arrives is filled from the room log). Each tick (``tick_ms``) a room's new events,
its coalesced like total, viewer count and leaderboard go out as ONE batch frame, encoded
once per codec and written to every member's socket without awaiting it. A member that
cannot keep up is cut with 4409 by :meth:`Listener.send_frame`. The store work of a tick
is :mod:`.ticks`'s; the ``wallet`` events are :mod:`.wallets`'s; the rooms with
``big_room`` members or more here are flushed in slices by :mod:`.big_rooms`, not at the tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from ..errors import NotFound, Unavailable
from ..services import joining, modrules, roomlog, rooms
from ..services.match import MatchTicker
from ..services.rooms import RoomInfo
from ..store.facade import STORE_DOWN, Backend
from ..store.keys import RoomKeys
from ..store.outage import Backoff
from ..store.pubsub import Subscription
from . import ticks
from .big_rooms import BigRoomFlush
from .feed import OPEN_END, Gap, Listener, Member, RoomFeed, deliver
from .replays import Coalescer, Events, Replays
from .wallets import WalletFanout

log = logging.getLogger(__name__)


class Hub:
    """All rooms with members on this node (a :class:`~.feed.RoomFeed` each), and the store
    subscriptions that feed them: the I/O around the feeds."""

    def __init__(self, backend: Backend) -> None:
        self.b = backend
        self.rooms: dict[str, RoomFeed] = {}
        self.users: dict[str, set[Listener]] = {}
        self._sub = Subscription(backend.url, backend.topology)
        self.wallets = WalletFanout(backend, self._sub, self.users)
        self._tasks: list[asyncio.Task[None]] = []
        self._by_channel: dict[str, str] = {}
        self._delivered = 0  # events delivered to sockets at the ticks (see delivered)
        self._resync = False  # catching up after the subscription dropped failed: retry
        self._ejecting: set[asyncio.Task[None]] = set()  # moderation: banned users leaving
        # The loops also stop on this flag: on Python 3.11 a cancellation can be lost inside
        # redis-py (asyncio.wait_for swallows it when the send completes at the same time).
        self._stopping = False
        self.matches = MatchTicker(backend)  # -- live match --
        self.replays = Replays(self._read_replay)  # join since: one read per room per batch
        self.views = Coalescer(self._read_view)  # the room part of join replies: the same
        self.big_rooms = BigRoomFlush(backend.settings, self.rooms, self._eject)

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        await self._sub.start()
        self._tasks = [
            asyncio.create_task(self._listen(), name="hub-listen"),
            asyncio.create_task(self._tick_forever(), name="hub-tick"),
            asyncio.create_task(self.big_rooms.run(lambda: self._stopping), name="hub-spread"),
            asyncio.create_task(self._presence_forever(), name="hub-presence"),
        ]

    @property
    def delivered(self) -> int:
        """Events delivered to sockets, by the ticks and the big rooms' flush (for metrics)."""
        return self._delivered + self.big_rooms.delivered

    async def stop(self) -> None:
        self._stopping = True
        self.replays.close()
        self.views.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._sub.close()

    # -- membership --------------------------------------------------------------

    def attach(self, listener: Listener) -> None:
        """A connection signed in: the user's first one here subscribes to their wallet."""
        peers = self.users.get(listener.user)
        if peers is None:
            peers = self.users[listener.user] = set()
            self.wallets.watch(listener.user)
        peers.add(listener)

    async def detach(self, listener: Listener) -> None:
        """Forget a closed connection: leave its rooms, stop its wallet events."""
        peers = self.users.get(listener.user)
        if peers is not None:
            peers.discard(listener)
            if not peers:
                del self.users[listener.user]
                self.wallets.unwatch(listener.user)
        for name in [n for n, rc in self.rooms.items() if listener in rc.members]:
            with contextlib.suppress(Exception):
                await self.leave(listener, name)

    def room_info(self, room: str) -> RoomInfo | None:
        rc = self.rooms.get(room)
        return rc.info if rc is not None else None

    def is_member(self, listener: Listener, room: str) -> bool:
        rc = self.rooms.get(room)
        return rc is not None and listener in rc.members

    async def join(
        self, listener: Listener, room: str, since: int | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Add a member and read what ``join`` returns (its moderation fields included).

        Returns:
            (result, replay): the join result, and the logged events after ``since`` that
            must be sent (after the reply) before :meth:`synced` lets live events flow.

        Raises:
            Banned: The user is banned from the room (nothing was written, not a member).
            NotFound: No such room.
        """
        rc = await self._channel(room)
        again = listener in rc.members
        member = rc.members.get(listener) or Member(listener)
        member.backlog = [] if member.backlog is None else member.backlog
        rc.add(listener, member)
        try:  # banned: refused, nothing written (a first joiner is taken out again below)
            entered = await joining.enter(self.b, room, listener.user, again=again)
        except BaseException:
            if not again:
                rc.remove(listener)
                self._forget_if_empty(rc)
            raise
        info, viewers, top = entered.info, entered.viewers, entered.top
        rc.learn(info)
        rc.viewers, rc.viewers_changed = viewers, rc.viewers_changed or not again
        replay: list[dict[str, Any]] = []
        # a since beyond the room's seq: the client saw events the store lost (a failover
        # or a restart lost its last writes); their seqs are never reused (room_event.lua)
        gap = since is not None and since > info.seq
        if since is not None and since < info.seq:
            # At most replay_limit events, the newest ones: live events follow them with no
            # hole, and the client pages the older ones with ``history`` if it wants them.
            replay, gap = await self.replays.replay(room, since)
            member.last_seq = since
        else:
            member.last_seq = info.seq
        if replay:
            member.last_seq = max(member.last_seq, replay[-1]["seq"])
        result = {
            "room": room,
            "title": info.title,
            "creator": info.creator,
            "live": info.live,
            "viewers": viewers,
            "seq": info.seq,
            "top": top,
            "pinned": info.pinned,
            "gap": gap,
            "replay_from": replay[0]["seq"] if replay else None,
            "subscribers_only": info.subscribers_only,
            "likes": info.likes,
            **entered.moderation,
        }
        return result, replay

    async def _read_replay(self, room: str, since: int) -> Events:
        """One store read for a batch of joiners (:mod:`.replays`)."""
        events, _ = await roomlog.replay(self.b, room, since, self.b.settings.replay_limit)
        return events

    async def room_view(self, room: str) -> dict[str, Any]:
        """The part of a ``join`` reply that is the same for every viewer of ``room``
        (:func:`~livesrv.services.joining.room_view`), from the room's next shared read."""
        return await self.views.get(room)

    async def _read_view(self, room: str, _since: int) -> dict[str, Any]:
        info = self.room_info(room) or await rooms.info(self.b, room)  # the newest known
        if info is None:
            raise NotFound(f"no room {room!r}")
        return await joining.room_view(self.b, room, info.pinned, info.creator)

    def synced(self, listener: Listener, room: str) -> None:
        """The join reply and replay were sent: flush what waited and go live."""
        rc = self.rooms.get(room)
        member = rc.members.get(listener) if rc else None
        if member is None or member.backlog is None:
            return
        waiting, member.backlog = member.backlog, None
        deliver([member], waiting)

    async def leave(self, listener: Listener, room: str) -> bool:
        rc = self.rooms.get(room)
        if rc is None or rc.remove(listener) is None:
            return False
        rc.viewers_changed = True
        try:  # the user's other sessions on this node keep it counted in
            if not any(peer in rc.members for peer in self.users.get(listener.user, ())):
                await rooms.exit_room(self.b, room, listener.user)
        finally:
            if not rc.members:
                rc.viewers_changed = False
                await self._publish_viewers(rc)
                self._forget_if_empty(rc)
        return True

    def add_likes(self, room: str, count: int) -> None:
        rc = self.rooms.get(room)
        if rc is not None:
            rc.likes_local += count

    # -- store subscription --------------------------------------------------------

    async def _channel(self, room: str) -> RoomFeed:
        rc = self.rooms.get(room)
        if rc is None:
            rc = self.rooms[room] = RoomFeed(room)
            channel = RoomKeys(room).channel
            self._by_channel[channel] = room
            self._sub.subscribe(channel)  # renewed by the subscription after any reconnect
        return rc

    def _forget_if_empty(self, rc: RoomFeed) -> None:
        if rc.members or self.rooms.get(rc.room) is not rc:
            return
        del self.rooms[rc.room]
        channel = RoomKeys(rc.room).channel
        self._by_channel.pop(channel, None)
        self._sub.unsubscribe(channel)

    async def _listen(self) -> None:
        queue = self._sub.queue
        backoff = Backoff()
        while not self._stopping:
            try:
                if self._resync:
                    item = None
                else:
                    item = await queue.get()
                if item is None:  # the subscription was renewed: fetch what was missed
                    self._resync = True
                    await self._resubscribe()
                    self._resync = False
                    backoff.reset()
                else:
                    await self._on_message(*item)
            except asyncio.CancelledError:
                raise
            except (*STORE_DOWN, Unavailable):  # the store is away again; catch up once back
                await asyncio.sleep(backoff.next())
            except Exception:
                log.exception("hub listener failed on a message; going on")

    async def _resubscribe(self) -> None:
        """After the store came back (the subscription renews itself): deliver the logged
        events and wallet changes published while it was away."""
        for rc in list(self.rooms.values()):
            gap = rc.gap_to_end()
            if gap is not None:
                await self._fill_gap(rc, gap)
        await self.wallets.resync()

    async def _on_message(self, channel: str, data: str) -> None:
        if self.wallets.receive(channel, data):
            return
        room = self._by_channel.get(channel)
        rc = self.rooms.get(room) if room else None
        if rc is None:
            return
        ev = orjson.loads(data)
        if "seq" not in ev:
            rc.unlogged(ev)
            return
        gap = rc.accept(ev)
        if gap is not None:
            await self._fill_gap(rc, gap)
            rc.accept(ev, filled=True)

    async def _fill_gap(self, rc: RoomFeed, gap: Gap) -> None:
        """Read a gap from the room log (at most ``replay_limit`` events, the newest) and
        give it to the feed. A node that fell further behind skips the older ones; its
        members see the seq jump and catch up with ``join since``."""
        upto = None if gap.upto >= OPEN_END else gap.upto
        limit = self.b.settings.replay_limit
        missing, skipped = await roomlog.replay(self.b, rc.room, gap.after, limit, upto)
        if skipped and missing:
            log.warning(
                "room %s: seq went from %d to %d (missed events, or a store that restarted or "
                "failed over); delivering the newest %d",
                rc.room,
                gap.after,
                missing[-1]["seq"],
                len(missing),
            )
        rc.fill(missing, gap, skipped)

    # -- ticks (the store work is ticks.py's) ---------------------------------------

    async def _tick_forever(self) -> None:
        """:meth:`flush` every ``tick_ms`` on a fixed schedule (:func:`.ticks.every`), each
        followed by the store part of the tick, which runs beside the next flushes
        (:class:`.ticks.Ticker`): a slow store never holds back the events already here."""
        ticker = ticks.Ticker(self.flush, self.refresh)
        try:
            await ticks.every(self.b.settings.tick_ms / 1000, ticker.tick, lambda: self._stopping)
        finally:
            await ticker.close()

    async def _presence_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.b.settings.presence_refresh)
            try:
                await self.refresh_presence()
            except asyncio.CancelledError:
                raise
            except (*STORE_DOWN, Unavailable):
                pass  # the store is away; the next refresh counts everyone in again
            except Exception:
                log.exception("hub presence refresh failed; going on")

    async def refresh_presence(self) -> None:
        """Keep this node's viewers counted in (see :func:`.ticks.refresh_presence`)."""
        await ticks.refresh_presence(self.b, self.rooms)

    def flush(self) -> None:
        """Send every room's batch and every waiting wallet: one write per connection (its
        rooms' batches and its wallet together). Needs no store, so events already received
        go out also while it is away or slow."""
        out: dict[Listener, list[bytes]] = {}
        self._flush_rooms(out)
        self.wallets.flush(out)
        for listener, frames in out.items():
            listener.send_frame(frames[0] if len(frames) == 1 else b"".join(frames))

    async def refresh(self) -> None:
        """The store part of a tick: publish this node's coalesced counters, advance
        matches and hype trains (:mod:`.ticks`); what they add, e.g. a new leaderboard,
        goes out at the next flush."""
        await ticks.refresh_counters(self.b, list(self.rooms.values()))
        await ticks.refresh_live(self.b, self.matches, list(self.rooms.values()))

    def _flush_rooms(self, out: dict[Listener, list[bytes]]) -> None:
        for rc in list(self.rooms.values()):
            if rc.queues is not None:
                continue  # a big room: :meth:`.BigRoomFlush.flush_slices` flushes it
            if rc.pending:
                batch = rc.take_batch()
                self._delivered += deliver(rc.members.values(), batch, out) * len(batch)
                banned = modrules.banned_in(batch)  # -- moderation --
                if banned:
                    self._eject(rc, banned)

    # -- moderation --

    def _eject(self, rc: RoomFeed, users: set[str]) -> None:
        """Remove the connections of users banned from the room (every node does it when
        the logged ``banned`` event reaches it; they were just sent that event)."""
        gone = [listener for listener in rc.members if listener.user in users]
        for listener in gone:
            rc.remove(listener)
            joined = getattr(listener, "in_rooms", None)  # the session's rooms (ops.Caller)
            if isinstance(joined, set):
                joined.discard(rc.room)
        if not gone:
            return
        rc.viewers_changed = True
        task = asyncio.get_running_loop().create_task(
            self._ejected(rc, {listener.user for listener in gone})
        )
        self._ejecting.add(task)
        task.add_done_callback(self._ejecting.discard)

    async def _ejected(self, rc: RoomFeed, users: set[str]) -> None:
        """Count the ejected users out of the room's viewers; forget a room left empty."""
        try:
            for user in users:
                await rooms.exit_room(self.b, rc.room, user)
        except Exception:  # the store is away: presence drops them within its ttl anyway
            log.warning("room %s: could not count banned users out", rc.room)
        finally:
            if not rc.members and self.rooms.get(rc.room) is rc:
                rc.viewers_changed = False
                self._forget_if_empty(rc)

    # -- end moderation --

    async def _publish_viewers(self, rc: RoomFeed) -> None:
        await ticks.publish_viewers(self.b, rc.room)
