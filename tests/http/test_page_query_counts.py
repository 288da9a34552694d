"""The pages' SQL does not grow with the data: the dispatch board, the provider's queue
and the customer's bookings make the same number of statements with 10 bookings and with 1,000."""

from __future__ import annotations

import pytest

from ops_portal.domain.lifecycle import Status
from tests.support.builders import bulk_bookings
from tests.support.pages import Page
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


def statements_for(client, url: str) -> list[str]:
    client.get(url)  # warm: first-request work (connections, caches) is not per-page cost
    with counted_statements() as statements:
        page = Page(client.get(url))
    assert page.status == 200
    return statements, page


def add_bookings(people, count: int) -> None:
    bulk_bookings(
        people,
        [SPREAD[i % len(SPREAD)] for i in range(count)],
        providers=("provider", "other_provider"),
    )


@pytest.mark.parametrize(
    "who, url", [("admin", "/admin/"), ("provider", "/provider/"), ("owner", "/customer/")]
)
def test_a_page_makes_as_many_sql_statements_for_1000_bookings_as_for_10(people, login, who, url):
    client = login(who)
    add_bookings(people, 10)
    small, small_page = statements_for(client, url)
    add_bookings(people, 990)
    large, large_page = statements_for(client, url)

    # The new bookings really are on the page (the board and queue grow; my bookings page
    # shows the newest ten).
    assert len(large_page.card_ids) >= 10 and large_page.card_ids != small_page.card_ids
    assert len(large) == len(small), "\n\n".join(large)
