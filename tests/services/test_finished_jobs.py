"""A provider's finished jobs: who may read the history and a finished booking, and the
customer's phone, which only the job's provider and dispatchers see. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ops_portal.domain.access import can_view, sees_customer_phone
from ops_portal.domain.errors import InvalidInput, NotPermitted
from ops_portal.domain.lifecycle import Status
from ops_portal.services import bookings
from tests.support.builders import booking_in


def test_a_provider_may_read_a_job_they_completed_but_not_one_they_were_taken_off(cast):
    finished = booking_in(cast, Status.COMPLETED)
    rejected = booking_in(cast, Status.REJECTED)
    assert bookings.get_booking(cast.provider, finished.id).id == finished.id
    with pytest.raises(NotPermitted):
        bookings.get_booking(cast.provider, rejected.id)
    with pytest.raises(NotPermitted):
        bookings.get_booking(cast.other_provider, finished.id)


def test_the_history_is_the_providers_own_or_a_dispatchers(cast):
    finished = booking_in(cast, Status.COMPLETED)
    history = bookings.provider_history(cast.provider, cast.provider.user_id)
    assert [b.id for b in history.items] == [finished.id]
    assert bookings.provider_history(cast.admin, cast.provider.user_id).total == 1
    for stranger in (cast.other_provider, cast.owner):
        with pytest.raises(NotPermitted):
            bookings.provider_history(stranger, cast.provider.user_id)


def test_the_customers_phone_is_for_the_jobs_provider_and_dispatchers_only(cast):
    assigned = booking_in(cast, Status.ASSIGNED).facts
    assert sees_customer_phone(assigned, cast.provider)
    assert sees_customer_phone(assigned, cast.admin)
    assert not sees_customer_phone(assigned, cast.other_provider)
    assert not can_view(assigned, cast.other_provider)


@pytest.mark.parametrize("phone", ["+44 20 7946 0018", "(0113) 496-0000", "123456"])
def test_a_phone_as_people_write_it_is_kept_as_written(cast, phone):
    booking = bookings.create_booking(cast.owner, customer_phone=f" {phone} ")
    assert booking.customer_phone == phone


@pytest.mark.parametrize("phone", ["12345", "+44 20 7946 0018 ext 2", "１２３４５６７", "0" * 21])
def test_a_phone_that_is_not_a_number_is_refused(cast, phone):
    with pytest.raises(InvalidInput, match="A phone number has 6 to 20 digits"):
        bookings.create_booking(cast.owner, customer_phone=phone)
