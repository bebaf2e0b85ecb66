"""The exception tree (:mod:`livesrv.errors`) against docs/protocol.md: one class per
error code, every code and close code documented.
"""

from __future__ import annotations

import re
from pathlib import Path

from livesrv import errors

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def _doc_section(title: str) -> str:
    text = DOCS.read_text()
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_error_codes_match_the_protocol() -> None:
    documented = re.findall(r"`([a-z_]+)`", _doc_section("Error codes"))
    assert len(documented) == 12  # the core contract's codes
    added = re.findall(r"^`([a-z_]+)`", _doc_section("Error codes added"), re.MULTILINE)
    assert set(errors.ERROR_CODES) == set(documented) | set(added)
    assert len(errors.ERROR_CODES) == len(set(errors.ERROR_CODES))


def test_every_code_has_one_class() -> None:
    classes: list[type[errors.LivesrvError]] = [errors.LivesrvError, *errors.BY_CODE.values()]
    assert sorted(c.code for c in classes) == sorted(errors.ERROR_CODES)
    for code, cls in errors.BY_CODE.items():
        assert cls.code == code
        assert issubclass(cls, errors.LivesrvError)
        exc = cls()
        assert exc.code == code and exc.message == cls.default_message and exc.message
        assert cls("custom").message == "custom"
    assert errors.LivesrvError().code == "internal"
    assert not issubclass(errors.StoreError, errors.LivesrvError)


def test_tree_is_listed_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    for cls in errors.BY_CODE.values():
        assert re.search(rf"{cls.__name__}\s+\"{cls.code}\"", doc), cls.__name__


def test_close_codes_match_the_protocol() -> None:
    documented = {int(n) for n in re.findall(r"\b(\d{4})\b", _doc_section("Close codes"))}
    added = {int(n) for n in re.findall(r"^(\d{4}):", _doc_section("Close codes added"), re.M)}
    cc = errors.CloseCode
    ours = {
        cc.TOO_BIG,
        cc.GOING_AWAY,
        cc.ABUSE,
        cc.UNAUTHORIZED,
        cc.HELLO_TIMEOUT,
        cc.SLOW_CONSUMER,
        cc.RATE_LIMIT,
        cc.TOO_MANY_CONNECTIONS,
        cc.KEEPALIVE_TIMEOUT,
    }
    assert documented == {1009, 1001, 4400, 4401, 4408, 4409, 4429}  # the core contract
    assert added == {4430, 1011}
    assert ours == documented | added
