"""Database faults answer 503 with Retry-After and write nothing half-way."""

import sqlite3

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Status
from ops_portal.extensions import db
from ops_portal.models import BookingEvent
from ops_portal.services import accounts
from tests.support.builders import booking_in, booking_state
from tests.support.databases import make_app


@pytest.fixture
def locked_sqlite(app, database_url):
    """Another process's writer holding SQLite's write lock (a real lock on the real file)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer lock; PostgreSQL locks rows instead")
    holder = sqlite3.connect(sa.make_url(database_url).database, isolation_level=None)
    yield holder
    holder.close()


def test_a_write_that_waits_past_the_busy_timeout_answers_503_and_changes_nothing(
    app, database_url, cast, locked_sqlite
):
    booking = booking_in(cast, Status.PENDING)
    before = booking_state(booking.id)
    impatient = make_app(database_url, SQLITE_BUSY_TIMEOUT=0.2).test_client()
    headers = {"Authorization": f"Bearer {cast.tokens['owner']}"}

    locked_sqlite.execute("BEGIN IMMEDIATE")
    response = impatient.post(f"/api/bookings/{booking.id}/cancel", headers=headers)
    assert response.status_code == 503
    assert response.get_json()["detail"].startswith("The database is unavailable")
    assert int(response.headers["Retry-After"]) > 0
    locked_sqlite.execute("ROLLBACK")

    assert booking_state(booking.id) == before  # nothing half-written
    # The client's retry, once the lock is free, goes through exactly once.
    retried = impatient.post(f"/api/bookings/{booking.id}/cancel", headers=headers)
    assert retried.status_code == 200 and retried.get_json()["status"] == "CANCELLED"
    db.session.rollback()
    cancels = db.session.scalar(
        sa.select(sa.func.count()).where(
            BookingEvent.booking_id == booking.id, BookingEvent.action == "cancel"
        )
    )
    assert cancels == 1


def test_a_page_action_that_meets_a_locked_database_shows_an_alert_not_a_stack_trace(
    app, database_url, cast, locked_sqlite
):
    booking = booking_in(cast, Status.PENDING)
    impatient = make_app(database_url, SQLITE_BUSY_TIMEOUT=0.2, WTF_CSRF_ENABLED=False)
    client = impatient.test_client()
    accounts.create_user("dispatch@example.com", "Dispatch", "ADMIN", "correct horse battery")
    assert (
        client.post(
            "/login", data={"email": "dispatch@example.com", "password": "correct horse battery"}
        ).status_code
        == 303
    )

    locked_sqlite.execute("BEGIN IMMEDIATE")
    response = client.post(
        f"/admin/bookings/{booking.id}/mark-failed",
        data={"reason": "Customer unreachable"},
        headers={"HX-Request": "true"},
    )
    locked_sqlite.execute("ROLLBACK")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "nothing was changed" in body
    assert booking_state(booking.id)[0] == Status.PENDING


UNREACHABLE = pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/none",
        "sqlite:////nonexistent-ops-portal-dir/deeper/ops_portal.sqlite3",
    ],
    ids=["postgresql-nothing-listening", "sqlite-in-a-missing-directory"],
)


@UNREACHABLE
def test_health_answers_503_with_a_retry_hint_when_the_database_is_unreachable(url):
    app = make_app(url)
    try:
        response = app.test_client().get("/health")
        assert response.status_code == 503
        assert "database" in response.get_json()["detail"].lower()
        assert int(response.headers["Retry-After"]) > 0
    finally:
        with app.app_context():
            db.engine.dispose()


@UNREACHABLE
def test_an_unreachable_database_answers_503_to_the_api_and_to_the_pages(url):
    app = make_app(url, WTF_CSRF_ENABLED=False)
    try:
        client = app.test_client()
        api = client.get("/api/bookings/1", headers={"Authorization": "Bearer ops_whatever"})
        assert api.status_code == 503 and api.mimetype == "application/json"
        assert api.get_json()["error"] == "unavailable"
        assert int(api.headers["Retry-After"]) > 0

        page = client.post("/login", data={"email": "ada@example.com", "password": "pw"})
        assert page.status_code == 503 and page.mimetype == "text/html"
        assert int(page.headers["Retry-After"]) > 0
        body = page.get_data(as_text=True)
        assert "nothing was changed" in body and "Traceback" not in body
    finally:
        with app.app_context():
            db.engine.dispose()
