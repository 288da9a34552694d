"""No query per row: the reads behind the dispatch board and the work queue make the same number
of SQL statements whatever the number of rows."""

from __future__ import annotations

import sqlalchemy as sa

from ops_portal.domain.lifecycle import Action, Availability, Role, Status
from ops_portal.extensions import db
from ops_portal.models import Provider
from ops_portal.services import accounts, bookings, providers
from tests.support.builders import booking_in
from tests.support.queries import counted_statements


def add_providers(count: int, start: int) -> list[int]:
    created = accounts.create_users(
        [
            accounts.validate_new_user(f"p{n}@example.com", f"Provider {n:04d}", Role.PROVIDER)
            for n in range(start, start + count)
        ],
        with_tokens=False,
    )
    return [user.id for user, _ in created]


def provider_board(cast):
    """The provider panel as a page renders it: every field of every row."""
    with counted_statements() as statements:
        rows = providers.providers_with_availability(cast.admin)
        rendered = [
            (p.id, p.name, p.active, p.availability, p.busy_with, p.active_count) for p in rows
        ]
    return rendered, len(statements)


def test_provider_list_makes_the_same_number_of_queries_for_5_and_500_providers(cast):
    # cast brings 2 providers; cast.provider is busy, and one more is inactive.
    booking_in(cast, Status.IN_PROGRESS)
    ids = add_providers(3, start=0)
    db.session.execute(sa.update(Provider).where(Provider.id == ids[0]).values(active=False))
    db.session.commit()

    small, small_count = provider_board(cast)
    assert len(small) == 5
    assert small_count >= 1

    more = add_providers(495, start=3)
    # Some of the new ones busy too, one of them doubly (force-assigned).
    for provider_id in more[:3]:
        pending = booking_in(cast, Status.PENDING)
        bookings.perform_action(cast.admin, pending.id, Action.ASSIGN, provider_id=provider_id)
    pending = booking_in(cast, Status.PENDING)
    bookings.perform_action(cast.admin, pending.id, Action.FORCE_ASSIGN, provider_id=more[0])

    large, large_count = provider_board(cast)
    assert len(large) == 500
    assert large_count == small_count
    by_availability = {a: sum(1 for row in large if row[3] is a) for a in Availability}
    assert by_availability == {
        Availability.BUSY: 4,
        Availability.OFF_DUTY: 0,
        Availability.INACTIVE: 1,
        Availability.AVAILABLE: 495,
    }
    assert {row[0]: row[5] for row in large}[more[0]] == 2


def provider_queue_page(cast):
    """The work queue as a page renders it: each booking with its customer's name and its
    provider (a card's timeline is fetched when it is opened, one booking at a time)."""
    with counted_statements() as statements:
        queue = bookings.provider_queue(cast.provider, cast.provider.user_id)
        rendered = [
            (
                b.id,
                b.status,
                b.customer_name,
                b.provider.name,
                b.service,
                b.address,
                b.window_start,
                b.created_at,
                b.version,
            )
            for b in queue
        ]
    return rendered, len(statements)


def give_provider(cast, count: int) -> None:
    """`count` more active bookings for cast.provider (force-assigned: a provider can hold more
    than one only that way), every third one accepted."""
    for n in range(count):
        pending = bookings.create_booking(cast.owner, service=f"Job {n}", address=f"{n} Queue St")
        bookings.perform_action(
            cast.admin, pending.id, Action.FORCE_ASSIGN, provider_id=cast.provider.user_id
        )
        if n % 3 == 0:
            bookings.perform_action(cast.provider, pending.id, Action.ACCEPT)


def test_provider_queue_makes_the_same_number_of_queries_for_3_and_60_bookings(cast):
    give_provider(cast, 3)
    small, small_count = provider_queue_page(cast)
    assert len(small) == 3
    assert small_count >= 1

    give_provider(cast, 57)
    # Other people's bookings and finished work stay out of the queue.
    booking_in(cast, Status.IN_PROGRESS, provider=cast.other_provider)
    large, large_count = provider_queue_page(cast)
    assert len(large) == 60
    assert large_count == small_count
    assert {row[3] for row in large} == {"Pat Provider"}
    assert {row[2] for row in large} == {"Olive Owner"}
    assert all(row[1] in ("ASSIGNED", "IN_PROGRESS") for row in large)
