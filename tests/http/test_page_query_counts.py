"""The pages' SQL does not grow with the data: every list page makes the same number of
statements with 10 bookings and with 1,000; and what the board and a booking's page send does
not grow with the number of providers (a card carries no provider list: the assign picker is
fetched when opened, and shows 30 at most)."""

from __future__ import annotations

import re

import pytest

from ops_portal.domain.lifecycle import Role, Status
from ops_portal.services import accounts
from tests.support.builders import booking_in, bulk_bookings
from tests.support.pages import HTMX, Page
from tests.support.queries import counted_statements

# Round robin over every status; the active ones go to two providers, force-assigned.
SPREAD = [
    Status.PENDING,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.COMPLETED,
    Status.REJECTED,
    Status.CANCELLED,
    Status.FAILED,
]


# The board's poll region answers htmx only (as a link it redirects to the board).
HTMX_ONLY = {"/admin/board"}


def statements_for(client, url: str) -> list[str]:
    headers = HTMX if url in HTMX_ONLY else {}
    client.get(url, headers=headers)  # warm: first-request work is not per-page cost
    with counted_statements() as statements:
        page = Page(client.get(url, headers=headers))
    assert page.status == 200
    return statements, page


def add_bookings(people, count: int) -> None:
    bulk_bookings(
        people,
        [SPREAD[i % len(SPREAD)] for i in range(count)],
        providers=("provider", "other_provider"),
    )


LIST_PAGES = [
    ("admin", "/admin/"),
    ("admin", "/admin/board"),
    ("admin", "/admin/?q=olive"),
    ("admin", "/admin/?service=Leaking+tap"),
    ("admin", "/admin/lanes/pending"),
    ("admin", "/admin/lanes/pending?end=1"),
    ("admin", "/admin/archive"),
    ("admin", "/admin/archive?end=1"),
    ("admin", "/admin/archive?q=olive"),
    ("admin", "/admin/archive?status=CANCELLED"),
    ("provider", "/provider/"),
    ("owner", "/customer/"),
    ("owner", "/customer/?end=1"),
]


@pytest.mark.parametrize("who, url", LIST_PAGES)
def test_a_page_makes_as_many_sql_statements_for_1000_bookings_as_for_10(people, login, who, url):
    client = login(who)
    add_bookings(people, 10)
    small, small_page = statements_for(client, url)
    add_bookings(people, 990)
    large, large_page = statements_for(client, url)

    # The new bookings really are on the page (the board and queue grow; a list shows another
    # page of its newest or oldest).
    assert large_page.card_ids and large_page.card_ids != small_page.card_ids
    assert len(large) == len(small), "\n\n".join(large)


def add_providers(count: int) -> None:
    accounts.create_users(
        [
            accounts.validate_new_user(f"p{n}@example.com", f"Provider {n:04d}", Role.PROVIDER)
            for n in range(count)
        ],
        with_tokens=False,
    )


def test_the_board_and_a_booking_page_do_not_grow_with_the_number_of_providers(people, login):
    admin = login("admin")
    waiting = booking_in(people, Status.PENDING).id
    add_bookings(people, 35)
    add_providers(30)

    def drawn() -> dict[str, Page]:
        return {
            url: Page(admin.get(url))
            for url in (
                "/admin/",
                f"/admin/bookings/{waiting}",
                f"/admin/bookings/{waiting}/force-assign",
            )
        }

    few = drawn()
    # 400 more, with names of the same length: only their number changes.
    accounts.create_users(
        [
            accounts.validate_new_user(f"q{n}@example.com", f"Provider {n:04d}", Role.PROVIDER)
            for n in range(1000, 1400)
        ],
        with_tokens=False,
    )
    many = drawn()
    for url in few:
        assert many[url].status == few[url].status == 200
    board, detail = "/admin/", f"/admin/bookings/{waiting}"
    # No provider list on the board or a booking's page; a few digits of the counts differ.
    for url in (board, detail):
        assert not re.search(r'<option value="\d', many[url].html), url
        assert abs(len(many[url].html) - len(few[url].html)) < 100, url
    # The picker shows thirty of the 432 providers, and says how to find the others.
    picker = many[f"/admin/bookings/{waiting}/force-assign"]
    assert picker.html.count('<option value="') == 31  # and "Choose…"
    assert "Showing 30 of 432: type a name to narrow." in picker.text
