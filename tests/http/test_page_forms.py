"""The two forms that are not booking actions: the customer's new-booking form (WTForms, messages
beside the fields, a window in the display zone) and the admin archive's search, filter and
pages. The app here shows times in Europe/Berlin, so a time zone mistake cannot hide behind UTC."""

from __future__ import annotations

import html
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Role, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent
from tests.support.builders import bulk_bookings, count_bookings
from tests.support.databases import make_app
from tests.support.pages import Page, booking_form
from tests.support.people import PASSWORD, Person, create_accounts

ZONE = ZoneInfo("Europe/Berlin")


@pytest.fixture
def app(database_url):
    """conftest's app, showing and reading times in Europe/Berlin."""
    app = make_app(database_url, DISPLAY_TIMEZONE="Europe/Berlin")
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


# ------------------------------------------------------------------------------ new booking


def test_a_valid_booking_request_creates_a_pending_booking_with_its_window_in_the_display_zone(
    people, login
):
    owner = login("owner")
    page, data = booking_form(owner)
    assert "times in Europe/Berlin" in page.text

    response = owner.post("/customer/bookings/new", data=data)

    assert response.status_code == 303 and response.headers["Location"] == "/customer/"
    db.session.rollback()
    booking = db.session.scalars(sa.select(Booking)).one()
    day = date.fromisoformat(data["day"])
    assert (booking.status, booking.customer_id, booking.customer_name) == (
        Status.PENDING,
        people.owner.user_id,
        "Olive Owner",
    )
    assert (booking.service, booking.address, booking.notes) == (
        "Plumbing",
        "12 Canal Street",
        "Ring twice",
    )
    assert booking.window_start.utcoffset() is not None
    assert booking.window_start == datetime.combine(day, time(9, 0), ZONE)
    assert booking.window_end == datetime.combine(day, time(11, 30), ZONE)
    event = db.session.scalars(sa.select(BookingEvent)).one()
    assert (event.action, event.to_status, event.actor_id, event.source) == (
        "create",
        "PENDING",
        people.owner.user_id,
        "web",
    )

    home = Page(owner.get("/customer/"))
    requested = f"Booking #{booking.id} requested: we are finding you a provider."
    assert ("success", requested) in home.alerts
    card = home.card(booking.id)
    zone_name = datetime.combine(day, time(9, 0), ZONE).tzname()
    assert f"{day:%a %d %b %Y}, 09:00–11:30 {zone_name}" in card
    assert "Waiting for a provider" in card


# field, what is typed, the message beside it
INVALID = [
    ("service", {"service": ""}, "Choose a service."),
    ("service", {"service": "Space travel"}, "Not a valid choice."),
    ("address", {"address": "   "}, "Tell us where the job is."),
    ("address", {"address": "x" * 301}, "Field cannot be longer than 300 characters."),
    ("day", {"day": (date.today() - timedelta(days=2)).isoformat()}, "Pick today or a later day."),
    ("day", {"day": "2031-02-30"}, "Pick a day."),
    (
        "day",
        {"day": (date.today() + timedelta(days=400)).isoformat()},
        "Bookings can be made up to a year ahead.",
    ),
    ("end", {"start": "11:00", "end": "10:00"}, "The end time must be after the start time."),
    ("end", {"start": "11:00", "end": "11:00"}, "The end time must be after the start time."),
    ("start", {"start": ""}, "Pick a start time."),
    ("notes", {"notes": "n" * 2001}, "Field cannot be longer than 2000 characters."),
]


def test_an_invalid_booking_request_is_400_with_the_message_beside_the_field(people, login):
    owner = login("owner")
    for field, changes, message in INVALID:
        _, data = booking_form(owner, **changes)

        page = Page(owner.post("/customer/bookings/new", data=data))

        assert page.status == 400, changes
        assert page.field_error(field) == message, (changes, page.field_error(field))
        assert 'class="field has-error"' in page.html
        if field != "address":  # what was typed is kept
            assert 'value="12 Canal Street"' in page.html
    assert count_bookings() == 0


def test_a_booking_request_with_control_characters_is_refused_without_a_server_error(people, login):
    owner = login("owner")
    _, data = booking_form(owner, address="12 Canal\x00Street")
    response = owner.post("/customer/bookings/new", data=data)
    assert response.status_code == 400
    assert count_bookings() == 0


def test_a_booking_request_without_the_csrf_token_creates_nothing(people, login):
    owner = login("owner")
    _, data = booking_form(owner)
    del data["csrf_token"]
    assert owner.post("/customer/bookings/new", data=data).status_code == 400
    assert count_bookings() == 0


# ------------------------------------------------------------------------------ archive


@pytest.fixture
def archive(people):
    """Finished bookings of three customers (one with an accent, one company name with a %), a
    failed one, and open ones, changed in that order. Returns ids by who they belong to."""
    actors, _ = create_accounts(
        [Person("zoe", "zoe@example.com", "Zoë Ünal", Role.CUSTOMER)], password=PASSWORD
    )
    people.zoe = actors["zoe"]
    ids = {"olive": bulk_bookings(people, [Status.COMPLETED] * 22 + [Status.CANCELLED] * 2)}
    later = {  # whose: (statuses, customer, name on the booking, first one's day)
        "oscar": ([Status.CANCELLED, Status.COMPLETED], "other_customer", None, (2030, 2, 1)),
        "acme": ([Status.COMPLETED], "other_customer", "Acme 100% Ltd", (2030, 2, 2)),
        "zoe": ([Status.CANCELLED], "zoe", "Zoë Ünal", (2030, 2, 3)),
        "failed": ([Status.FAILED], "other_customer", None, (2030, 2, 4)),
        "open": (
            [Status.PENDING, Status.ASSIGNED, Status.IN_PROGRESS],
            "other_customer",
            None,
            (2030, 3, 1),
        ),
    }
    for whose, (statuses, customer, name, day) in later.items():
        ids[whose] = bulk_bookings(
            people,
            statuses,
            customer=customer,
            customer_name=name,
            start=datetime(*day, tzinfo=ZONE),
        )
    return ids


def listed(client, **query) -> Page:
    page = Page(client.get("/admin/archive", query_string=query))
    assert page.status == 200, (query, page.text)
    return page


def link(page: Page, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', page.html)
    return html.unescape(found.group(1)) if found else None


def test_the_bookings_list_holds_every_booking_latest_change_first_twenty_a_page(archive, login):
    admin = login("admin")
    latest_first = sorted((i for ids in archive.values() for i in ids), reverse=True)

    first = listed(admin)
    assert first.card_ids == latest_first[:20]
    assert set(archive["open"]) <= set(first.card_ids)  # open ones too, whatever their status
    assert "32 bookings" in first.text
    assert link(first, "prev") is None and link(first, "first") is None
    # Older: the page after the first page's last booking; nothing after the oldest.
    assert link(first, "next") == f"/admin/archive?after={latest_first[19]}"
    second = Page(admin.get(link(first, "next")))
    assert second.card_ids == latest_first[20:]
    assert link(second, "next") is None
    # Newer: back to the twenty before the second page's first booking.
    assert link(second, "prev") == f"/admin/archive?before={latest_first[20]}"
    assert Page(admin.get(link(second, "prev"))).card_ids == latest_first[:20]
    # The oldest page: the last twenty, however long the list.
    assert link(first, "last") == "/admin/archive?end=1"
    assert listed(admin, end=1).card_ids == latest_first[-20:]
    assert listed(admin, after=latest_first[-1]).card_ids == []
    # The status filter holds across pages.
    completed = listed(admin, status="COMPLETED")
    after = completed.card_ids[-1]
    assert link(completed, "next") == f"/admin/archive?status=COMPLETED&after={after}"
    # 24 completed: Olive's first 22, Oscar's second, Acme's.
    assert listed(admin, status="COMPLETED", after=after).card_ids == [4, 3, 2, 1]
    assert listed(admin, status="FAILED").card_ids == archive["failed"]
    assert listed(admin, status="IN_PROGRESS").card_ids == archive["open"][2:]


def test_a_list_of_one_counts_it_in_the_singular(people, login):
    bulk_bookings(people, [Status.COMPLETED])
    assert listed(login("admin")).text.endswith(" 1 booking")
    bulk_bookings(people, [Status.COMPLETED])
    assert listed(login("admin")).text.endswith(" 2 bookings")


def test_a_count_past_its_cap_is_shown_as_the_cap_plus(people, login, monkeypatch):
    """Counting stops at the cap: 10,000 for a list, 1,000 for a search (here lowered, so the
    test needs only a few rows)."""
    from ops_portal.services.bookings import paging

    bulk_bookings(people, [Status.COMPLETED] * 7)
    admin = login("admin")
    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    monkeypatch.setattr(paging, "SEARCH_COUNT_CAP", 3)
    assert "5+ bookings" in listed(admin).text
    assert "3+ bookings" in listed(admin, q="olive").text
    monkeypatch.setattr(paging, "COUNT_CAP", 7)
    monkeypatch.setattr(paging, "SEARCH_COUNT_CAP", 7)
    assert "7 bookings" in listed(admin).text
    assert "7 bookings" in listed(admin, q="olive").text


def test_a_search_finds_bookings_by_number_customer_name_or_email(archive, login):
    admin = login("admin")
    olive, oscar, acme, zoe = archive["olive"], archive["oscar"], archive["acme"], archive["zoe"]
    oscar = oscar + archive["failed"] + archive["open"]  # his too
    searches = {
        str(oscar[0]): [oscar[0]],
        f"#{oscar[0]}": [oscar[0]],
        "oscar": oscar + acme,
        "OSCAR OTHER": oscar + acme,
        "oscar_other@example": oscar + acme,
        "acme": acme,
        "zoë": zoe,
        "ÜNAL": zoe,  # case folds beyond ASCII, on SQLite too
        "ünal": zoe,
        "nobody at all": [],
    }
    found = {q: sorted(listed(admin, q=q).card_ids) for q in searches}
    assert found == {q: sorted(ids) for q, ids in searches.items()}
    assert len(listed(admin, q="olive@example.com").card_ids) == 20  # 24, a page of them
    assert listed(admin, q="oscar", status="CANCELLED").card_ids == [oscar[0]]
    assert listed(admin, q="oscar", status="FAILED").card_ids == archive["failed"]
    assert listed(admin, q="oscar", status="pending").card_ids == archive["open"][:1]
    assert archive["open"][1] in listed(admin, q=f"#{archive['open'][1]}").card_ids
    assert olive


def test_a_search_takes_percent_and_underscore_literally(archive, login):
    admin = login("admin")
    assert listed(admin, q="%").card_ids == archive["acme"]
    assert listed(admin, q="100%").card_ids == archive["acme"]
    # Only Oscar's email has an underscore; his company booking has his account too.
    assert sorted(listed(admin, q="_").card_ids) == sorted(
        archive["oscar"] + archive["acme"] + archive["failed"] + archive["open"]
    )


def test_an_unknown_status_is_answered_in_a_sentence_beside_the_filter(archive, login):
    admin = login("admin")
    page = Page(admin.get("/admin/archive", query_string={"q": "oscar", "status": "FOO"}))
    assert page.status == 400 and not page.is_fragment
    assert page.field_error("archive-status") == (
        "There is no status “FOO”; choose one of any status, waiting for a provider, provider "
        "assigned, in progress, completed, rejected by provider, cancelled or failed."
    )
    # The filter is still there, with what was typed, and no list that pretends to answer.
    assert 'id="archive-q" type="search" name="q" value="oscar"' in page.html
    assert page.card_ids == [] and "No bookings match" not in page.text


def test_the_archive_answers_odd_input_without_a_server_error(archive, login):
    admin = login("admin")
    answers = {
        repr(query): admin.get("/admin/archive", query_string=query).status_code
        for query in (
            {"q": "x" * 500},
            {"q": "nul\x00byte"},
            {"q": "' OR 1=1 --"},
            {"q": "日本語 🧹"},
            {"q": "#"},
            {"q": "#99999999999999999999"},
            {"q": "²"},  # a digit to str.isdigit(), not to int()
            {"q": "#１"},
            {"after": "0"},
            {"before": "-3"},
            {"after": "abc"},
            {"after": str(10**30)},
        )
    }
    assert all(code in (200, 400) for code in answers.values()), answers
    assert answers[repr({"q": "x" * 500})] == 400
    assert answers[repr({"q": "' OR 1=1 --"})] == 200
    assert answers[repr({"after": "0"})] == 400
    assert listed(admin, q="' OR 1=1 --").card_ids == []
