"""The client library's error classes cover every code the server can answer.

The client mirrors the server's exception tree without importing it (it depends on the
wire contract only); this keeps the two from drifting apart: a code added to the server
and not to the client would reach a user as ``UnknownError``.
"""

from __future__ import annotations

from livesrv import errors as server_errors
from livesrv.client import errors as client_errors


def _server_codes() -> set[str]:
    seen: set[str] = set()
    todo: list[type[server_errors.LivesrvError]] = [server_errors.LivesrvError]
    while todo:
        cls = todo.pop()
        seen.add(cls.code)
        todo.extend(cls.__subclasses__())
    return seen


def test_every_server_error_code_has_its_client_class() -> None:
    missing = _server_codes() - set(client_errors.BY_CODE)
    assert not missing, f"codes with no client class: {sorted(missing)}"


def test_client_classes_carry_the_code_they_are_filed_under() -> None:
    for code, cls in client_errors.BY_CODE.items():
        assert cls.code == code
        assert issubclass(cls, client_errors.ProtocolError)
