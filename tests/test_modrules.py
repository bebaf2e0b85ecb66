"""The moderation rules with no socket and no store (livesrv/services/modrules.py)."""

from __future__ import annotations

import pytest

from livesrv.errors import BadRequest, Forbidden
from livesrv.services import modrules


def allowed(action: str, actor: str, target: str = "v", **kw: bool) -> bool:
    try:
        modrules.authorize(
            action,
            actor=actor,
            admin=kw.get("admin", False),
            creator="c",
            actor_is_mod=kw.get("actor_is_mod", False),
            target=target,
            target_is_mod=kw.get("target_is_mod", False),
        )
    except Forbidden:
        return False
    return True


@pytest.mark.parametrize("action", modrules.ACTIONS)
def test_creator_and_admin_may_do_everything_to_a_viewer(action: str) -> None:
    assert allowed(action, "c")
    assert allowed(action, "root", admin=True)


@pytest.mark.parametrize("action", modrules.ACTIONS)
def test_a_viewer_may_do_nothing(action: str) -> None:
    assert not allowed(action, "x")


def test_a_moderator_moderates_but_does_not_appoint() -> None:
    for action in ("mute", "ban", "unban", "chat_delete", "slow_mode"):
        assert allowed(action, "m", actor_is_mod=True), action
    for action in ("mod_add", "mod_remove"):
        assert not allowed(action, "m", actor_is_mod=True), action


def test_protected_targets() -> None:
    for action in ("mute", "ban"):
        assert not allowed(action, "m", "c", actor_is_mod=True)  # the creator
        assert not allowed(action, "root", "c", admin=True)
        assert not allowed(action, "m", "m2", actor_is_mod=True, target_is_mod=True)
        assert allowed(action, "c", "m2", target_is_mod=True)  # the creator may
        with pytest.raises(BadRequest):
            allowed(action, "m", "m", actor_is_mod=True)  # yourself
    assert allowed("unban", "m", "m2", actor_is_mod=True, target_is_mod=True)
    with pytest.raises(BadRequest):
        allowed("mod_add", "c", "c")  # the creator is not appointed


def test_targeted_actions_need_a_user_and_unknown_actions_are_refused() -> None:
    for action in modrules.TARGETED:
        with pytest.raises(BadRequest):
            allowed(action, "c", "")
    assert allowed("slow_mode", "c", "")
    with pytest.raises(BadRequest):
        allowed("kick", "c")


def test_values_are_range_checked() -> None:
    assert modrules.check_value("mute", 0) == 0
    assert modrules.check_value("mute", modrules.MAX_MUTE_SECONDS) == modrules.MAX_MUTE_SECONDS
    assert modrules.check_value("slow_mode", 30) == 30
    assert modrules.check_value("chat_delete", 7) == 7
    for action, value in (
        ("mute", -1),
        ("mute", modrules.MAX_MUTE_SECONDS + 1),
        ("slow_mode", modrules.MAX_SLOW_SECONDS + 1),
        ("chat_delete", 0),
    ):
        with pytest.raises(BadRequest):
            modrules.check_value(action, value)


def test_deleted_chat_lines_become_tombstones_and_seqs_stay_contiguous() -> None:
    events = [
        {"seq": 4, "ev": "gift", "room": "r", "from": "a", "ts": 1},
        {"seq": 5, "ev": "chat", "room": "r", "from": "a", "text": "rude", "ts": 2},
        {"seq": 6, "ev": "chat", "room": "r", "from": "b", "text": "fine", "ts": 3},
        {"seq": 7, "ev": "chat_deleted", "room": "r", "chat_seq": 5, "ts": 4},
    ]
    assert modrules.chats_in(events) == [5, 6]
    shown = modrules.hide_deleted(events, {5})
    assert [e["seq"] for e in shown] == [4, 5, 6, 7]
    assert shown[1] == {"ev": "deleted", "room": "r", "seq": 5, "ts": 2}
    assert shown[2] == events[2] and shown[0] == events[0]
    assert modrules.hide_deleted(events, set()) is events
    assert modrules.hide_deleted(events, {4}) == events  # only chat lines are hidden


def test_banned_in_a_batch() -> None:
    batch = [
        {"seq": 9, "ev": "banned", "user": "v1"},
        {"ev": "viewers", "count": 3},
        {"seq": 10, "ev": "unbanned", "user": "v2"},
        {"seq": 11, "ev": "banned", "user": "v3"},
    ]
    assert modrules.banned_in(batch) == {"v1", "v3"}
    assert modrules.banned_in([]) == set()


def test_messages_say_until_when() -> None:
    assert "1700000000000" in modrules.mute_message(1_700_000_000_000)
    assert "1500 ms" in modrules.slow_message(1500)
