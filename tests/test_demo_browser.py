"""The demo page in a real headless Chromium, against a real `livesrv serve --demo`.

Every test sets up its own room with its own creator and viewers (names unique to
the test), in fresh browser contexts, so no test depends on what another one did.
The server process is shared (the restart test runs its own). Every check after
an action waits for what a person would see, with a deadline: Playwright's
auto-waiting `expect(...)` or `page.wait_for_function`, never a value read once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, WebSocketRoute, expect

from tests.browser_fixtures import (
    BROWSER_MARKS,
    DESKTOP,
    PHONE,
    UPDATE_SCREENSHOTS,
    WAIT_MS,
    OpenPage,
    demo_server,
)
from tests.browser_helpers import Bystander, DemoServer, dismiss_toasts

pytestmark = BROWSER_MARKS
GIFTS = [
    "Rose", "Finger Heart", "Panda", "Rainbow Puke", "Concert", "I'm Very Rich",
    "Drama Queen", "Interstellar", "Planet", "Rocket", "Lion", "Universe",
]  # fmt: skip
TITLE = "Late night studio: lo-fi beats and a chat"

# True when the two elements' boxes share any pixel (both must be on screen).
OVERLAP_JS = """([a, b]) => {
  const x = a.getBoundingClientRect(), y = b.getBoundingClientRect();
  return !(x.right <= y.left || y.right <= x.left || x.bottom <= y.top || y.bottom <= x.top);
}"""
# True when a clamped title shows all of its text: an unclamped copy is no taller.
TITLE_UNCUT_JS = """(e) => {
  const copy = e.cloneNode(true);
  copy.style.cssText = "display: block; -webkit-line-clamp: none; overflow: visible";
  e.parentNode.append(copy);
  const whole = copy.getBoundingClientRect().height;
  copy.remove();
  return e.textContent.length > 0 && whole <= e.getBoundingClientRect().height + 1;
}"""
# True when the element is entirely inside the viewport.
IN_VIEW_JS = """(e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.left >= 0
    && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
}"""


# ---- fixtures -------------------------------------------------------------------
# (the browser, page and screenshot fixtures are in tests/browser_fixtures.py)

server = demo_server("demo-data")


# ---- page helpers ---------------------------------------------------------------


def log_in(page: Page, user: str, role: str) -> None:
    page.get_by_label("Your name").fill(user)
    page.locator(f"input[name=role][value={role}]").check()
    page.get_by_role("button", name="Enter").click()
    expect(page.get_by_test_id("me-name")).to_have_text(user)
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")


def go_live(page: Page, room: str, title: str) -> None:
    expect(page.get_by_role("heading", name="Studio", exact=True)).to_be_visible()
    page.get_by_label("Room id").fill(room)
    page.get_by_label("Title").first.fill(title)
    page.get_by_role("button", name="Go LIVE").click()
    expect(page.get_by_test_id("studio-state")).to_have_text("LIVE")
    expect(page.get_by_test_id("room-title")).to_have_text(title)


def room_card(page: Page, room: str) -> Locator:
    return page.locator(f'[data-testid=room-item][data-room="{room}"]')


def join(page: Page, room: str, title: str) -> None:
    """Click the room's card in "Live now" (the list refreshes on its own)."""
    card = room_card(page, room)
    if not card.count():
        page.get_by_role("button", name="Refresh").click()
    expect(card).to_be_visible()
    card.get_by_role("button", name=re.compile("^Join")).click()
    expect(page.get_by_test_id("room-title")).to_have_text(title)
    expect(page.locator("#live-badge")).to_be_attached()
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")


def settled_coins(page: Page) -> int:
    """The balance once the server has sent it (hello), not the placeholder."""
    balance = page.get_by_test_id("coin-balance")
    expect(balance).to_have_attribute("data-value", re.compile(r"^\d+$"))
    return int(balance.get_attribute("data-value") or "0")


def expect_coins(page: Page, value: int) -> None:
    expect(page.get_by_test_id("coin-balance")).to_have_text(f"{value:,}")


def feed(page: Page) -> Locator:
    return page.get_by_test_id("feed")


def chat_line(page: Page, text: str) -> Locator:
    return feed(page).locator("[data-kind=chat]").filter(has_text=text)


def say(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")


def error_toast(page: Page) -> Locator:
    return page.get_by_test_id("toast-error")


def gift_button(page: Page, label: str) -> Locator:
    return page.get_by_role("button", name=re.compile(rf"^Send {re.escape(label)} for"))


def wait_true(page: Page, js: str, arg: object = None) -> None:
    """Poll a JS predicate until it holds (fails at the deadline)."""
    page.wait_for_function(js, arg=arg, timeout=WAIT_MS)


@dataclass
class Scene:
    """A creator live in her own room and a viewer in it, both in the browser."""

    creator: Page
    viewer: Page
    creator_name: str
    viewer_name: str
    room: str
    title: str


def open_room(server: DemoServer, creator: str, room: str, title: str) -> None:
    """Go live over the protocol (the page's own Go LIVE is tested on its own)."""
    host = Bystander(server, creator, "creator")
    try:
        opened = host.call("room_open", room=room, title=title)
        assert opened["ok"], opened
    finally:
        host.close()


def make_scene(
    open_page: OpenPage,
    server: DemoServer,
    uid: str,
    viewer_size: ViewportSize = DESKTOP,
    title: str = TITLE,
) -> Scene:
    """Both pages start in the room, as after a reload (login and joining by hand are
    covered by test_live_card_is_whole_and_clickable_and_creator_is_told_she_is_live)."""
    names = f"maya_{uid}", f"leo_{uid}", f"maya-live-{uid}"
    open_room(server, names[0], names[2], title)
    creator = open_page(DESKTOP, server, {"user": names[0], "role": "creator", "room": names[2]})
    viewer = open_page(viewer_size, server, {"user": names[1], "role": "viewer", "room": names[2]})
    for page in (creator, viewer):
        expect(page.get_by_test_id("room-title")).to_have_text(title)
        expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(creator.get_by_test_id("studio-state")).to_have_text("LIVE")
    expect(viewer.get_by_test_id("viewer-count")).not_to_have_text("0")
    return Scene(creator, viewer, *names, title)


@pytest.fixture
def scene(open_page: OpenPage, server: DemoServer, uid: str) -> Scene:
    return make_scene(open_page, server, uid)


# ---- tests ----------------------------------------------------------------------


def test_login_page_and_icons_without_an_emoji_font(open_page: OpenPage, uid: str) -> None:
    page = open_page()
    expect(page).to_have_title(re.compile("livesrv"))
    expect(page.get_by_role("heading", name="Go LIVE or watch")).to_be_visible()
    expect(page.get_by_label("Your name")).to_be_visible()
    expect(page.get_by_role("radio", name=re.compile("Watch"))).to_be_checked()
    # The role cards carry drawn icons, not emoji.
    expect(page.locator(".role-icon svg")).to_have_count(2)
    # No secret reaches the page before login: the config is only the URL and the demo flag.
    config = page.evaluate("fetch('client.json').then(r => r.json())")
    assert set(config) >= {"ws_url", "demo"}
    assert config["demo"] is True

    # Every gift of the catalogue and every badge is a drawn SVG.
    log_in(page, f"ivy_{uid}", "viewer")
    for name in GIFTS:
        icon = gift_button(page, name).locator(".gift-icon svg")
        expect(icon).to_have_count(1)
        wait_true(page, "(e) => e.getBoundingClientRect().width >= 20", icon.element_handle())
    # Not one character of the page needs an emoji font.
    emoji = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")
    assert not emoji.search(page.content())
    expect(page.locator("#me-role svg")).to_have_count(1)


def test_live_card_is_whole_and_clickable_and_creator_is_told_she_is_live(
    open_page: OpenPage, uid: str
) -> None:
    creator, viewer = open_page(DESKTOP), open_page(DESKTOP)
    log_in(creator, f"maya_{uid}", "creator")
    go_live(creator, f"maya-live-{uid}", TITLE)
    # The creator is told she is live in her own room, not that she "joined" it.
    first = feed(creator).locator("[data-kind=system]").first
    expect(first).to_have_text("You are LIVE in your room.")
    expect(feed(creator)).not_to_contain_text("You joined")

    log_in(viewer, f"leo_{uid}", "viewer")
    card = room_card(viewer, f"maya-live-{uid}")
    if not card.count():
        viewer.get_by_role("button", name="Refresh").click()
    expect(card).to_be_visible()
    # The whole title fits (no clamp, no cut) and the viewer count is on the card.
    title = card.locator(".room-title")
    wait_true(viewer, TITLE_UNCUT_JS, title.element_handle())
    expect(card.get_by_test_id("room-viewers")).to_contain_text("watching")
    wait_true(
        viewer,
        "([v, c]) => v.getBoundingClientRect().right <= c.getBoundingClientRect().right",
        [card.get_by_test_id("room-viewers").element_handle(), card.element_handle()],
    )
    expect(card.get_by_role("button")).to_have_attribute("title", re.compile(re.escape(TITLE)))
    # A click on the title (not on a small button) joins.
    title.click()
    expect(viewer.get_by_test_id("room-title")).to_have_text(TITLE)
    expect(feed(viewer).locator("[data-kind=system]").first).to_have_text(
        f"You joined maya_{uid}'s LIVE."
    )
    expect(card.get_by_role("button")).to_be_disabled()
    expect(card).to_contain_text("Watching")
    expect(viewer.get_by_test_id("viewer-count")).not_to_have_text("0")
    expect(creator.get_by_test_id("viewer-count")).not_to_have_text("0")
    expect(gift_button(viewer, "Rose")).to_contain_text("1")
    expect(gift_button(viewer, "Lion")).to_contain_text("29,999")


def test_viewer_chats_likes_and_reads_errors(scene: Scene) -> None:
    creator, viewer = scene.creator, scene.viewer
    say(viewer, "hi Maya! 👋")
    expect(chat_line(creator, "hi Maya! 👋")).to_contain_text(scene.viewer_name)
    expect(chat_line(viewer, "hi Maya! 👋")).to_have_count(1)

    expect(creator.get_by_test_id("like-count")).to_have_text("0")
    like = viewer.get_by_role("button", name="Like", exact=True)
    for _ in range(3):
        like.click()
    expect(creator.get_by_test_id("like-count")).to_have_text("3")
    expect(viewer.get_by_test_id("like-count")).to_have_text("3")
    errors_are_readable(scene)


def coins_and_a_rose_streak(scene: Scene) -> None:
    creator, viewer, who = scene.creator, scene.viewer, scene.viewer_name
    start = settled_coins(viewer)
    viewer.get_by_role("button", name=re.compile(r"^Buy 6,607 coins")).click()
    expect_coins(viewer, start + 6607)
    viewer.get_by_role("button", name=re.compile(r"^Buy 330 coins")).click()
    expect_coins(viewer, start + 6607 + 330)
    expect(viewer.get_by_test_id("wallet-coins")).to_have_text(f"{start + 6607 + 330:,}")
    toast = viewer.get_by_test_id("toast-success").filter(has_text="+330 coins")
    expect(toast).to_be_visible()

    rose = gift_button(viewer, "Rose")
    for _ in range(5):
        rose.click()
    # One growing counter on both screens (it leaves a few seconds after the last tap).
    sel = f'[data-testid=streak][data-from="{who}"][data-gift=rose]'
    streak, creator_streak = viewer.locator(sel), creator.locator(sel)
    expect(streak.get_by_test_id("streak-count")).to_have_text("x5")
    expect(creator_streak.get_by_test_id("streak-count")).to_have_text("x5")
    expect(streak).to_have_count(1)
    expect(creator_streak).to_have_count(1)
    expect(streak.locator(".streak-icon svg")).to_have_count(1)
    expect_coins(viewer, start + 6607 + 330 - 5)
    gift_line = feed(creator).locator("[data-kind=gift]").filter(has_text="Rose")
    expect(gift_line).to_have_count(1)
    expect(gift_line).to_contain_text(who)
    expect(gift_line).to_contain_text("x5")
    # Top gifters on both sides, with a drawn medal.
    expect(creator.get_by_test_id("leaderboard")).to_contain_text(who)
    expect(viewer.get_by_test_id("leaderboard").locator("li").first).to_contain_text("5")
    expect(viewer.get_by_test_id("leaderboard").locator("li .rank svg")).to_have_count(1)


def test_big_gift_diamonds_withdrawal_coins_and_a_streak(scene: Scene, shots: Path) -> None:
    creator, viewer, who = scene.creator, scene.viewer, scene.viewer_name
    start = settled_coins(viewer)
    assert start >= 5000  # a fresh demo user
    gift_button(viewer, "Drama Queen").click()
    # The burst lasts about three seconds, then hides; its content stays until the next
    # one, so the checks below do not race the animation on a slow machine.
    big = creator.get_by_test_id("big-gift")
    expect(big).to_contain_text(f"{who} sent Drama Queen")
    expect(big.locator(".big-icon svg")).to_have_count(1)
    mine = viewer.get_by_test_id("big-gift")
    expect(mine).to_contain_text("Drama Queen")
    if UPDATE_SCREENSHOTS:  # the picture for the README, at full strength
        expect(mine).to_be_visible()
        dismiss_toasts(viewer)
        wait_true(viewer, "(e) => getComputedStyle(e).opacity === '1'", mine.element_handle())
        viewer.screenshot(path=str(shots / "big-gift.png"))
    expect(feed(creator).locator("[data-kind=gift][data-gift=drama_queen]")).to_contain_text(who)
    expect_coins(viewer, start - 5000)
    expect(creator.get_by_test_id("leaderboard").locator("li").first).to_contain_text("5,000")
    # Half of the coins spent on gifts become the creator's diamonds. Demo mode has no hold.
    expect(creator.get_by_test_id("diamonds-available")).to_have_text("2,500")
    expect(creator.get_by_test_id("diamonds-pending")).to_have_text("0")

    creator.get_by_label("Withdraw diamonds").fill("2000")
    creator.get_by_role("button", name="Withdraw", exact=True).click()
    expect(creator.get_by_test_id("diamonds-available")).to_have_text("500")
    expect(creator.get_by_test_id("withdrawal-list")).to_contain_text("2,000")
    expect(creator.get_by_test_id("withdrawal-list")).to_contain_text("$10.00")
    # Asking for more than is left is refused with a readable message; nothing moves.
    creator.get_by_label("Withdraw diamonds").fill("5000")
    creator.get_by_role("button", name="Withdraw", exact=True).click()
    expect(error_toast(creator).last).to_contain_text("Withdrawing")
    expect(creator.get_by_test_id("diamonds-available")).to_have_text("500")
    coins_and_a_rose_streak(scene)


def errors_are_readable(scene: Scene) -> None:
    viewer = scene.viewer
    start = settled_coins(viewer)
    assert start < 34999  # a fresh demo user cannot afford the Universe
    gift_button(viewer, "Universe").click()
    toast = error_toast(viewer).last
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("Not enough balance")
    expect_coins(viewer, start)


def test_subscriber_only_chat_badge_and_the_pinned_product(scene: Scene, uid: str) -> None:
    creator, viewer, who = scene.creator, scene.viewer, scene.viewer_name
    creator.get_by_role("switch", name="Subscriber-only chat").check()
    expect(viewer.get_by_test_id("chat-mode-note")).to_be_visible()
    box = viewer.get_by_role("textbox", name="Message")
    box.fill("can I talk?")
    box.press("Enter")
    expect(error_toast(viewer).last).to_contain_text("Not allowed")
    expect(feed(creator)).not_to_contain_text("can I talk?")

    start = settled_coins(viewer)
    name = re.compile(f"^Subscribe to @{scene.creator_name}")
    subscribe = viewer.get_by_role("button", name=name)
    expect(subscribe).to_contain_text("350")
    subscribe.click()
    expect(viewer.get_by_test_id("sub-status")).to_contain_text("Subscribed until")
    expect_coins(viewer, start - 350)
    expect(feed(creator).locator("[data-kind=sub]")).to_contain_text(who)
    # The success toast does not cover the Subscribe button.
    toast = viewer.get_by_test_id("toast-success").filter(has_text="Subscribed!")
    expect(toast).to_be_visible()
    button = viewer.locator("#subscribe-btn")
    assert not viewer.evaluate(OVERLAP_JS, [toast.element_handle(), button.element_handle()])

    say(viewer, "subscribed now")
    line = chat_line(creator, "subscribed now")
    expect(line.get_by_test_id("sub-badge")).to_have_text("SUB")
    creator.get_by_role("switch", name="Subscriber-only chat").uncheck()
    expect(viewer.get_by_test_id("chat-mode-note")).to_be_hidden()
    viewer_buys_the_pinned_product(scene, uid)


def viewer_buys_the_pinned_product(scene: Scene, uid: str) -> None:
    creator, viewer = scene.creator, scene.viewer
    creator.get_by_text("New product").click()
    creator.get_by_label("Product id").fill(f"cap-{uid}")
    creator.get_by_label("Title", exact=True).last.fill("Studio cap")
    creator.get_by_label("Price (coins)").fill("250")
    creator.get_by_label("Stock").fill("3")
    creator.get_by_label("Pin it in my room").check()
    creator.get_by_role("button", name="Create product").click()
    item = creator.get_by_test_id("product-item").filter(has_text="Studio cap")
    expect(item.get_by_role("button", name="Unpin Studio cap")).to_be_visible()

    expect(viewer.get_by_test_id("pinned-card")).to_be_visible()
    expect(viewer.get_by_test_id("pinned-title")).to_have_text("Studio cap")
    expect(viewer.get_by_test_id("pinned-price")).to_contain_text("250")
    expect(viewer.get_by_test_id("pinned-stock")).to_have_text("3 left")

    start = settled_coins(viewer)
    viewer.get_by_role("button", name="Buy Studio cap").click()
    expect(viewer.get_by_test_id("pinned-stock")).to_have_text("2 left")
    expect(creator.get_by_test_id("pinned-stock")).to_have_text("2 left")
    expect_coins(viewer, start - 250)
    expect(feed(creator).locator("[data-kind=purchase]")).to_contain_text("Studio cap")
    # The toast is in words a person reads, with no order id.
    toast = viewer.get_by_test_id("toast-success").filter(has_text="Bought 1 × Studio cap")
    expect(toast).to_be_visible()
    expect(toast).not_to_contain_text("order")


def test_restart_reconnects_and_catches_up(open_page: OpenPage, uid: str, tmp_path: Path) -> None:
    own = DemoServer(tmp_path / "restart-data")  # restarted below: not the shared server
    own.start()
    try:
        room = f"maya-live-{uid}"
        open_room(own, f"maya_{uid}", room, TITLE)
        creator = open_page(DESKTOP, own, {"user": f"maya_{uid}", "role": "creator", "room": room})
        viewer = open_page(DESKTOP, own, {"user": f"leo_{uid}", "role": "viewer", "room": room})
        for page in (creator, viewer):
            expect(page.get_by_test_id("room-title")).to_have_text(TITLE)
        restart_and_catch_up(own, creator, viewer, uid)
    finally:
        own.stop()


def restart_and_catch_up(server: DemoServer, creator: Page, viewer: Page, uid: str) -> None:
    # Hold the viewer's reconnection until someone has spoken after the restart, so
    # the page has to fetch what it missed with `join since`.
    hold = {"on": True}

    def route(ws: WebSocketRoute) -> None:
        if hold["on"]:
            ws.close()
        else:
            ws.connect_to_server()

    viewer.route_web_socket(re.compile(r"/ws$"), route)
    before = "see you on the other side"
    say(viewer, before)
    expect(chat_line(viewer, before)).to_have_count(1)

    server.stop()
    expect(viewer.get_by_test_id("conn-status")).to_contain_text(
        re.compile("Reconnecting|retrying")
    )
    expect(creator.get_by_test_id("conn-status")).not_to_have_attribute("data-state", "online")

    server.start(same_ports=True)
    friend = Bystander(server, f"zoe_{uid}")
    try:
        joined = friend.call("join", room=f"maya-live-{uid}")
        assert joined["ok"], joined
        said = friend.call("chat", room=f"maya-live-{uid}", text="you missed this while offline")
        assert said["ok"], said
        hold["on"] = False
        for page in (viewer, creator):
            expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
            missed = chat_line(page, "you missed this while offline")
            expect(missed).to_have_count(1)
            expect(missed).to_contain_text(f"zoe_{uid}")
        # Nothing already seen is shown twice.
        expect(chat_line(viewer, before)).to_have_count(1)
        # Live again: the creator's chat reaches the viewer.
        say(creator, "welcome back everyone")
        expect(chat_line(viewer, "welcome back everyone")).to_have_count(1)
        # Money still works on the new process (fresh idempotency key per click).
        start = settled_coins(viewer)
        gift_button(viewer, "Rose").click()
        expect_coins(viewer, start - 1)
    finally:
        friend.close()


def test_screenshots(open_page: OpenPage, uid: str, tmp_path: Path, shots: Path) -> None:
    # Its own server, so the pictures show this test's room and products only.
    own = DemoServer(tmp_path / "screenshot-data")
    own.start()
    try:
        take_screenshots(open_page, uid, own, shots)
    finally:
        own.stop()


def take_screenshots(open_page: OpenPage, uid: str, server: DemoServer, shots: Path) -> None:
    scene = make_scene(open_page, server, uid, title="Maya's late night studio")
    creator, viewer, who = scene.creator, scene.viewer, scene.viewer_name
    friend = Bystander(server, f"zoe_{uid}")
    try:
        assert friend.call("join", room=scene.room)["ok"]
        assert friend.call("chat", room=scene.room, text="this set is so good")["ok"]
        creator.get_by_text("New product").click()
        creator.get_by_label("Product id").fill(f"cap-{uid}")
        creator.get_by_label("Title", exact=True).last.fill("Studio cap")
        creator.get_by_label("Price (coins)").fill("250")
        creator.get_by_role("button", name="Create product").click()
        expect(viewer.get_by_test_id("pinned-title")).to_have_text("Studio cap")
        viewer.get_by_role("button", name=re.compile("^Subscribe to @")).click()
        expect(viewer.get_by_test_id("sub-status")).to_contain_text("Subscribed until")
        say(viewer, "sending roses")
        say(creator, "thank you all")
        expect(chat_line(creator, "sending roses").get_by_test_id("sub-badge")).to_have_text("SUB")
        like = viewer.get_by_role("button", name="Like", exact=True)
        for _ in range(3):
            like.click()
        expect(creator.get_by_test_id("like-count")).to_have_text("3")
        gift_button(viewer, "Rainbow Puke").click()
        expect(feed(creator).locator("[data-kind=gift][data-gift=rainbow_puke]")).to_have_count(1)
        hearts = gift_button(viewer, "Finger Heart")
        for _ in range(7):
            hearts.click()
        who_sel = f'[data-from="{who}"][data-gift=finger_heart]'
        streak = viewer.locator(f"[data-testid=streak]{who_sel}")
        expect(streak.get_by_test_id("streak-count")).to_have_text("x7")
        # The streak is one line in the feed too, counting up.
        line = feed(viewer).locator(f"[data-kind=gift]{who_sel}")
        expect(line).to_have_count(1)
        expect(line).to_contain_text("x7")
        expect(creator.get_by_test_id("leaderboard").locator("li").first).to_contain_text("135")
        expect(creator.get_by_test_id("diamonds-available")).not_to_have_text("0")
        creator.get_by_text("New product").click()  # fold the form away again
        for page in (viewer, creator):
            dismiss_toasts(page)
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.evaluate("window.scrollTo(0, 0)")
        viewer.screenshot(path=str(shots / "viewer.png"))
        creator.screenshot(path=str(shots / "creator.png"))

        # Phone width: one column, nothing wider than the screen, the gift bar at hand.
        phone = open_page(PHONE, server)
        log_in(phone, f"ana_{uid}", "viewer")
        phone.screenshot(path=str(shots / "lobby-phone.png"))
        join(phone, scene.room, "Maya's late night studio")
        expect(phone.get_by_test_id("pinned-card")).to_be_visible()
        assert friend.call("chat", room=scene.room, text="hi from the phone crowd")["ok"]
        say(phone, "greetings from my phone")
        # Subscribing further down the page: the toast stays clear of the button.
        phone.get_by_role("button", name=re.compile("^Subscribe to @")).click()
        toast = phone.get_by_test_id("toast-success").filter(has_text="Subscribed!")
        expect(toast).to_be_visible()
        button = phone.locator("#subscribe-btn")
        assert not phone.evaluate(OVERLAP_JS, [toast.element_handle(), button.element_handle()])
        dismiss_toasts(phone)
        phone.evaluate("window.scrollTo(0, 0)")
        # The gift bar is on screen under the room without scrolling; your own streak
        # at the top of the room and the gift you tap are visible together.
        rose = gift_button(phone, "Rose")
        wait_true(phone, IN_VIEW_JS, rose.element_handle())
        for _ in range(4):
            rose.click()
        mine = phone.locator(f'[data-testid=streak][data-from="ana_{uid}"]')
        expect(mine.get_by_test_id("streak-count")).to_have_text("x4")
        wait_true(phone, IN_VIEW_JS, mine.element_handle())
        wait_true(phone, IN_VIEW_JS, rose.element_handle())
        dismiss_toasts(phone)
        phone.evaluate("document.activeElement && document.activeElement.blur()")
        wait_true(phone, "document.documentElement.scrollWidth <= window.innerWidth")
        phone.screenshot(path=str(shots / "viewer-phone.png"))
    finally:
        friend.close()
    for name in ("viewer.png", "creator.png", "viewer-phone.png", "lobby-phone.png"):
        assert (shots / name).stat().st_size > 10_000, name
