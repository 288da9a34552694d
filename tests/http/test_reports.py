"""The dispatcher's figures on pages: today's on the board, a day's charts on the reports page
(SVG with a title, a description and a table of figures each, nothing the CSP forbids), and
CSV downloads of the bookings list and of a booking's timeline."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ops_portal.extensions import db
from ops_portal.models import User
from ops_portal.services import bookings, metrics
from tests.support.builders import booking_in
from tests.support.history import LAPSE, History, random_history
from tests.support.pages import Page
from tests.support.queries import counted_statements

DAY = "2025-03-01"
START = datetime(2025, 3, 1, tzinfo=UTC)


def midday_zone(who: str) -> str:
    """Give `who` a zone where it is about noon now, so "today" holds the last few hours."""
    offset = 12 - datetime.now(UTC).hour
    zone = "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
    db.session.execute(sa.update(User).where(User.email == who).values(time_zone=zone))
    db.session.commit()
    return zone


def test_the_board_shows_todays_dispatch_figures(people, login):
    midday_zone("ada@example.com")
    now = datetime.now(UTC)
    history = History(people)
    booking = history.book(now - timedelta(hours=3))
    at = now - timedelta(hours=2)
    history.act(booking, "assign", at, by="system", provider=people.provider)
    history.act(booking, LAPSE, at + timedelta(minutes=5), by="system")
    history.act(booking, "assign", at + timedelta(minutes=6), by="admin", provider=people.provider)
    history.act(booking, "accept", at + timedelta(minutes=6, seconds=40), by="provider")
    history.book(now - timedelta(minutes=50))
    history.write()

    board = Page(login("admin").get("/admin/"))

    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", board.html))
    assert figures["Waiting"].startswith("1 ") and "(oldest 50 min)" in figures["Waiting"]
    assert figures["Median to assign"] == "30 min"  # 1 h, and 1 min after the lapse
    assert figures["Median to accept"] == "40 s"
    assert figures["Accepted · rejected · lapsed"].startswith("50% · 0% · 50%")
    assert figures["Assigned automatically"].startswith("50%")
    assert 'href="/admin/reports"' in board.html


def test_the_boards_oldest_wait_reads_as_the_waiting_card_says_it(people, login):
    midday_zone("ada@example.com")
    history = History(people)
    booking = history.book(datetime.now(UTC) - timedelta(hours=3, minutes=20))
    history.write()

    board = Page(login("admin").get("/admin/"))

    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", board.html))
    assert "(oldest 3 h)" in figures["Waiting"]
    assert 'data-testid="waiting">waiting 3 h<' in board.card(booking)


def test_the_board_with_no_dispatch_today_says_so_with_dashes(people, login):
    board = Page(login("admin").get("/admin/"))
    assert "<dt>Median to accept</dt><dd>—</dd>" in board.html


def report(client, day: str = DAY) -> Page:
    return Page(client.get(f"/admin/reports?day={day}"))


def test_the_reports_page_draws_each_chart_with_its_words_and_figures(people, login):
    random_history(people, START, bookings=60, seed=3)
    page = report(login("admin"))

    assert page.status == 200
    charts = re.findall(r"<svg class=\"chart[^\"]*\"[^>]*>.*?</svg>", page.html, re.S)
    assert len(charts) == 3
    for chart in charts:
        assert 'role="img"' in chart and "<title id=" in chart and "<desc id=" in chart
    assert page.html.count("<table>") == 3
    # Nothing the CSP refuses: no script, no style attribute.
    assert "style=" not in page.html and "<script>" not in page.html
    # The hour table's figures are the service's.
    zone = metrics.day_span(START.date(), UTC)
    hours = metrics.outcomes_by_hour(people.admin, since=zone[0], until=zone[1], zone=UTC)
    table = page.html.split("Bookings by outcome in each hour", 1)[1]
    rows = re.findall(
        r'<th scope="row">(\d\d:\d\d)</th><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>',
        table,
    )
    assert [(r[0], int(r[4])) for r in rows] == [(h.hour.strftime("%H:%M"), h.total) for h in hours]
    jobs = metrics.jobs_per_provider(people.admin, since=zone[0], until=zone[1])
    assert f'<th scope="row">{jobs[0].name}</th><td>{jobs[0].jobs}</td>' in page.html
    assert 'aria-current="page">Reports</a>' in page.html


def test_a_day_that_is_not_a_day_is_refused_beside_the_field_keeping_what_was_typed(people, login):
    page = report(login("admin"), "next+tuesday")
    assert page.status == 400
    assert 'value="next tuesday"' in page.html and 'aria-invalid="true"' in page.html
    assert "is not a day" in page.text


def test_a_day_to_come_has_empty_charts(people, login):
    page = report(login("admin"), "2999-01-01")
    assert page.status == 200 and "0 bookings reached an outcome this day" in page.html
    assert "No provider accepted a job this day." in page.text


def test_the_reports_page_makes_as_many_statements_for_a_busy_day_as_a_quiet_one(people, login):
    admin = login("admin")
    report(admin)

    def statements() -> int:
        with counted_statements() as seen:
            assert report(admin).status == 200
        return len(seen)

    quiet = statements()
    random_history(people, START, bookings=150, seed=5)
    assert statements() == quiet


def download(client, url: str) -> tuple[list[list[str]], object]:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    # Streamed: the length is not known before the last row is written.
    assert response.mimetype == "text/csv" and "Content-Length" not in response.headers
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True)))), response


def test_the_bookings_list_downloads_as_csv_with_its_search_and_filter(people, login):
    tricky = bookings.create_booking(
        people.owner,
        service="Leaking tap",
        address='=HYPERLINK("http://evil.example","click"), "Flat 2"\nback door',
        customer_name="@Olive, Owner",
    )
    booking_in(people, "CANCELLED")
    admin = login("admin")

    rows, _ = download(admin, "/admin/archive.csv?status=PENDING")

    assert rows[0][:4] == ["Booking", "Status", "Service", "Customer"]
    assert [row[0] for row in rows[1:]] == [str(tricky.id)]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Customer"] == "'@Olive, Owner"
    assert row["Address"] == '\'=HYPERLINK("http://evil.example","click"), "Flat 2"\nback door'
    every, _ = download(admin, "/admin/archive.csv?q=olive")
    assert len(every) == 3  # the header and both bookings, the latest change first
    archive = Page(admin.get("/admin/archive?q=olive&status=PENDING"))
    assert 'href="/admin/archive.csv?q=olive&amp;status=PENDING"' in archive.html


def test_a_booking_timeline_downloads_as_a_dispatcher_reads_it(people, login):
    booking = booking_in(people, "FAILED")  # assigned, then marked failed "test reason"
    admin = login("admin")
    rows, _ = download(admin, f"/admin/bookings/{booking.id}/timeline.csv")
    assert rows[0][:3] == ["Event", "Time", "What happened"]
    assert [r[3] for r in rows[1:]] == ["create", "assign", "mark-failed"]
    assert rows[-1][6] == "Ada Admin" and rows[-1][8] == "test reason"
    page = Page(admin.get(f"/admin/bookings/{booking.id}"))
    assert f'href="/admin/bookings/{booking.id}/timeline.csv"' in page.html


@pytest.mark.parametrize(
    "url", ["/admin/archive.csv", "/admin/bookings/1/timeline.csv", "/admin/reports"]
)
def test_only_dispatchers_download_and_read_reports(people, login, url):
    booking_in(people, "PENDING")
    assert login("provider").get(url).status_code == 403
    assert login("owner").get(url).status_code == 403
