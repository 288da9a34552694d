"""Who may read what, as data: for each thing a person can look at, which roles may see it and
how much of it. Every read in the services asks `require_read`; docs/access.md is generated
from the same table.

Scopes: ALL (everything of its kind), OWN (the actor's own: a customer's bookings, a provider's
own work queue), ASSIGNED (bookings assigned to the provider now). A role absent from a rule
may not read that thing at all (403)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .errors import NotPermitted
from .lifecycle import Actor, BookingFacts, Role


class Read(StrEnum):
    BOOKING = "a booking and its timeline"
    OWN_BOOKINGS = "my bookings (a customer's list)"
    WORK_QUEUE = "a provider's work queue (ASSIGNED, IN_PROGRESS)"
    PROVIDER_LIST = "the provider list with availability"
    DISPATCH_BOARD = "the dispatch board"
    EVERY_BOOKING = "every booking (the bookings list and its search)"


class Scope(StrEnum):
    ALL = "all"
    OWN = "own"
    ASSIGNED = "assigned to them now"


@dataclass(frozen=True)
class ReadRule:
    read: Read
    scopes: Mapping[Role, Scope]
    refusal: str  # what anyone the rule does not cover is told


_DISPATCH = {Role.ADMIN: Scope.ALL, Role.SYSTEM: Scope.ALL}

READ_RULES: dict[Read, ReadRule] = {
    rule.read: rule
    for rule in (
        ReadRule(
            Read.BOOKING,
            {Role.CUSTOMER: Scope.OWN, Role.PROVIDER: Scope.ASSIGNED, **_DISPATCH},
            "You may not see this booking",
        ),
        ReadRule(
            Read.OWN_BOOKINGS,
            {Role.CUSTOMER: Scope.OWN},
            "Only customers have a list of their own bookings",
        ),
        ReadRule(
            Read.WORK_QUEUE,
            {Role.PROVIDER: Scope.OWN, **_DISPATCH},
            "A work queue is seen by its provider and by dispatchers only",
        ),
        ReadRule(Read.PROVIDER_LIST, _DISPATCH, "Only dispatchers see the provider list"),
        ReadRule(Read.DISPATCH_BOARD, _DISPATCH, "Only dispatchers see the dispatch board"),
        ReadRule(Read.EVERY_BOOKING, _DISPATCH, "Only dispatchers see every booking"),
    )
}

# The subject of a read: the booking read, or the id of the provider whose queue it is. Reads
# without a subject return only what the scope covers (a customer's own bookings).
Subject = BookingFacts | int | None


def may_read(actor: Actor, read: Read, subject: Subject = None) -> bool:
    scope = READ_RULES[read].scopes.get(actor.role)
    if scope is None:
        return False
    if scope is Scope.ALL or subject is None:
        return True
    if isinstance(subject, BookingFacts):
        subject = subject.customer_id if scope is Scope.OWN else subject.provider_id
    return actor.user_id is not None and subject == actor.user_id


def require_read(actor: Actor, read: Read, subject: Subject = None) -> None:
    if not may_read(actor, read, subject):
        raise NotPermitted(READ_RULES[read].refusal)


def can_view(facts: BookingFacts, actor: Actor) -> bool:
    """Customers see their own bookings, providers those assigned to them now, dispatchers
    and the system every booking."""
    return may_read(actor, Read.BOOKING, facts)
