"""A model of the lifecycle that hunts for bugs.

A Hypothesis `RuleBasedStateMachine` drives the real service layer on a real database (SQLite, and
PostgreSQL when OPS_PORTAL_TEST_POSTGRES_URL is set) with random actions by random actors: two
customers, three providers, an admin and the system. A plain-Python model, written here from the
documented rules (docs/lifecycle.md, docs/access.md) independently of `LIFECYCLE`, predicts each
outcome: success, or the exact HTTP status the refusal maps to (via
`ops_portal.http.errors.status_for`).

After every step, against the database: event chains unbroken; at most one active
non-forced booking per provider, and none beside a forced one unless it was there first;
terminal bookings never change; versions only increase; a refused action changed nothing; and
the database equals the model.

Each Hypothesis example creates its own people and bookings in the test's database and the
model is scoped to the ids it created (every invariant is per booking or per provider), so
examples need no database reset.

Profiles: bounded by default; OPS_PORTAL_LONG_PROPERTIES=1 for a long hunt.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from ops_portal.domain.errors import DomainError
from ops_portal.domain.lifecycle import Action, Actor, Role
from ops_portal.extensions import db
from ops_portal.http.errors import status_for
from ops_portal.models import Booking, BookingEvent
from ops_portal.services import bookings
from tests.support.builders import booking_state
from tests.support.people import Person, create_accounts

LONG = os.environ.get("OPS_PORTAL_LONG_PROPERTIES") == "1"
SETTINGS = settings(
    max_examples=300 if LONG else 20,
    stateful_step_count=50 if LONG else 25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)

# ------------------------------------------------------------------ the rules, written out again

ACTIVE = {"ASSIGNED", "IN_PROGRESS"}
TERMINAL = {"COMPLETED", "CANCELLED"}


@dataclass(frozen=True)
class SpecRow:
    sources: frozenset
    target: str
    roles: frozenset
    relation: str = "any"  # "owner" | "assigned" | "any"
    takes_provider: bool = False
    checks_availability: bool = False
    forced: bool = False
    clears_provider: bool = False
    reason_required: bool = False
    # Only once the offer's deadline has passed; the machine acts within the offer time, so
    # from ASSIGNED it is always too early (409).
    after_the_deadline: bool = False


def _row(sources, target, roles, **kw):
    return SpecRow(frozenset(sources.split()), target, frozenset(roles.split()), **kw)


RULES_BY_HAND = {
    Action.CANCEL: _row(
        "PENDING ASSIGNED REJECTED", "CANCELLED", "CUSTOMER", relation="owner", clears_provider=True
    ),
    Action.ASSIGN: _row(
        "PENDING REJECTED",
        "ASSIGNED",
        "ADMIN SYSTEM",
        takes_provider=True,
        checks_availability=True,
    ),
    Action.FORCE_ASSIGN: _row(
        "PENDING ASSIGNED REJECTED FAILED", "ASSIGNED", "ADMIN", takes_provider=True, forced=True
    ),
    Action.ACCEPT: _row("ASSIGNED", "IN_PROGRESS", "PROVIDER", relation="assigned"),
    Action.REJECT: _row(
        "ASSIGNED", "REJECTED", "PROVIDER", relation="assigned", clears_provider=True
    ),
    # complete keeps provider_id: who did the job
    Action.COMPLETE: _row("IN_PROGRESS", "COMPLETED", "PROVIDER", relation="assigned"),
    Action.RETRY: _row("REJECTED FAILED", "PENDING", "ADMIN SYSTEM", clears_provider=True),
    Action.FORCE_CANCEL: _row(
        "PENDING ASSIGNED IN_PROGRESS REJECTED FAILED",
        "CANCELLED",
        "ADMIN",
        forced=True,
        clears_provider=True,
    ),
    Action.MARK_FAILED: _row(
        "PENDING ASSIGNED IN_PROGRESS REJECTED",
        "FAILED",
        "ADMIN SYSTEM",
        clears_provider=True,
        reason_required=True,
    ),
    Action.EXPIRE_OFFER: _row(
        "ASSIGNED", "REJECTED", "SYSTEM", clears_provider=True, after_the_deadline=True
    ),
}
assert set(RULES_BY_HAND) == set(Action) - {Action.CREATE}

MACHINE_PEOPLE = (
    ("c0", Role.CUSTOMER),
    ("c1", Role.CUSTOMER),
    ("p0", Role.PROVIDER),
    ("p1", Role.PROVIDER),
    ("p2", Role.PROVIDER),
    ("admin", Role.ADMIN),
    ("system", Role.SYSTEM),  # the services act as Actor.system(); the API needs an account
)
ACTOR_NAMES = tuple(name for name, _ in MACHINE_PEOPLE)
NOWHERE = 2**31 - 2  # a provider id that passes the range check but does not exist
# What the machines did, for the report (pytest -s prints it).
OUTCOMES: Counter = Counter()


@dataclass
class ModelBooking:
    customer: int
    status: str = "PENDING"
    provider: int | None = None
    forced: bool = False
    version: int = 1
    events: int = 1
    ever_providers: set = field(default_factory=set)  # providers named in its events
    assign_seq: int = 0  # when the current assignment happened (model clock)


class Refused(Exception):
    def __init__(self, status: int):
        self.status = status


def predict(b: ModelBooking, actor: Actor, action: Action, provider_id, reason, version, model):
    """The outcome the documented rules demand: raises Refused(status), or returns (success)."""
    row = RULES_BY_HAND[action]
    if actor.role.value not in row.roles:
        raise Refused(403)
    if version is not None and version != b.version:
        sees = (
            actor.role in (Role.ADMIN, Role.SYSTEM)
            or (actor.role is Role.CUSTOMER and actor.user_id == b.customer)
            or (actor.role is Role.PROVIDER and actor.user_id == b.provider)
        )
        once = actor.role is Role.PROVIDER and actor.user_id in b.ever_providers
        # a stranger learns nothing from a stale version: refused as for the relation
        raise Refused(409 if sees or once else 403)
    if row.relation == "owner" and not (
        actor.role is Role.CUSTOMER and actor.user_id == b.customer
    ):
        raise Refused(403)
    if row.relation == "assigned" and not (
        actor.role is Role.PROVIDER and actor.user_id is not None and actor.user_id == b.provider
    ):
        raise Refused(403)
    if b.status not in row.sources:
        raise Refused(400)
    if row.reason_required and not reason:
        raise Refused(400)
    if row.after_the_deadline:
        raise Refused(409)
    if row.takes_provider:
        if provider_id not in model.providers:
            raise Refused(404)
        if provider_id == b.provider and b.status in ACTIVE:
            raise Refused(400)
        if row.checks_availability and model.busy(provider_id):
            raise Refused(403)


def make_machine(app):
    """The machine on the service layer. Subclasses change only how a step reaches the app
    (`use_system_account`, `call_create`, `call_action`)."""

    class LifecycleMachine(RuleBasedStateMachine):
        booking_ids = Bundle("booking_ids")
        # the HTTP machine needs a SYSTEM account with a token; the services use Actor.system()
        use_system_account = False

        def call_create(self, who: str) -> tuple[int | None, int | None]:
            """Create as `who`: (booking id, None) or (None, refusal status)."""
            try:
                booking = bookings.create_booking(
                    self.actors[who], service="Fix it", address="1 Model St"
                )
            except DomainError as error:
                return None, status_for(error)
            finally:
                db.session.rollback()
            return booking.id, None

        def call_action(self, who, booking_id, action, provider_id, reason, version):
            """Perform as `who`: None on success, else the refusal status."""
            try:
                bookings.perform_action(
                    self.actors[who],
                    booking_id,
                    action,
                    provider_id=provider_id,
                    reason=reason,
                    expected_version=version,
                )
            except DomainError as error:
                return status_for(error)
            finally:
                db.session.rollback()
            return None

        def __init__(self):
            super().__init__()
            self.model: dict[int, ModelBooking] = {}
            self.clock = 0
            # Each example's own people (emails tagged, as the database is not reset between
            # examples), made as the shared ones are.
            tag = uuid.uuid4().hex[:10]
            people = [
                Person(name, f"{name}-{tag}@example.com", f"SM {name}", role)
                for name, role in MACHINE_PEOPLE
                if role is not Role.SYSTEM or self.use_system_account
            ]
            self.actors, self.tokens = create_accounts(people, with_tokens=self.use_system_account)
            if not self.use_system_account:
                self.actors["system"] = Actor.system()
            self.providers = {self.actors[p].user_id for p in ("p0", "p1", "p2")}
            self.last_versions: dict[int, int] = {}

        def busy(self, provider_id) -> bool:
            return any(
                b.provider == provider_id and b.status in ACTIVE for b in self.model.values()
            )

        # ------------------------------------------------------------------ rules

        @initialize(target=booking_ids)
        def job_in_progress(self):
            """Every example starts with one job in progress (p0 busy), through the model."""
            booking_id = self.create("c0")
            self._attempt(booking_id, "admin", Action.ASSIGN, "p0", None, "current")
            self._attempt(booking_id, "p0", Action.ACCEPT, None, None, "none")
            assert self.model[booking_id].status == "IN_PROGRESS"
            return booking_id

        @rule(target=booking_ids, who=st.sampled_from(ACTOR_NAMES))
        def create(self, who):
            actor = self.actors[who]
            booking_id, refused = self.call_create(who)
            OUTCOMES["steps"] += 1
            if actor.role is not Role.CUSTOMER:
                assert booking_id is None and refused == 403, (who, booking_id, refused)
                return multiple()
            assert refused is None, (who, refused)
            self.model[booking_id] = ModelBooking(customer=actor.user_id)
            return booking_id

        @rule(
            booking_id=booking_ids,
            who=st.sampled_from(ACTOR_NAMES),
            action=st.sampled_from(list(RULES_BY_HAND)),
            provider_pick=st.sampled_from(["p0", "p1", "p2", "p0", "p1", "p2", "nowhere", "c0"]),
            reason=st.sampled_from([None, "", "a good reason"]),
            version_pick=st.sampled_from(["none", "current", "current", "stale", "future"]),
        )
        def act(self, booking_id, who, action, provider_pick, reason, version_pick):
            self._attempt(booking_id, who, action, provider_pick, reason, version_pick)

        @rule(
            booking_id=booking_ids,
            data=st.data(),
            provider_pick=st.sampled_from(["p0", "p1", "p2", "p0", "p1", "p2", "nowhere"]),
            reason=st.sampled_from([None, "a good reason", "a good reason"]),
            version_pick=st.sampled_from(["none", "current", "current", "current", "stale"]),
        )
        def act_plausibly(self, booking_id, data, provider_pick, reason, version_pick):
            """Random steps mostly bounce off refusals; this one picks an actor and action the
            status and relation allow (by the model), so the machine reaches deep states."""
            b = self.model[booking_id]
            choices = [
                (who, action)
                for action, row in RULES_BY_HAND.items()
                if b.status in row.sources
                for who in ACTOR_NAMES
                if self.actors[who].role.value in row.roles
                and (row.relation != "owner" or self.actors[who].user_id == b.customer)
                and (row.relation != "assigned" or self.actors[who].user_id == b.provider)
            ]
            if not choices:
                return  # terminal
            who, action = data.draw(st.sampled_from(choices))
            self._attempt(booking_id, who, action, provider_pick, reason, version_pick)

        # twice the weight: Hypothesis picks among rules evenly
        act_plausibly_again = act_plausibly

        def _attempt(self, booking_id, who, action, provider_pick, reason, version_pick):
            b = self.model[booking_id]
            actor = self.actors[who]
            provider_id = None
            if RULES_BY_HAND[action].takes_provider:
                provider_id = (
                    NOWHERE if provider_pick == "nowhere" else self.actors[provider_pick].user_id
                )
            version = {
                "none": None,
                "current": b.version,
                "stale": b.version - 1 if b.version > 1 else None,
                "future": b.version + 1,
            }[version_pick]
            try:
                predict(b, actor, action, provider_id, reason, version, self)
                expected = None
            except Refused as refused:
                expected = refused.status

            before = booking_state(booking_id)
            got = self.call_action(who, booking_id, action, provider_id, reason, version)
            OUTCOMES["steps"] += 1
            OUTCOMES[f"{action} -> {got or 'ok'}"] += 1
            assert got == expected, (
                f"{who} {action} on {b} (provider {provider_pick}, reason {reason!r}, "
                f"version {version_pick}): expected {expected or 'success'}, got {got or 'success'}"
            )
            if got is not None:
                assert booking_state(booking_id) == before, "a refused action changed something"
                return
            row = RULES_BY_HAND[action]
            involved = provider_id if row.takes_provider else b.provider
            if involved is not None:
                b.ever_providers.add(involved)
            b.status = row.target
            if row.takes_provider:
                b.provider = provider_id
                b.forced = row.forced
                self.clock += 1
                b.assign_seq = self.clock
            elif row.clears_provider:
                b.provider = None
                b.forced = False
            b.version += 1
            b.events += 1

        # ------------------------------------------------------------------ invariants

        @invariant()
        def database_matches_model(self):
            if not self.model:
                return
            db.session.rollback()
            ids = list(self.model)
            rows = {
                r.id: r
                for r in db.session.execute(
                    sa.select(
                        Booking.id,
                        Booking.status,
                        Booking.provider_id,
                        Booking.assignment_forced,
                        Booking.version,
                    ).where(Booking.id.in_(ids))
                )
            }
            events: dict[int, list] = {i: [] for i in ids}
            for e in db.session.execute(
                sa.select(
                    BookingEvent.booking_id,
                    BookingEvent.action,
                    BookingEvent.from_status,
                    BookingEvent.to_status,
                )
                .where(BookingEvent.booking_id.in_(ids))
                .order_by(BookingEvent.id)
            ):
                events[e.booking_id].append(e)
            for booking_id, b in self.model.items():
                row = rows[booking_id]
                got = (row.status, row.provider_id, bool(row.assignment_forced), row.version)
                assert got == (b.status, b.provider, b.forced, b.version), (booking_id, got, b)
                # versions only increase
                assert row.version >= self.last_versions.get(booking_id, 1)
                self.last_versions[booking_id] = row.version
                # an unbroken chain ending at the status, one event per success
                chain = events[booking_id]
                assert len(chain) == b.events, (booking_id, len(chain), b.events)
                assert chain[0].action == "create" and chain[0].from_status is None
                for previous, event in pairwise(chain):
                    assert event.from_status == previous.to_status, (booking_id, chain)
                assert chain[-1].to_status == row.status
                # terminal bookings never change: the chain ends at the first terminal status
                for event in chain[:-1]:
                    assert event.to_status not in TERMINAL, (booking_id, chain)

        @invariant()
        def provider_not_double_booked(self):
            for provider_id in self.providers:
                active = [
                    b
                    for b in self.model.values()
                    if b.provider == provider_id and b.status in ACTIVE
                ]
                unforced = [b for b in active if not b.forced]
                assert len(unforced) <= 1, (provider_id, active)
                # an unforced booking beside a forced one only if it was there first
                for b in unforced:
                    assert all(b.assign_seq < f.assign_seq for f in active if f.forced)

    return LifecycleMachine


def test_lifecycle_state_machine(app):
    machine = make_machine(app)
    machine.TestCase.settings = SETTINGS
    OUTCOMES.clear()
    run_state_machine_as_test(machine, settings=SETTINGS)
    print(f"\nstate machine: {OUTCOMES['steps']} steps;", dict(sorted(OUTCOMES.items())))
    assert OUTCOMES["accept -> ok"] > 0
