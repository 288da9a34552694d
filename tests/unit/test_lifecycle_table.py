"""The lifecycle table against the documented rules, spelled out here independently, cell by
cell."""

import itertools

import pytest

from ops_portal.domain.access import can_view
from ops_portal.domain.lifecycle import (
    BOOKING_ACTIONS,
    LIFECYCLE,
    OFFER_OUTCOMES,
    OFFERS,
    TERMINAL,
    TURNED_DOWN,
    Action,
    Actor,
    BookingFacts,
    Deadline,
    Role,
    Source,
    Status,
    allowed_actions,
)

P, A, W, C, R, X, F = (
    "PENDING",
    "ASSIGNED",
    "IN_PROGRESS",
    "COMPLETED",
    "REJECTED",
    "CANCELLED",
    "FAILED",
)  # W: at work

# The documented rules, copied by hand: action -> (from statuses, to status, roles).
TABLE_BY_HAND = {
    "cancel": ({P, A, R}, X, {"CUSTOMER"}),
    "assign": ({P, R}, A, {"ADMIN", "SYSTEM"}),
    "force-assign": ({P, A, R, F}, A, {"ADMIN"}),
    "accept": ({A}, W, {"PROVIDER"}),
    "reject": ({A}, R, {"PROVIDER"}),
    "complete": ({W}, C, {"PROVIDER"}),
    "retry": ({R, F}, P, {"ADMIN", "SYSTEM"}),
    "force-cancel": ({P, A, W, R, F}, X, {"ADMIN"}),
    "mark-failed": ({P, A, W, R}, F, {"ADMIN", "SYSTEM"}),
    "expire-offer": ({A}, R, {"SYSTEM"}),
}
RELEASING = {"cancel", "reject", "retry", "force-cancel", "mark-failed", "expire-offer"}
# The offer's deadline: the provider answers before it, the offer lapses after it.
BEFORE_THE_DEADLINE = {"accept", "reject"}
AFTER_THE_DEADLINE = {"expire-offer"}


def test_table_has_exactly_the_spec_actions():
    assert {a.value for a in BOOKING_ACTIONS} == set(TABLE_BY_HAND)
    assert LIFECYCLE[Action.CREATE].target == Status.PENDING
    assert LIFECYCLE[Action.CREATE].roles == {Role.CUSTOMER}


@pytest.mark.parametrize("action", sorted(TABLE_BY_HAND))
def test_each_action_matches_the_spec_row(action):
    sources, target, roles = TABLE_BY_HAND[action]
    rule = LIFECYCLE[Action(action)]
    assert {s.value for s in rule.sources} == sources
    assert rule.target.value == target
    assert {r.value for r in rule.roles} == roles
    assert rule.releases_provider == (action in RELEASING)
    assert rule.forced == action.startswith("force-")
    expected_deadline = (
        Deadline.BEFORE
        if action in BEFORE_THE_DEADLINE
        else Deadline.AFTER
        if action in AFTER_THE_DEADLINE
        else None
    )
    assert rule.offer_deadline == expected_deadline


def test_an_offer_lapses_only_by_automation_and_people_get_no_button_for_it():
    assigned = BookingFacts(Status.ASSIGNED, OWNER, ASSIGNED_PROVIDER)
    for kind, actor in ACTORS.items():
        shown = Action.EXPIRE_OFFER in allowed_actions(assigned, actor)
        assert shown == (kind == "system"), kind
    rule = LIFECYCLE[Action.EXPIRE_OFFER]
    assert rule.customer_words == LIFECYCLE[Action.REJECT].customer_words
    assert rule.label and rule.done and not rule.asks_reason and not rule.confirms


def test_terminal_statuses_have_no_way_out():
    assert {s.value for s in TERMINAL} == {C, X}
    for rule in LIFECYCLE.values():
        assert not rule.sources & TERMINAL


def test_reason_is_required_for_mark_failed_and_asked_on_pages_for_four_actions():
    assert {a for a, r in LIFECYCLE.items() if r.reason_required} == {Action.MARK_FAILED}
    asked = {a.value for a, r in LIFECYCLE.items() if r.asks_reason}
    assert asked == {"reject", "force-assign", "force-cancel", "mark-failed"}


OWNER, STRANGER, ASSIGNED_PROVIDER, OTHER_PROVIDER = 1, 2, 10, 11
ACTORS = {
    "owner": Actor(Role.CUSTOMER, OWNER, Source.WEB),
    "other_customer": Actor(Role.CUSTOMER, STRANGER, Source.WEB),
    "provider": Actor(Role.PROVIDER, ASSIGNED_PROVIDER, Source.WEB),
    "other_provider": Actor(Role.PROVIDER, OTHER_PROVIDER, Source.WEB),
    "admin": Actor(Role.ADMIN, 100, Source.WEB),
    "system": Actor(Role.SYSTEM, None, Source.SYSTEM),
}


def allowed_by_hand(action: str, status: str, kind: str) -> bool:
    sources, _, roles = TABLE_BY_HAND[action]
    actor = ACTORS[kind]
    if status not in sources or actor.role.value not in roles:
        return False
    if action == "cancel":
        return kind == "owner"
    if action in ("accept", "reject", "complete"):
        return kind == "provider"
    return True


@pytest.mark.parametrize("status,kind", list(itertools.product([s.value for s in Status], ACTORS)))
def test_buttons_are_exactly_the_allowed_cells(status, kind):
    facts = BookingFacts(Status(status), OWNER, ASSIGNED_PROVIDER)
    shown = {a.value for a in allowed_actions(facts, ACTORS[kind])}
    assert shown == {a for a in TABLE_BY_HAND if allowed_by_hand(a, status, kind)}


def test_visibility_follows_spec_section_4():
    assigned = BookingFacts(Status.ASSIGNED, OWNER, ASSIGNED_PROVIDER)
    visible = {kind for kind, actor in ACTORS.items() if can_view(assigned, actor)}
    assert visible == {"owner", "provider", "admin", "system"}
    unassigned = BookingFacts(Status.PENDING, OWNER, None)
    visible = {kind for kind, actor in ACTORS.items() if can_view(unassigned, actor)}
    assert visible == {"owner", "admin", "system"}


@pytest.mark.parametrize("action", list(Action))
def test_every_action_has_words_a_customer_reads_without_internal_detail(action):
    words = LIFECYCLE[action].customer_words
    assert words and words[0].isupper()
    assert not {"force", "reject", "dispatch", "admin", "system"} & set(words.lower().split())


def test_the_offer_sets_derived_from_the_table_are_the_documented_ones():
    """What makes an offer, how one ends and which endings turn the booking down: read from
    the table's rows, stated here independently."""
    assert set(OFFERS) == {Action.ASSIGN, Action.FORCE_ASSIGN}
    assert set(OFFER_OUTCOMES) == {Action.ACCEPT, Action.REJECT, Action.EXPIRE_OFFER}
    assert set(TURNED_DOWN) == {Action.REJECT, Action.EXPIRE_OFFER}
