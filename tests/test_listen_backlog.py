"""The listen backlog setting (``LIVESRV_LISTEN_BACKLOG``): a value the kernel caps lower
(``net.core.somaxconn``) is named in a warning at start, and the node serves either way."""

from __future__ import annotations

import logging

import pytest

from livesrv.realtime.admission import check_backlog, somaxconn
from tests.conftest import ServerFactory


async def test_a_backlog_above_somaxconn_is_warned_about_and_served(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cap = somaxconn()
    assert cap is not None and cap > 0  # Linux: /proc/sys/net/core/somaxconn
    with caplog.at_level(logging.WARNING, logger="livesrv.realtime.admission"):
        server = await make_server(listen_backlog=cap + 1)
    warned = [r.getMessage() for r in caplog.records if "somaxconn" in r.getMessage()]
    assert len(warned) == 1 and f"caps it at {cap}" in warned[0], warned
    c = await server.connect("lb_viewer")
    assert (await c.ok("wallet"))["coins"] == 0


def test_check_backlog_rules(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="livesrv.realtime.admission"):
        assert check_backlog(4096, 128) is True
        assert check_backlog(4096, 4096) is False
        assert check_backlog(4096, None) is False  # not Linux: nothing known, nothing said
    assert [r.getMessage().count("somaxconn") for r in caplog.records] == [2]
