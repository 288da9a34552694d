"""Time on the pages: a person picks their zone on their account page, books a preset window
in it and reads it back in it, 24-hour and with the zone named; a window that has begun is
refused beside its choice; the dispatcher sees late bookings flagged, how long each has waited,
and narrows the board to late ones, a filter its redraws and lane links keep."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ops_portal.extensions import db
from ops_portal.models import Booking, User
from ops_portal.services import bookings
from tests.support.builders import count_bookings
from tests.support.pages import HTMX, Page, booking_form


def zone_past_noon() -> str:
    """A zone where it is now afternoon, so this morning's windows there have begun."""
    hour = datetime.now(UTC).hour
    offset = min(14, 16 - hour)  # local hour 14..16
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def begun_an_hour_ago(people) -> int:
    """A pending booking whose window began an hour ago: requested the day before it began."""
    start = datetime.now(UTC) - timedelta(hours=1)
    return bookings.create_booking(
        people.owner,
        service="Leaking tap",
        window_start=start,
        window_end=start + timedelta(hours=2),
        now=start - timedelta(days=1),
    ).id


def choose_zone(client, zone: str):
    page = Page(client.get("/account/"))
    return client.post("/account/", data={"csrf_token": page.csrf_token, "time_zone": zone})


def test_a_customer_books_a_preset_window_in_their_own_zone_and_reads_it_back_in_it(people, login):
    owner = login("owner")
    assert 'href="/account/"' in Page(owner.get("/customer/")).html
    saved = choose_zone(owner, "Asia/Tokyo")
    assert saved.status_code == 303
    assert ("success", "Times are now shown in Asia/Tokyo.") in Page(owner.get("/account/")).alerts

    page, data = booking_form(owner, slot="18:00-20:00", start=None, end=None)
    assert "times in Asia/Tokyo, 24-hour" in page.text
    assert 'type="time"' not in page.html  # lists of times, 24-hour in any locale
    assert "18:00–20:00" in page.text and "Another time" in page.text
    response = owner.post("/customer/bookings/new", data=data)

    assert response.status_code == 303, Page(response).text
    db.session.rollback()
    booking = db.session.scalars(sa.select(Booking)).one()
    day = datetime.fromisoformat(data["day"]).date()
    tokyo = ZoneInfo("Asia/Tokyo")
    assert booking.window_start == datetime.combine(day, datetime.min.time(), tokyo).replace(
        hour=18
    )
    card = Page(owner.get("/customer/")).card(booking.id)
    assert f"{day:%a %d %b %Y}, 18:00–20:00 JST" in card


def test_a_preset_window_that_has_begun_today_is_refused_beside_the_choice(people, login):
    owner = login("owner")
    zone = zone_past_noon()
    choose_zone(owner, zone)
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    _, data = booking_form(owner, day=today, slot="08:00-10:00", start=None, end=None)

    page = Page(owner.post("/customer/bookings/new", data=data))

    assert page.status == 400
    assert page.field_error("slot") == "That time has passed"
    assert 'value="12 Canal Street"' in page.html  # what was typed is kept
    _, data = booking_form(owner, day=today, slot="other", start="08:00", end="09:00")
    assert Page(owner.post("/customer/bookings/new", data=data)).field_error("start") == (
        "That time has passed"
    )
    assert count_bookings() == 0


def test_another_time_needs_both_times_from_the_list(people, login):
    owner = login("owner")
    for changes, field, message in (
        ({"slot": None}, "slot", "Pick an arrival window, or another time."),
        ({"end": ""}, "end", "Pick an end time."),
        ({"start": "9am"}, "start", "Pick a time from the list (HH:MM, every half hour)."),
    ):
        _, data = booking_form(owner, **changes)
        page = Page(owner.post("/customer/bookings/new", data=data))
        assert page.status == 400 and page.field_error(field) == message, changes


def test_a_time_zone_that_does_not_exist_is_refused_in_words(people, login):
    owner = login("owner")
    response = choose_zone(owner, "Mars/Olympus_Mons")
    assert response.status_code == 400
    assert "Choose a time zone from the list." in Page(response).text
    db.session.rollback()
    assert db.session.get(User, people.owner.user_id).time_zone is None


def test_the_dispatcher_sees_late_bookings_flagged_and_narrows_the_board_to_them(people, login):
    now = datetime.now(UTC)
    soon = begun_an_hour_ago(people)
    later = bookings.create_booking(
        people.owner,
        service="Leaking tap",
        window_start=now + timedelta(days=1),
        window_end=now + timedelta(days=1, hours=2),
    ).id
    db.session.execute(  # it has waited three hours in its lane
        sa.update(Booking).where(Booking.id == soon).values(updated_at=now - timedelta(hours=3))
    )
    db.session.commit()
    admin = login("admin")

    board = Page(admin.get("/admin/"))
    assert board.card_ids[:2] == [soon, later]  # the soonest window first
    assert 'data-testid="late">Late<' in board.card(soon)
    assert "Late" not in re.sub(r"<[^>]+>", " ", board.card(later))
    assert "waiting 3 h" in board.card(soon)

    narrowed = Page(admin.get("/admin/?late=1"))
    assert narrowed.card_ids == [soon]
    assert 'name="late" value="1" checked' in narrowed.html
    poll = re.search(r'<div id="board"[^>]*hx-get="([^"]+)"', narrowed.html).group(1)
    assert poll == "/admin/board?q=&amp;service=&amp;late=1"
    assert Page(admin.get(poll.replace("&amp;", "&"), headers=HTMX)).card_ids == [soon]
    assert Page(admin.get("/admin/lanes/pending?late=1")).card_ids == [soon]


def test_the_customer_sees_their_late_booking_flagged(people, login):
    late = begun_an_hour_ago(people)
    owner = login("owner")
    assert 'data-testid="late"' in Page(owner.get("/customer/")).card(late)
