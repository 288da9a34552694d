"""A filtered dispatch board (?q=…&service=…): its lanes, its own redraws, the lane pages it
links to, and the counts an action sends back, all narrowed the same way; bad filters are a 400
page."""

from __future__ import annotations

import re

from ops_portal.domain.lifecycle import Status
from ops_portal.models import utcnow
from ops_portal.services import bookings, dispatcher, duty
from tests.support.builders import booking_in
from tests.support.pages import HTMX, Page, press


def oob_counts(page: Page) -> dict[str, str]:
    return dict(
        re.findall(
            r'<span class="lane-count" id="lane-count-([A-Z_]+)" hx-swap-oob="true">(\d+)</span>',
            page.html,
        )
    )


def test_a_filtered_board_shows_and_redraws_only_what_matches(people, login):
    tap = booking_in(people, Status.PENDING).id  # Leaking tap, 1 Test St
    drain = bookings.create_booking(people.owner, service="Blocked drain", address="4 Mill Lane").id
    admin = login("admin")

    board = Page(admin.get("/admin/?service=Blocked+drain"))
    assert board.status == 200 and board.card_ids == [drain]
    assert '<option value="Blocked drain" selected>' in board.html
    # The board's own redraw asks for the same filter, and answers with the same cards.
    poll = re.search(r'<div id="board"[^>]*hx-get="([^"]+)"', board.html).group(1)
    assert poll == "/admin/board?q=&amp;service=Blocked+drain"
    assert Page(admin.get(poll.replace("&amp;", "&"), headers=HTMX)).card_ids == [drain]
    assert Page(admin.get("/admin/?q=mill")).card_ids == [drain]
    assert Page(admin.get("/admin/?q=test+st")).card_ids == [tap]
    assert Page(admin.get("/admin/lanes/pending?service=Leaking+tap")).card_ids == [tap]
    assert sorted(Page(admin.get("/admin/")).card_ids) == [tap, drain]


def test_an_action_on_a_filtered_board_sends_back_the_filtered_counts(people, login):
    booking_in(people, Status.PENDING)  # Leaking tap: outside the filter
    drain = bookings.create_booking(people.owner, service="Blocked drain", address="4 Mill Lane").id
    admin = login("admin")
    form = Page(admin.get("/admin/?service=Blocked+drain")).form(drain, "mark-failed")
    filtered = {"HX-Current-URL": "http://localhost/admin/?q=&service=Blocked+drain"}
    response = admin.post(
        form.action, data={**form.hidden, "reason": "no access"}, headers={**HTMX, **filtered}
    )
    assert response.status_code == 200
    assert oob_counts(Page(response)) == {
        "PENDING": "0",
        "REJECTED": "0",
        "FAILED": "1",
        "ASSIGNED": "0",
        "IN_PROGRESS": "0",
    }
    # From the unfiltered board, the counts are the whole board's.
    tap = booking_in(people, Status.PENDING).id
    form = Page(admin.get("/admin/")).form(tap, "mark-failed")
    response = press(admin, form, htmx=True, reason="no access")
    assert oob_counts(Page(response))["PENDING"] == "1"
    assert oob_counts(Page(response))["FAILED"] == "2"


def test_a_board_filter_no_booking_could_match_is_a_400_page(people, login):
    admin = login("admin")
    for query in ({"q": "x" * 121}, {"service": "tap\x00"}, {"q": "\x1b[2J"}):
        page = Page(admin.get("/admin/", query_string=query))
        assert page.status == 400, query
        assert not page.is_fragment


def test_rejected_and_failed_cards_show_their_latest_reason_to_dispatchers_only(people, login):
    rejected = booking_in(people, Status.ASSIGNED).id
    bookings.perform_action(people.provider, rejected, "reject", reason="I only do windows")
    failed = booking_in(people, Status.PENDING).id
    bookings.perform_action(people.admin, failed, "mark-failed", reason="First try")
    bookings.perform_action(people.admin, failed, "retry")
    bookings.perform_action(people.admin, failed, "mark-failed", reason="No one covers the area")
    admin = login("admin")

    for url in ("/admin/", "/admin/archive", f"/admin/bookings/{failed}"):
        page = Page(admin.get(url))
        assert "Failed: No one covers the area" in page.text, url
        reason_line = re.search(r'<p class="card-reason">.*?</p>', page.card(failed)).group(0)
        assert "First try" not in reason_line  # the latest reason, not the first
    board = Page(admin.get("/admin/"))
    assert "Rejected by provider: I only do windows" in board.text
    owner = Page(login("owner").get("/customer/"))
    assert "I only do windows" not in owner.html and "No one covers" not in owner.html


def test_a_booking_automation_gave_up_on_is_flagged_as_needing_a_dispatcher(people, login):
    """The SYSTEM dispatcher fails a booking it could not place; its card says a person must
    take it up. One a dispatcher failed themselves is not flagged: they already did."""
    for provider in (people.provider, people.other_provider):
        duty.set_duty(people.admin, provider.user_id, False)  # nobody can take it
    given_up = booking_in(people, Status.PENDING).id
    by_hand = booking_in(people, Status.PENDING).id
    bookings.perform_action(people.admin, by_hand, "mark-failed", reason="Customer moved")
    later = utcnow() + dispatcher.Policy().no_provider_wait
    summary = dispatcher.run_pass(later)
    assert [f["booking"] for f in summary.failed] == [given_up]
    admin = login("admin")

    for url in ("/admin/", f"/admin/bookings/{given_up}"):
        card = Page(admin.get(url)).card(given_up)
        assert 'data-testid="needs-dispatcher"' in card, url
        assert "No eligible provider for 15 min" in card
    assert 'data-testid="needs-dispatcher"' not in Page(admin.get("/admin/")).card(by_hand)
