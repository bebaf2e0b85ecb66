"""The store work of a hub tick, and of its presence refresh.

At each tick (``tick_ms``) the hub publishes the counters of the rooms that changed (like
totals, viewer counts, leaderboards), advances the running matches and hype trains of its
rooms, then flushes every room's batch. Every ``presence_refresh`` seconds it keeps its
viewers counted in. The functions here do the store part, given the hub's room feeds; the
rooms service (``services/rooms.py``) does the reads and writes. The fixed schedule that the
ticks and the big rooms' flush (:mod:`.big_rooms`) run on is here too (:func:`every`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from ..services import goals, rooms
from ..services.match import MatchTicker
from ..services.rooms import event
from ..store.facade import STORE_DOWN, STORE_FAILURES, Backend
from ..store.keys import RoomKeys
from .feed import RoomFeed

log = logging.getLogger(__name__)

# In a join storm a room's viewer count changes at every tick, and each change is one more
# frame to every member: sent every tick, N joiners would cost N x members frames
# (quadratic). So a node publishes a room's count at most once every members /
# VIEWER_FRAMES_PER_S seconds (at most VIEWERS_MAX_S apart): a small room's count goes out
# at the next tick, a room of 1,000 members here once a second, of 5,000 every 5 s.
VIEWER_FRAMES_PER_S = 1000
VIEWERS_MAX_S = 5.0


def viewers_interval(members: int) -> float:
    """Seconds between two viewer counts of a room with ``members`` on this node."""
    return min(VIEWERS_MAX_S, members / VIEWER_FRAMES_PER_S)


def next_due(due: float, interval: float, now: float) -> float:
    """The next time on a fixed schedule of ``interval`` after ``due``: the ticks keep
    their period whatever their own duration; a schedule that fell behind (a long flush, a
    busy loop) skips the missed times instead of bunching them."""
    due += interval
    return due if due > now else now + interval - (now - due) % interval


async def every(
    interval: float, step: Callable[[], Awaitable[None]], stopped: Callable[[], bool]
) -> None:
    """Run ``step`` every ``interval`` seconds on a fixed schedule (:func:`next_due`: its
    own duration does not stretch the period) until ``stopped()``. The loop of the hub's
    ticks and of its big rooms' flush (:mod:`.big_rooms`); ``step`` handles its own errors."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while not stopped():
        due = next_due(due, interval, loop.time())
        await asyncio.sleep(due - loop.time())
        await step()


class Ticker:
    """A hub's tick: the flush, then the store part of the tick in a task of its own.

    The flush sends what is already here and needs no store; the store part (counters,
    matches, hype trains) waits for the store, which under load or in an outage can take
    longer than a tick. It runs beside the next flushes, one at a time: a tick that finds
    the previous one still running starts none (what changed meanwhile is still flagged
    and goes into the next). A busy store so never holds back the rooms' events and the
    wallets (docs/benchmarks.md, "Third pass on issue 15").
    """

    def __init__(self, flush: Callable[[], None], refresh: Callable[[], Awaitable[None]]):
        self._flush = flush
        self._refresh = refresh
        self._task: asyncio.Task[None] | None = None

    @property
    def refreshing(self) -> bool:
        """Whether a store part is still running."""
        return self._task is not None and not self._task.done()

    async def tick(self) -> None:
        try:
            self._flush()
        except Exception:
            log.exception("hub flush failed; going on")
        if not self.refreshing:
            self._task = asyncio.get_running_loop().create_task(self._refresh_once())

    async def _refresh_once(self) -> None:
        try:
            await self._refresh()
        except asyncio.CancelledError:
            raise
        except STORE_DOWN:
            pass  # the store is away; counts go out once it is back
        except Exception:
            log.exception("hub tick failed; going on")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def refresh_counters(b: Backend, feeds: Iterable[RoomFeed]) -> None:
    """Publish the counters of the rooms that changed since the last tick.

    Two pipelined round trips per master, however many rooms there are. On a cluster the
    rooms are grouped by the master owning their slot and the groups run concurrently, so
    a master that is down delays only its own rooms (their counts and leaderboards go out
    at the first tick it is back).
    """
    groups: dict[str, list[tuple[str, RoomFeed]]] = {}
    now = time.monotonic()
    for rc in feeds:
        plan = groups.setdefault(master_of(b, rc.room), [])
        if rc.likes_local:
            plan.append(("like", rc))
        if rc.viewers_changed and now - rc.viewers_at >= viewers_interval(len(rc.members)):
            rc.viewers_changed, rc.viewers_at = False, now
            plan.append(("viewers", rc))
        if rc.top_changed:
            rc.top_changed = False
            plan.append(("top", rc))
    plans = [plan for plan in groups.values() if plan]
    if len(plans) == 1:
        await _refresh_group(b, plans[0])
        return
    await _all(_refresh_group(b, p) for p in plans)


async def _all(steps: Iterable[Awaitable[object]]) -> None:
    """Run ``steps`` at once, each to its end (one failing stops none of the others),
    then raise the first failure, if any."""
    for result in await asyncio.gather(*steps, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


def master_of(b: Backend, room: str) -> str:
    """The URL of the master owning the room's slot ("" on a standalone store, or when
    the slot map is not known yet)."""
    topology = b.topology
    if not topology.cluster:
        return ""
    with contextlib.suppress(*STORE_FAILURES):
        return topology.url_for_key(RoomKeys(room).meta)
    return ""


async def _refresh_group(b: Backend, plan: list[tuple[str, RoomFeed]]) -> None:
    """One master's share of a tick: the rooms service reads its rooms' counters and
    publishes the changes; the leaderboards come back for this node's members."""
    likes = {rc.room: rc.likes_local for kind, rc in plan if kind == "like"}
    for kind, rc in plan:
        if kind == "like":
            rc.likes_local = 0
    try:
        tops = await rooms.publish_counters(
            b,
            likes,
            [rc.room for kind, rc in plan if kind == "viewers"],
            [rc.room for kind, rc in plan if kind == "top"],
        )
    except BaseException:
        for kind, rc in plan:  # read again next tick (a like total is not re-added)
            rc.viewers_changed |= kind == "viewers"
            rc.top_changed |= kind == "top"
        raise
    for kind, rc in plan:
        if kind == "top":
            rc.pending.append(event("top", rc.room, top=tops[rc.room]))


HYPE_CHECK_S = 1.0  # how often a node looks for the end of a running hype train


async def refresh_live(b: Backend, matches: MatchTicker, feeds: Iterable[RoomFeed]) -> None:
    """-- live match, hype train --: the scores and ends of the running matches of the
    rooms here, the ends of their hype trains (services/match.py, services/goals.py)."""
    joined = [rc for rc in feeds if rc.info is not None and rc.members]
    await matches.tick([(rc.room, rc.pending) for rc in joined if rc.info and rc.info.match])
    now = time.monotonic()
    due = [  # a train's end is looked for at most once a second per room
        rc
        for rc in joined
        if rc.info is not None and rc.info.hype and now - rc.hype_checked >= HYPE_CHECK_S
    ]
    for rc in due:
        rc.hype_checked = now
    # every room's check at once: one after the other, 64 rooms with a train took 64 round
    # trips, seconds on a busy store (each check is one script in the room's own slot)
    await _all(goals.end_hype(b, rc.room) for rc in due)


async def refresh_presence(b: Backend, feeds: Mapping[str, RoomFeed]) -> None:
    """Keep this node's viewers counted in every room it has members of (one pipelined
    write), and have the next tick announce any count that changed, e.g. when the viewers
    of a node that died drop out."""
    present = {
        name: {m.listener.user for m in rc.members.values()}
        for name, rc in feeds.items()
        if rc.members
    }
    for name, count in (await rooms.refresh_presence(b, present)).items():
        rc = feeds.get(name)
        if rc is not None and count != rc.viewers:
            rc.viewers_changed = True


async def publish_viewers(b: Backend, room: str) -> None:
    """Publish the room's viewer count now (its last member here left)."""
    await rooms.publish_counters(b, {}, [room], [])
