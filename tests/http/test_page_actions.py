"""Booking actions from the pages: each action's form pressed as the page
drew it, with htmx (the card alone, swapped in place) and without (303 and a flash); CSRF really
on; refusals (400 / 403 / 409) shown inside the card, with nothing changed."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import LIFECYCLE, Action, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent
from ops_portal.services import bookings
from ops_portal.services.bookings import BOARD_LANES
from tests.support.builders import assert_event_chain, booking_in, snapshot
from tests.support.pages import HOME, HTMX, Page, press


def last_event(booking_id: int) -> BookingEvent:
    db.session.rollback()
    return db.session.scalars(
        sa.select(BookingEvent)
        .where(BookingEvent.booking_id == booking_id)
        .order_by(BookingEvent.id.desc())
        .limit(1)
    ).one()


def assert_card_fragment(response, booking_id: int, status: int) -> Page:
    """An htmx answer: the code, the booking's card alone (no page around it), never cached."""
    page = Page(response)
    assert page.status == status, page.text
    assert page.is_fragment, "an htmx answer must not be a whole page"
    assert page.card_ids == [booking_id]
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in response.headers["Vary"]
    return page


def assert_refused_in_card(client, response, *, htmx, who, booking_id, status, message) -> Page:
    """A refusal shown inside the card acted on, which shows the booking as it now is: in the
    htmx answer, or (plain form) on the page the 303 leads to."""
    before = snapshot(booking_id)
    if htmx:
        page = assert_card_fragment(response, booking_id, status)
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == HOME[who]
        page = Page(client.get(HOME[who]))
        assert booking_id in page.card_ids, "the card acted on is not on the page the 303 leads to"
        assert not any(message in text for _, text in page.alerts), "shown twice"
    assert message in (page.card_error(booking_id) or ""), page.card(booking_id)
    assert page.card_status(booking_id) == before[0]
    assert f'data-version="{before[1]}"' in page.card(booking_id)
    return page


# ------------------------------------------------------------------------ every action, both ways

# who, from status, action, what they type, status after
EVERY_ACTION = [
    ("owner", Status.PENDING, "cancel", {"confirm": True}, Status.CANCELLED),
    ("provider", Status.ASSIGNED, "accept", {}, Status.IN_PROGRESS),
    ("provider", Status.ASSIGNED, "reject", {"reason": "Van broke down"}, Status.REJECTED),
    ("provider", Status.IN_PROGRESS, "complete", {"confirm": True}, Status.COMPLETED),
    ("admin", Status.PENDING, "assign", {"provider_id": "provider"}, Status.ASSIGNED),
    ("admin", Status.REJECTED, "retry", {}, Status.PENDING),
    (
        "admin",
        Status.ASSIGNED,
        "force-assign",
        {"provider_id": "other_provider", "reason": "Pat is ill", "confirm": True},
        Status.ASSIGNED,
    ),
    (
        "admin",
        Status.IN_PROGRESS,
        "force-cancel",
        {"reason": "Customer moved out", "confirm": True},
        Status.CANCELLED,
    ),
    ("admin", Status.PENDING, "mark-failed", {"reason": "No one covers the area"}, Status.FAILED),
]


def confirmation(booking_id: int, action: str) -> str:
    """What the person is told: "Booking #12 assigned to Pat Provider", "Booking #12 cancelled"."""
    booking = db.session.get(Booking, booking_id)
    db.session.refresh(booking)
    provider = booking.provider.name if booking.provider else "nobody"
    return f"Booking #{booking_id} " + LIFECYCLE[Action(action)].done.format(provider=provider)


def typed(people, fields: dict) -> dict:
    """The form fields as a person fills them in: provider names become their ids."""
    fields = dict(fields)
    fields.pop("confirm", None)
    if "provider_id" in fields:
        fields["provider_id"] = str(people.by_name(fields["provider_id"]).user_id)
    return fields


@pytest.mark.parametrize(
    "who, start, action, fields, after", EVERY_ACTION, ids=[row[2] for row in EVERY_ACTION]
)
def test_every_action_is_a_real_form_that_works_with_htmx_and_without(
    people, login, who, start, action, fields, after
):
    client = login(who)
    for htmx in (True, False):
        booking = booking_in(people, start).id
        before = snapshot(booking)
        form = Page(client.get(HOME[who])).form(booking, action)
        if "provider_id" in fields:
            assert typed(people, fields)["provider_id"] in form.options["provider_id"]

        response = press(
            client, form, htmx=htmx, confirm=fields.get("confirm", False), **typed(people, fields)
        )

        if htmx:
            page = assert_card_fragment(response, booking, 200)
            assert page.card_status(booking) == after
            assert page.card_error(booking) is None
            assert page.confirmation == confirmation(booking, action)
        else:
            assert response.status_code == 303
            assert response.headers["Location"] == HOME[who]
            assert "HX-Request" in response.headers["Vary"]
            page = Page(client.get(HOME[who]))
            assert ("success", f"{confirmation(booking, action)}.") in page.alerts, page.alerts
        status, version, _, events = snapshot(booking)
        assert (status, version, events) == (after, before[1] + 1, before[3] + 1)
        event = last_event(booking)
        assert (event.action, event.actor_id, event.source) == (
            action,
            people.by_name(who).user_id,
            "web",
        )
        assert event.reason == fields.get("reason")
        assert_event_chain(booking)
        if after in (Status.ASSIGNED, Status.IN_PROGRESS):
            # Free the provider again for the plain round.
            bookings.perform_action(people.admin, booking, "force-cancel", reason="reset")


def test_an_admin_action_answer_also_updates_lane_counts_and_the_provider_panel_out_of_band(
    people, login
):
    first, second = booking_in(people, Status.PENDING).id, booking_in(people, Status.PENDING).id
    admin = login("admin")
    form = Page(admin.get("/admin/")).form(first, "assign")
    response = press(admin, form, htmx=True, provider_id=str(people.provider.user_id))
    page = Page(response)
    assert page.status == 200 and page.is_fragment
    assert page.card_ids == [first]
    counts = dict(
        __import__("re").findall(
            r'<span class="lane-count" id="lane-count-([A-Z_]+)" hx-swap-oob="true">(\d+)</span>',
            page.html,
        )
    )
    assert counts == {
        "PENDING": "1",
        "REJECTED": "0",
        "FAILED": "0",
        "ASSIGNED": "1",
        "IN_PROGRESS": "0",
    }
    assert 'id="provider-panel"' in page.html
    panel = page.html[page.html.index('id="provider-panel"') :]
    assert 'hx-swap-oob="true"' in panel.split(">", 1)[0]
    pat = panel[panel.index(f'id="provider-{people.provider.user_id}"') :].split("</li>", 1)[0]
    assert "Busy" in pat and f"with #{first}" in pat
    assert second not in page.card_ids


def test_a_provider_answer_and_a_customer_answer_carry_no_board_regions(people, login):
    booking = booking_in(people, Status.ASSIGNED).id
    provider = login("provider")
    response = press(provider, Page(provider.get("/provider/")).form(booking, "accept"), htmx=True)
    assert response.status_code == 200
    assert oob_regions(Page(response)) == ["confirmation"]


def oob_regions(page: Page) -> list[str]:
    """The ids of the regions an answer swaps out of band."""
    return re.findall(r'<[a-z]+ [^>]*?id="([^"]+)"[^>]*hx-swap-oob=', page.html)


BOARD_REGIONS = [*(f"lane-count-{status}" for status in BOARD_LANES), "provider-panel"]


@pytest.mark.parametrize(
    "who, url, regions",
    [
        ("admin", "/admin/?q=olive", BOARD_REGIONS),
        ("admin", "/admin/lanes/pending", []),
        ("admin", "/admin/archive?q=olive", []),
        ("admin", "/admin/bookings/{id}", ["booking-head"]),
        ("owner", "/customer/", []),
        ("owner", "/customer/bookings/{id}", ["booking-head"]),
    ],
)
def test_an_action_answer_carries_exactly_the_regions_of_the_page_it_was_sent_from(
    people, login, who, url, regions
):
    """A region the page lacks is an out-of-band swap without a target: an error in the
    browser. A booking's page names the status in its heading too, which must not lag."""
    booking = booking_in(people, Status.PENDING).id
    client = login(who)
    action, fields = ("mark-failed", {"reason": "No access"}) if who == "admin" else ("cancel", {})
    page = Page(client.get(url.format(id=booking)))
    response = press(client, page.form(booking, action), htmx=True, confirm=True, **fields)

    answer = Page(response)
    assert answer.status == 200 and answer.card_ids == [booking]
    assert oob_regions(answer) == [*regions, "confirmation"]
    if "booking-head" in regions:
        status = "Failed" if who == "admin" else "Cancelled"
        assert re.search(rf'id="booking-head".*· {status}</p>', answer.html)


# ------------------------------------------------------------------------------ CSRF


def test_an_action_post_without_a_valid_csrf_token_changes_nothing(people, login):
    booking = booking_in(people, Status.PENDING).id
    before = snapshot(booking)
    owner = login("owner")
    form = Page(owner.get("/customer/")).form(booking, "cancel")
    stolen = Page(login("other_customer").get("/customer/")).csrf_token  # valid, but not ours
    for token in (None, "IjEyMyI.garbage.token", stolen):
        data = {**form.hidden, **form.checkboxes, "csrf_token": token}
        if token is None:
            del data["csrf_token"]
        for htmx in (True, False):
            response = owner.post(form.action, data=data, headers=HTMX if htmx else {})

            page = Page(response)
            assert page.status == 400, (token, htmx)
            assert "This form has expired or did not come from this site" in page.text
            if htmx:
                assert page.is_fragment and page.card_ids == []
                assert response.headers["HX-Retarget"] == "#alerts"
                assert [level for level, _ in page.alerts] == ["error"]
            else:
                assert not page.is_fragment
            assert snapshot(booking) == before, (token, htmx)
    # Still logged in, and the form works with its own token.
    assert press(owner, form, htmx=True, confirm=True).status_code == 200
    assert snapshot(booking)[0] == Status.CANCELLED


def test_htmx_may_send_the_csrf_token_in_the_header_the_page_body_declares(people, login):
    booking = booking_in(people, Status.PENDING).id
    owner = login("owner")
    page = Page(owner.get("/customer/"))
    form = page.form(booking, "cancel")
    data = {
        key: value
        for key, value in {**form.hidden, **form.checkboxes}.items()
        if key != "csrf_token"
    }
    response = owner.post(
        form.action, data=data, headers={**HTMX, "X-CSRFToken": page.header_csrf_token}
    )
    assert response.status_code == 200
    assert snapshot(booking)[0] == Status.CANCELLED


def test_an_action_that_does_not_exist_or_is_not_a_button_is_404_and_changes_nothing(people, login):
    booking = booking_in(people, Status.PENDING).id
    before = snapshot(booking)
    owner = login("owner")
    token = Page(owner.get("/customer/")).csrf_token
    for action in ("create", "fly", "CANCEL"):
        for headers in ({}, HTMX):
            response = owner.post(
                f"/customer/bookings/{booking}/{action}",
                data={"csrf_token": token, "confirm": "y"},
                headers=headers,
            )
            assert response.status_code == 404, action
            assert owner.get(f"/customer/bookings/{booking}/{action}").status_code == 404
    # GET draws an action's form, and changes nothing.
    assert owner.get(f"/customer/bookings/{booking}/cancel").status_code == 200
    assert snapshot(booking) == before


def test_an_anonymous_action_post_is_sent_to_log_in_and_changes_nothing(app, people):
    booking = booking_in(people, Status.PENDING).id
    before = snapshot(booking)
    visitor = app.test_client()
    token = Page(visitor.get("/login")).csrf_token
    url = f"/customer/bookings/{booking}/cancel"
    plain = visitor.post(url, data={"csrf_token": token, "confirm": "y"})
    assert plain.status_code == 303 and plain.headers["Location"] == "/login"
    htmx = visitor.post(url, data={"csrf_token": token, "confirm": "y"}, headers=HTMX)
    # as htmx, the card pressed is told to log in (a page's session that ended)
    assert htmx.status_code == 401 and "HX-Redirect" not in htmx.headers
    assert "log in again" in htmx.get_data(as_text=True)
    assert snapshot(booking) == before


# ------------------------------------------------------------------------ refusals in the card


def test_a_stale_cancel_answers_409_and_the_card_shows_the_booking_as_it_now_is(people, login):
    owner = login("owner")
    for htmx in (True, False):
        booking = booking_in(people, Status.PENDING).id
        form = Page(owner.get("/customer/")).form(booking, "cancel")  # drawn at version 1
        bookings.perform_action(
            people.admin, booking, "assign", provider_id=people.provider.user_id
        )
        before = snapshot(booking)

        response = press(owner, form, htmx=htmx, confirm=True)

        page = assert_refused_in_card(
            owner,
            response,
            htmx=htmx,
            who="owner",
            booking_id=booking,
            status=409,
            message="This booking changed: now ASSIGNED",
        )
        assert "Pat Provider" in page.card(booking)
        assert snapshot(booking) == before
        bookings.perform_action(people.admin, booking, "force-cancel", reason="reset")


def test_pressing_the_same_button_twice_acts_once_and_answers_the_same(people, login):
    provider = login("provider")
    for htmx in (True, False):
        booking = booking_in(people, Status.ASSIGNED).id
        form = Page(provider.get("/provider/")).form(booking, "accept")
        first = press(provider, form, htmx=htmx)
        assert first.status_code == (200 if htmx else 303)
        after_first = snapshot(booking)

        again = press(provider, form, htmx=htmx)  # a double tap, or a resend after a timeout

        assert again.status_code == first.status_code
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_data() == first.get_data()
        assert snapshot(booking) == after_first  # one accept, one event
        bookings.perform_action(people.provider, booking, "complete")


def test_a_second_copy_of_the_form_drawn_before_the_first_press_is_refused_as_stale(people, login):
    provider = login("provider")
    for htmx in (True, False):
        booking = booking_in(people, Status.ASSIGNED).id
        form = Page(provider.get("/provider/")).form(booking, "accept")
        other_copy = Page(provider.get("/provider/")).form(booking, "accept")  # another tab
        assert press(provider, form, htmx=True).status_code == 200
        after_first = snapshot(booking)

        response = press(provider, other_copy, htmx=htmx)

        assert_refused_in_card(
            provider,
            response,
            htmx=htmx,
            who="provider",
            booking_id=booking,
            status=409,
            message="This booking changed: now IN_PROGRESS",
        )
        assert snapshot(booking) == after_first
        bookings.perform_action(people.provider, booking, "complete")


def test_a_provider_accepting_a_job_force_cancelled_a_moment_before_is_told_so(people, login):
    provider = login("provider")
    message = "This booking changed: now CANCELLED"
    for htmx in (True, False):
        booking = booking_in(people, Status.ASSIGNED).id
        form = Page(provider.get("/provider/")).form(booking, "accept")
        bookings.perform_action(people.admin, booking, "force-cancel", reason="Customer called")
        before = snapshot(booking)

        response = press(provider, form, htmx=htmx)

        if htmx:
            page = assert_card_fragment(response, booking, 409)
            assert message in page.card_error(booking)
            assert page.card_status(booking) == Status.CANCELLED
            assert page.actions(booking) == set()
        else:
            # The job has left the queue, so the page after the 303 has no card for it: the
            # message must reach the provider all the same, as an alert naming the booking.
            assert response.status_code == 303
            page = Page(provider.get(HOME["provider"]))
            assert booking not in page.card_ids
            assert any(
                level == "error" and text.startswith(f"Booking #{booking}: {message}")
                for level, text in page.alerts
            ), page.alerts
            # Shown once: a reload does not repeat it.
            assert Page(provider.get(HOME["provider"])).alerts == []
        assert snapshot(booking) == before


def test_a_customer_posting_an_action_of_another_role_gets_403_in_the_card(people, login):
    owner = login("owner")
    for htmx in (True, False):
        booking = booking_in(people, Status.ASSIGNED).id
        before = snapshot(booking)
        page = Page(owner.get("/customer/"))
        assert "accept" not in page.actions(booking)
        form = page.form(booking, "cancel")

        response = owner.post(
            f"/customer/bookings/{booking}/accept",
            data={"csrf_token": form.hidden["csrf_token"], "version": form.hidden["version"]},
            headers=HTMX if htmx else {},
        )

        assert_refused_in_card(
            owner,
            response,
            htmx=htmx,
            who="owner",
            booking_id=booking,
            status=403,
            message="Only a provider may accept a booking",
        )
        assert snapshot(booking) == before
        bookings.perform_action(people.owner, booking, "cancel")


@pytest.mark.parametrize(
    "intruder, action", [("other_customer", "cancel"), ("other_provider", "accept")]
)
def test_acting_on_someone_elses_booking_is_a_403_alert_that_shows_nothing_of_it(
    people, login, intruder, action
):
    booking = booking_in(people, Status.ASSIGNED).id
    before = snapshot(booking)
    client = login(intruder)
    token = Page(client.get(HOME[intruder])).csrf_token
    for htmx in (True, False):
        response = client.post(
            f"{HOME[intruder]}bookings/{booking}/{action}",
            data={"csrf_token": token, "confirm": "y"},
            headers=HTMX if htmx else {},
        )

        if htmx:
            page = Page(response)
            assert page.status == 403 and page.is_fragment
            assert response.headers["HX-Retarget"] == "#alerts"
        else:
            assert response.status_code == 303
            assert response.headers["Location"] == HOME[intruder]
            page = Page(client.get(HOME[intruder]))
        assert any(
            level == "error" and f"booking {booking} may {action}" in text
            for level, text in page.alerts
        ), page.alerts
        assert booking not in page.card_ids
        assert "1 Test St" not in page.html and "Olive" not in page.html
        assert snapshot(booking) == before


# who, status, action, what they type (without the one thing missing), message
INCOMPLETE = [
    ("provider", Status.ASSIGNED, "reject", {}, "Please give a reason to reject."),
    ("provider", Status.ASSIGNED, "reject", {"reason": "   "}, "Please give a reason to reject."),
    (
        "admin",
        Status.IN_PROGRESS,
        "force-cancel",
        {"confirm": True},
        "Please give a reason to force-cancel.",
    ),
    ("admin", Status.ASSIGNED, "mark-failed", {}, "Please give a reason to mark failed."),
    ("owner", Status.PENDING, "cancel", {}, "Tick the box to confirm: cancel booking."),
    (
        "admin",
        Status.PENDING,
        "force-assign",
        {"provider_id": "provider", "reason": "urgent"},
        "Tick the box to confirm: force-assign.",
    ),
    ("admin", Status.PENDING, "assign", {}, "Choose a provider."),
]


@pytest.mark.parametrize(
    "who, start, action, fields, message",
    INCOMPLETE,
    ids=[f"{row[2]}-{'-'.join(row[3]) or 'empty'}" for row in INCOMPLETE],
)
def test_an_incomplete_action_form_is_refused_with_400_in_the_card(
    people, login, who, start, action, fields, message
):
    booking = booking_in(people, start).id
    before = snapshot(booking)
    client = login(who)
    for htmx in (True, False):
        form = Page(client.get(HOME[who])).form(booking, action)

        response = press(
            client, form, htmx=htmx, confirm=fields.get("confirm", False), **typed(people, fields)
        )

        assert_refused_in_card(
            client, response, htmx=htmx, who=who, booking_id=booking, status=400, message=message
        )
        assert snapshot(booking) == before


def test_assigning_a_provider_who_became_busy_since_the_page_was_drawn_is_403_in_the_card(
    people, login
):
    admin = login("admin")
    pat = str(people.provider.user_id)
    waiting = booking_in(people, Status.PENDING).id
    form = Page(admin.get("/admin/")).form(waiting, "assign")
    assert pat in form.options["provider_id"]
    other = booking_in(people, Status.ASSIGNED).id  # Pat is busy from now on
    before = snapshot(waiting)
    for htmx in (True, False):
        response = press(admin, form, htmx=htmx, provider_id=pat)

        page = assert_refused_in_card(
            admin,
            response,
            htmx=htmx,
            who="admin",
            booking_id=waiting,
            status=403,
            message="Provider is busy",
        )
        assert snapshot(waiting) == before
        # Drawn again, the assign picker shows Pat busy and cannot choose him; force-assign can.
        assign = Page(admin.get(page.action_link(waiting, "assign"), headers=HTMX))
        assert f'<option value="{pat}" disabled>Pat Provider — busy with #{other}' in assign.html
        assert pat in page.form(waiting, "force-assign").options["provider_id"]
        picker = Page(admin.get(page.action_link(waiting, "force-assign"), headers=HTMX))
        assert f"Pat Provider — busy with #{other}" in picker.html


def test_opening_the_form_of_an_action_the_booking_has_moved_past_shows_the_card_as_it_now_is(
    people, login
):
    booking = booking_in(people, Status.PENDING).id
    admin = login("admin")
    link = Page(admin.get("/admin/")).action_link(booking, "assign")
    bookings.perform_action(people.admin, booking, Action.MARK_FAILED, reason="gone")

    fragment = admin.get(link, headers=HTMX)
    assert fragment.status_code == 400
    assert fragment.headers["HX-Retarget"] == f"#booking-{booking}"
    card = Page(fragment)
    assert card.is_fragment and card.card_status(booking) == "FAILED"
    assert "Cannot assign" in card.card_error(booking)
    page = Page(admin.get(link))
    assert page.status == 400 and not page.is_fragment
    assert page.card_status(booking) == "FAILED" and "Cannot assign" in page.card_error(booking)
    assert "action-assign" not in page.actions(booking)


def test_an_action_answer_draws_the_card_as_the_page_around_it_does(people, login):
    """Compact on the board, with its timeline open on the booking's page."""
    admin = login("admin")
    for url, compact, timeline_open in (
        ("/admin/", True, False),
        ("/admin/bookings/{id}", False, True),
    ):
        booking = booking_in(people, Status.PENDING).id
        form = Page(admin.get(url.format(id=booking))).form(booking, "mark-failed")
        card = Page(press(admin, form, htmx=True, reason="No access")).card(booking)
        assert ("card-compact" in card.split(">", 1)[0]) == compact, url
        assert ('<details class="card-timeline" open>' in card) == timeline_open, url
