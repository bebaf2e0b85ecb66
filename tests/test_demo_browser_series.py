"""The demo page's series (paid premium content) and age gates in a real headless
Chromium, against a real `livesrv serve --demo` (issue 14).

A creator publishes series from her studio, changes a price and unpublishes one; a viewer
in her room sees the series on sale with a lock and no episode links, buys one and reads
its episodes; a second viewer still sees no links. A viewer who signs in as under 18
watches and chats, and her gift and her series buy show the server's `age_restricted`
error with nothing charged. Each test has its own room and users; every check after an
action waits for what the page shows, with a deadline.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.browser_fixtures import (
    BROWSER_MARKS,
    PHONE,
    UPDATE_SCREENSHOTS,
    OpenPage,
    demo_server,
    in_room,
)
from tests.browser_helpers import Bystander, DemoServer, clean, dismiss_toasts
from tests.test_demo_browser import (
    chat_line,
    error_toast,
    expect_coins,
    gift_button,
    join,
    open_room,
    say,
    settled_coins,
)

pytestmark = BROWSER_MARKS
server = demo_server("series-demo-data")  # this module's own


def series_item(page: Page, series: str) -> Locator:
    return page.locator(f'[data-testid=series-item][data-series="{series}"]')


def my_series(page: Page, series: str) -> Locator:
    return page.locator(f'[data-testid=my-series-item][data-series="{series}"]')


def publish(
    page: Page,
    series: str,
    title: str,
    price: int,
    episodes: list[tuple[str, str]],
    description: str = "",
) -> None:
    """Fill the studio's "New series" form and publish; the series shows in the list."""
    form = page.locator("#series-form")
    if not form.is_visible():
        page.get_by_text("New series", exact=True).click()
    page.get_by_label("Series id").fill(series)
    page.get_by_label("Series title").fill(title)
    page.get_by_label("Description").fill(description)
    page.get_by_label("Series price in coins").fill(str(price))
    for i in range(3):
        ep_title, ep_url = episodes[i] if i < len(episodes) else ("", "")
        page.get_by_label(f"Episode {i + 1} title").fill(ep_title)
        page.get_by_label(f"Episode {i + 1} URL").fill(ep_url)
    page.get_by_role("button", name="Publish series").click()
    item = my_series(page, series)
    expect(item).to_contain_text(title)
    expect(item.get_by_test_id("series-state")).to_have_text("On sale")
    expect(item.get_by_test_id("series-price")).to_have_text(f"{price:,}")


def test_creator_publishes_and_a_viewer_buys_to_unlock(
    open_page: OpenPage, server: DemoServer, uid: str, shots: Path
) -> None:
    sera, room = f"sera_{uid}", f"sera-live-{uid}"
    cook, bake = f"cook-{uid}", f"bake-{uid}"
    open_room(server, sera, room, "Sera cooks")
    studio = in_room(open_page, server, sera, "creator", room)
    expect(studio.get_by_test_id("studio-state")).to_have_text("LIVE")

    # The creator publishes two series, changes one's price and unpublishes the other.
    urls = [f"https://cdn.example.com/{uid}/knives.m3u8", f"https://cdn.example.com/{uid}/sauce"]
    publish(
        studio,
        cook,
        "Cooking 101",
        300,
        [("Knives", urls[0]), ("Sauces", urls[1])],
        "Two short lessons from the studio kitchen.",
    )
    publish(studio, bake, "Baking basics", 100, [("Bread", f"https://cdn.example.com/{uid}/b")])
    cooking = my_series(studio, cook)
    cooking.get_by_label("Price of Cooking 101 in coins").fill("250")
    cooking.get_by_role("button", name="Save the price of Cooking 101").click()
    expect(cooking.get_by_test_id("series-price")).to_have_text("250")
    my_series(studio, bake).get_by_role("button", name="Unpublish Baking basics").click()
    expect(my_series(studio, bake).get_by_test_id("series-state")).to_have_text("Unpublished")
    expect(error_toast(studio)).to_have_count(0)

    # A viewer in the room: the series on sale, locked, at its new price, no links.
    vic = in_room(open_page, server, f"vic_{uid}", "viewer", room)
    item = series_item(vic, cook)
    expect(item).to_have_attribute("data-unlocked", "no")
    expect(item.get_by_test_id("series-price")).to_have_text("250")
    expect(item.get_by_test_id("episodes")).to_contain_text("Knives")
    expect(item.get_by_role("link")).to_have_count(0)
    expect(series_item(vic, bake)).to_have_count(0)  # unpublished: not for sale
    before = settled_coins(vic)

    # Buy to unlock: paid once, and the episodes are links now.
    item.get_by_role("button", name="Buy Cooking 101 to unlock for 250 coins").click()
    expect(item).to_have_attribute("data-unlocked", "yes")
    expect(item.get_by_test_id("series-unlocked")).to_have_text("Unlocked")
    expect(item.get_by_role("link", name="Knives")).to_have_attribute("href", urls[0])
    expect(item.get_by_role("link", name="Sauces")).to_have_attribute("href", urls[1])
    expect_coins(vic, before - 250)
    expect(error_toast(vic)).to_have_count(0)

    # A second viewer, on a phone, has not bought it: locked, no URL anywhere on the page.
    wyn = in_room(open_page, server, f"wyn_{uid}", "viewer", room, PHONE)
    other = series_item(wyn, cook)
    expect(other).to_have_attribute("data-unlocked", "no")
    expect(
        other.get_by_role("button", name="Buy Cooking 101 to unlock for 250 coins")
    ).to_be_visible()
    expect(other.get_by_role("link")).to_have_count(0)
    assert urls[0] not in wyn.content()

    if UPDATE_SCREENSHOTS:
        clean(vic, item)
        vic.screenshot(path=str(shots / "series.png"))
        clean(studio, cooking)
        studio.screenshot(path=str(shots / "series-studio.png"))


def test_an_under_18_viewer_watches_and_chats_but_cannot_spend(
    open_page: OpenPage, server: DemoServer, uid: str, shots: Path
) -> None:
    tam, room, title = f"tam_{uid}", f"tam-live-{uid}", "Tam plays"
    open_room(server, tam, room, title)
    host = Bystander(server, tam, "creator")
    try:
        published = host.call(
            "series_publish",
            series=f"guide-{uid}",
            title="Speedrun guide",
            price=120,
            episodes=[{"title": "Route", "url": f"https://cdn.example.com/{uid}/route"}],
        )
        assert published["ok"], published
    finally:
        host.close()

    # Sign in through the login form as under 18.
    kid = f"kid_{uid}"
    page = open_page(PHONE)
    name = page.get_by_label("Your name")
    expect(name).to_have_value(re.compile(r"^guest\d+$"))  # the page is ready: it named a guest
    name.fill(kid)
    page.get_by_label("Age", exact=True).select_option(label="Under 18")
    page.get_by_role("button", name="Enter").click()
    expect(page.get_by_test_id("me-name")).to_have_text(kid)
    expect(page.locator("#me-role")).to_contain_text("under 18")
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    join(page, room, title)
    coins = settled_coins(page)
    say(page, f"hello from {kid}")  # chatting is open to everyone
    expect(chat_line(page, f"hello from {kid}")).to_be_visible()

    # A gift: the server's age error, clearly, and nothing charged.
    gift_button(page, "Rose").click()
    refused = error_toast(page).filter(has_text="Age restricted")
    expect(refused).to_contain_text("Sending Rose")
    expect(refused).to_contain_text("18 or older")
    expect_coins(page, coins)
    if UPDATE_SCREENSHOTS:  # the toast stays: it is what the picture shows
        page.evaluate("document.activeElement && document.activeElement.blur()")
        expect(refused).to_be_visible()
        page.wait_for_function(  # the toast at full strength, not half faded in
            "el => getComputedStyle(el).opacity === '1'", arg=refused.element_handle()
        )
        page.screenshot(path=str(shots / "age-phone.png"))

    # The series buy is refused the same way; the series stays locked.
    dismiss_toasts(page)
    item = series_item(page, f"guide-{uid}")
    item.get_by_role("button", name="Buy Speedrun guide to unlock for 120 coins").click()
    expect(error_toast(page).filter(has_text="Age restricted")).to_contain_text("Speedrun guide")
    expect(item).to_have_attribute("data-unlocked", "no")
    expect(item.get_by_role("link")).to_have_count(0)
    expect_coins(page, coins)
