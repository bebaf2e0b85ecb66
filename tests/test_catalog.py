"""Sans-I/O tests of the catalogue (:mod:`livesrv.catalog`): the built-in one is
docs/economy.md's, its wire form, and what a catalogue file may not say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from livesrv.catalog import Catalog

ECONOMY_PACKAGES = {
    "p65": (65, 99),
    "p330": (330, 499),
    "p660": (660, 999),
    "p1321": (1321, 1999),
    "p3303": (3303, 4999),
    "p6607": (6607, 9999),
}
ECONOMY_GIFTS = {
    "rose": (1, True),
    "finger_heart": (5, True),
    "panda": (5, True),
    "rainbow_puke": (100, False),
    "concert": (500, False),
    "im_very_rich": (1000, False),
    "drama_queen": (5000, False),
    "interstellar": (10000, False),
    "planet": (15000, False),
    "rocket": (20000, False),
    "lion": (29999, False),
    "universe": (34999, False),
}


def test_builtin_catalogue_is_economy_md() -> None:
    cat = Catalog.load()
    assert {k: (p.coins, p.cents) for k, p in cat.packages.items()} == ECONOMY_PACKAGES
    assert {k: (g.coins, g.streak) for k, g in cat.gifts.items()} == ECONOMY_GIFTS
    assert cat.streak_window_ms == 3000
    assert cat.gift_share_bps == 5000
    assert cat.diamonds_to_cents(200) == 100  # 200 diamonds = $1


def test_catalogue_wire_form() -> None:
    wire = Catalog.load().to_wire()
    assert {"gift": "rose", "coins": 1, "streak": True} in wire["gifts"]
    assert {"package": "p65", "coins": 65, "cents": 99} in wire["packages"]
    assert len(wire["gifts"]) == 12 and len(wire["packages"]) == 6


def _catalog(**change: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "packages": {"p1": {"coins": 10, "cents": 15}},
        "gifts": {"g": {"coins": 2, "streak": True}},
    }
    d.update(change)
    return d


def test_catalogue_from_dict_defaults() -> None:
    cat = Catalog.from_dict(_catalog())
    assert cat.gifts["g"].coins == 2 and cat.gifts["g"].streak
    assert cat.streak_window_ms == 3000 and cat.gift_share_bps == 5000
    assert cat.sub_prices == (350, 700, 1750)


def test_catalogue_load_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.json"
    path.write_text(json.dumps(_catalog(streak_window_ms=500, gift_share_bps=7000)))
    cat = Catalog.load(path)
    assert cat.streak_window_ms == 500 and cat.gift_share_bps == 7000
    assert set(cat.gifts) == {"g"}


@pytest.mark.parametrize(
    "bad",
    [
        {"packages": None},
        {"gifts": []},
        {"gifts": {"g": {"coins": 2}}},
        {"gifts": {"g": {"coins": 2.0, "streak": True}}},
        {"gifts": {"g": {"coins": "2", "streak": True}}},
        {"gifts": {"g": {"coins": True, "streak": True}}},
        {"gifts": {"g": {"coins": 0, "streak": True}}},
        {"gifts": {"g": {"coins": -1, "streak": True}}},
        {"packages": {"p": {"coins": 0, "cents": 1}}},
        {"packages": {"p": {"coins": 5}}},
        {"gift_share_bps": 10_001},
        {"gift_share_bps": -1},
        {"sub_share_bps": 20_000},
        {"shop_platform_bps": 0.5},
        {"streak_window_ms": "3s"},
    ],
)
def test_catalogue_validation(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid catalogue"):
        Catalog.from_dict(_catalog(**bad))


def test_catalogue_missing_sections() -> None:
    with pytest.raises(ValueError, match="invalid catalogue"):
        Catalog.from_dict({"packages": {}})
    with pytest.raises(ValueError, match="invalid catalogue"):
        Catalog.from_dict({"gifts": {}})
