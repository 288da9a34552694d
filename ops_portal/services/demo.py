"""Demo data for the embedded default: accounts for every role and bookings in every status,
each made through the service layer so its history is real."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from ..domain.lifecycle import OFFERS, Action, Actor, Role, Source
from ..extensions import db
from ..models import ApiToken, Booking, User
from . import accounts, bookings, dispatch
from .transactions import write_transaction

DEMO_PASSWORD = "demo-pass-2026"
DEMO_ACCOUNTS = [
    ("admin@example.com", "Dana Dispatcher", Role.ADMIN),
    ("alice@example.com", "Alice Archer", Role.CUSTOMER),
    ("bob@example.com", "Bob Baker", Role.CUSTOMER),
    ("carol@example.com", "Carol Chen", Role.CUSTOMER),
    ("pat@example.com", "Pat Plumber", Role.PROVIDER),
    ("rita@example.com", "Rita Repairs", Role.PROVIDER),
    ("sam@example.com", "Sam Sparkle", Role.PROVIDER),
    ("tom@example.com", "Tom Tiles", Role.PROVIDER),
    ("uma@example.com", "Uma Upholstery", Role.PROVIDER),
    ("vic@example.com", "Vic Volt", Role.PROVIDER),
    ("wes@example.com", "Wes Windows", Role.PROVIDER),
    ("zoe@example.com", "Zoe Zinc", Role.PROVIDER),
    ("automation@example.com", "Dispatch automation", Role.SYSTEM),
]
SERVICES = [
    ("Deep cleaning", "12 Harbour St"),
    ("Leaking tap", "4 Mill Lane, flat 2"),
    ("Fix a door hinge", "88 Orchard Rd"),
    ("Boiler service", "7 Kings Court"),
    ("Window cleaning", "31 Station Ave"),
    ("Tile regrouting", "19 Elm Close"),
    ("Sofa cleaning", "2 Quay Side"),
    ("Blocked drain", "56 Park Terrace"),
]
# What customers tell their provider, booking by booking: seven, a number prime to the three
# customers, so each of them gets some of every kind (and some bookings none).
NOTES = (
    "Side gate is open.",
    "",
    "Dog in the garden: friendly.",
    "Parking on the street only.",
    "",
    "Ring the top bell, flat 3.",
    "Key under the blue pot.",
)
# The path of actions each demo booking takes; the last status is where it ends up.
PATHS: list[list[Action]] = [
    [],
    [Action.ASSIGN],
    [Action.ASSIGN, Action.ACCEPT],
    [Action.ASSIGN, Action.ACCEPT, Action.COMPLETE],
    [Action.ASSIGN, Action.REJECT],
    [Action.CANCEL],
    [Action.MARK_FAILED],
    [Action.ASSIGN, Action.REJECT, Action.RETRY],
    [Action.ASSIGN, Action.ACCEPT, Action.FORCE_CANCEL],
    [Action.ASSIGN, Action.REJECT, Action.FORCE_ASSIGN, Action.ACCEPT, Action.COMPLETE],
]
REASONS = {
    Action.REJECT: "Too far from my current job",
    Action.MARK_FAILED: "Customer unreachable at the address",
    Action.FORCE_CANCEL: "Duplicate of another request",
    Action.FORCE_ASSIGN: "Only specialist available today",
}


def demo_token(email: str) -> str:
    """The demo account's API token, the same on every run (as its password is), so that it can
    be printed every time: only a token's hash is stored."""
    return f"{accounts.TOKEN_PREFIX}demo_{email.partition('@')[0]}"


def has_data() -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User)) > 0


def loaded_on() -> date | None:
    """The day the demo was loaded (its bookings' windows are that day and the week after),
    or None if the database has no demo."""
    first = db.session.scalar(sa.select(User.created_at).where(User.email == DEMO_ACCOUNTS[0][0]))
    return None if first is None else first.astimezone(UTC).date()


def reset() -> None:
    """Rebuild the schema from the migrations: the one sanctioned wipe, for demos only (events
    are append-only, so the data cannot be deleted row by row)."""
    from flask_migrate import downgrade, upgrade

    db.session.remove()
    downgrade(revision="base")
    upgrade()


# The services each demo provider does; Zoe has none recorded, so she may be offered any.
DEMO_SERVICES = {
    "pat@example.com": "Plumbing;Leaking tap;Blocked drain;Boiler service",
    "rita@example.com": "Handyman repairs;Furniture assembly;Painting",
    "sam@example.com": "Home cleaning;Deep cleaning;Window cleaning",
    "tom@example.com": "Tiling;Painting;Handyman repairs",
    "uma@example.com": "Home cleaning;Deep cleaning;Furniture assembly",
    "vic@example.com": "Electrical repair;Boiler service",
    "wes@example.com": "Window cleaning;Home cleaning",
}


def load(seed: int = 2026) -> None:
    """Create the demo accounts (each with its demo_token) and ~30 bookings, their windows
    from today to a week ahead."""
    rng = random.Random(seed)
    created = accounts.create_users(
        [
            accounts.validate_new_user(
                email,
                name,
                role,
                None if role is Role.SYSTEM else DEMO_PASSWORD,
                DEMO_SERVICES.get(email),
            )
            for email, name, role in DEMO_ACCOUNTS
        ],
        with_tokens=False,
    )
    with write_transaction() as session:
        session.execute(
            sa.insert(ApiToken),
            [
                {"user_id": user.id, "token_hash": accounts.hash_token(demo_token(user.email))}
                for user, _ in created
            ],
        )
    by_role: dict[Role, list[User]] = {}
    for user, _ in created:
        by_role.setdefault(user.role, []).append(user)
    admin = Actor(Role.ADMIN, by_role[Role.ADMIN][0].id, Source.WEB)
    system = Actor(Role.SYSTEM, by_role[Role.SYSTEM][0].id, Source.SYSTEM)
    customers = [Actor(Role.CUSTOMER, u.id, Source.WEB) for u in by_role[Role.CUSTOMER]]
    provider_ids = [u.id for u in by_role[Role.PROVIDER]]

    today = datetime.now(UTC).date()
    for index in range(30):
        path = PATHS[index % len(PATHS)]
        customer = customers[index % len(customers)]
        service, address = SERVICES[index % len(SERVICES)]
        start = datetime.combine(
            today + timedelta(days=rng.randint(1, 7)), time(8 + rng.randint(0, 8)), UTC
        )
        booking = bookings.create_booking(
            customer,
            service=service,
            address=address,
            window_start=start,
            window_end=start + timedelta(hours=2),
            notes=NOTES[index % len(NOTES)],
        )
        _walk(booking.id, path, customer, admin, system, provider_ids)


def _walk(booking_id, path, customer, admin, system, provider_ids) -> None:
    for action in path:
        booking = db.session.get(Booking, booking_id)
        if action in OFFERS:
            available = [p.id for p in dispatch.eligible_providers(booking_id)]
            if action is Action.ASSIGN and not available:
                return  # every provider is busy: leave it for the dispatcher
            candidates = available or provider_ids
            actor = system if action is Action.ASSIGN else admin
            bookings.perform_action(
                actor, booking_id, action, provider_id=candidates[0], reason=REASONS.get(action)
            )
            continue
        if action in (Action.ACCEPT, Action.REJECT, Action.COMPLETE):
            actor = Actor(Role.PROVIDER, booking.provider_id, Source.WEB)
        elif action is Action.CANCEL:
            actor = customer
        elif action is Action.RETRY:
            actor = system
        else:
            actor = admin
        bookings.perform_action(actor, booking_id, action, reason=REASONS.get(action))
