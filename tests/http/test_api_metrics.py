"""GET /api/metrics/dispatch: the board's figures as JSON, for dispatchers and automation; a
`since` that is not a time, or is in the future, is refused in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from ops_portal.services import metrics
from tests.support.api import assert_aware_iso, assert_error
from tests.support.history import LAPSE, History


def test_metrics_since_a_time_agree_with_the_service(api, cast):
    start = datetime.now(UTC) - timedelta(hours=2)
    history = History(cast)
    booking = history.book(start)
    history.act(
        booking, "assign", start + timedelta(minutes=2), by="system", provider=cast.provider
    )
    history.act(booking, LAPSE, start + timedelta(minutes=7), by="system")
    history.act(booking, "assign", start + timedelta(minutes=8), by="admin", provider=cast.provider)
    history.act(booking, "accept", start + timedelta(minutes=8, seconds=30), by="provider")
    history.book(start + timedelta(minutes=10))
    history.write()

    query = urlencode({"since": start.isoformat()})  # "+00:00" would read as " 00:00"
    response = api.get(f"/api/metrics/dispatch?{query}", as_="system")

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert assert_aware_iso(body["since"]) == start
    assert body["pending"] == 1 and body["oldest_pending_wait_seconds"] > 100 * 60
    assert (body["accepted"], body["rejected"], body["lapsed"], body["offers_ended"]) == (
        1,
        0,
        1,
        2,
    )
    assert body["lapse_rate"] == 0.5 and body["automatic_share"] == 0.5
    assert body["median_time_to_assign_seconds"] == 90.0  # 2 min after creation, 1 after the lapse
    assert body["median_time_to_accept_seconds"] == 30.0
    service = metrics.dispatch_metrics(cast.admin, since=start, until=datetime.now(UTC))
    assert body["assignments"] == service.assignments == 2


def test_metrics_default_to_the_start_of_today_utc(api, cast):
    body = api.get("/api/metrics/dispatch", as_="admin").get_json()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert assert_aware_iso(body["since"]) == today
    assert body["acceptance_rate"] is None and body["median_time_to_accept_seconds"] is None


@pytest.mark.parametrize(
    "since, said",
    [
        ("yesterday", "since must be a date and time in ISO 8601"),
        ("2030-03-01T00:00:00", None),  # no offset
        ("2999-01-01T00:00:00Z", "since must not be after"),
    ],
    ids=["not a time", "no offset", "in the future"],
)
def test_a_since_that_is_not_a_past_time_is_refused_in_words(api, cast, since, said):
    detail = assert_error(api.get(f"/api/metrics/dispatch?since={since}", as_="admin"), 400)
    assert detail.startswith("since") and (said is None or said in detail)


def test_only_dispatchers_and_automation_read_metrics(api, cast):
    assert_error(api.get("/api/metrics/dispatch", as_="provider"), 403)
    assert_error(api.get("/api/metrics/dispatch", as_="owner"), 403)
    assert_error(api.get("/api/metrics/dispatch"), 401)


def test_an_argument_the_operation_does_not_take_is_refused_naming_the_one_it_does(api, cast):
    detail = assert_error(api.get("/api/metrics/dispatch?from=2030-01-01", as_="admin"), 400)
    assert "from" in detail and "accepted fields: since" in detail
