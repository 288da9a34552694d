"""Booking histories written straight into the tables on a clock the test moves: each event at
the time the test says, as the services would have written it (the booking's status and
updated_at follow its latest event). Actions are written by their value, so a history may hold
actions the lifecycle table does not know yet ('expire-offer')."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from ops_portal.domain.lifecycle import LIFECYCLE, Action, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, UTCDateTime
from tests.support.people import Cast

LAPSE = "expire-offer"
# Where each action leads, by value (a lapse returns the booking to REJECTED).
TARGET = {**{a.value: rule.target for a, rule in LIFECYCLE.items()}, LAPSE: Status.REJECTED}
EVENTS = sa.table(
    "booking_events",
    *(
        sa.column(name)
        for name in (
            "booking_id",
            "action",
            "from_status",
            "to_status",
            "actor_role",
            "actor_id",
            "provider_id",
            "reason",
            "forced",
            "source",
        )
    ),
    sa.column("created_at", UTCDateTime),
)


@dataclass
class Event:
    booking_id: int
    action: str
    from_status: str | None
    to_status: str
    actor_role: str
    actor_id: int | None
    provider_id: int | None
    created_at: datetime


@dataclass
class History:
    """Bookings of `cast.owner` and their events, written by `write()` in one transaction."""

    cast: Cast
    events: list[Event] = field(default_factory=list)
    _bookings: dict[int, tuple[Status, int | None, datetime, datetime]] = field(
        default_factory=dict
    )

    def book(self, at: datetime) -> int:
        booking_id = db.session.execute(
            sa.insert(Booking.__table__).returning(Booking.__table__.c.id),
            {
                "status": Status.PENDING.value,
                "customer_id": self.cast.owner.user_id,
                "customer_name": "Olive Owner",
                "service": "Leaking tap",
                "address": "1 Clock Street",
                "notes": "",
                "version": 1,
                "created_at": at,
                "updated_at": at,
            },
        ).scalar_one()
        self._bookings[booking_id] = (Status.PENDING, None, at, at)
        self._add(booking_id, Action.CREATE.value, at, self.cast.owner, None)
        return booking_id

    def act(self, booking_id: int, action: str, at: datetime, *, by: str, provider=None) -> None:
        """`action` on the booking at `at` by the cast member `by`; `provider` for assignments
        (else the booking's provider is the one involved)."""
        status, current, created, _ = self._bookings[booking_id]
        involved = provider.user_id if provider is not None else current
        self._add(booking_id, action, at, self.cast.by_name(by), involved, from_status=status)
        target = TARGET[action]
        kept = (
            involved if target in (Status.ASSIGNED, Status.IN_PROGRESS, Status.COMPLETED) else None
        )
        self._bookings[booking_id] = (target, kept, created, at)

    def _add(self, booking_id, action, at, actor, provider_id, from_status=None) -> None:
        self.events.append(
            Event(
                booking_id,
                action,
                from_status and from_status.value,
                TARGET[action].value,
                actor.role.value,
                actor.user_id,
                provider_id,
                at,
            )
        )

    def write(self) -> None:
        """The events, and each booking as its latest event left it."""
        db.session.execute(
            sa.insert(EVENTS),
            [
                {**vars(e), "reason": None, "forced": e.action == "force-assign", "source": "web"}
                for e in self.events
            ],
        )
        for booking_id, (status, provider_id, _, updated) in self._bookings.items():
            db.session.execute(
                sa.update(Booking.__table__)
                .where(Booking.__table__.c.id == booking_id)
                .values(
                    status=status.value,
                    provider_id=provider_id,
                    assignment_forced=status in (Status.ASSIGNED, Status.IN_PROGRESS),
                    updated_at=updated,
                )
            )
        db.session.commit()


def random_history(cast: Cast, start: datetime, *, bookings: int, seed: int) -> History:
    """Bookings created over two days from `start`, each dispatched by a dispatcher or by
    automation, its offers accepted, rejected or left to lapse, then completed, cancelled or
    failed, or left where it got to; minutes to hours between steps."""
    rng = random.Random(seed)
    history = History(cast)
    providers = (cast.provider, cast.other_provider)

    def later(at: datetime) -> datetime:
        return at + timedelta(seconds=rng.choice([5, 40, 90, 200, 600, 2400, 7200]))

    for _ in range(bookings):
        at = start + timedelta(seconds=rng.randrange(2 * 86400))
        booking = history.book(at)
        for _offer in range(rng.randrange(4)):
            at = later(at)
            dispatcher = rng.choice(["admin", "system"])
            history.act(booking, "assign", at, by=dispatcher, provider=rng.choice(providers))
            at = later(at)
            end = rng.choice(["accept", "reject", LAPSE, "force-assign", None])
            if end is None:
                break
            if end == "force-assign":  # a dispatcher hands the standing offer to another
                history.act(booking, end, at, by="admin", provider=rng.choice(providers))
                break
            by = "system" if end == LAPSE else "provider"
            history.act(booking, end, at, by=by)
            if end == "accept":
                at = later(at)
                finish = rng.choice(["complete", "mark-failed", "force-cancel", None])
                if finish:
                    by = "provider" if finish == "complete" else "admin"
                    history.act(booking, finish, at, by=by)
                break
            if rng.random() < 0.5:
                at = later(at)
                history.act(booking, "retry", at, by=rng.choice(["admin", "system"]))
        else:
            if rng.random() < 0.3:
                history.act(booking, "force-cancel", later(at), by="admin")
    history.write()
    return history
