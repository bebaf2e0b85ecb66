"""Keys of one room, all in the room's slot (tag ``{r:ROOM}``): its log, presence, channel,
moderation, treasure boxes, and its side of a match, its goal and hype train."""

from __future__ import annotations

from dataclasses import dataclass

from .base import PREFIX


@dataclass(frozen=True)
class RoomKeys:
    """Keys of one room, all in the room's slot."""

    room: str

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{r:{self.room}}}"

    @property
    def meta(self) -> str:
        return f"{self.tag}:meta"

    def event_id(self, evid: str) -> str:
        """The record of a logged event id (its seq), so a retried event logs once; ``-``
        is a placeholder key for events without an id (the script then never reads it)."""
        return f"{self.tag}:ev:{evid or '-'}"

    @property
    def log(self) -> str:
        return f"{self.tag}:log"

    @property
    def top(self) -> str:
        return f"{self.tag}:top"

    @property
    def presence(self) -> str:
        """Sorted set: viewer -> last seen (store clock, ms), refreshed by each viewer's node.

        (Before 1.x a hash ``:viewers`` counted connections; it is no longer read.)
        """
        return f"{self.tag}:seen"

    @property
    def channel(self) -> str:
        return f"{self.tag}:ch"

    # -- moderation (livesrv/services/moderation.py, moderate.lua, chat_gate.lua) --

    @property
    def mods(self) -> str:
        """Set of the room's moderators (appointed by its creator)."""
        return f"{self.tag}:mods"

    @property
    def banned(self) -> str:
        """Set of the users banned from the room."""
        return f"{self.tag}:banned"

    @property
    def muted(self) -> str:
        """Hash: muted user -> until (unix ms); an entry past its time is dropped on read."""
        return f"{self.tag}:muted"

    @property
    def deleted(self) -> str:
        """Sorted set of the seqs of deleted chat lines (score = seq), trimmed with the log."""
        return f"{self.tag}:deleted"

    def slow(self, user: str) -> str:
        """A user's slow-mode mark: exists (with a ttl) while the user must wait to chat."""
        return f"{self.tag}:slow:{user}"

    # -- end moderation --

    # -- paid pins and treasure boxes (services/paid_chat.py, services/treasure.py) --

    @property
    def boxes(self) -> str:
        """Sorted set: the room's open treasure boxes -> opening time (unix ms); bounded."""
        return f"{self.tag}:boxes"

    def box(self, box: str) -> str:
        """Hash: one treasure box (dropper, coins, opens, state, claim counter, split)."""
        return f"{self.tag}:box:{box}"

    def box_claims(self, box: str) -> str:
        """Sorted set: a box's claimers -> claim order (1, 2, ...)."""
        return f"{self.tag}:boxc:{box}"

    # -- end paid pins and treasure boxes --

    # -- live match, goal, hype train (services/match.py, services/goals.py) --

    @property
    def match(self) -> str:
        """Hash: this room's side of its current match (id, other, start, ends, score,
        boost, ended); counted by room_event.lua with the gift's logging."""
        return f"{self.tag}:match"

    @property
    def match_supporters(self) -> str:
        """Sorted set: this side's supporters -> match points (current match)."""
        return f"{self.tag}:msup"

    @property
    def goal(self) -> str:
        """Hash: the room's goal (id, kind, gift, target, progress, done)."""
        return f"{self.tag}:goal"

    @property
    def hype(self) -> str:
        """Hash: the room's hype train (state, ends, cool, total, level, n)."""
        return f"{self.tag}:hype"

    @property
    def hype_recent(self) -> str:
        """Sorted set: recent gifters -> last gift (ms), to start a train."""
        return f"{self.tag}:hrec"

    @property
    def hype_contributors(self) -> str:
        """Sorted set: the running train's contributors -> coins."""
        return f"{self.tag}:hcon"

    @property
    def mechanics(self) -> list[str]:
        """KEYS 5-10 of room_event.lua (the counting of gifts and subscriptions)."""
        return [
            self.match,
            self.match_supporters,
            self.goal,
            self.hype,
            self.hype_recent,
            self.hype_contributors,
        ]

    # -- end live match, goal, hype train --
