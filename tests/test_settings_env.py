"""Sans-I/O tests of :class:`livesrv.settings.Settings` built from an environment mapping:
defaults, parsing of each type, overrides, frozen values.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from livesrv.settings import Settings


def test_settings_defaults() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.http_port) == ("127.0.0.1", 8765, 8080)
    assert s.data_dir == Path("./livesrv-data") and s.redis_url is None
    assert s.max_frame == 64 * 1024 and s.hello_timeout == 10.0
    assert s.hold_seconds == 72 * 3600 and s.day_limit == 500_000
    assert s.min_withdrawal == 2000 and not s.demo
    assert s.hold_ms == s.hold_seconds * 1000


def test_settings_from_env_parses_each_type() -> None:
    s = Settings.from_env(
        {
            "LIVESRV_PORT": "9001",
            "LIVESRV_HOST": "0.0.0.0",
            "LIVESRV_DATA_DIR": "/var/lib/x",
            "LIVESRV_REDIS_URL": "redis://h:1/0",
            "LIVESRV_HELLO_TIMEOUT": "2.5",
            "LIVESRV_SETTLE": "off",
            "LIVESRV_CATALOG": "cat.json",
            "LIVESRV_HTTP_PORT": "",  # empty means unset
            "OTHER_PORT": "1",
        }
    )
    assert s.port == 9001 and s.host == "0.0.0.0"
    assert s.data_dir == Path("/var/lib/x") and s.redis_url == "redis://h:1/0"
    assert s.hello_timeout == 2.5 and s.settle is False
    assert s.catalog == Path("cat.json") and s.http_port == 8080


@pytest.mark.parametrize("raw", ["1", "true", "YES", "on"])
def test_settings_bool_true(raw: str) -> None:
    assert Settings.from_env({"LIVESRV_DEMO": raw}).demo is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off"])
def test_settings_bool_false(raw: str) -> None:
    assert Settings.from_env({"LIVESRV_DEMO": raw}).demo is False


@pytest.mark.parametrize(
    ("name", "raw"),
    [("PORT", "eighty"), ("PORT", "1.5"), ("DEMO", "maybe"), ("HELLO_TIMEOUT", "soon")],
)
def test_settings_bad_values_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"LIVESRV_{name}"):
        Settings.from_env({f"LIVESRV_{name}": raw})


def test_settings_overrides_beat_env_and_none_is_not_given() -> None:
    s = Settings.from_env({"LIVESRV_PORT": "9001"}, port=9002, host=None)
    assert s.port == 9002 and s.host == "127.0.0.1"


def test_demo_mode_holds_nothing_unless_told() -> None:
    assert Settings.from_env({"LIVESRV_DEMO": "1"}).hold_seconds == 0
    assert Settings.from_env({}, demo=True).hold_seconds == 0
    assert Settings.from_env({"LIVESRV_DEMO": "1", "LIVESRV_HOLD_SECONDS": "60"}).hold_seconds == 60
    assert Settings.from_env({}, demo=True, hold_seconds=30).hold_seconds == 30
    assert Settings.from_env({}).hold_seconds == 72 * 3600


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
