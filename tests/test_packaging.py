"""What `pip install .` (not editable) installs: the demo page, the Lua scripts, the
licence and one version."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import livesrv

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_the_demo_page_scripts_and_licence(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("livesrv-*.whl")
    assert wheel.name.startswith(f"livesrv-{livesrv.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    demo = {
        p.relative_to(REPO).as_posix() for p in (REPO / "client_demo").rglob("*") if p.is_file()
    }
    assert demo, "the repository has a demo page"
    assert {f"livesrv/{name}" for name in demo} <= names
    lua = {p.name for p in (REPO / "livesrv" / "store" / "lua").glob("*.lua")}
    assert {f"livesrv/store/lua/{name}" for name in lua} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_version_flag_prints_the_package_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "livesrv", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"livesrv {livesrv.__version__}"
