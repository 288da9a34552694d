"""The lifecycle matrix: every booking action x every status x every kind of
actor, one test per cell, through the service layer on real databases.

The expected answer of each cell is derived from `LIFECYCLE` (whose rows
tests/unit/test_lifecycle_table.py checks against the table written out by hand), with the relation
to the booking judged here independently of the code's own `is_related`:

- role not among the rule's roles -> refused, 403
- the relation fails (OWNER: the owning customer; ASSIGNED: the provider assigned now) -> 403
- the booking's status is not among the rule's sources -> refused, 400
- else allowed (taken on the right side of the offer's deadline, where the rule names one):
  the booking moves to the rule's target with exactly one new event.

A refused cell changes nothing: status, provider, version and events are re-read from the
database and compared with what they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ops_portal.domain.errors import DomainError, NotPermitted, ProviderBusy, TransitionNotAllowed
from ops_portal.domain.lifecycle import (
    BOOKING_ACTIONS,
    LIFECYCLE,
    Action,
    Actor,
    Deadline,
    Relation,
    Role,
    Status,
    allowed_actions,
)
from ops_portal.extensions import db
from ops_portal.http.errors import status_for
from ops_portal.models import Booking, BookingEvent
from ops_portal.services import bookings
from tests.support.builders import assert_event_chain, booking_in, read_booking
from tests.support.people import ACTOR_KINDS

REASON = "matrix reason"

CELLS = [
    pytest.param(action, status, kind, id=f"{action.value}-{status.value}-{kind}")
    for action in BOOKING_ACTIONS
    for status in Status
    for kind in ACTOR_KINDS
]


@dataclass(frozen=True)
class Snapshot:
    """What a booking looks like in the database."""

    status: str
    customer_id: int
    provider_id: int | None
    assignment_forced: bool
    version: int
    updated_at: object
    offer_expires_at: object
    event_ids: tuple[int, ...]


def snapshot(booking_id: int) -> Snapshot:
    """Re-read the booking and its events from the database, bypassing the session's cache."""
    return Snapshot(
        *read_booking(
            booking_id,
            Booking.status,
            Booking.customer_id,
            Booking.provider_id,
            Booking.assignment_forced,
            Booking.version,
            Booking.updated_at,
            Booking.offer_expires_at,
        )
    )


def expected_code(action: Action, before: Snapshot, actor: Actor) -> int | None:
    """None when the cell is allowed, else the HTTP code its refusal must map to."""
    rule = LIFECYCLE[action]
    if actor.role not in rule.roles:
        return 403
    if rule.relation is Relation.OWNER:
        related = actor.role is Role.CUSTOMER and actor.user_id == before.customer_id
    elif rule.relation is Relation.ASSIGNED:
        related = actor.role is Role.PROVIDER and actor.user_id == before.provider_id
    else:
        related = True
    if not related:
        return 403
    if Status(before.status) not in rule.sources:
        return 400
    return None


@pytest.mark.parametrize("action, status, kind", CELLS)
def test_lifecycle_cell(cast, action, status, kind):
    rule = LIFECYCLE[action]
    actor = cast.by_name(kind)
    booking = booking_in(cast, status)
    before = snapshot(booking.id)
    assert before.status == status
    # The provider named by assign / force-assign is always a different, AVAILABLE one.
    provider_id = cast.other_provider.user_id if rule.takes_provider else None
    expected = expected_code(action, before, actor)
    # An offer is expired once its deadline has come; everything else happens as soon as asked.
    now = before.offer_expires_at if rule.offer_deadline is Deadline.AFTER else None

    # The buttons a person sees agree with what the service does.
    facts = bookings.get_booking(cast.admin, booking.id).facts
    assert (action in allowed_actions(facts, actor)) == (expected is None)

    if expected is None:
        result = bookings.perform_action(
            actor, booking.id, action, provider_id=provider_id, reason=REASON, now=now
        )
        assert result.status == rule.target
        after = snapshot(booking.id)
        assert after.status == rule.target
        assert after.version == before.version + 1
        assert after.customer_id == before.customer_id
        # An assignment is an offer with a deadline; leaving ASSIGNED ends it.
        assert (after.offer_expires_at is not None) == (rule.target is Status.ASSIGNED)
        if rule.takes_provider:
            assert after.provider_id == provider_id
            assert after.assignment_forced is rule.forced
        elif rule.releases_provider:
            assert after.provider_id is None
            assert after.assignment_forced is False
        else:  # accept keeps the provider, complete keeps who did the job
            assert after.provider_id == before.provider_id
            assert after.provider_id == cast.provider.user_id

        new_ids = after.event_ids[len(before.event_ids) :]
        assert after.event_ids[: len(before.event_ids)] == before.event_ids
        assert len(new_ids) == 1, "an allowed action appends exactly one event"
        event = db.session.get(BookingEvent, new_ids[0])
        assert event.action == action
        assert event.from_status == before.status
        assert event.to_status == rule.target
        assert event.actor_role == actor.role
        assert event.actor_id == actor.user_id
        assert event.source == actor.source
        assert event.provider_id == (provider_id if rule.takes_provider else before.provider_id)
        assert event.forced is rule.forced
        assert event.reason == REASON
        assert event.created_at == after.updated_at
        assert_event_chain(booking.id)
    else:
        with pytest.raises(DomainError) as refused:
            bookings.perform_action(
                actor, booking.id, action, provider_id=provider_id, reason=REASON, now=now
            )
        error = refused.value
        assert status_for(error) == expected, error.detail
        assert not isinstance(error, ProviderBusy), "the named provider was available"
        if expected == 403:
            assert isinstance(error, NotPermitted)
        else:
            assert isinstance(error, TransitionNotAllowed)
            # A refusal says what was asked, the current status and why not.
            assert action.value in error.detail and status.value in error.detail
        assert snapshot(booking.id) == before, "a refused action changed the booking"
