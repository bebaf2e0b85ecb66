"""The WebSocket port's listening sockets: several per process, all on one port.

A connect storm waits in the kernel's accept queue of the listening socket until the event
loop takes each connection. One queue holds at most ``listen_backlog`` connections, and
``net.core.somaxconn`` caps that (4096 on many systems). Past it the kernel drops the
handshake's last step, and the client sends it again 1, 3, 7 ... s later: a storm that
overflows a queue takes seconds longer than one that waits in it.

So each process listens on ``listen_queues`` sockets bound to the same port
(``SO_REUSEPORT``): the kernel spreads new connections over them, and the process holds
``listen_backlog`` x ``listen_queues`` of them before any is dropped, without a change to
the kernel's settings. ``serve --workers N`` does the same in each worker.

``SO_REUSEPORT`` also lets another process of the same user bind the port. A second
``serve`` on a port already served must fail as before, not share it: :func:`claim_port`
checks that first.
"""

from __future__ import annotations

import errno
import socket
from typing import Any


def addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, tuple[Any, ...]]]:
    """Where to listen for ``host`` (a name such as ``localhost`` can be IPv4 and IPv6):
    (family, socket address) pairs, as ``asyncio``'s own servers bind them."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    out: list[tuple[socket.AddressFamily, tuple[Any, ...]]] = []
    for family, _, _, _, address in infos:
        if (family, address) not in out:
            out.append((family, address))
    return out


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with ``SO_REUSEPORT``, not yet listening (the
    first address ``host`` resolves to)."""
    family, address = addresses(host, port)[0]
    return _bound(family, address, port)


def _bound(
    family: socket.AddressFamily, address: tuple[Any, ...], port: int, *, reuseport: bool = True
) -> socket.socket:
    """A TCP socket bound to ``address`` with ``port`` in it (as asyncio binds: address
    reuse, an IPv6 socket for IPv6 only).

    Raises:
        OSError: Naming the address, worded as ``asyncio``'s servers word it.
    """
    address = address[:1] + (port,) + address[2:]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT owns no port
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:  # each family its own socket, as asyncio does
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise OSError(
            exc.errno, f"error while attempting to bind on address {address[:2]!r}: {reason}"
        ) from None
    except BaseException:
        sock.close()
        raise
    return sock


def claim_port(host: str, port: int) -> None:
    """Check that nothing listens on (host, port) yet; port 0 (any free port) needs no check.

    Raises:
        OSError: ``EADDRINUSE``, naming the address, when something does (a socket with
            ``SO_REUSEPORT`` included, which the port's own sockets would not refuse).
    """
    if port == 0:
        return
    for family, address in addresses(host, port):
        try:
            _bound(family, address, port, reuseport=False).close()
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:  # a family this kernel lacks: not in use
                raise


def listening_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """``count`` sockets listening on (host, port) for each address ``host`` resolves to,
    each with ``backlog``; with port 0, the first one's free port for all of them. An
    address of a family this kernel lacks (``EADDRNOTAVAIL``, IPv6 turned off) is skipped,
    as ``asyncio`` skips it, while another address is left to listen on.

    Raises:
        OSError: Naming the address that could not be bound.
    """
    socks: list[socket.socket] = []
    resolved = addresses(host, port)
    try:
        for i, (family, address) in enumerate(resolved):
            try:
                first = _bound(family, address, port)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL and (socks or i < len(resolved) - 1):
                    continue
                raise
            socks.append(first)
            port = first.getsockname()[1]
            for _ in range(count - 1):
                socks.append(_bound(family, address, port))
        for sock in socks:
            sock.listen(backlog)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks
