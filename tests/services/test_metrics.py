"""Dispatch metrics agree with a plain-Python reading of the same events, on histories written
on a moved clock; only dispatchers read them."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ops_portal.domain.errors import InvalidInput, NotPermitted
from ops_portal.domain.lifecycle import Status
from ops_portal.services import metrics
from tests.support.history import LAPSE, History, random_history
from tests.support.queries import counted_statements

START = datetime(2030, 3, 1, 6, tzinfo=UTC)
OUTCOMES = ("COMPLETED", "CANCELLED", "FAILED")


def reference(history: History, since: datetime, until: datetime) -> dict:
    """The metrics, walking each booking's events in order."""
    chains = defaultdict(list)
    for event in history.events:  # written in time order within a booking
        chains[event.booking_id].append(event)
    to_assign, to_accept, ends = [], [], Counter()
    assignments = automatic = 0
    for chain in chains.values():
        for before, event in zip([None, *chain[:-1]], chain, strict=True):
            if not since <= event.created_at < until:
                continue
            if event.action in ("assign", "force-assign") and event.from_status != "ASSIGNED":
                assignments += 1
                automatic += event.actor_role == "SYSTEM"
                to_assign.append(event.created_at - before.created_at)
            elif event.action in ("accept", "reject", LAPSE):
                ends[event.action] += 1
                if event.action == "accept":
                    to_accept.append(event.created_at - before.created_at)
    pending = [
        chain[-1].created_at for chain in chains.values() if chain[-1].to_status == "PENDING"
    ]
    ended = sum(ends.values())
    return {
        "pending": len(pending),
        "oldest_pending_since": min(pending, default=None),
        "assignments": assignments,
        "automatic_share": automatic / assignments if assignments else None,
        "median_time_to_assign": statistics.median(to_assign) if to_assign else None,
        "median_time_to_accept": statistics.median(to_accept) if to_accept else None,
        "acceptance_rate": ends["accept"] / ended if ended else None,
        "rejection_rate": ends["reject"] / ended if ended else None,
        "lapse_rate": ends[LAPSE] / ended if ended else None,
        "to_accept": to_accept,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_board_metrics_agree_with_the_events_read_by_hand(cast, seed):
    history = random_history(cast, START, bookings=80, seed=seed)
    since, until = START + timedelta(hours=20), START + timedelta(hours=44)
    expected = reference(history, since, until)
    got = metrics.dispatch_metrics(cast.admin, since=since, until=until)
    assert expected["assignments"] > 10 and expected["lapse_rate"]  # the history has substance
    for name, value in expected.items():
        if name != "to_accept":
            assert getattr(got, name) == value, name


def test_a_lapse_counts_by_its_value_and_times_run_from_the_event_before(cast):
    history = History(cast)
    at = START
    first = history.book(at)
    history.act(first, "assign", at + timedelta(minutes=3), by="system", provider=cast.provider)
    history.act(first, LAPSE, at + timedelta(minutes=8), by="system")
    history.act(
        first, "assign", at + timedelta(minutes=9), by="admin", provider=cast.other_provider
    )
    history.act(first, "accept", at + timedelta(minutes=9, seconds=40), by="other_provider")
    second = history.book(at + timedelta(minutes=1))
    history.write()

    got = metrics.dispatch_metrics(cast.admin, since=START, until=START + timedelta(hours=1))

    assert (got.accepted, got.rejected, got.lapsed) == (1, 0, 1)
    assert got.lapse_rate == 0.5
    assert got.automatic_share == 0.5
    # 3 min from creation; 1 min from the lapse that reopened it.
    assert got.median_time_to_assign == timedelta(minutes=2)
    assert got.median_time_to_accept == timedelta(seconds=40)
    assert got.pending == 1 and got.oldest_pending_since == START + timedelta(minutes=1)
    assert got.oldest_pending_wait == timedelta(minutes=59)
    assert second


def test_an_empty_span_has_no_rates_rather_than_zeroes(cast):
    got = metrics.dispatch_metrics(cast.admin, since=START, until=START + timedelta(hours=1))
    assert got.assignments == got.offers_ended == 0
    assert got.acceptance_rate is None and got.median_time_to_accept is None


def test_report_charts_agree_with_the_events_read_by_hand(cast):
    history = random_history(cast, START, bookings=80, seed=7)
    zone = ZoneInfo("America/New_York")
    since = datetime(2030, 3, 1, tzinfo=zone).astimezone(UTC)
    until = since + timedelta(days=1)

    hours = metrics.outcomes_by_hour(cast.admin, since=since, until=until, zone=zone)
    expected = Counter(
        (e.created_at.astimezone(zone).hour, e.to_status)
        for e in history.events
        if since <= e.created_at < until and e.to_status in OUTCOMES
    )
    assert [h.hour.hour for h in hours] == list(range(24))
    got = Counter({(h.hour.hour, s.value): n for h in hours for s, n in h.counts.items() if n})
    assert got == expected and sum(expected.values()) >= 5

    accepts = metrics.accept_times(cast.admin, since=since, until=until)
    histogram = dict(accepts.bins)
    waits = reference(history, since, until)["to_accept"]
    assert accepts.median == statistics.median(waits)
    assert sum(histogram.values()) == len(waits) > 3
    assert histogram["< 30 s"] == sum(w < timedelta(seconds=30) for w in waits)
    assert histogram["15+ min"] == sum(w >= timedelta(minutes=15) for w in waits)

    jobs = metrics.jobs_per_provider(cast.admin, since=since, until=until)
    accepted = Counter(
        e.provider_id
        for e in history.events
        if since <= e.created_at < until and e.action == "accept"
    )
    assert {j.provider_id: j.jobs for j in jobs} == accepted
    assert [j.jobs for j in jobs] == sorted(accepted.values(), reverse=True)


def test_a_day_when_clocks_change_has_its_23_hours(cast):
    zone = ZoneInfo("Europe/London")
    since = datetime(2030, 3, 31, tzinfo=zone).astimezone(UTC)
    until = datetime(2030, 4, 1, tzinfo=zone).astimezone(UTC)
    hours = metrics.outcomes_by_hour(cast.admin, since=since, until=until, zone=zone)
    assert len(hours) == 23


def test_each_metric_is_one_query_however_many_events(cast):
    def statements() -> int:
        with counted_statements() as seen:
            metrics.dispatch_metrics(cast.admin, since=START, until=START + timedelta(days=2))
            metrics.accept_times(cast.admin, since=START, until=START + timedelta(days=2))
            metrics.jobs_per_provider(cast.admin, since=START, until=START + timedelta(days=2))
            metrics.outcomes_by_hour(
                cast.admin, since=START, until=START + timedelta(days=1), zone=UTC
            )
        return len(seen)

    few = statements()
    random_history(cast, START, bookings=60, seed=4)
    # One query each (two for the board's), and a BEGIN on SQLite.
    assert statements() == few <= 6


def test_only_dispatchers_read_metrics_and_a_span_must_run_forwards(cast):
    with pytest.raises(NotPermitted):
        metrics.dispatch_metrics(cast.provider, since=START, until=START + timedelta(hours=1))
    assert metrics.dispatch_metrics(cast.system, since=START, until=START + timedelta(hours=1))
    with pytest.raises(InvalidInput, match="since must not be after"):
        metrics.dispatch_metrics(cast.admin, since=START, until=START - timedelta(seconds=1))
    # An empty span (the first instant of a day) measures nothing.
    assert metrics.dispatch_metrics(cast.admin, since=START, until=START).assignments == 0
    assert Status.PENDING  # the statuses counted are the lifecycle's
