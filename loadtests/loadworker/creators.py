"""Load worker commands for creators: open rooms, keep them live, report wallet events."""

from __future__ import annotations

from typing import Any

from .client import open_client
from .state import WorkerState


class CreatorCommands(WorkerState):
    """One creator connection per room, kept open; their wallet events show settlement."""

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

    async def cmd_creators_close(self) -> dict[str, Any]:
        for c in self.creators:
            if c.ws is not None:
                c.ws.close()
        self.creators = []
        return {}
