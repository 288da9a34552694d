"""Who may read what, as data: for each thing a person can look at, which roles may see it and
how much of it. Every read in the services asks `require_read`; docs/access.md is generated
from the same table.

Scopes: ALL (everything of its kind), OWN (the actor's own: a customer's bookings, a provider's
own work queue), ASSIGNED (bookings assigned to the provider now), FINISHED (bookings the
provider completed). A role absent from a rule may not read that thing at all (403)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from .errors import NotPermitted
from .lifecycle import LIFECYCLE, Action, Actor, BookingFacts, Role, Source, Status


class Read(StrEnum):
    BOOKING = "a booking and its timeline"
    OWN_BOOKINGS = "my bookings (a customer's list)"
    WORK_QUEUE = "a provider's work queue (ASSIGNED, IN_PROGRESS)"
    FINISHED_JOBS = "a provider's finished jobs (COMPLETED) and their timelines"
    PROVIDER_LIST = "the provider list with availability"
    DISPATCH_BOARD = "the dispatch board"
    EVERY_BOOKING = "every booking (the bookings list and its search)"


class Scope(StrEnum):
    ALL = "all"
    OWN = "own"
    ASSIGNED = "assigned to them now"
    FINISHED = "completed by them"


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
        ReadRule(
            Read.FINISHED_JOBS,
            {Role.PROVIDER: Scope.FINISHED, **_DISPATCH},
            "A provider's finished jobs are seen by that provider and by dispatchers only",
        ),
        ReadRule(Read.PROVIDER_LIST, _DISPATCH, "Only dispatchers see the provider list"),
        ReadRule(Read.DISPATCH_BOARD, _DISPATCH, "Only dispatchers see the dispatch board"),
        ReadRule(Read.EVERY_BOOKING, _DISPATCH, "Only dispatchers see every booking"),
    )
}

# The subject of a read: the booking read, or the id of the provider whose queue or history it
# is. Reads without a subject return only what the scope covers (a customer's own bookings).
Subject = BookingFacts | int | None


def may_read(actor: Actor, read: Read, subject: Subject = None) -> bool:
    scope = READ_RULES[read].scopes.get(actor.role)
    if scope is None:
        return False
    if scope is Scope.ALL or subject is None:
        return True
    if isinstance(subject, BookingFacts):
        if scope is Scope.FINISHED and subject.status != Status.COMPLETED:
            return False
        subject = subject.customer_id if scope is Scope.OWN else subject.provider_id
    return actor.user_id is not None and subject == actor.user_id


def require_read(actor: Actor, read: Read, subject: Subject = None) -> None:
    if not may_read(actor, read, subject):
        raise NotPermitted(READ_RULES[read].refusal)


# A booking may be read under any of these: one's own, one's job now, or a job one finished.
BOOKING_READS = (Read.BOOKING, Read.FINISHED_JOBS)


def can_view(facts: BookingFacts, actor: Actor) -> bool:
    """Customers see their own bookings, providers those assigned to them now and those they
    completed, dispatchers and the system every booking."""
    return any(may_read(actor, read, facts) for read in BOOKING_READS)


def sees_customer_phone(facts: BookingFacts, actor: Actor) -> bool:
    """The customer's phone is for the provider doing (or who did) the job, and for
    dispatchers; never for another provider."""
    if READ_RULES[Read.DISPATCH_BOARD].scopes.get(actor.role) is Scope.ALL:
        return True
    return actor.role is Role.PROVIDER and facts.provider_id == actor.user_id


# ------------------------------------------------------------------------- what of an event


class Audience(StrEnum):
    """Who reads a booking's timeline, as far as what they may see of it goes."""

    CUSTOMER = "customer"
    PROVIDER = "provider"
    DISPATCH = "dispatch"  # admins and the system: everything


def audience_of(actor: Actor) -> Audience:
    return {Role.CUSTOMER: Audience.CUSTOMER, Role.PROVIDER: Audience.PROVIDER}.get(
        actor.role, Audience.DISPATCH
    )


_EVERYONE = frozenset({"id", "booking_id", "summary", "created_at", "reason"})

# What each audience is shown of an event, on pages and in the API alike. A field outside an
# audience's set is never filled in; inside it, `reason` and `provider_id` are still withheld
# (None) on events where they are someone else's. Customers read what happened in their words
# and their own reasons; providers also their job's statuses, who acted ("you", "dispatch", ...)
# and their own assignment; dispatchers everything, internal reasons and forced flags included.
EVENT_FIELDS: dict[Audience, frozenset[str]] = {
    Audience.CUSTOMER: _EVERYONE,
    Audience.PROVIDER: _EVERYONE | {"to_status", "by", "provider_id"},
    Audience.DISPATCH: _EVERYONE
    | {
        "action",
        "from_status",
        "to_status",
        "by",
        "actor_role",
        "actor_id",
        "provider_id",
        "provider_name",
        "forced",
        "source",
    },
}

# Who acted, in a provider's words: never a dispatcher's or another provider's name.
_BY_FOR_PROVIDER = {
    Role.CUSTOMER: "the customer",
    Role.PROVIDER: "another provider",
    Role.ADMIN: "dispatch",
    Role.SYSTEM: "dispatch",
}


class Named(Protocol):
    name: str


class EventRecord(Protocol):
    """An event as stored (models.BookingEvent has these)."""

    id: int
    booking_id: int
    action: Action
    from_status: Status | None
    to_status: Status
    actor_role: Role
    actor_id: int | None
    provider_id: int | None
    reason: str | None
    forced: bool
    source: Source
    created_at: datetime
    actor: Named | None
    provider: Named | None


@dataclass(frozen=True)
class SeenEvent:
    """One event as one audience may see it: what it may not see is None."""

    audience: Audience
    id: int
    booking_id: int
    created_at: datetime
    summary: str  # what happened, in the customer's words
    reason: str | None = None
    to_status: Status | None = None
    by: str | None = None  # who acted, in words this audience may read
    provider_id: int | None = None
    action: Action | None = None
    from_status: Status | None = None
    actor_role: Role | None = None
    actor_id: int | None = None
    provider_name: str | None = None
    forced: bool | None = None
    source: Source | None = None


def see_event(event: EventRecord, viewer: Actor) -> SeenEvent:
    """The one rule for what a viewer is shown of an event (the timeline and the API's events
    both come from here)."""
    audience = audience_of(viewer)
    shown = EVENT_FIELDS[audience]
    own = viewer.user_id is not None and event.actor_id == viewer.user_id
    dispatch = audience is Audience.DISPATCH
    everything = {
        "id": event.id,
        "booking_id": event.booking_id,
        "created_at": event.created_at,
        "summary": LIFECYCLE[event.action].customer_words,
        "reason": event.reason if dispatch or own else None,
        "to_status": event.to_status,
        "provider_id": event.provider_id
        if dispatch or event.provider_id == viewer.user_id
        else None,
        "action": event.action,
        "from_status": event.from_status,
        "actor_role": event.actor_role,
        "actor_id": event.actor_id,
        "forced": event.forced,
        "source": event.source,
    }
    # Names are read from the people only where this audience is shown them: an event whose
    # people are not loaded (a new booking's first) costs no query for the others.
    if dispatch:
        everything["by"] = event.actor.name if event.actor else "automation"
    else:
        everything["by"] = "you" if own else _BY_FOR_PROVIDER[event.actor_role]
    if "provider_name" in shown:
        everything["provider_name"] = event.provider.name if event.provider else None
    return SeenEvent(audience, **{k: v for k, v in everything.items() if k in shown})


def events_seen_by(viewer: Actor, events: Iterable[EventRecord]) -> list[SeenEvent]:
    return [see_event(event, viewer) for event in events]


def sees_internal(actor: Actor) -> bool:
    """Forced flags and internal reasons are for dispatchers only."""
    return audience_of(actor) is Audience.DISPATCH


class ChangeKind(StrEnum):
    BOOKING = "booking"  # a booking event was appended
    DUTY = "duty"  # a provider went on or off duty


@dataclass(frozen=True)
class Change:
    """Something a live page may have to redraw for: a booking's event (the booking's customer
    and the providers it concerns: the one it names and the one who held the booking before
    it), or a provider's duty change. Each kind is numbered by its own log's ids."""

    kind: ChangeKind
    id: int
    customer_id: int | None
    provider_ids: frozenset[int]


def hears_of(actor: Actor, change: Change) -> bool:
    """Whether `actor`'s live pages are told of the change: dispatchers of every change, a
    provider of changes to their own work (an offer made, taken back or lapsed; their job) and
    of their own duty, a customer of changes to their own bookings. A doorbell says only that
    something changed, but even that must not tell anyone of what they may not see."""
    if actor.role in (Role.ADMIN, Role.SYSTEM):
        return True
    if actor.user_id is None:
        return False
    if actor.role is Role.PROVIDER:
        return actor.user_id in change.provider_ids
    if actor.role is Role.CUSTOMER:
        return change.kind is ChangeKind.BOOKING and change.customer_id == actor.user_id
    return False
