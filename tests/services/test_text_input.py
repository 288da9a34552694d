"""Free text at the service layer (pages and API alike): control characters refused with
InvalidInput naming the field, a browser's CRLF newlines stored as "\\n", other Unicode kept as
typed; and account lookups that never hand PostgreSQL a NUL byte."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ops_portal.domain.errors import InvalidInput, NotFound
from ops_portal.domain.lifecycle import Action, Role, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent, User
from ops_portal.services import accounts, bookings
from tests.support.builders import booking_in, booking_state

# C0 (NUL, bell, lone CR, escape), DEL and C1 (NEL, CSI): all of Unicode category Cc but \t, \n.
CONTROL_CHARACTERS = ["\x00", "\x07", "\r", "\x1b", "\x1f", "\x7f", "\x85", "\x9b"]
KEPT_AS_TYPED = [
    "Ünal Öztürk",
    "🐕 friendly",
    "\u200fשלום\u200e",
    "Cafe\u0301",
    "gate\tcode",
    "two\nlines",
]


def bookings_and_events() -> tuple[int, int]:
    db.session.rollback()
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(Booking)),
        db.session.scalar(sa.select(sa.func.count()).select_from(BookingEvent)),
    )


@pytest.mark.parametrize("field", ["address", "notes", "customer_name", "service"])
@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=repr)
def test_create_booking_refuses_control_characters_naming_the_field(cast, field, control):
    with pytest.raises(InvalidInput, match=f"{field} must not contain control characters") as err:
        bookings.create_booking(cast.owner, **{"service": "Plumbing", field: f"a{control}b"})
    assert err.value.field == field
    assert bookings_and_events() == (0, 0)


@pytest.mark.parametrize("control", ["\x1f", "\x85"], ids=repr)
def test_a_control_character_at_the_end_is_refused_not_quietly_stripped(cast, control):
    # str.strip() counts \x1c-\x1f and \x85 as whitespace: the check must come first.
    with pytest.raises(InvalidInput):
        bookings.create_booking(cast.owner, service="Plumbing", notes=f"ring twice{control}")


def test_create_booking_stores_crlf_newlines_as_newlines(cast):
    booking = bookings.create_booking(
        cast.owner, service="Plumbing", address="Flat 3\r\n12 Canal St", notes="a\r\nb\r\nc"
    )
    assert (booking.address, booking.notes) == ("Flat 3\n12 Canal St", "a\nb\nc")


@pytest.mark.parametrize("text", KEPT_AS_TYPED)
def test_create_booking_keeps_other_unicode_as_typed(cast, text):
    booking = bookings.create_booking(
        cast.owner, service="Plumbing", address=text, notes=text, customer_name=text
    )
    db.session.expire_all()
    stored = db.session.get(Booking, booking.id)
    assert (stored.address, stored.notes, stored.customer_name) == (text, text, text)


@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=repr)
def test_an_action_reason_with_control_characters_is_refused_and_changes_nothing(cast, control):
    booking_id = booking_in(cast, Status.PENDING).id
    before = booking_state(booking_id)
    with pytest.raises(InvalidInput, match="reason must not contain control characters") as err:
        bookings.perform_action(
            cast.admin, booking_id, Action.MARK_FAILED, reason=f"no{control}show"
        )
    assert err.value.field == "reason"
    assert booking_state(booking_id) == before


def test_an_action_reason_keeps_its_newlines_with_crlf_stored_as_newlines(cast):
    booking_id = booking_in(cast, Status.PENDING).id
    bookings.perform_action(
        cast.admin, booking_id, Action.MARK_FAILED, reason="No show.\r\nCalled twice 📞"
    )
    assert bookings.booking_events(cast.admin, booking_id)[-1].reason == "No show.\nCalled twice 📞"


@pytest.mark.parametrize("control", ["\x7f", "\x85"], ids=repr)
def test_the_archive_search_refuses_del_and_c1_controls(cast, control):
    with pytest.raises(InvalidInput, match="search must not contain control characters"):
        bookings.find_bookings(cast.admin, search=f"olive{control}")


@pytest.mark.parametrize("field", ["email", "name"])
@pytest.mark.parametrize("control", CONTROL_CHARACTERS, ids=repr)
def test_a_new_user_with_control_characters_is_refused_naming_the_field(field, control):
    values = {"email": "ana@example.com", "name": "Ana"}
    values[field] = {"email": f"an{control}a@example.com", "name": f"An{control}a"}[field]
    with pytest.raises(InvalidInput, match=f"{field}") as err:
        accounts.validate_new_user(values["email"], values["name"], Role.CUSTOMER)
    assert err.value.field == field


def test_a_new_user_named_in_unicode_is_accepted():
    new_user = accounts.validate_new_user("unal@example.com", "Ünal Öztürk 🧹", Role.CUSTOMER)
    assert new_user.name == "Ünal Öztürk 🧹"


@pytest.mark.parametrize(
    "email", ["olive\x00@example.com", "\x00", "olive@example.com\x1b"], ids=repr
)
def test_an_email_with_control_characters_finds_no_account_without_a_driver_error(app, email):
    # On PostgreSQL a NUL in a query parameter is a driver error: the lookup must not send it.
    accounts.create_user("olive@example.com", "Olive", Role.CUSTOMER, "correct horse battery")
    assert accounts.user_by_email(email) is None
    assert accounts.authenticate(email, "correct horse battery") is None
    with pytest.raises(NotFound):
        accounts.issue_token(email)
    with pytest.raises(NotFound):
        accounts.revoke_tokens(email)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
