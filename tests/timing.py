"""Test time constants, scaled by LIVESRV_TEST_TIME_SCALE on slow machines, and the wait
for a condition that tests poll with a deadline."""

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

SCALE = float(os.environ.get("LIVESRV_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    return seconds * SCALE


async def until(probe: Callable[[], Any], timeout: float = 15) -> Any:
    """Poll ``probe`` (sync or async) until it is truthy."""
    async with asyncio.timeout(scaled(timeout)):
        while True:
            value = probe()
            if isinstance(value, Awaitable):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.02)
