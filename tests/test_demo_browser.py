"""The demo page in a real headless Chromium, against a real `livesrv serve --demo`.

Two browser contexts play the two roles: a creator goes live and a viewer
joins, buys coins, sends a rose streak and a big gift, subscribes, chats and
buys the pinned product; the creator watches the gifts and the diamonds
arrive and withdraws. Then the server is restarted on the same ports and data
directory and both pages reconnect and catch up with `join since`.

The tests in this module are steps of one story and run in file order; they
share the server and the two pages. Every assertion is on what a person sees.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    ViewportSize,
    WebSocketRoute,
    expect,
    sync_playwright,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # noqa: E402

from tests.browser_helpers import (  # noqa: E402
    CHROMIUM_ARGS,
    TIME_SCALE,
    Bystander,
    DemoServer,
    chromium_path,
)

CHROMIUM = chromium_path()
pytestmark = [
    # Outside CI a machine without a browser skips these; in CI (.ci/run installs
    # chromium) a missing browser is a failure, never a skip.
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("CI") != "true",
        reason="needs Debian's chromium (apt-get install chromium)",
    ),
    pytest.mark.timeout(int(90 * TIME_SCALE)),
]

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
# Screenshots go to docs/img/ (the README shows them) only when asked, so that a
# test run leaves the working tree clean: LIVESRV_UPDATE_SCREENSHOTS=1 pytest ...
UPDATE_SCREENSHOTS = os.environ.get("LIVESRV_UPDATE_SCREENSHOTS") == "1"
WAIT_MS = int(15_000 * TIME_SCALE)
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}

RUN = uuid.uuid4().hex[:6]
CREATOR = f"maya_{RUN}"
VIEWER = f"leo_{RUN}"
ROOM = f"maya-live-{RUN}"
PRODUCT = f"maya-cap-{RUN}"

expect.set_options(timeout=WAIT_MS)


def number(text: str) -> int:
    """'1,318' -> 1318."""
    return int(re.sub(r"[^\d]", "", text) or "0")


# ---- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    srv = DemoServer(tmp_path_factory.mktemp("demo-data"))
    srv.start()
    yield srv
    srv.stop()


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


class PageErrors:
    """Uncaught page errors and console errors, to fail on broken scripts."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text}")

    def script_errors(self) -> list[str]:
        # A WebSocket refused while the server restarts is expected, not a bug.
        expected = ("WebSocket", "ERR_CONNECTION_REFUSED")
        return [e for e in self.errors if not any(x in e for x in expected)]


PAGE_ERRORS: dict[Page, PageErrors] = {}


def open_page(
    browser: Browser, server: DemoServer, viewport: ViewportSize
) -> tuple[Page, PageErrors]:
    context = browser.new_context(viewport=viewport, base_url=server.http_url)
    page = context.new_page()
    errors = PageErrors(page)
    page.goto("/")
    return page, errors


def log_in(page: Page, user: str, role: str) -> None:
    page.get_by_label("Your name").fill(user)
    page.locator(f"input[name=role][value={role}]").check()
    page.get_by_role("button", name="Enter").click()
    expect(page.get_by_test_id("me-name")).to_have_text(user)
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")


@pytest.fixture(scope="module")
def creator(browser: Browser, server: DemoServer) -> Iterator[Page]:
    page, errors = open_page(browser, server, DESKTOP)
    PAGE_ERRORS[page] = errors
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def viewer(browser: Browser, server: DemoServer) -> Iterator[Page]:
    page, errors = open_page(browser, server, DESKTOP)
    PAGE_ERRORS[page] = errors
    yield page
    page.context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/img/ when updating them, else a temporary dir."""
    if UPDATE_SCREENSHOTS:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path


@pytest.fixture(autouse=True)
def diagnostics(request: pytest.FixtureRequest, server: DemoServer) -> Iterator[None]:
    """After each test, print what the pages show; pytest shows it only on failure."""
    yield
    for name in ("viewer", "creator"):
        if name not in request.fixturenames:
            continue
        page: Page = request.getfixturevalue(name)
        try:
            toasts = page.locator("#toasts").inner_text(timeout=1000)
            status = page.get_by_test_id("conn-status").inner_text(timeout=1000)
        except PlaywrightTimeoutError:
            continue
        print(f"--- {name}: status={status!r} toasts={toasts!r}")
        print(f"    errors={PAGE_ERRORS[page].errors!r}")
    print("--- server log tail:\n" + server.log_tail(30))


def coins(page: Page) -> int:
    return number(page.get_by_test_id("coin-balance").inner_text())


def feed(page: Page) -> Locator:
    return page.get_by_test_id("feed")


def chat_line(page: Page, text: str) -> Locator:
    return feed(page).locator("[data-kind=chat]").filter(has_text=text)


def error_toast(page: Page) -> Locator:
    return page.get_by_test_id("toast-error")


def dismiss_toasts(page: Page) -> None:
    close = page.get_by_role("button", name="Dismiss message")
    for _ in range(10):
        if not close.count():
            return
        with contextlib.suppress(PlaywrightTimeoutError):  # it may go away by itself
            close.first.click(timeout=2000)


def gift_button(page: Page, label: str) -> Locator:
    return page.get_by_role("button", name=re.compile(rf"^Send {re.escape(label)} for"))


# ---- the story ------------------------------------------------------------------


def test_login_page_is_served(viewer: Page) -> None:
    expect(viewer).to_have_title(re.compile("livesrv"))
    expect(viewer.get_by_role("heading", name="Go LIVE or watch")).to_be_visible()
    expect(viewer.get_by_label("Your name")).to_be_visible()
    expect(viewer.get_by_role("radio", name=re.compile("Watch"))).to_be_checked()
    # No secret reaches the page before login: the config is only the URL and the demo flag.
    config = viewer.evaluate("fetch('client.json').then(r => r.json())")
    assert set(config) >= {"ws_url", "demo"}
    assert config["demo"] is True


def test_creator_goes_live(creator: Page) -> None:
    log_in(creator, CREATOR, "creator")
    expect(creator.get_by_role("heading", name="Studio", exact=True)).to_be_visible()
    creator.get_by_label("Room id").fill(ROOM)
    creator.get_by_label("Title").first.fill("Maya's late night studio")
    creator.get_by_role("button", name="Go LIVE").click()
    expect(creator.get_by_test_id("studio-state")).to_have_text("LIVE")
    expect(creator.get_by_test_id("room-title")).to_have_text("Maya's late night studio")
    expect(creator.get_by_role("button", name="End LIVE")).to_be_enabled()
    expect(creator.get_by_role("switch", name="Subscriber-only chat")).to_be_enabled()


def test_viewer_finds_the_room_and_joins(viewer: Page, creator: Page) -> None:
    log_in(viewer, VIEWER, "viewer")
    expect(viewer.get_by_role("heading", name="Live now", exact=True)).to_be_visible()
    room = viewer.get_by_test_id("room-item").filter(has_text="Maya's late night studio")
    if not room.count():
        viewer.get_by_role("button", name="Refresh").click()
    expect(room).to_be_visible()
    room.get_by_role("button", name=re.compile("^Join")).click()
    expect(viewer.get_by_test_id("room-title")).to_have_text("Maya's late night studio")
    expect(viewer.locator("#live-badge")).to_be_visible()
    expect(viewer.get_by_test_id("viewer-count")).not_to_have_text("0")
    # The creator sees the audience grow.
    expect(creator.get_by_test_id("viewer-count")).not_to_have_text("0")
    # The gift panel comes from the catalogue, with prices.
    expect(gift_button(viewer, "Rose")).to_contain_text("1")
    expect(gift_button(viewer, "Lion")).to_contain_text("29,999")


def test_viewer_chats_and_likes(viewer: Page, creator: Page) -> None:
    viewer.get_by_role("textbox", name="Message").fill("hi Maya! 👋")
    viewer.get_by_role("textbox", name="Message").press("Enter")
    line = feed(creator).locator("[data-kind=chat]").filter(has_text="hi Maya! 👋")
    expect(line).to_contain_text(VIEWER)
    expect(feed(viewer).locator("[data-kind=chat]").filter(has_text="hi Maya! 👋")).to_have_count(1)
    expect(viewer.get_by_role("textbox", name="Message")).to_have_value("")

    before = number(creator.get_by_test_id("like-count").inner_text())
    like = viewer.get_by_role("button", name="Like", exact=True)
    for _ in range(3):
        like.click()
    expect(creator.get_by_test_id("like-count")).to_have_text(str(before + 3))
    expect(viewer.get_by_test_id("like-count")).to_have_text(str(before + 3))


def test_viewer_buys_coins(viewer: Page) -> None:
    start = coins(viewer)
    viewer.get_by_role("button", name=re.compile(r"^Buy 6,607 coins")).click()
    expect(viewer.get_by_test_id("coin-balance")).to_have_text(f"{start + 6607:,}")
    viewer.get_by_role("button", name=re.compile(r"^Buy 330 coins")).click()
    expect(viewer.get_by_test_id("coin-balance")).to_have_text(f"{start + 6607 + 330:,}")
    expect(viewer.get_by_test_id("wallet-coins")).to_have_text(f"{start + 6607 + 330:,}")


def test_rose_streak_is_one_growing_counter(viewer: Page, creator: Page) -> None:
    start = coins(viewer)
    rose = gift_button(viewer, "Rose")
    for _ in range(5):
        rose.click()
        viewer.wait_for_timeout(120)
    streak = viewer.locator(f'[data-testid=streak][data-from="{VIEWER}"][data-gift=rose]')
    expect(streak.get_by_test_id("streak-count")).to_have_text("x5")
    expect(streak).to_have_count(1)
    expect(viewer.get_by_test_id("coin-balance")).to_have_text(f"{start - 5:,}")
    # The creator sees the same single streak, and the gifts in the feed.
    creator_streak = creator.locator(f'[data-testid=streak][data-from="{VIEWER}"][data-gift=rose]')
    expect(creator_streak.get_by_test_id("streak-count")).to_have_text("x5")
    expect(creator_streak).to_have_count(1)
    expect(feed(creator).locator("[data-kind=gift]").filter(has_text="Rose").first).to_contain_text(
        VIEWER
    )
    # Top gifters on both sides.
    expect(creator.get_by_test_id("leaderboard")).to_contain_text(VIEWER)
    expect(viewer.get_by_test_id("leaderboard").locator("li").first).to_contain_text("5")


def test_big_gift_fills_the_room_and_diamonds_arrive(
    viewer: Page, creator: Page, shots: Path
) -> None:
    start = coins(viewer)
    gift_button(viewer, "Drama Queen").click()
    big = creator.get_by_test_id("big-gift")
    expect(big).to_be_visible()
    expect(big).to_contain_text(f"{VIEWER} sent Drama Queen")
    dismiss_toasts(viewer)
    viewer.wait_for_timeout(500)  # let the burst grow in
    viewer.screenshot(path=str(shots / "big-gift.png"))
    expect(viewer.get_by_test_id("big-gift")).to_contain_text("Drama Queen")
    expect(viewer.get_by_test_id("coin-balance")).to_have_text(f"{start - 5000:,}")
    expect(creator.get_by_test_id("leaderboard").locator("li").first).to_contain_text("5,005")
    # Half of the 5,005 coins spent on gifts (5 roses + 5,000) become the creator's
    # diamonds, rounded down once over the total. Demo mode has no hold.
    expect(creator.get_by_test_id("diamonds-available")).to_have_text(f"{5005 // 2:,}")
    expect(creator.get_by_test_id("diamonds-pending")).to_have_text("0")


def test_errors_are_readable(viewer: Page) -> None:
    dismiss_toasts(viewer)
    balance = coins(viewer)
    assert balance < 34999
    gift_button(viewer, "Universe").click()
    toast = error_toast(viewer).last
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("Not enough balance")
    expect(viewer.get_by_test_id("coin-balance")).to_have_text(f"{balance:,}")


def test_subscriber_only_chat_and_badge(viewer: Page, creator: Page) -> None:
    dismiss_toasts(viewer)
    creator.get_by_role("switch", name="Subscriber-only chat").check()
    expect(viewer.get_by_test_id("chat-mode-note")).to_be_visible()
    viewer.get_by_role("textbox", name="Message").fill("can I talk?")
    viewer.get_by_role("textbox", name="Message").press("Enter")
    expect(error_toast(viewer).last).to_contain_text("Not allowed")
    expect(feed(creator)).not_to_contain_text("can I talk?")

    balance = coins(viewer)
    viewer.get_by_role("button", name=re.compile(f"^Subscribe to @{CREATOR}")).click()
    expect(viewer.get_by_test_id("sub-status")).to_contain_text("Subscribed until")
    assert coins(viewer) < balance
    expect(feed(creator).locator("[data-kind=sub]")).to_contain_text(VIEWER)

    viewer.get_by_role("textbox", name="Message").fill("subscribed now ✨")
    viewer.get_by_role("textbox", name="Message").press("Enter")
    line = feed(creator).locator("[data-kind=chat]").filter(has_text="subscribed now ✨")
    expect(line.get_by_test_id("sub-badge")).to_have_text("SUB")
    creator.get_by_role("switch", name="Subscriber-only chat").uncheck()
    expect(viewer.get_by_test_id("chat-mode-note")).to_be_hidden()


def test_viewer_buys_the_pinned_product(viewer: Page, creator: Page) -> None:
    creator.get_by_text("New product").click()
    creator.get_by_label("Product id").fill(PRODUCT)
    creator.get_by_label("Title", exact=True).last.fill("Studio cap")
    creator.get_by_label("Price (coins)").fill("250")
    creator.get_by_label("Stock").fill("3")
    creator.get_by_label("Pin it in my room").check()
    creator.get_by_role("button", name="Create product").click()
    item = creator.get_by_test_id("product-item").filter(has_text="Studio cap")
    expect(item.get_by_role("button", name="Unpin Studio cap")).to_be_visible()

    card = viewer.get_by_test_id("pinned-card")
    expect(card).to_be_visible()
    expect(viewer.get_by_test_id("pinned-title")).to_have_text("Studio cap")
    expect(viewer.get_by_test_id("pinned-price")).to_contain_text("250")
    expect(viewer.get_by_test_id("pinned-stock")).to_have_text("3 left")

    balance = coins(viewer)
    viewer.get_by_role("button", name="Buy Studio cap").click()
    expect(viewer.get_by_test_id("pinned-stock")).to_have_text("2 left")
    expect(creator.get_by_test_id("pinned-stock")).to_have_text("2 left")
    expect(viewer.get_by_test_id("coin-balance")).to_have_text(f"{balance - 250:,}")
    expect(feed(creator).locator("[data-kind=purchase]")).to_contain_text("Studio cap")


def test_creator_withdraws(creator: Page) -> None:
    available = number(creator.get_by_test_id("diamonds-available").inner_text())
    assert available >= 2000
    creator.get_by_label("Withdraw diamonds").fill("2000")
    creator.get_by_role("button", name="Withdraw", exact=True).click()
    expect(creator.get_by_test_id("diamonds-available")).to_have_text(f"{available - 2000:,}")
    expect(creator.get_by_test_id("withdrawal-list")).to_contain_text("2,000")
    expect(creator.get_by_test_id("withdrawal-list")).to_contain_text("$10.00")
    # Asking for more than is left is refused with a readable message.
    creator.get_by_label("Withdraw diamonds").fill(str(available * 10))
    creator.get_by_role("button", name="Withdraw", exact=True).click()
    expect(error_toast(creator).last).to_be_visible()
    expect(creator.get_by_test_id("diamonds-available")).to_have_text(f"{available - 2000:,}")


def test_restart_reconnects_and_catches_up(server: DemoServer, viewer: Page, creator: Page) -> None:
    # Hold the viewer's reconnection until someone has spoken after the restart, so
    # the page has to fetch what it missed with `join since`.
    hold = {"on": True}

    def route(ws: WebSocketRoute) -> None:
        if hold["on"]:
            ws.close()
        else:
            ws.connect_to_server()

    viewer.route_web_socket(re.compile(r"/ws$"), route)
    before = "hi Maya! 👋"
    expect(chat_line(viewer, before)).to_have_count(1)

    server.stop()
    expect(viewer.get_by_test_id("conn-status")).to_contain_text(
        re.compile("Reconnecting|retrying")
    )
    expect(creator.get_by_test_id("conn-status")).not_to_have_attribute("data-state", "online")

    server.start(same_ports=True)
    friend = Bystander(server, f"zoe_{RUN}")
    try:
        joined = friend.call("join", room=ROOM)
        assert joined["ok"], joined
        said = friend.call("chat", room=ROOM, text="you missed this while offline")
        assert said["ok"], said
        hold["on"] = False
        for page in (viewer, creator):
            expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
            missed = chat_line(page, "you missed this while offline")
            expect(missed).to_have_count(1)
            expect(missed).to_contain_text(f"zoe_{RUN}")
        # Nothing already seen is shown twice.
        expect(chat_line(viewer, before)).to_have_count(1)
        # Live again: the creator's chat reaches the viewer.
        creator.get_by_role("textbox", name="Message").fill("welcome back everyone")
        creator.get_by_role("textbox", name="Message").press("Enter")
        expect(chat_line(viewer, "welcome back everyone")).to_have_count(1)
        # Money still works on the new process (fresh idempotency key per click).
        balance = coins(viewer)
        gift_button(viewer, "Rose").click()
        expect(viewer.get_by_test_id("coin-balance")).to_have_text(f"{balance - 1:,}")
    finally:
        friend.close()


def test_screenshots(
    viewer: Page, creator: Page, server: DemoServer, browser: Browser, shots: Path
) -> None:
    # A finished streak leaves the room after a few seconds.
    expect(viewer.locator("[data-testid=streak][data-gift=rose]")).to_have_count(0)
    friend = Bystander(server, f"zoe_{RUN}")
    try:
        friend.call("join", room=ROOM)
        friend.call("chat", room=ROOM, text="this cap is so good 🧢")
        viewer.get_by_role("textbox", name="Message").fill("sending roses 🌹")
        viewer.get_by_role("textbox", name="Message").press("Enter")
        creator.get_by_role("textbox", name="Message").fill("thank you all 💖")
        creator.get_by_role("textbox", name="Message").press("Enter")
        for _ in range(3):
            viewer.get_by_role("button", name="Like", exact=True).click()
        hearts = gift_button(viewer, "Finger Heart")
        for _ in range(7):
            hearts.click()
            viewer.wait_for_timeout(80)
        who = f'[data-from="{VIEWER}"][data-gift=finger_heart]'
        streak = viewer.locator(f"[data-testid=streak]{who}")
        expect(streak.get_by_test_id("streak-count")).to_have_text("x7")
        # The streak is one line in the feed too, counting up.
        line = feed(viewer).locator(f"[data-kind=gift]{who}")
        expect(line).to_have_count(1)
        expect(line).to_contain_text("x7")
        creator.get_by_label("Withdraw diamonds").fill("2000")
        creator.get_by_text("New product").click()  # fold the form away again
        for page in (viewer, creator):
            dismiss_toasts(page)
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.evaluate("window.scrollTo(0, 0)")
        viewer.screenshot(path=str(shots / "viewer.png"))
        creator.screenshot(path=str(shots / "creator.png"))
    finally:
        friend.close()

    # Phone width: the same page, one column, nothing wider than the screen.
    phone, errors = open_page(browser, server, PHONE)
    try:
        log_in(phone, f"ana_{RUN}", "viewer")
        room = phone.get_by_test_id("room-item").filter(has_text="Maya's late night studio")
        expect(room).to_be_visible()
        room.get_by_role("button", name=re.compile("^Join")).click()
        expect(phone.get_by_test_id("room-title")).to_have_text("Maya's late night studio")
        expect(phone.get_by_test_id("pinned-card")).to_be_visible()
        expect(gift_button(phone, "Rose")).to_be_attached()
        friend = Bystander(server, f"zoe_{RUN}")
        try:
            friend.call("join", room=ROOM)
            friend.call("chat", room=ROOM, text="hi from the phone crowd 📱")
        finally:
            friend.close()
        phone.get_by_role("textbox", name="Message").fill("greetings from my phone")
        phone.get_by_role("textbox", name="Message").press("Enter")
        expect(feed(phone)).to_contain_text("greetings from my phone")
        phone.get_by_role("button", name="Like", exact=True).click()
        phone.evaluate("document.activeElement && document.activeElement.blur()")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        phone.screenshot(path=str(shots / "viewer-phone.png"))
        assert errors.script_errors() == []
    finally:
        phone.context.close()
    for name in ("viewer.png", "creator.png", "viewer-phone.png"):
        assert (shots / name).stat().st_size > 10_000, name


def test_no_script_errors(viewer: Page, creator: Page) -> None:
    assert PAGE_ERRORS[viewer].script_errors() == []
    assert PAGE_ERRORS[creator].script_errors() == []
