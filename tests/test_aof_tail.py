"""Cutting a store's AOF back to whole transactions after a crash (sans-I/O rule).

Each case is a file the store could leave behind when killed while writing: the rule
keeps every whole command outside a transaction and every whole ``MULTI`` ... ``EXEC``
block, and drops a block the kill cut short, wherever the cut fell in it.
"""

from __future__ import annotations

from pathlib import Path

from livesrv.store.aof_tail import last_incremental, scan


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def block(*commands: bytes) -> bytes:
    return command(b"MULTI") + b"".join(commands) + command(b"EXEC")


HEAD = command(b"SELECT", b"0") + command(b"SET", b"a", b"1")
CREDIT = block(
    command(b"HINCRBY", b"{u:fan}:wallet", b"coins", b"105"),
    command(b"XADD", b"{s:0}:ledger", b"1-1", b"t", b"credit", b"coins", b"105"),
)


def test_a_whole_file_is_kept() -> None:
    whole = HEAD + CREDIT + command(b"SET", b"b", b"2") + CREDIT
    tail = scan(whole)
    assert (tail.keep, tail.cut, tail.nested, tail.malformed) == (len(whole), 0, None, None)


def test_a_block_cut_anywhere_is_dropped_whole() -> None:
    # every length the kill could leave, from just after MULTI's first byte to inside EXEC
    for left in range(1, len(CREDIT)):
        tail = scan(HEAD + CREDIT[:left])
        assert tail.keep == len(HEAD), left
        assert tail.cut == left


def test_a_block_without_its_exec_is_dropped() -> None:
    unfinished = HEAD + CREDIT[: -len(command(b"EXEC"))]
    assert scan(unfinished).keep == len(HEAD)


def test_a_command_cut_outside_a_block_is_dropped() -> None:
    plain = command(b"SET", b"key", b"a value of some length")
    for left in range(1, len(plain)):
        assert scan(HEAD + plain[:left]).keep == len(HEAD), left


def test_values_that_look_like_commands_are_data() -> None:
    tricky = command(b"SET", b"k", command(b"EXEC") + b"\r\n*1\r\n$5\r\nMULTI")
    whole = HEAD + block(tricky) + tricky
    assert scan(whole).keep == len(whole)
    assert scan(whole[:-3]).keep == len(HEAD) + len(block(tricky))


def test_annotation_lines_are_skipped() -> None:
    stamped = HEAD + b"#TS:1795545912\r\n" + CREDIT
    assert scan(stamped).keep == len(stamped)
    assert scan(stamped[:-2]).keep == len(HEAD) + len(b"#TS:1795545912\r\n")


def test_nul_bytes_a_power_loss_left_at_the_end_are_cut_with_what_they_cut_short() -> None:
    zeros = b"\0" * 70_000  # past one chunk of the backward search
    assert scan(HEAD + CREDIT + zeros).keep == len(HEAD + CREDIT)
    assert scan(HEAD + CREDIT + zeros).cut == len(zeros)
    # a bulk whose length reaches into the NULs is cut short, not complete
    assert scan(HEAD + CREDIT[:-20] + zeros).keep == len(HEAD)
    assert scan(zeros).keep == 0


def test_a_file_an_earlier_load_cut_wrongly_is_reported_not_cut() -> None:
    # an earlier load truncated inside a block, after its first command, and the store
    # then appended its next writes behind it
    orphan = command(b"MULTI") + command(b"HINCRBY", b"w", b"coins", b"105")
    tail = scan(HEAD + orphan + command(b"SELECT", b"0") + CREDIT)
    assert tail.nested == len(HEAD + orphan + command(b"SELECT", b"0"))
    assert tail.cut == 0


def test_bytes_that_are_no_command_are_left_alone() -> None:
    junks = (b"garbage\r\n", b"garbage", b"*x\r\n", b"*0\r\n", b"*1\r\n$-5\r\nabc\r\n", b"*1\r\n:5")
    for junk in junks:
        tail = scan(HEAD + junk)
        assert tail.malformed == len(HEAD), junk
        assert tail.cut == 0


def test_the_file_the_store_appends_to_is_the_last_incremental_one(tmp_path: Path) -> None:
    aof = tmp_path / "appendonlydir"
    aof.mkdir()
    assert last_incremental(tmp_path) is None
    (aof / "appendonly.aof.manifest").write_text(
        "file appendonly.aof.2.base.rdb seq 2 type b\n"
        "file appendonly.aof.1.incr.aof seq 1 type h\n"
        "file appendonly.aof.3.incr.aof seq 3 type i\n"
        "file appendonly.aof.4.incr.aof seq 4 type i\n"
    )
    assert last_incremental(tmp_path) == aof / "appendonly.aof.4.incr.aof"
