"""Booking search (services/search.py) on the real index of each database: SQLite's FTS5 table,
PostgreSQL's folded search text under a trigram index. Every word must be found in the
customer's name, the customer's email, the service, the address or the current provider's name
(case and diacritics ignored), or the whole text is the booking's number; what a person types is
never query syntax; the index follows the bookings and users it reads, through the triggers of
migration 0004; and the archive pages a search alike however the database reads it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ops_portal.domain.errors import InvalidInput
from ops_portal.domain.lifecycle import Action, Role, Status
from ops_portal.extensions import db
from ops_portal.models import Booking
from ops_portal.services import bookings, search
from ops_portal.services.bookings import Cursor
from ops_portal.services.search import MAX_WORDS, booking_matches
from tests.support.builders import booking_in, bulk_bookings
from tests.support.people import Person, create_accounts
from tests.support.queries import counted_statements


def found(text: str) -> list[int]:
    """The ids of the bookings that match `text`, read fresh."""
    db.session.rollback()
    ids = sorted(db.session.scalars(sa.select(Booking.id).where(booking_matches(text))))
    db.session.rollback()
    return ids


def run_sql(statement: str, **params) -> None:
    """A change made behind the application's back, as an operator's UPDATE would be."""
    db.session.rollback()
    db.session.execute(sa.text(statement), params)
    db.session.commit()


@pytest.fixture
def catalog(cast):
    """Three bookings, by name: Olive's plumbing at 4 Mill Lane and gardening in Mill Street
    (assigned to Zoë Zinc), and Oscar's painting in Dock Road under the name Ünal Öztürk."""
    actors, _ = create_accounts(
        [Person("zinc", "zoe.zinc@example.com", "Zoë Zinc", Role.PROVIDER)], with_tokens=False
    )
    cast.zinc = actors["zinc"]
    plumbing = bookings.create_booking(cast.owner, service="Plumbing", address="4 Mill Lane")
    painting = bookings.create_booking(
        cast.other_customer, service="Painting", address="Dock Road", customer_name="Ünal Öztürk"
    )
    gardening = bookings.create_booking(cast.owner, service="Gardening", address="Mill Street")
    bookings.perform_action(cast.admin, gardening.id, Action.ASSIGN, provider_id=cast.zinc.user_id)
    return {"plumbing": plumbing.id, "painting": painting.id, "gardening": gardening.id}


def assert_finds(catalog, searches: dict[str, set[str]]) -> None:
    got = {text: found(text) for text in searches}
    expected = {text: sorted(catalog[name] for name in names) for text, names in searches.items()}
    assert got == expected


def test_every_field_finds_its_bookings(catalog):
    assert_finds(
        catalog,
        {
            "olive": {"plumbing", "gardening"},  # the customer's name on the booking
            "Olive Owner": {"plumbing", "gardening"},
            "olive@example.com": {"plumbing", "gardening"},  # the customer's email
            "oscar_other@example.com": {"painting"},
            "Plumbing": {"plumbing"},  # the service
            "plumb": {"plumbing"},  # the beginning of a word is enough
            "4 Mill Lane": {"plumbing"},  # the address
            "Mill": {"plumbing", "gardening"},
            "dock": {"painting"},
            "Zoe": {"gardening"},  # the provider's name
            "zinc": {"gardening"},
            "nobody": set(),
        },
    )


def test_the_whole_text_as_a_booking_number_finds_that_booking(catalog):
    plumbing, gardening = catalog["plumbing"], catalog["gardening"]
    # The only number in the catalog's texts is the 4 of "4 Mill Lane": only ids match these.
    assert 4 not in catalog.values()
    assert found(str(plumbing)) == [plumbing]
    assert found(f"#{gardening}") == [gardening]
    assert found(f"#{gardening} olive") == []  # a number among words is a word
    # Past the largest id: no booking, and nothing the database cannot hold.
    assert found("2147483648") == []
    assert found("#" + "9" * 400) == []


def test_case_and_diacritics_are_ignored_both_ways(catalog):
    assert_finds(
        catalog,
        {
            "unal": {"painting"},  # stored "Ünal Öztürk"
            "ÜNAL": {"painting"},
            "öztürk": {"painting"},
            "OZTURK": {"painting"},
            "zoe zinc": {"gardening"},  # stored "Zoë Zinc"
            "ZOË": {"gardening"},
            "Ölive": {"plumbing", "gardening"},  # stored "Olive", typed with a diacritic
            "PLÜMBING": {"plumbing"},
            "Zo\u0308e": {"gardening"},  # "Zoë" typed with a combining diaeresis
        },
    )


def test_every_word_must_match(catalog):
    assert_finds(
        catalog,
        {
            "olive plumbing": {"plumbing"},
            "mill zoe": {"gardening"},
            "olive painting": set(),
            "unal plumbing": set(),
            "mill lane street": set(),
        },
    )
    # Words past MAX_WORDS are not read.
    assert found(" ".join(["olive"] * MAX_WORDS + ["nobody"])) == sorted(
        [catalog["plumbing"], catalog["gardening"]]
    )


# FTS5 syntax (and LIKE's) typed into the box: read as the words and characters it is made of.
TYPED_SYNTAX = {
    '"olive"': {"plumbing", "gardening"},
    '"olive': {"plumbing", "gardening"},
    "olive*": {"plumbing", "gardening"},
    "^olive": {"plumbing", "gardening"},
    "(plumbing)": {"plumbing"},
    "-plumbing": {"plumbing"},
    "olive OR painting": set(),  # "or" is a word here, and no booking has it
    "olive NOT plumbing": set(),
    "olive AND": set(),
    "NEAR(olive mill)": set(),
    "service:plumbing": set(),  # not a column filter: no booking has the word "service"
    "customer_name:olive": set(),
    "plumbing + mill": set(),  # "+" is looked for as typed
    '"': set(),
    "*": set(),
    ":": set(),
    "(": set(),
    "%": set(),
    "_": {"painting"},  # only Oscar's email has one
    "'; DROP TABLE bookings; --": set(),
}


@pytest.mark.parametrize("typed", TYPED_SYNTAX)
def test_query_syntax_in_the_text_is_harmless(catalog, typed):
    assert_finds(catalog, {typed: TYPED_SYNTAX[typed]})


def test_characters_without_letters_are_found_as_typed(cast):
    percent = bookings.create_booking(cast.owner, service="Tiling", address="100% Road")
    bookings.create_booking(cast.owner, service="Tiling", address="100 Road")
    underscore = bookings.create_booking(cast.other_customer, service="Tiling")

    assert found("%") == [percent.id]
    assert found("_") == [underscore.id]  # oscar_other@example.com


def test_a_provider_is_findable_while_assigned_and_not_after_rejecting(cast):
    booking = bookings.create_booking(cast.owner, service="Roofing")
    assert found("quinn") == []

    bookings.perform_action(
        cast.admin, booking.id, Action.ASSIGN, provider_id=cast.other_provider.user_id
    )
    assert found("quinn") == [booking.id]

    bookings.perform_action(cast.other_provider, booking.id, Action.REJECT)
    assert found("quinn") == []
    assert found("roofing") == [booking.id]


def test_renaming_a_user_reindexes_the_bookings_they_are_customer_or_provider_of(catalog, cast):
    both_of_olive = sorted([catalog["plumbing"], catalog["gardening"]])

    run_sql("UPDATE users SET name = 'Zara Zed' WHERE id = :id", id=cast.zinc.user_id)
    assert found("zara") == [catalog["gardening"]]
    assert found("zinc") == []

    run_sql("UPDATE users SET email = 'olivia@example.net' WHERE id = :id", id=cast.owner.user_id)
    assert found("olivia") == both_of_olive
    assert found("olive@example.com") == []  # "com" was only in the old email
    assert found("olive") == both_of_olive  # the name on the bookings is unchanged


def test_a_new_provider_or_customer_on_a_booking_reindexes_it(catalog, cast):
    gardening = catalog["gardening"]  # Zoë Zinc's

    run_sql(
        "UPDATE bookings SET provider_id = :quinn WHERE id = :id",
        quinn=cast.other_provider.user_id,
        id=gardening,
    )
    assert found("quinn") == [gardening]
    assert found("zinc") == []

    run_sql("UPDATE bookings SET provider_id = NULL WHERE id = :id", id=gardening)
    assert found("quinn") == []
    assert found("gardening") == [gardening]

    run_sql(
        "UPDATE bookings SET customer_id = :oscar WHERE id = :id",
        oscar=cast.other_customer.user_id,
        id=gardening,
    )
    assert found("oscar_other@example.com") == sorted([catalog["painting"], gardening])
    assert found("olive owner") == sorted([catalog["plumbing"], gardening])  # the name on it


def test_changing_a_bookings_text_reindexes_it(catalog):
    run_sql("UPDATE bookings SET address = 'Harbour View' WHERE id = :id", id=catalog["plumbing"])
    assert found("harbour") == [catalog["plumbing"]]
    assert found("lane") == []


def found_by(cast, search: str, **options) -> list[int]:
    return [b.id for b in bookings.find_bookings(cast.admin, search=search, **options).items]


def test_a_search_finds_bookings_of_every_status_through_the_index(cast):
    done = booking_in(cast, Status.COMPLETED)  # by Pat Provider
    waiting = bookings.create_booking(cast.owner, service="Plumbing", address="4 Mill Lane").id
    working = booking_in(cast, Status.IN_PROGRESS).id  # Pat Provider's too

    assert found_by(cast, "pat provider") == [working, done.id]
    assert done.id in found_by(cast, f"#{done.id}")  # and any booking with a 1 in its address
    assert found_by(cast, "plumbing") == found_by(cast, "4 mill lane") == [waiting]
    assert waiting in found_by(cast, str(waiting))
    assert found_by(cast, "pat", status="in_progress") == [working]
    assert found_by(cast, "quinn") == []


def test_an_unknown_status_filter_is_refused_in_a_sentence(cast):
    with pytest.raises(InvalidInput) as refused:
        bookings.find_bookings(cast.admin, status="FOO")
    assert refused.value.detail == (
        "There is no status “FOO”; choose one of any status, waiting for a provider, provider "
        "assigned, in progress, completed, rejected by provider, cancelled or failed."
    )


def test_postgres_writes_the_search_text_itself_whatever_an_update_sets(catalog):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps its index in a table of its own")
    run_sql("UPDATE bookings SET search_text = 'nonsense' WHERE id = :id", id=catalog["plumbing"])
    assert found("nonsense") == []
    assert found("4 mill lane") == [catalog["plumbing"]]


def test_a_rename_while_a_booking_is_assigned_to_that_provider_is_found_by_the_new_name(catalog):
    """PostgreSQL: the rename's trigger updates the bookings of the provider it can see; the
    assignment, which it cannot see yet, waits for the rename and reads the new name."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    zinc = db.session.scalar(sa.text("SELECT id FROM users WHERE name = 'Zoë Zinc'"))
    plumbing, gardening = catalog["plumbing"], catalog["gardening"]
    db.session.rollback()
    assign = sa.text("UPDATE bookings SET provider_id = :zinc WHERE id = :id")
    with db.engine.connect() as renaming, db.engine.connect() as assigning:
        renaming.execute(sa.text("UPDATE users SET name = 'Zara Zed' WHERE id = :id"), {"id": zinc})

        def assign_plumbing():
            assigning.execute(assign, {"zinc": zinc, "id": plumbing})
            assigning.commit()

        assignment = threading.Thread(target=assign_plumbing)
        assignment.start()
        assignment.join(timeout=0.5)
        waited = assignment.is_alive()
        renaming.commit()
        assignment.join(timeout=30)

    assert waited
    assert found("zara") == sorted([plumbing, gardening])
    assert found("zinc") == []


# A word in every booking of Olive's below (her name), none of Oscar's; statuses of all kinds.
ARCHIVED_AND_OPEN = [Status.COMPLETED, Status.CANCELLED, Status.FAILED, Status.PENDING] * 8


@pytest.fixture
def shuffled_archive(cast):
    """32 bookings of Olive's and 8 of Oscar's, last changed in an order unlike their ids'."""
    olive = bulk_bookings(cast, ARCHIVED_AND_OPEN)
    bulk_bookings(cast, [Status.COMPLETED, Status.CANCELLED] * 4, customer="other_customer")
    for position, booking_id in enumerate(olive):
        day = datetime(2031, 1, 1 + (position * 7) % 31, 12, 0, position, tzinfo=UTC)
        db.session.execute(
            sa.update(Booking).where(Booking.id == booking_id).values(updated_at=day)
        )
    db.session.commit()
    return olive


def latest_first(ids: list[int], statuses: tuple[Status, ...]) -> list[int]:
    rows = db.session.execute(
        sa.select(Booking.id)
        .where(Booking.id.in_(ids), Booking.status.in_(statuses))
        .order_by(Booking.updated_at.desc(), Booking.id.desc())
    )
    return list(rows.scalars())


@pytest.mark.parametrize("walk_from", [1, 10**9], ids=["walking the order", "sorting matches"])
def test_a_search_pages_alike_however_the_database_reads_it(
    shuffled_archive, cast, monkeypatch, walk_from
):
    """On SQLite a page either walks the list's order checking each booking or sorts the
    matches (search.WALK_FROM); both must list the same bookings in the same order."""
    monkeypatch.setattr(search, "WALK_FROM", walk_from)
    expected = latest_first(shuffled_archive, tuple(Status))
    assert len(expected) == 32

    def every_page(**options) -> list[int]:  # following each page's next link
        read, cursor = [], Cursor()
        while True:
            window = bookings.find_bookings(
                cast.admin, search="olive", cursor=cursor, per_page=7, **options
            )
            read.extend(b.id for b in window.items)
            if not window.has_next:
                return read
            cursor = Cursor(after=window.last_id)

    with counted_statements() as sent:
        first = bookings.find_bookings(cast.admin, search="olive", per_page=7)
    walked = any("(+ bookings.id)" in statement for statement in sent)
    assert walked == (walk_from == 1 and db.engine.dialect.name == "sqlite")
    assert (first.total, first.capped) == (32, False)

    assert every_page() == expected
    oldest = bookings.find_bookings(cast.admin, search="olive", cursor=Cursor(end=True), per_page=7)
    assert [b.id for b in oldest.items] == expected[-7:]
    assert not oldest.has_next and oldest.has_previous
    before = bookings.find_bookings(
        cast.admin, search="olive", cursor=Cursor(before=oldest.first_id), per_page=7
    )
    assert [b.id for b in before.items] == expected[-14:-7]
    cancelled = latest_first(shuffled_archive, (Status.CANCELLED,))
    assert every_page(status="CANCELLED") == cancelled
    assert bookings.find_bookings(cast.admin, search="olive", status="CANCELLED").total == 8
    assert bookings.find_bookings(cast.admin, search="oscar nobody").items == []
