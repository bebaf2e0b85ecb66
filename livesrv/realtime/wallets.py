"""The wallet fan-out: one store subscription per user signed in on this node.

The store scripts that move money publish the wallet's new balances on the user's wallet
channel; the latest one per user waits here and goes out to every connection of that user
at the next hub tick, as one ``wallet`` event. After the subscription dropped and came
back, the balances are read again (what was published meanwhile is gone).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..store.facade import Backend, now_ms
from ..store.pubsub import Subscription
from .feed import Listener


class WalletFanout:
    """The wallet channels of the users signed in here, and the balances waiting to go out.

    Args:
        backend: the store.
        sub: the hub's store subscription (shared with the room channels).
        users: the hub's connections by user (read, never changed here).
    """

    def __init__(
        self, backend: Backend, sub: Subscription, users: dict[str, set[Listener]]
    ) -> None:
        self.b = backend
        self._sub = sub
        self._users = users
        self._waiting: dict[str, dict[str, Any]] = {}  # user -> the newest balances
        self._channels: dict[str, str] = {}  # wallet channel -> user signed in here

    def watch(self, user: str) -> None:
        """The user's first connection here signed in: subscribe to their wallet."""
        channel = self.b.user(user).wallet_channel
        self._channels[channel] = user
        self._sub.subscribe(channel)

    def unwatch(self, user: str) -> None:
        """The user's last connection here closed: stop their wallet events."""
        channel = self.b.user(user).wallet_channel
        self._channels.pop(channel, None)
        self._waiting.pop(user, None)
        self._sub.unsubscribe(channel)

    def receive(self, channel: str, data: str) -> bool:
        """Keep a published wallet for the next flush.

        Returns:
            Whether ``channel`` is a wallet channel (the message was this fan-out's).
        """
        user = self._channels.get(channel)
        if user is None:
            return False
        w = orjson.loads(data)
        if w["user"] == user:
            self._waiting[user] = w
        return True

    async def resync(self) -> None:
        """Read the balances of every user signed in here (one pipelined round trip): the
        changes published while the subscription was away were lost."""
        users = list(self._users)
        if not users:
            return
        pipe = self.b.redis.pipeline(transaction=False)
        for user in users:
            pipe.hmget(self.b.user(user).wallet, "coins", "diamonds", "pending")
        for user, (coins, diamonds, pending) in zip(users, await pipe.execute(), strict=True):
            self._waiting[user] = {
                "user": user,
                "coins": int(coins or 0),
                "diamonds": int(diamonds or 0),
                "pending": int(pending or 0),
            }

    def flush(self, out: dict[Listener, list[bytes]] | None = None) -> None:
        """Send each waiting wallet to every connection of its user (with ``out``: add the
        frame to the connection's list there, see :func:`.feed.deliver`)."""
        if not self._waiting:
            return
        wallets, self._waiting = self._waiting, {}
        for user, w in wallets.items():
            frame_ev = {
                "ev": "wallet",
                "coins": w["coins"],
                "diamonds": w["diamonds"],
                "pending": w["pending"],
                "ts": now_ms(),
            }
            for listener in self._users.get(user, ()):
                frame = listener.codec.frame(frame_ev)
                if out is None:
                    listener.send_frame(frame)
                else:
                    out.setdefault(listener, []).append(frame)
