"""The demo page's subscription tiers and gifted subs in a real headless Chromium, against a
real `livesrv serve --demo` (issue 14, items 4-5).

A creator sets her tier prices in the studio (a bad set shows the server's error); viewer A
subscribes at tier 1, is refused a downgrade, upgrades to tier 2 and pays exactly what the
reply says it charged (pro rata); A's gift of two tier-2 subs fails for funds and nothing
moves, two tier-1 subs go to viewers B and C, who are in the room: each page shows "gifted by
A" lines with the tier and the months, B's and C's cards show their badge (C's after a
reload, from its join), and their chat lines carry the tier and months. Every check after an
action waits for what the page shows, with a deadline.
"""

from __future__ import annotations

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
from tests.browser_helpers import DemoServer, clean, dismiss_toasts
from tests.test_demo_browser import (
    chat_line,
    error_toast,
    expect_coins,
    feed,
    open_room,
    say,
    settled_coins,
)

pytestmark = BROWSER_MARKS
server = demo_server("subs-demo-data")  # this module's own


def tier_row(page: Page, tier: int) -> Locator:
    return page.locator(f'[data-testid=sub-tier][data-tier="{tier}"]')


def gifted_lines(page: Page, by: str) -> Locator:
    return feed(page).locator("[data-kind=sub][data-gifted=yes]").filter(has_text=f"by {by}")


def set_tiers(studio: Page, *prices: str) -> None:
    for tier in (1, 2, 3):
        price = prices[tier - 1] if tier <= len(prices) else ""
        studio.get_by_label(f"Tier {tier} price").select_option(price)
    studio.get_by_role("button", name="Save tiers").click()


def test_tiers_upgrade_and_gifted_subs(
    open_page: OpenPage, server: DemoServer, uid: str, shots: Path
) -> None:
    ava, room = f"ava_{uid}", f"ava-live-{uid}"
    amy, ben, cat = f"amy_{uid}", f"ben_{uid}", f"cat_{uid}"
    open_room(server, ava, room, "Ava sings")
    studio = in_room(open_page, server, ava, "creator", room)

    # The creator's tiers: the catalogue's prices; a tier cheaper than the one below is
    # refused by the server and shown; then tier 1 at 350 and tier 2 at 1,750.
    mine = studio.get_by_test_id("my-tier")
    expect(mine).to_have_count(3)  # her room's join: the default tiers
    set_tiers(studio, "700", "350")
    refused = error_toast(studio).filter(has_text="Subscription tiers")
    expect(refused).to_contain_text("each tier must cost more")
    expect(mine).to_have_count(3)
    dismiss_toasts(studio)
    set_tiers(studio, "350", "1750")
    expect(mine).to_have_count(2)
    expect(mine.nth(0)).to_contain_text("Tier 1")
    expect(mine.nth(0)).to_contain_text("350")
    expect(mine.nth(1)).to_contain_text("Tier 2")
    expect(mine.nth(1)).to_contain_text("1,750")

    a = in_room(open_page, server, amy, "viewer", room)
    b = in_room(open_page, server, ben, "viewer", room, PHONE)
    c = in_room(open_page, server, cat, "viewer", room, PHONE)
    expect(tier_row(a, 1)).to_contain_text("350")
    expect(tier_row(a, 2)).to_contain_text("1,750")
    expect(tier_row(a, 3)).to_have_count(0)
    start = settled_coins(a)

    # Tier 1: a new period at its price.
    tier_row(a, 1).get_by_role("button", name="Subscribe at Tier 1 for 350 coins").click()
    charge = a.get_by_test_id("sub-last-charge")
    expect(charge).to_have_attribute("data-mode", "new")
    expect(charge).to_contain_text("Subscribed at Tier 1: 350 coins")
    expect(tier_row(a, 1)).to_have_attribute("data-current", "yes")
    expect_coins(a, start - 350)
    expect(a.get_by_test_id("my-sub-badge")).to_have_text("T1 · 1 mo")

    # An upgrade mid-period: the reply's pro-rata price is what the balance loses.
    dismiss_toasts(a)
    tier_row(a, 2).get_by_role("button", name="Upgrade to Tier 2").click()
    expect(charge).to_have_attribute("data-mode", "upgrade")
    paid = int(charge.get_attribute("data-paid") or "0")
    assert 0 < paid <= 1750 - 350, paid  # pro rata: never more than the difference
    expect(charge).to_contain_text(f"Upgraded to Tier 2: {paid:,} coins, pro rata")
    expect_coins(a, start - 350 - paid)
    expect(a.get_by_test_id("my-sub-badge")).to_have_text("T2 · 1 mo")
    upgraded = feed(studio).locator("[data-kind=sub_upgrade]")
    expect(upgraded).to_contain_text(amy)
    expect(upgraded).to_contain_text("upgraded to Tier 2 (from Tier 1)")
    # A downgrade is refused with the server's reason; nothing moves.
    dismiss_toasts(a)
    tier_row(a, 1).get_by_role("button", name="Downgrade to Tier 1").click()
    down = error_toast(a).filter(has_text="Tier 1: That request was not valid")
    expect(down).to_contain_text("downgrade")
    expect_coins(a, start - 350 - paid)
    expect(tier_row(a, 2)).to_have_attribute("data-current", "yes")

    # Gifts: two tier-2 subs cost more than A has left (insufficient_funds, nothing moves),
    # two tier-1 subs go to B and C, the only viewers in the room who can receive one.
    left = start - 350 - paid
    dismiss_toasts(a)
    a.get_by_label("Number of subs to gift").fill("2")
    a.get_by_label("Tier of the gifted subs").select_option("2")
    a.get_by_role("button", name="Gift subs").click()
    expect(error_toast(a).filter(has_text="Gifting subs: Not enough balance")).to_be_visible()
    expect_coins(a, left)
    dismiss_toasts(a)
    a.get_by_label("Tier of the gifted subs").select_option("1")
    a.get_by_role("button", name="Gift subs").click()
    result = a.get_by_test_id("sub-gift-result")
    expect(result).to_have_attribute("data-paid", "700")
    expect(result).to_contain_text("2 × Tier 1")
    expect_coins(a, left - 700)
    expect(error_toast(a)).to_have_count(0)

    # Everyone in the room sees the two gifted subs, with the tier and the months.
    for page in (a, b, c, studio):
        lines = gifted_lines(page, amy)
        expect(lines).to_have_count(2)
        expect(lines.filter(has_text=ben)).to_contain_text(f"got a Tier 1 sub gifted by {amy}")
        expect(lines.filter(has_text=cat)).to_contain_text("1 month")
    expect(b.get_by_test_id("sub-status")).to_contain_text("Subscribed until")
    expect(b.get_by_test_id("my-sub-badge")).to_have_text("T1 · 1 mo")

    # C's join after a reload says the same; B's and A's chat lines carry their badges.
    c.reload()
    expect(c.locator("#stage")).to_have_attribute("data-state", "live")
    expect(c.get_by_test_id("my-sub-badge")).to_have_text("T1 · 1 mo")
    say(b, f"thanks {amy}!")
    say(a, "tier two here")
    for page in (studio, c):
        expect(chat_line(page, f"thanks {amy}!").get_by_test_id("sub-level")).to_have_text(
            "T1 · 1 mo"
        )
        expect(chat_line(page, "tier two here").get_by_test_id("sub-level")).to_have_text(
            "T2 · 1 mo"
        )

    if UPDATE_SCREENSHOTS:
        clean(a, a.locator("#sub-card"))
        a.screenshot(path=str(shots / "subs.png"))
        clean(b, gifted_lines(b, amy).last)
        b.screenshot(path=str(shots / "subs-phone.png"))
        clean(studio, studio.locator("#tiers-form"))
        studio.screenshot(path=str(shots / "subs-studio.png"))
