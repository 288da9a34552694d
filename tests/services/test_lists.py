"""The lists a dispatcher works from: the board's lanes (a few cards each, every card on the
lane's own page), failed bookings that leave the board after a week, pages read by position
(keyset) in both directions, the provider panel and the assign pickers — each in a fixed number
of statements, however many rows."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ops_portal.domain.errors import InvalidInput, NotPermitted
from ops_portal.domain.lifecycle import Action, Availability, Role, Status
from ops_portal.extensions import db
from ops_portal.models import Provider, utcnow
from ops_portal.services import accounts, bookings, dispatch, duty, providers, skills
from ops_portal.services.bookings import Cursor
from ops_portal.services.bookings.queries import FAILED_ON_BOARD, PER_LANE
from tests.support.builders import booking_in, bulk_bookings
from tests.support.queries import counted_statements


def add_providers(names: list[str]) -> list[int]:
    created = accounts.create_users(
        [
            accounts.validate_new_user(
                f"p-{uuid.uuid4().hex[:12]}@example.com", name, Role.PROVIDER
            )
            for name in names
        ],
        with_tokens=False,
    )
    return [user.id for user, _ in created]


def ids(window) -> list[int]:
    return [booking.id for booking in window.items]


# ------------------------------------------------------------------------------ the board


def test_a_failed_booking_leaves_the_board_a_week_after_it_failed_and_stays_in_the_archive(cast):
    failed = booking_in(cast, Status.FAILED)
    now = utcnow()

    def on_board(at) -> bool:
        lanes = {lane.status: lane for lane in bookings.board_lanes(cast.admin, now=at)}
        listed = failed.id in [b.id for b in lanes[Status.FAILED].items]
        counted = bookings.lane_counts(cast.admin, now=at)[Status.FAILED]
        assert counted == lanes[Status.FAILED].count == int(listed)
        return listed

    assert on_board(now)
    assert on_board(failed.updated_at + FAILED_ON_BOARD - timedelta(seconds=1))
    assert not on_board(failed.updated_at + FAILED_ON_BOARD + timedelta(seconds=1))
    later = failed.updated_at + timedelta(days=30)
    assert ids(bookings.lane(cast.admin, Status.FAILED, now=later)) == []
    assert ids(bookings.find_bookings(cast.admin, status="FAILED")) == [failed.id]
    assert ids(bookings.find_bookings(cast.admin, search=str(failed.id))) == [failed.id]


def test_a_lane_shows_its_oldest_cards_and_its_own_page_reads_all_of_them(cast):
    pending = bulk_bookings(cast, [Status.PENDING] * 30)  # a second apart, oldest first
    bulk_bookings(cast, [Status.COMPLETED] * 5)
    now = utcnow()

    (lane,) = [x for x in bookings.board_lanes(cast.admin, now=now) if x.status is Status.PENDING]
    assert lane.count == 30
    assert [b.id for b in lane.items] == pending[:PER_LANE]

    def page(**cursor):
        return bookings.lane(
            cast.admin, Status.PENDING, now=now, cursor=Cursor(**cursor), per_page=12
        )

    first = page()
    assert ids(first) == pending[:12] and (first.has_previous, first.has_next) == (False, True)
    second = page(after=first.last_id)
    assert ids(second) == pending[12:24] and (second.has_previous, second.has_next) == (True, True)
    third = page(after=second.last_id)
    assert ids(third) == pending[24:] and (third.has_previous, third.has_next) == (True, False)
    back = page(before=third.first_id)
    assert ids(back) == pending[12:24] and (back.has_previous, back.has_next) == (True, True)
    end = page(end=True)
    assert ids(end) == pending[-12:] and (end.has_previous, end.has_next) == (True, False)
    assert (first.total, first.capped) == (30, False)


def test_a_lane_of_a_status_the_board_does_not_show_is_not_found(cast):
    with pytest.raises(bookings.queries.NotFound):
        bookings.lane(cast.admin, Status.COMPLETED, now=utcnow())


def test_only_dispatchers_read_the_board_and_its_lanes(cast):
    for reader in (cast.owner, cast.provider):
        with pytest.raises(NotPermitted):
            bookings.lane(reader, Status.PENDING, now=utcnow())
        with pytest.raises(NotPermitted):
            providers.provider_panel(reader)
        with pytest.raises(NotPermitted):
            dispatch.provider_picker(reader, 1, Action.ASSIGN)


def test_paging_from_a_booking_that_does_not_exist_is_refused(cast):
    with pytest.raises(InvalidInput, match="No booking 999 to page from"):
        bookings.find_bookings(cast.admin, cursor=Cursor(after=999))
    with pytest.raises(InvalidInput, match="at most one"):
        Cursor(after=1, end=True)


def test_lists_make_as_many_statements_for_500_bookings_as_for_5(cast):
    def statements(read) -> int:
        with counted_statements() as sent:
            window = read()
            shown = [  # what a card shows
                (b.customer_name, b.provider.name if b.provider else None) for b in window.items
            ]
        assert shown
        return len(sent)

    now = utcnow()
    reads = {
        "archive": lambda: bookings.find_bookings(cast.admin),
        "archive, oldest": lambda: bookings.find_bookings(cast.admin, cursor=Cursor(end=True)),
        "archive, search": lambda: bookings.find_bookings(cast.admin, search="olive"),
        "lane": lambda: bookings.lane(cast.admin, Status.ASSIGNED, now=now),
        "my bookings": lambda: bookings.customer_bookings(cast.owner),
    }
    spread = [Status.COMPLETED, Status.ASSIGNED, Status.CANCELLED, Status.FAILED, Status.PENDING]
    bulk_bookings(cast, spread, providers=("provider", "other_provider"))
    small = {name: statements(read) for name, read in reads.items()}
    bulk_bookings(cast, spread * 100, providers=("provider", "other_provider"))
    large = {name: statements(read) for name, read in reads.items()}
    assert large == small


# ------------------------------------------------------------------------------ providers


def test_the_provider_panel_counts_everyone_and_lists_the_first_twenty_free_ones_first(cast):
    add_providers([f"Provider {n:03d}" for n in range(30)])
    booking_in(cast, Status.ASSIGNED)  # Pat is busy
    db.session.execute(
        sa.update(Provider).where(Provider.id == cast.other_provider.user_id).values(active=False)
    )
    db.session.commit()
    off = add_providers(["Olly Offduty"])[0]
    duty.set_duty(cast.admin, off, False, reason="Van in the garage")

    with counted_statements() as sent:
        panel = providers.provider_panel(cast.admin)
    assert panel.counts == {
        Availability.AVAILABLE: 30,
        Availability.BUSY: 1,
        Availability.OFF_DUTY: 1,
        Availability.INACTIVE: 1,
    }
    assert panel.total == 33
    assert [p.name for p in panel.providers] == [f"Provider {n:03d}" for n in range(20)]

    add_providers([f"Zed {n:03d}" for n in range(300)])
    with counted_statements() as sent_for_more:
        more = providers.provider_panel(cast.admin)
    assert more.total == 333 and len(more.providers) == providers.PANEL_SIZE
    assert len(sent_for_more) == len(sent)


def test_the_assign_picker_lists_everyone_eligible_ones_first_and_offers_whom_assign_takes(cast):
    zoe, zed = add_providers(["Zoë Zinc", "Zed Zephyr"])  # Zoë has waited longest
    booking = booking_in(cast, Status.REJECTED)  # Pat rejected it
    booking_in(cast, Status.ASSIGNED, provider=cast.other_provider)  # Quinn is busy
    pat, quinn = cast.provider.user_id, cast.other_provider.user_id

    picker = dispatch.provider_picker(cast.admin, booking.id, Action.ASSIGN)
    assert [(label, [c.provider.id for c in choices]) for label, choices in picker.groups] == [
        ("Can take it", [zoe, zed]),
        ("Can't take it now", [pat, quinn]),
    ]
    assert picker.matching == 4
    # An assign takes a provider who rejected the booking, never a busy one.
    assert [picker.selectable(c) for c in picker.choices] == [True, True, True, False]

    forced = dispatch.provider_picker(cast.admin, booking.id, Action.FORCE_ASSIGN)
    assert [c.provider.id for c in forced.choices] == [zoe, zed, pat, quinn]
    assert all(forced.selectable(c) for c in forced.choices)


@pytest.mark.parametrize("search", ["zoe", "ZOË", "zinc", " Zi "])
def test_the_picker_search_finds_providers_by_part_of_their_name_whatever_case_and_accents(
    cast, search
):
    zoe, _ = add_providers(["Zoë Zinc", "Zed Zephyr"])
    booking = booking_in(cast, Status.PENDING)
    picker = dispatch.provider_picker(cast.admin, booking.id, Action.ASSIGN, search)
    assert [c.provider.id for c in picker.choices] == [zoe]
    assert picker.search == search.strip()


def test_a_picker_shows_thirty_of_many_providers_in_as_many_statements_as_for_a_few(cast):
    booking = booking_in(cast, Status.PENDING)

    def picker():
        with counted_statements() as sent:
            result = dispatch.provider_picker(cast.admin, booking.id, Action.FORCE_ASSIGN)
        return result, len(sent)

    few, few_statements = picker()
    add_providers([f"Provider {n:04d}" for n in range(100)])
    many, many_statements = picker()
    assert len(few.choices) == few.matching == 2
    assert len(many.choices) == dispatch.PICKER_SIZE and many.matching == 102
    # Off duty, rejections, skills and a history of work are read in the same statements.
    for n, provider_id in enumerate(p.provider.id for p in many.choices[:10]):
        duty.set_duty(cast.admin, provider_id, n % 2 == 0)
        skills.set_services(cast.admin, provider_id, ["Plumbing"])
    bulk_bookings(cast, [Status.COMPLETED, Status.REJECTED] * 20, providers=("provider",))
    _, busier_statements = picker()
    assert busier_statements == few_statements
    assert many_statements == few_statements


def test_a_filtered_board_counts_and_lists_only_the_bookings_that_match(cast):
    tap = booking_in(cast, Status.PENDING)  # "Leaking tap" at "1 Test St"
    drain = bookings.create_booking(cast.owner, service="Blocked drain", address="4 Mill Lane")
    oscars = bookings.create_booking(cast.other_customer, service="Blocked drain", address="9 Elm")
    bulk_bookings(cast, [Status.COMPLETED] * 3)  # off the board whatever the filter
    now = utcnow()

    def board(**narrowing) -> dict[Status, tuple[int, list[int]]]:
        narrowed = bookings.BoardFilter(**narrowing)
        lanes = bookings.board_lanes(cast.admin, now=now, narrowed=narrowed)
        counts = bookings.lane_counts(cast.admin, now=now, narrowed=narrowed)
        assert {lane.status: lane.count for lane in lanes} == counts
        return {
            lane.status: (lane.count, [b.id for b in lane.items]) for lane in lanes if lane.count
        }

    assert board() == {Status.PENDING: (3, [tap.id, drain.id, oscars.id])}
    assert board(service="Blocked drain") == {Status.PENDING: (2, [drain.id, oscars.id])}
    assert board(search="mill") == {Status.PENDING: (1, [drain.id])}
    assert board(search="oscar", service="Blocked drain") == {Status.PENDING: (1, [oscars.id])}
    assert board(search=f"#{tap.id}") == {Status.PENDING: (1, [tap.id])}
    assert board(search="nobody here") == {}
    narrowed = bookings.BoardFilter(service="Blocked drain")
    assert ids(bookings.lane(cast.admin, Status.PENDING, now=now, narrowed=narrowed)) == [
        drain.id,
        oscars.id,
    ]


@pytest.mark.parametrize(
    "narrowing", [{"search": "x" * 121}, {"service": "tap\x00"}, {"search": "\x1b[31m"}]
)
def test_a_board_filter_refuses_text_no_booking_could_hold(narrowing):
    with pytest.raises(InvalidInput):
        bookings.BoardFilter(**narrowing)
