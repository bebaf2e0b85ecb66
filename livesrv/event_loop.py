"""The event loop every livesrv process runs on: uvloop where it is installed (not on
Windows), else asyncio's own. ``serve``, its ``--workers``, its settlement process and
``livesrv settle`` each call :func:`use_uvloop` before their ``asyncio.run``."""

from __future__ import annotations

import asyncio
import contextlib


def use_uvloop() -> None:
    """Make the event loops this process creates from now on uvloop's, when installed."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
