"""The fixtures of the demo page's browser tests (tests/test_demo_browser*.py).

`playwright`, `browser`, `uid`, `open_page` and `shots` are imported by tests/conftest.py, so
every browser test module gets them without naming them. The demo server is each module's
own: a module sets ``server = demo_server(...)`` (the name `server` is taken in conftest by
the protocol tests' server), and `open_page` opens its pages on that module's server.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.browser_helpers import (
    CHROMIUM_ARGS,
    TIME_SCALE,
    DemoServer,
    PageErrors,
    chromium_path,
)

CHROMIUM = chromium_path()
# Every browser test module's `pytestmark`.
BROWSER_MARKS = [
    # Outside CI a machine without a browser skips these; in CI (.ci/run installs
    # chromium) a missing browser is a failure, never a skip.
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("CI") != "true",
        reason="needs Debian's chromium (apt-get install chromium)",
    ),
    pytest.mark.timeout(int(120 * TIME_SCALE)),
]

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
# Screenshots go to docs/img/ (the README shows them) only when asked, so that a
# test run leaves the working tree clean: LIVESRV_UPDATE_SCREENSHOTS=1 pytest ...
UPDATE_SCREENSHOTS = os.environ.get("LIVESRV_UPDATE_SCREENSHOTS") == "1"
WAIT_MS = int(15_000 * TIME_SCALE)
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
SESSION_KEY = "livesrv.demo.session"  # what the page keeps across a reload (js/app.js)

expect.set_options(timeout=WAIT_MS)

# A creator page ends its LIVE when the test is over, so that other tests' room
# lists do not fill up with finished tests' rooms.
END_OWN_LIVE_JS = """async () => {
  const app = window.livesrvDemo && window.livesrvDemo.app;
  const info = app && app.roomView.info;
  if (!app || app.role !== "creator" || !info || !info.live || info.creator !== app.me()) return;
  await Promise.race([app.client.request("room_close", { room: info.room }),
    new Promise((resolve) => setTimeout(resolve, 3000))]).catch(() => {});
}"""

OpenPage = Callable[..., Page]


def demo_server(data_dir: str, env: dict[str, str] | None = None) -> object:
    """A module-scoped `server` fixture, for a module's ``server = demo_server(...)``: a
    `livesrv serve --demo` of the module's own, its data in a fresh temporary directory named
    after `data_dir`, started with `env` added to its environment."""

    @pytest.fixture(scope="module", name="server")
    def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
        srv = DemoServer(tmp_path_factory.mktemp(data_dir))
        with pytest.MonkeyPatch.context() as mp:
            for name, value in (env or {}).items():
                mp.setenv(name, value)
            srv.start()
        yield srv
        srv.stop()

    return server_fixture


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture
def uid() -> str:
    """A suffix unique to this test: its users, rooms and products carry it."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def open_page(browser: Browser, server: DemoServer) -> Iterator[OpenPage]:
    """Open pages in fresh browser contexts; close them and check for script errors."""
    opened: list[tuple[Page, PageErrors]] = []

    def _open(
        viewport: ViewportSize = DESKTOP,
        srv: DemoServer | None = None,
        session: dict[str, object] | None = None,
    ) -> Page:
        """A page; with `session` ({user, role, room}) it is already logged in (and in
        the room), the way the page resumes after a reload."""
        context = browser.new_context(viewport=viewport, base_url=(srv or server).http_url)
        if session is not None:
            data = json.dumps({**session, "active": True})
            key = json.dumps(SESSION_KEY)
            context.add_init_script(f"sessionStorage.setItem({key}, {json.dumps(data)})")
        page = context.new_page()
        opened.append((page, PageErrors(page)))
        page.goto("/")
        if session is not None:
            expect(page.get_by_test_id("me-name")).to_have_text(str(session["user"]))
        return page

    yield _open
    errors = [e for page, errs in opened for e in errs.script_errors()]
    for page, errs in opened:
        with contextlib.suppress(PlaywrightError):  # the server may be gone already
            page.evaluate(END_OWN_LIVE_JS)
        # Shown by pytest only when the test failed.
        print(f"--- page {page.url}: errors={errs.errors!r}")
        page.context.close()
    print("--- server log tail:\n" + server.log_tail(30))
    assert errors == []


def in_room(
    open_page: OpenPage,
    server: DemoServer,
    user: str,
    role: str,
    room: str,
    viewport: object = DESKTOP,
) -> Page:
    """A logged-in page already in `room` (as after a reload)."""
    page = open_page(viewport, server, {"user": user, "role": role, "room": room})
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(page.locator("#stage")).to_have_attribute("data-state", "live")
    return page


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/img/ when updating them, else a temporary dir."""
    if UPDATE_SCREENSHOTS:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path
