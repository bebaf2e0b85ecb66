"""The demo page's LIVE mechanics in a real headless Chromium, against a real server.

A match across two creator rooms (invite, decline, accept, scores, booster, the last
seconds, the result), a goal and a hype train, pinned paid messages, a treasure box
and every moderator action, each seen on the pages of the people in the rooms. The
server runs with short clocks (a 13 s match, an 8 s hype countdown) so a whole match
fits in a test. Each test has its own rooms and users; every check after an action
waits for what the page shows, with a deadline.
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
from tests.browser_helpers import Bystander, DemoServer, dismiss_toasts
from tests.test_demo_browser import (
    chat_line,
    error_toast,
    expect_coins,
    feed,
    gift_button,
    open_room,
    room_card,
    settled_coins,
    wait_true,
)

pytestmark = BROWSER_MARKS

SHORT_CLOCKS = {
    "LIVESRV_MATCH_DURATION": "13",
    "LIVESRV_MATCH_FINAL_SECONDS": "6",
    "LIVESRV_MATCH_BOOSTER_GIFT": "panda",
    "LIVESRV_MATCH_BOOST_SECONDS": "7",
    "LIVESRV_HYPE_VIEWERS": "2",
    "LIVESRV_HYPE_COUNTDOWN": "8",
}
NO_OVERFLOW_JS = "document.documentElement.scrollWidth <= window.innerWidth"

# This module's own server, with short match and hype-train clocks.
server = demo_server("live-demo-data", SHORT_CLOCKS)


def fan(server: DemoServer, user: str, room: str) -> Bystander:
    """A viewer without a browser, in `room`."""
    b = Bystander(server, user)
    joined = b.call("join", room=room)
    assert joined["ok"], joined
    return b


def side(page: Page, room: str) -> Locator:
    return page.locator(f'[data-testid=match-side][data-room="{room}"]')


def clean(page: Page, show: Locator | None = None) -> None:
    """Ready for a screenshot: no toasts, no focus, the newest chat in view, and the page
    at the top (or scrolled to `show`; the room stays on screen, it is sticky)."""
    dismiss_toasts(page)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0)")
    if show is not None:
        show.evaluate("(e) => e.scrollIntoView({block: 'end'})")
    page.evaluate("(f => { f.scrollTop = f.scrollHeight; })(document.getElementById('feed'))")


def test_match_bar_across_two_rooms(
    open_page: OpenPage, server: DemoServer, uid: str, shots: Path
) -> None:
    ana, bo = f"ana_{uid}", f"bo_{uid}"
    ra, rb = f"ana-live-{uid}", f"bo-live-{uid}"
    open_room(server, ana, ra, "Ana sings")
    open_room(server, bo, rb, "Bo draws")
    pa = in_room(open_page, server, ana, "creator", ra)
    pb = in_room(open_page, server, bo, "creator", rb)
    phone = in_room(open_page, server, f"pia_{uid}", "viewer", ra, PHONE)

    # An invitation the other creator declines: the inviter is told.
    invite_box = pa.get_by_label("Opponent's room")
    invite_box.fill(rb)
    pa.get_by_role("button", name="Invite to a match").click()
    expect(pa.get_by_test_id("match-status")).to_contain_text("waiting")
    invitation = pb.get_by_test_id("match-invite")
    expect(invitation).to_contain_text(f"@{ana} ({ra}) invites you")
    expect(phone.get_by_test_id("match-invite")).to_be_hidden()  # for the creator only
    invitation.get_by_role("button", name="Decline").click()
    expect(invitation).to_be_hidden()
    expect(pa.get_by_test_id("match-status")).to_have_text("Declined.")

    # Again, accepted: both rooms (and a viewer on a phone) see the match bar.
    pa.get_by_role("button", name="Invite to a match").click()
    expect(invitation).to_be_visible()
    invitation.get_by_role("button", name="Accept").click()
    for page in (pa, pb, phone):
        expect(page.get_by_test_id("match-bar")).to_be_visible()
        expect(page.get_by_test_id("match-bar")).not_to_contain_text("null")
        expect(page.get_by_test_id("match-timer")).to_have_text(re.compile(r"^0:(0\d|1[0-3])$"))
    # Our side is on the left on both creators' screens.
    expect(pa.get_by_test_id("match-side").first).to_have_attribute("data-room", ra)
    expect(pb.get_by_test_id("match-side").first).to_have_attribute("data-room", rb)

    fa, fb = fan(server, f"fan_a_{uid}", ra), fan(server, f"fan_b_{uid}", rb)
    try:
        # The booster gift (a panda here) counts double and opens a x2 window.
        assert fa.call("gift", room=ra, gift="panda", count=1, key=f"p-{uid}")["ok"]
        assert fb.call("gift", room=rb, gift="rose", count=3, key=f"r-{uid}")["ok"]
        for page in (pa, pb, phone):
            expect(side(page, ra).get_by_test_id("match-score")).to_have_text("10")
            expect(side(page, rb).get_by_test_id("match-score")).to_have_text("3")
        expect(side(pb, ra).get_by_test_id("match-boost")).to_have_text(re.compile(r"^x2 0:0\d$"))
        expect(side(pb, rb).get_by_test_id("match-boost")).to_be_hidden()
        if UPDATE_SCREENSHOTS:
            clean(pa)
            pa.screenshot(path=str(shots / "match.png"))
        # The last seconds are marked, then the result: winner and top supporters.
        for page in (pa, pb):
            expect(page.get_by_test_id("match-final")).to_be_visible()
        for page in (pa, pb, phone):
            result = page.get_by_test_id("match-result")
            expect(result).to_contain_text(f"@{ana} wins!")
            expect(result.get_by_test_id("match-top")).to_contain_text(f"fan_a_{uid} 10")
            expect(result.get_by_test_id("match-top")).to_contain_text(f"fan_b_{uid} 3")
        won = feed(pb).locator("[data-kind=system]").filter(has_text="won the match")
        expect(won).to_have_count(1)
        wait_true(phone, NO_OVERFLOW_JS)
        if UPDATE_SCREENSHOTS:
            clean(phone)
            phone.screenshot(path=str(shots / "match-phone.png"))
        # Closing the result leaves the room as it was.
        pa.get_by_role("button", name="Close the match result").click()
        expect(pa.get_by_test_id("match-bar")).to_be_hidden()
    finally:
        fa.close()
        fb.close()


def test_goal_hype_train_paid_pins_and_treasure_box(
    open_page: OpenPage, server: DemoServer, uid: str, shots: Path
) -> None:
    maya, leo, zoe = f"maya_{uid}", f"leo_{uid}", f"zoe_{uid}"
    room = f"maya-live-{uid}"
    open_room(server, maya, room, "Maya's studio")
    creator = in_room(open_page, server, maya, "creator", room)
    viewer = in_room(open_page, server, leo, "viewer", room, PHONE)
    pages = (creator, viewer)
    start = settled_coins(viewer)

    # A goal of five roses.
    creator.get_by_label("Goal", exact=True).select_option("gift")
    creator.get_by_label("Gift", exact=True).select_option("rose")
    creator.get_by_label("Target").fill("5")
    creator.get_by_role("button", name="Set goal").click()
    for page in pages:
        expect(page.get_by_test_id("goal-bar")).to_contain_text("Goal: 5 × Rose")
        expect(page.get_by_test_id("goal-progress")).to_have_text("0 / 5")
        expect(page.get_by_test_id("goal-bar")).not_to_contain_text("null")

    # A treasure box: the viewer sees its countdown and claims it.
    creator.get_by_label("Coins in the box").fill("101")
    creator.get_by_label("Countdown (seconds)").select_option("10")
    creator.get_by_role("button", name="Drop box").click()
    box = viewer.get_by_test_id("box")
    expect(box).to_contain_text(f"101 from {maya}")
    expect(box.get_by_test_id("box-timer")).to_have_text(re.compile(r"opens in 0:(0\d|10)$"))
    box.get_by_role("button", name=f"Claim the box from {maya}").click()
    expect(box.get_by_test_id("box-claimed")).to_have_text("Claimed #1")
    box_id = box.get_attribute("data-box")

    friend = fan(server, zoe, room)
    try:
        claimed = friend.call("box_claim", room=room, box=box_id)
        assert claimed["ok"] and claimed["order"] == 2, claimed
        # A paid message of the 100-coin tier: pinned for two minutes, on top.
        viewer.get_by_label("Super chat text").fill("love this song")
        viewer.get_by_label("Super chat tier").select_option("100")
        viewer.get_by_role("button", name="Pay and send").click()
        for page in pages:
            pin = page.get_by_test_id("paid-pin")
            expect(pin).to_contain_text("love this song")
            expect(pin.get_by_test_id("pin-left")).to_have_text(re.compile(r"^(2:00|1:[0-5]\d)$"))

        # Roses fill the goal; two gifters start a hype train.
        rose = gift_button(viewer, "Rose")
        for _ in range(3):
            rose.click()
        expect(creator.get_by_test_id("goal-progress")).to_have_text("3 / 5")
        assert friend.call("gift", room=room, gift="rose", count=2, key=f"r-{uid}")["ok"]
        for page in pages:
            expect(page.get_by_test_id("goal-progress")).to_have_text("5 / 5")
            expect(page.get_by_test_id("goal-reached")).to_be_visible()
            expect(page.get_by_test_id("hype-bar")).to_be_visible()
        assert friend.call("gift", room=room, gift="rainbow_puke", count=1, key=f"p-{uid}")["ok"]
        assert friend.call("gift", room=room, gift="rose", count=1, key=f"r2-{uid}")["ok"]
        for page in pages:
            expect(page.get_by_test_id("hype-level")).to_have_text("Hype train · level 1")
            expect(page.get_by_test_id("hype-timer")).to_have_text(re.compile(r"^0:0\d$"))
        # The goal is reached once, whatever comes after.
        reached = feed(creator).locator("[data-kind=system]").filter(has_text="Goal reached")
        expect(reached).to_have_count(1)
        if UPDATE_SCREENSHOTS:
            clean(viewer)
            wait_true(viewer, NO_OVERFLOW_JS)
            viewer.screenshot(path=str(shots / "live-phone.png"))

        # The box opens: 101 coins for two claimers, the odd coin to the first.
        for page in pages:
            expect(page.get_by_test_id("box-result")).to_have_text(f"Opened: {leo} 51, {zoe} 50")
        expect_coins(viewer, start + 51 - 100 - 3)

        # The creator unpins the message early; it goes from every screen.
        creator.get_by_role("button", name=f"Unpin the message from {leo}").click()
        for page in pages:
            expect(page.get_by_test_id("paid-pin")).to_have_count(0)
        # The lowest tier is a highlighted line, not pinned.
        viewer.get_by_label("Super chat text").fill("just five")
        viewer.get_by_label("Super chat tier").select_option("5")
        viewer.get_by_role("button", name="Pay and send").click()
        paid_line = feed(creator).locator("[data-kind=paid]").filter(has_text="just five")
        expect(paid_line).to_have_count(1)
        expect(creator.get_by_test_id("paid-pin")).to_have_count(0)

        # The train runs out: its level and top contributors.
        for page in pages:
            result = page.get_by_test_id("hype-result")
            expect(result).to_contain_text("ended at level 1")
            expect(result).to_contain_text(f"{zoe} 103")
    finally:
        friend.close()


def mod_panel(page: Page) -> Locator:
    return page.get_by_test_id("mod-card")


def moderate(page: Page, user: str, action: str) -> None:
    panel = mod_panel(page)
    panel.get_by_label("Viewer").fill(user)
    panel.get_by_role("button", name=action, exact=True).click()


def chat_attempt(page: Page, text: str) -> None:
    # Enter does nothing while the previous line is on its way (Send is disabled then).
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def test_moderator_actions(open_page: OpenPage, server: DemoServer, uid: str, shots: Path) -> None:
    maya, mo, leo = f"maya_{uid}", f"mo_{uid}", f"leo_{uid}"
    room = f"maya-live-{uid}"
    open_room(server, maya, room, "Moderated room")
    creator = in_room(open_page, server, maya, "creator", room)
    mod = in_room(open_page, server, mo, "viewer", room)
    viewer = in_room(open_page, server, leo, "viewer", room)
    expect(mod_panel(mod)).to_be_hidden()
    expect(mod_panel(viewer)).to_be_hidden()

    # The creator appoints a moderator; the moderator gets the tools.
    creator.get_by_label("New moderator").fill(mo)
    creator.get_by_role("button", name="Appoint").click()
    expect(creator.get_by_test_id("mod-list")).to_contain_text(mo)
    expect(mod_panel(mod)).to_be_visible()
    expect(mod_panel(viewer)).to_be_hidden()

    # Delete a chat line: shown as deleted everywhere.
    chat_attempt(viewer, "buy followers at spam.example")
    line = chat_line(mod, "spam.example")
    expect(line).to_have_count(1)
    line.get_by_role("button", name=f"Delete the message from {leo}").click()
    for page in (creator, mod, viewer):
        gone = feed(page).locator("[data-deleted=yes]")
        expect(gone).to_have_text("Message deleted by a moderator")
        expect(feed(page)).not_to_contain_text("spam.example")

    # Mute: the viewer reads why chat is refused.
    moderate(mod, leo, "Mute")
    note = viewer.get_by_test_id("mod-note")
    expect(note).to_contain_text("You are muted")
    chat_attempt(viewer, "can you hear me")
    expect(error_toast(viewer).filter(has_text="You are muted in this room")).to_be_visible()
    moderate(mod, leo, "Unmute")
    expect(note).to_be_hidden()

    # Slow mode: one line per 10 s for viewers.
    creator.get_by_label("Slow mode").select_option("10")
    creator.get_by_role("button", name="Set", exact=True).click()
    expect(note).to_have_text("Slow mode: one message every 10 s.")
    chat_attempt(viewer, "first line")
    expect(chat_line(creator, "first line")).to_have_count(1)
    chat_attempt(viewer, "second line")
    expect(error_toast(viewer).filter(has_text="Slow mode is on")).to_be_visible()
    expect(feed(creator)).not_to_contain_text("second line")
    if UPDATE_SCREENSHOTS:
        mod_panel(creator).get_by_label("Viewer").fill(leo)
        clean(creator, mod_panel(creator))
        creator.screenshot(path=str(shots / "moderation.png"))

    # Ban: out of the room, and joining again is refused; unban lets the viewer back.
    moderate(mod, leo, "Ban")
    expect(viewer.locator("#stage-empty-text")).to_have_text(f"You were banned from {room}.")
    expect(error_toast(viewer).filter(has_text="You were banned")).to_be_visible()
    expect(creator.get_by_test_id("banned-list")).to_contain_text(leo)
    card = room_card(viewer, room)
    expect(card).to_be_visible()
    card.get_by_role("button").click()
    expect(error_toast(viewer).filter(has_text="You are banned from this room")).to_be_visible()
    creator.get_by_role("button", name=f"Unban {leo}").click()
    expect(creator.get_by_test_id("banned-list")).not_to_contain_text(leo)
    card.get_by_role("button").click()
    expect(viewer.locator("#stage")).to_have_attribute("data-state", "live")

    # The creator removes the moderator: the tools go away.
    creator.get_by_role("button", name=f"Remove moderator {mo}").click()
    expect(mod_panel(mod)).to_be_hidden()
