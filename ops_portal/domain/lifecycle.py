"""The booking lifecycle as data (docs/lifecycle.md is rendered from it).

Everything else derives from `LIFECYCLE`: the service guard, the buttons a person sees, the API's
action routes and the tests' matrix. Nothing here imports Flask or SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    ASSIGNED = "ASSIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


# What each status means, in the words pages show.
STATUS_WORDS = {
    Status.PENDING: "Waiting for a provider",
    Status.ASSIGNED: "Provider assigned",
    Status.IN_PROGRESS: "In progress",
    Status.COMPLETED: "Completed",
    Status.REJECTED: "Rejected by provider",
    Status.CANCELLED: "Cancelled",
    Status.FAILED: "Failed",
}

# What a status says to the provider a booking is assigned to, where it differs: their own new job
# asks them to act, where a dispatcher reads only who has it.
ASSIGNEE_STATUS_WORDS = {
    **STATUS_WORDS,
    Status.ASSIGNED: "New job — accept or reject",
}

# What a status says to the customer who owns the booking, where it differs: a provider's
# rejection is none of their business, only that another is being found.
OWNER_STATUS_WORDS = {
    **STATUS_WORDS,
    Status.REJECTED: "Finding another provider",
}

# What happens next, told to the customer who owns a booking in this status; their card offers
# to request the same job again beside it.
OWNER_NEXT_STEPS = {
    Status.FAILED: (
        "We couldn't find a provider for this time. You can request it again: the same job, "
        "at a new time."
    ),
}

TERMINAL = frozenset({Status.COMPLETED, Status.CANCELLED})
# A provider is BUSY while any booking of theirs is in one of these.
ACTIVE = frozenset({Status.ASSIGNED, Status.IN_PROGRESS})


class Role(StrEnum):
    CUSTOMER = "CUSTOMER"
    PROVIDER = "PROVIDER"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


class Availability(StrEnum):
    """Whether a provider can be offered work now. BUSY outranks OFF_DUTY: a provider who went
    off duty still finishes the job they hold."""

    AVAILABLE = "AVAILABLE"
    BUSY = "BUSY"
    OFF_DUTY = "OFF_DUTY"
    INACTIVE = "INACTIVE"


class Source(StrEnum):
    WEB = "web"
    API = "api"
    SYSTEM = "system"


class Action(StrEnum):
    CREATE = "create"
    CANCEL = "cancel"
    ASSIGN = "assign"
    FORCE_ASSIGN = "force-assign"
    ACCEPT = "accept"
    REJECT = "reject"
    COMPLETE = "complete"
    RETRY = "retry"
    FORCE_CANCEL = "force-cancel"
    MARK_FAILED = "mark-failed"
    EXPIRE_OFFER = "expire-offer"


class Deadline(StrEnum):
    """How an action stands to the deadline of the booking's offer (bookings.offer_expires_at)."""

    BEFORE = "before"  # only while the offer is open: the provider's answer
    AFTER = "after"  # only once it has lapsed: its expiry


class Relation(StrEnum):
    """Which tie to the booking the actor must have, beyond their role."""

    ANY = "any"  # the role alone suffices (admin, system)
    OWNER = "owner"  # the customer who owns the booking
    ASSIGNED = "assigned"  # the provider assigned to it now


@dataclass(frozen=True)
class Rule:
    action: Action
    sources: frozenset[Status]  # empty for create
    target: Status
    roles: frozenset[Role]
    relation: Relation = Relation.ANY
    takes_provider: bool = False  # assign / force-assign name a provider
    checks_availability: bool = False
    forced: bool = False
    releases_provider: bool = False  # the booking's provider_id is cleared
    reason_required: bool = False  # the service refuses the action without one
    asks_reason: bool = False  # pages ask for a reason (the API accepts one)
    # Pages offer these reasons to choose from, and free text beside them, all optional.
    reason_presets: tuple[str, ...] = ()
    confirms: bool = False  # pages ask "Yes, …" before sending it: it cannot be undone
    label: str = ""
    # What happened, as the customer reads it in their booking's timeline: plain words, no
    # internal detail (a rejection reads as the search for a provider going on).
    customer_words: str = ""
    # What the action did, after "Booking #12": the confirmation a person sees; "{provider}" is
    # the booking's provider.
    done: str = ""
    # Why the action is refused from a status it does not allow, when there is more to say.
    refusal_hint: str = ""
    # The offer's deadline decides when it may be taken: a provider answers before it, the
    # offer lapses after it, and never both.
    offer_deadline: Deadline | None = None


def _rule(action: Action, sources, target: Status, roles, **kwargs) -> Rule:
    return Rule(action, frozenset(sources), target, frozenset(roles), **kwargs)


S, R = Status, Role
_ADMIN_SYSTEM = (R.ADMIN, R.SYSTEM)

LIFECYCLE: dict[Action, Rule] = {
    rule.action: rule
    for rule in (
        _rule(
            Action.CREATE,
            (),
            S.PENDING,
            (R.CUSTOMER,),
            label="Request",
            customer_words="Booking requested",
            done="requested",
        ),
        _rule(
            Action.CANCEL,
            (S.PENDING, S.ASSIGNED, S.REJECTED),
            S.CANCELLED,
            (R.CUSTOMER,),
            relation=Relation.OWNER,
            releases_provider=True,
            reason_presets=("Plans changed", "Found someone else", "Booked by mistake"),
            confirms=True,
            label="Cancel booking",
            customer_words="Cancelled",
            done="cancelled",
            refusal_hint="a job in progress can only be force-cancelled by a dispatcher",
        ),
        _rule(
            Action.ASSIGN,
            (S.PENDING, S.REJECTED),
            S.ASSIGNED,
            _ADMIN_SYSTEM,
            takes_provider=True,
            checks_availability=True,
            label="Assign",
            customer_words="Provider assigned",
            done="assigned to {provider}",
        ),
        _rule(
            Action.FORCE_ASSIGN,
            (S.PENDING, S.ASSIGNED, S.REJECTED, S.FAILED),
            S.ASSIGNED,
            (R.ADMIN,),
            takes_provider=True,
            forced=True,
            asks_reason=True,
            confirms=True,
            label="Force-assign",
            customer_words="Provider assigned",
            done="force-assigned to {provider}",
        ),
        _rule(
            Action.ACCEPT,
            (S.ASSIGNED,),
            S.IN_PROGRESS,
            (R.PROVIDER,),
            relation=Relation.ASSIGNED,
            offer_deadline=Deadline.BEFORE,
            label="Accept",
            customer_words="Job started",
            done="accepted: the job is in progress",
        ),
        _rule(
            Action.REJECT,
            (S.ASSIGNED,),
            S.REJECTED,
            (R.PROVIDER,),
            relation=Relation.ASSIGNED,
            releases_provider=True,
            asks_reason=True,
            offer_deadline=Deadline.BEFORE,
            label="Reject",
            customer_words="Looking for another provider",
            done="rejected",
        ),
        _rule(
            Action.EXPIRE_OFFER,
            (S.ASSIGNED,),
            S.REJECTED,
            (R.SYSTEM,),
            releases_provider=True,
            offer_deadline=Deadline.AFTER,
            label="Expire offer",
            customer_words="Looking for another provider",
            done="expired: the provider did not answer in time",
        ),
        _rule(
            Action.COMPLETE,
            (S.IN_PROGRESS,),
            S.COMPLETED,
            (R.PROVIDER,),
            relation=Relation.ASSIGNED,
            confirms=True,
            label="Complete",
            customer_words="Completed",
            done="completed",
        ),
        _rule(
            Action.RETRY,
            (S.REJECTED, S.FAILED),
            S.PENDING,
            _ADMIN_SYSTEM,
            releases_provider=True,
            label="Retry",
            customer_words="Looking for a provider again",
            done="back in the queue, waiting for a provider",
        ),
        _rule(
            Action.FORCE_CANCEL,
            (S.PENDING, S.ASSIGNED, S.IN_PROGRESS, S.REJECTED, S.FAILED),
            S.CANCELLED,
            (R.ADMIN,),
            releases_provider=True,
            forced=True,
            asks_reason=True,
            confirms=True,
            label="Force-cancel",
            customer_words="Cancelled",
            done="force-cancelled",
        ),
        _rule(
            Action.MARK_FAILED,
            (S.PENDING, S.ASSIGNED, S.IN_PROGRESS, S.REJECTED),
            S.FAILED,
            _ADMIN_SYSTEM,
            releases_provider=True,
            reason_required=True,
            asks_reason=True,
            label="Mark failed",
            customer_words="Could not be completed",
            done="marked failed",
        ),
    )
}

# Actions on an existing booking, in the order buttons are shown.
BOOKING_ACTIONS: tuple[Action, ...] = tuple(a for a in LIFECYCLE if a is not Action.CREATE)
# The actions that make an offer: those that name a provider (assign, force-assign).
OFFERS: tuple[Action, ...] = tuple(a for a, r in LIFECYCLE.items() if r.takes_provider)
# How an offer ends: the actions its deadline governs (accept, reject, its lapse); those that
# leave the booking without its provider turned it down (a rejection, a lapse).
OFFER_OUTCOMES: tuple[Action, ...] = tuple(a for a, r in LIFECYCLE.items() if r.offer_deadline)
TURNED_DOWN: tuple[Action, ...] = tuple(a for a in OFFER_OUTCOMES if LIFECYCLE[a].releases_provider)


def confirmation(action: Action, booking_id: int, provider: str | None) -> str:
    """What a person is told once the action is done: "Booking #12 assigned to Zoe Zinc"."""
    return f"Booking #{booking_id} " + LIFECYCLE[action].done.format(provider=provider or "nobody")


# Terminal statuses must be dead ends in the table itself, not only by convention.
assert all(not (rule.sources & TERMINAL) for rule in LIFECYCLE.values())


@dataclass(frozen=True)
class Actor:
    """Who is acting. `user_id` is the account (null for built-in automation); for customers and
    providers it is also their customer_id / provider_id."""

    role: Role
    user_id: int | None
    source: Source = Source.API

    @classmethod
    def system(cls) -> Actor:
        return cls(Role.SYSTEM, None, Source.SYSTEM)


@dataclass(frozen=True)
class BookingFacts:
    """What the table needs to know about a booking to decide who may do what."""

    status: Status
    customer_id: int
    provider_id: int | None


def is_related(facts: BookingFacts, actor: Actor, relation: Relation) -> bool:
    if relation is Relation.OWNER:
        return actor.role is Role.CUSTOMER and facts.customer_id == actor.user_id
    if relation is Relation.ASSIGNED:
        return (
            actor.role is Role.PROVIDER
            and actor.user_id is not None
            and facts.provider_id == actor.user_id
        )
    return True


def may_attempt(facts: BookingFacts, actor: Actor, action: Action) -> bool:
    """Role and relation allow this actor the action on this booking, whatever its status."""
    rule = LIFECYCLE[action]
    return actor.role in rule.roles and is_related(facts, actor, rule.relation)


def allowed_actions(facts: BookingFacts, actor: Actor) -> list[Action]:
    """The actions this actor may take on the booking now: the buttons they see."""
    return [
        action
        for action in BOOKING_ACTIONS
        if facts.status in LIFECYCLE[action].sources and may_attempt(facts, actor, action)
    ]


def status_words(facts: BookingFacts, actor: Actor) -> str:
    """What the booking's status says to this actor: its provider reads their own job's status
    as a call to act, its customer without what is internal to dispatch, everyone else as what
    it is."""
    if is_related(facts, actor, Relation.ASSIGNED):
        return ASSIGNEE_STATUS_WORDS[facts.status]
    if is_related(facts, actor, Relation.OWNER):
        return OWNER_STATUS_WORDS[facts.status]
    return STATUS_WORDS[facts.status]
