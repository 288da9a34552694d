"""Authorization sweep (docs/access.md): walk the app's URL map — not a hand-kept list — and
for every route × method × actor (anonymous, both customers, both providers, the admin, and for
the API the system account and an admin's browser session without a token), on every id-taking
route with the actor's own object, ANOTHER user's object and a missing one, check the answer
against ONE table (TABLE, keyed by endpoint). A route without a row fails the test.

Objects: booking A belongs to Olive (owner) and is assigned to Pat (provider); booking B belongs to
Oscar (other_customer) and is assigned to Quinn (other_provider). Provider targets: P = Pat,
Q = Quinn. An action is tried on a booking in a status the action allows, so only who is asking
decides; a booking an action changed is replaced by a fresh one.

Also checked in every cell: no answer shows a booking the actor may not see (every booking's
address carries a marker of whose it is); refused POSTs change nothing in any table; a
successful action changes its booking (and nothing else); no GET changes anything anywhere.
Web booking actions are sent as htmx (as the cards send them), so refusals keep their status
code instead of becoming a 303 with a flash."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from ops_portal.domain.catalog import SERVICES
from ops_portal.domain.lifecycle import BOOKING_ACTIONS, LIFECYCLE, Action, Role, Status
from ops_portal.extensions import db
from ops_portal.services import accounts, bookings
from tests.support.pages import HOME, HTMX, Page
from tests.support.people import PASSWORD, PERSON

API_ACTORS = (
    "anonymous",
    "owner",
    "other_customer",
    "provider",
    "other_provider",
    "admin",
    "system",
    "admin_session",
)
WEB_ACTORS = API_ACTORS[:6]  # SYSTEM accounts cannot log in to the pages


def api(spec: str) -> dict[str, str]:
    """A row for an API route: anon owner other_customer provider other_provider admin system
    admin_session (an admin's logged-in browser cookie, no bearer token)."""
    tokens = spec.split()
    assert len(tokens) == len(API_ACTORS), spec
    return dict(zip(API_ACTORS, tokens, strict=True))


def web(spec: str) -> dict[str, str]:
    """A row for a page route: anon owner other_customer provider other_provider admin.
    `302:login` is a redirect to the login page, `302:home` to the actor's own home page."""
    tokens = spec.split()
    assert len(tokens) == len(WEB_ACTORS), spec
    return dict(zip(WEB_ACTORS, tokens, strict=True))


def action_cases(rows: dict[str, tuple[dict, dict]], missing: dict, extra: dict | None = None):
    """Cases "<action> A", "<action> B", "<action> missing" for a booking-action route."""
    cases = {}
    for action, (row_a, row_b) in rows.items():
        cases[f"{action} A"], cases[f"{action} B"], cases[f"{action} missing"] = (
            row_a,
            row_b,
            missing,
        )
    return {**cases, **(extra or {})}


def page_action_route(allowed: dict[str, tuple[dict, dict]], *, missing: dict, no_reason: dict):
    """The rows of a role's page-action route: (A, B) for the actions its role may take, the
    gate's 403 on both bookings for every other booking action, `missing` for a booking that
    does not exist, and `no_reason` for mark-failed without its reason. An action name that
    is no button ("create") or no action at all ("bogus") answers as a missing booking does."""
    assert set(allowed) <= {a.value for a in BOOKING_ACTIONS}, allowed
    refused = web("401  403  403  403  403  403")
    rows = {a.value: allowed.get(a.value, (refused, refused)) for a in BOOKING_ACTIONS}
    extra = {"mark-failed A no-reason": no_reason, "bogus A": missing, "create A": missing}
    return {"POST": action_cases(rows, missing=missing, extra=extra)}


def page_action_form_route(answers: dict[str, tuple[dict, dict]], *, missing: dict):
    """The rows of a role's GET action-form route, tried on the shared ASSIGNED bookings: (A, B)
    for the actions whose form its role may open (400, as the action itself would answer,
    where the booking's status does not allow it); 403 for every other booking action;
    `missing` for a booking that does not exist and for an action name that is no action at
    all."""
    refused = web("302:login 403  403  403  403  403")
    rows = {a.value: answers.get(a.value, (refused, refused)) for a in BOOKING_ACTIONS}
    return {"GET": action_cases(rows, missing=missing, extra={"bogus A": missing})}


# The API has one route per action (api.action_<name>); its rows, per action: (A, B).
API_ACTION_ROWS = {
    #                                anon owner othr prov oprv admn sys  cookie
    "cancel": (
        api("401 200  403  403  403  403  403  401"),
        api("401 403  200  403  403  403  403  401"),
    ),
    "assign": (
        api("401 403  403  403  403  200  200  401"),
        api("401 403  403  403  403  200  200  401"),
    ),
    "force-assign": (
        api("401 403  403  403  403  200  403  401"),
        api("401 403  403  403  403  200  403  401"),
    ),
    "accept": (
        api("401 403  403  200  403  403  403  401"),
        api("401 403  403  403  200  403  403  401"),
    ),
    "reject": (
        api("401 403  403  200  403  403  403  401"),
        api("401 403  403  403  200  403  403  401"),
    ),
    "complete": (
        api("401 403  403  200  403  403  403  401"),
        api("401 403  403  403  200  403  403  401"),
    ),
    "retry": (
        api("401 403  403  403  403  200  200  401"),
        api("401 403  403  403  403  200  200  401"),
    ),
    "force-cancel": (
        api("401 403  403  403  403  200  403  401"),
        api("401 403  403  403  403  200  403  401"),
    ),
    "mark-failed": (
        api("401 403  403  403  403  200  200  401"),
        api("401 403  403  403  403  200  200  401"),
    ),
    # Automation's alone; the shared bookings' offers are still open, so it is too early.
    "expire-offer": (
        api("401 403  403  403  403  403  409  401"),
        api("401 403  403  403  403  403  409  401"),
    ),
}
API_ACTION_MISSING = api("401 404  404  404  404  404  404  401")
API_ACTION_EXTRA = {
    "mark-failed": {"mark-failed A no-reason": api("401 403  403  403  403  400  400  401")}
}


# ===================================================================================== THE TABLE
# endpoint -> method -> case -> actor -> expected answer.
# Cases: "-" (no id), "A" / "B" / "missing" (booking id), "P" / "Q" / "missing" (provider id),
# "<action> <target>" for action routes, "<action> <target> no-reason" for bad input.
# fmt: off  (the rows are aligned by actor column)
TABLE: dict[str, dict[str, dict[str, dict[str, str]]]] = {
    # ------------------------------------------------------------------------------- JSON API
    #                                      anon owner othr prov oprv admn sys  cookie
    "api.create_booking": {"POST": {"-": api("401 201  201  403  403  403  403  401")}},
    "api.get_booking": {
        "GET": {
            "A": api("401 200  403  200  403  200  200  401"),
            "B": api("401 403  200  403  200  200  200  401"),
            "missing": api("401 404  404  404  404  404  404  401"),
        }
    },
    "api.get_booking_events": {
        "GET": {
            "A": api("401 200  403  200  403  200  200  401"),
            "B": api("401 403  200  403  200  200  200  401"),
            "missing": api("401 404  404  404  404  404  404  401"),
        }
    },
    "api.provider_bookings": {
        "GET": {
            "P": api("401 403  403  200  403  200  200  401"),
            "Q": api("401 403  403  403  200  200  200  401"),
            "missing": api("401 403  403  403  403  404  404  401"),
        }
    },
    "api.admin_providers": {"GET": {"-": api("401 403  403  403  403  200  200  401")}},
    # Sent "on duty" to a provider on duty: authorized or not, nothing changes.
    "api.provider_duty": {
        "PUT": {
            "P": api("401 403  403  200  403  200  200  401"),
            "Q": api("401 403  403  403  200  200  200  401"),
            "missing": api("401 403  403  403  403  404  404  401"),
        }
    },
    "api.booking_candidates": {
        "GET": {
            "A": api("401 403  403  403  403  200  200  401"),
            "B": api("401 403  403  403  403  200  200  401"),
            "missing": api("401 403  403  403  403  404  404  401"),
        }
    },
    "api.dispatch_metrics": {"GET": {"-": api("401 403  403  403  403  200  200  401")}},
    "api.admin_cancel": {
        "POST": action_cases(
            {
                "force-cancel": (
                    api("401 403  403  403  403  200  403  401"),
                    api("401 403  403  403  403  200  403  401"),
                )
            },
            missing=api("401 404  404  404  404  404  404  401"),
        )
    },
    # ------------------------------------------------------------------------------- pages
    #                                      anon      owner    othr     prov     oprv     admin
    "health.health_check": {"GET": {"-": web("200       200      200      200      200      200")}},
    # The published API contract and its page: public, like any API's documentation.
    "api-docs.openapi_json": {"GET": {"-": web("200     200      200      200      200      200")}},
    "api_docs.api_reference": {"GET": {"-": web("200    200      200      200      200      200")}},
    "auth.login": {
        "GET": {"-": web("200       302:home 302:home 302:home 302:home 302:home")},
        # anonymous logs in as Olive (a fresh client); the logged-in are sent home
        "POST": {"-": web("303:/customer/ 302:home 302:home 302:home 302:home 302:home")},
    },
    "auth.root": {"GET": {"-": web("302:login 302:home 302:home 302:home 302:home 302:home")}},
    "auth.logout": {
        "POST": {"-": web("303:login 303:login 303:login 303:login 303:login 303:login")}
    },
    # Everyone's own account: only ever their own, so there is no one else's to try.
    "account.profile": {
        "GET": {"-": web("302:login 200      200      200      200      200")},
        "POST": {
            "-": web(
                "303:login 303:/account/ 303:/account/ 303:/account/ 303:/account/ 303:/account/"
            )
        },
    },
    "customer.index": {"GET": {"-": web("302:login 200      200      403      403      403")}},
    "customer.bookings_region": {
        "GET": {"-": web("302:login 302:/customer/ 302:/customer/ 403 403 403")}
    },
    "customer.new_booking": {
        "GET": {"-": web("302:login 200      200      403      403      403")},
        "POST": {"-": web("303:login 303:home 303:home 403      403      403")},
    },
    "customer.booking_detail": {
        "GET": {
            "A": web("302:login 200      403      403      403      403"),
            "B": web("302:login 403      200      403      403      403"),
            "missing": web("302:login 404      404      403      403      403"),
        }
    },
    "provider.queue": {"GET": {"-": web("302:login 403      403      200      200      403")}},
    # Poll regions, htmx-only: the sweep's plain GET is sent on to the page they belong to.
    "provider.queue_items": {
        "GET": {"-": web("302:login 403   403  302:/provider/ 302:/provider/ 403")}
    },
    "provider.history": {"GET": {"-": web("302:login 403      403      200      200      403")}},
    "provider.booking_detail": {
        "GET": {
            "A": web("302:login 403      403      200      403      403"),
            "B": web("302:login 403      403      403      200      403"),
            "missing": web("302:login 403      403      404      404      403"),
        }
    },
    "admin.board": {"GET": {"-": web("302:login 403      403      403      403      200")}},
    "admin.board_regions": {
        "GET": {"-": web("302:login 403    403      403      403  302:/admin/")}
    },
    "admin.archive": {"GET": {"-": web("302:login 403      403      403      403      200")}},
    "admin.provider_detail": {
        "GET": {
            "P": web("302:login 403      403      403      403      200"),
            "Q": web("302:login 403      403      403      403      200"),
            "missing": web("302:login 403      403      403      403      404"),
        }
    },
    # Automation left as it is (running): nothing changes.
    "admin.set_automation": {"POST": {"-": web("401 403 403 403 403 200")}},
    # Duty and services sent as they are (on duty; no services): nothing changes.
    "provider.set_duty": {"POST": {"-": web("401       403      403      200      200      403")}},
    "admin.provider_duty": {
        "POST": {
            "P": web("401       403      403      403      403      200"),
            "Q": web("401       403      403      403      403      200"),
            "missing": web("401       403      403      403      403      404"),
        }
    },
    # Pat is user 3 and Quinn user 4 (the cast's order).
    "admin.provider_services": {
        "POST": {
            "P": web("401       403      403      403      403      303:/admin/providers/3"),
            "Q": web("401       403      403      403      403      303:/admin/providers/4"),
            "missing": web("401       403      403      403      403      404"),
        }
    },
    # Live pages' doorbells: refused as plain answers (an EventSource cannot follow a redirect
    # to a login page). The test client is no gevent worker, so a stream answers 204 (the
    # browser stops asking); a poll from the start of the logs hears of everyone's own.
    "live.board": {"GET": {"-": web("401       403      403      403      403      204")}},
    "live.board_poll": {"GET": {"-": web("401       403      403      403      403      200")}},
    "live.queue": {"GET": {"-": web("401       403      403      204      204      403")}},
    "live.queue_poll": {"GET": {"-": web("401       403      403      200      200      403")}},
    "live.bookings": {"GET": {"-": web("401       204      204      403      403      403")}},
    "live.bookings_poll": {"GET": {"-": web("401       200      200      403      403      403")}},
    "admin.archive_csv": {"GET": {"-": web("302:login 403      403      403      403      200")}},
    "admin.reports": {"GET": {"-": web("302:login 403      403      403      403      200")}},
    "admin.booking_timeline_csv": {
        "GET": {
            "A": web("302:login 403      403      403      403      200"),
            "B": web("302:login 403      403      403      403      200"),
            "missing": web("302:login 403      403      403      403      404"),
        }
    },
    "admin.booking_detail": {
        "GET": {
            "A": web("302:login 403      403      403      403      200"),
            "B": web("302:login 403      403      403      403      200"),
            "missing": web("302:login 403      403      403      403      404"),
        }
    },
    # Page booking actions (htmx): anon 401 + HX-Redirect; another role: the gate's 403.
    #                                               anon owner othr prov oprv admin
    "customer.booking_action": page_action_route(
        {"cancel": (web("401  200  403  403  403  403"), web("401  403  200  403  403  403"))},
        missing=web("401  404  404  403  403  403"),
        no_reason=web("401  400  400  403  403  403"),
    ),
    "provider.booking_action": page_action_route(
        dict.fromkeys(
            ("accept", "reject", "complete"),
            (web("401  403  403  200  403  403"), web("401  403  403  403  200  403")),
        ),
        missing=web("401  403  403  404  404  403"),
        no_reason=web("401  403  403  400  400  403"),
    ),
    "admin.booking_action": page_action_route(
        dict.fromkeys(
            ("assign", "force-assign", "retry", "force-cancel", "mark-failed"),
            (web("401  403  403  403  403  200"),) * 2,
        ),
        missing=web("401  403  403  403  403  404"),
        no_reason=web("401  403  403  403  403  400"),
    ),
    # An action's form (GET), opened on the shared bookings, which are ASSIGNED.
    #                                                   anon   owner othr prov oprv admin
    "customer.booking_action_form": page_action_form_route(
        {
            "cancel": (
                web("302:login 200  403  403  403  403"),
                web("302:login 403  200  403  403  403"),
            )
        },
        missing=web("302:login 404  404  403  403  403"),
    ),
    "provider.booking_action_form": page_action_form_route(
        {
            **dict.fromkeys(
                ("accept", "reject"),
                (
                    web("302:login 403  403  200  403  403"),
                    web("302:login 403  403  403  200  403"),
                ),
            ),
            "complete": (
                web("302:login 403  403  400  403  403"),
                web("302:login 403  403  403  400  403"),
            ),
        },
        missing=web("302:login 403  403  404  404  403"),
    ),
    "admin.booking_action_form": page_action_form_route(
        {
            **dict.fromkeys(
                ("force-assign", "force-cancel", "mark-failed"),
                (web("302:login 403  403  403  403  200"),) * 2,
            ),
            **dict.fromkeys(("assign", "retry"), (web("302:login 403  403  403  403  400"),) * 2),
        },
        missing=web("302:login 403  403  403  403  404"),
    ),
    # A card's timeline, fetched when it is opened.
    "customer.booking_timeline": {
        "GET": {
            "A": web("302:login 200      403      403      403      403"),
            "B": web("302:login 403      200      403      403      403"),
            "missing": web("302:login 404      404      403      403      403"),
        }
    },
    "provider.booking_timeline": {
        "GET": {
            "A": web("302:login 403      403      200      403      403"),
            "B": web("302:login 403      403      403      200      403"),
            "missing": web("302:login 403      403      404      404      403"),
        }
    },
    "admin.booking_timeline": {
        "GET": {
            "A": web("302:login 403      403      403      403      200"),
            "B": web("302:login 403      403      403      403      200"),
            "missing": web("302:login 403      403      403      403      404"),
        }
    },
    "admin.lane": {"GET": {"-": web("302:login 403      403      403      403      200")}},
}
# fmt: on
for _name, _rows in API_ACTION_ROWS.items():
    TABLE[f"api.action_{Action(_name).name.lower()}"] = {
        "POST": action_cases(
            {_name: _rows}, missing=API_ACTION_MISSING, extra=API_ACTION_EXTRA.get(_name)
        )
    }

# What each POST route does when it succeeds (how its effect on the database is checked).
POST_KIND = {
    "api.create_booking": "create",
    "customer.new_booking": "create",
    **{f"api.action_{action.name.lower()}": "action" for action in BOOKING_ACTIONS},
    "api.admin_cancel": "action",
    "customer.booking_action": "action",
    "provider.booking_action": "action",
    "admin.booking_action": "action",
    "auth.login": "login",
    "auth.logout": "logout",
    "account.profile": "own-account",
    "api.provider_duty": "unchanged",
    "provider.set_duty": "unchanged",
    "admin.set_automation": "unchanged",
    "admin.provider_duty": "unchanged",
    "admin.provider_services": "unchanged",
}
RUN_LAST = ("auth.login", "auth.logout")  # they change sessions: after everything else

# A status each action is allowed from, with the variant's provider involved where possible.
NATURAL: dict[Action, Status] = {
    Action.CANCEL: Status.ASSIGNED,
    Action.ASSIGN: Status.PENDING,
    Action.FORCE_ASSIGN: Status.ASSIGNED,
    Action.ACCEPT: Status.ASSIGNED,
    Action.REJECT: Status.ASSIGNED,
    Action.COMPLETE: Status.IN_PROGRESS,
    Action.RETRY: Status.REJECTED,
    Action.FORCE_CANCEL: Status.IN_PROGRESS,
    Action.MARK_FAILED: Status.ASSIGNED,
}
VARIANT_PEOPLE = {"A": ("owner", "provider"), "B": ("other_customer", "other_provider")}
# Whose bookings each actor must never be shown.
FORBIDDEN = {
    "anonymous": ("A", "B"),
    "admin_session": ("A", "B"),
    "owner": ("B",),
    "other_customer": ("A",),
    "provider": ("B",),
    "other_provider": ("A",),
    "admin": (),
    "system": (),
}
MISSING_ID = 999_999
IGNORED_COLUMNS = {("api_tokens", "last_used_at")}  # bookkeeping a GET may legitimately write
CELL_FLOOR = 900


def marker(variant: str) -> str:
    return f"Secret-{variant}-"


# ================================================================================= the world


@dataclass
class World:
    app: object
    people: object
    clients: dict  # actor -> web client (anonymous included)
    csrf: dict  # actor -> CSRF token of that client's session
    tokens: dict  # actor -> bearer token
    api_client: object
    shared: dict  # "A"/"B" -> booking id
    pool: dict = field(default_factory=dict)  # (variant, action) -> booking id
    bench: int | None = None  # a provider to force-assign to
    spares: int = 0
    serial: int = 0

    def user_id(self, actor: str) -> int:
        return self.people.by_name(actor).user_id

    def new_booking(self, variant: str, status: Status) -> int:
        customer, provider = (self.people.by_name(k) for k in VARIANT_PEOPLE[variant])
        admin = self.people.admin
        self.serial += 1
        booking = bookings.create_booking(
            customer, service=SERVICES[0], address=f"{marker(variant)}{self.serial} Road"
        )
        if status is not Status.PENDING:
            bookings.perform_action(
                admin, booking.id, Action.FORCE_ASSIGN, provider_id=provider.user_id
            )
        if status is Status.IN_PROGRESS:
            bookings.perform_action(provider, booking.id, Action.ACCEPT)
        if status is Status.REJECTED:
            bookings.perform_action(provider, booking.id, Action.REJECT, reason="sweep")
        return booking.id

    def booking_for(self, variant: str, action: Action | None) -> int:
        if action not in NATURAL:  # a GET, or an action name no status allows
            return self.shared[variant]
        if (variant, action) not in self.pool:
            self.pool[(variant, action)] = self.new_booking(variant, NATURAL[action])
        return self.pool[(variant, action)]

    def free_provider(self) -> int:
        """A provider with no active booking (assign checks availability)."""
        db.session.rollback()
        free = (
            db.session.execute(
                sa.text(
                    "SELECT p.id FROM providers p WHERE p.active AND NOT EXISTS "
                    "(SELECT 1 FROM bookings b WHERE b.provider_id = p.id "
                    "AND b.status IN ('ASSIGNED', 'IN_PROGRESS')) "
                    "ORDER BY p.id"
                )
            )
            .scalars()
            .first()
        )
        db.session.rollback()
        if free is not None:
            return free
        self.spares += 1
        user, _ = accounts.create_user(
            f"spare{self.spares}@example.com", "Spare Provider", Role.PROVIDER
        )
        return user.id

    def bench_provider(self) -> int:
        if self.bench is None:
            user, _ = accounts.create_user("bench@example.com", "Bench Provider", Role.PROVIDER)
            self.bench = user.id
        return self.bench


@functools.cache
def _digest_queries() -> list[tuple[str, sa.Select, list[str], list[int]]]:
    """Per table: its name, the SELECT of its compared columns, their names, where the primary
    key columns are among them."""
    queries = []
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if (table.name, c.name) not in IGNORED_COLUMNS]
        names = [c.name for c in columns]
        pk = [names.index(c.name) for c in table.primary_key.columns]
        queries.append((table.name, sa.select(*columns), names, pk))
    return queries


def digest() -> dict[str, dict[tuple, dict]]:
    """Every row of every table (primary key -> columns), read fresh. Plain rows on the
    session's connection: it runs twice per POST cell, and ORM-level results cost half the
    sweep's time."""
    db.session.rollback()
    connection = db.session.connection()
    state = {}
    for name, select, names, pk in _digest_queries():
        state[name] = {
            tuple(row[i] for i in pk): dict(zip(names, row, strict=True))
            for row in connection.execute(select)
        }
    db.session.rollback()
    return state


def without_booking(state: dict, booking_id: int) -> dict:
    """The state but the booking, its events, and when providers were last idle (an action
    that ends a provider's work on the booking moves it: the action's own effect)."""
    state = dict(state)
    state["providers"] = {k: {**v, "idle_since": None} for k, v in state["providers"].items()}
    state["bookings"] = {k: v for k, v in state["bookings"].items() if v["id"] != booking_id}
    state["booking_events"] = {
        k: v for k, v in state["booking_events"].items() if v["booking_id"] != booking_id
    }
    return state


def state_diff(before: dict, after: dict) -> str:
    changed = []
    for name, old in before.items():
        new = after[name]
        if old != new:
            added, gone = len(set(new) - set(old)), len(set(old) - set(new))
            edited = [k for k in old if k in new and old[k] != new[k]]
            changed.append(f"{name}: +{added} -{gone} ~{edited[:5]}")
    return "; ".join(changed)


# ================================================================================= one cell


def parse_case(case: str) -> tuple[Action | str | None, str, set[str]]:
    words = case.split()
    modifiers = {w for w in words if w == "no-reason"}
    words = [w for w in words if w not in modifiers]
    target = words[-1]
    action = None
    if len(words) == 2:
        try:
            action = Action(words[0])
        except ValueError:
            action = words[0]  # a made-up action name
    return action, target, modifiers


# Regions a page polls: a login's `next` names their page instead.
FRAGMENT_PAGES = {
    "/provider/queue": "/provider/",
    "/admin/board": "/admin/",
    "/customer/bookings": "/customer/",
}


def check_answer(response, expected: str, actor: str, path: str, method: str) -> list[str]:
    problems = []
    status, _, where = expected.partition(":")
    if response.status_code != int(status):
        body = response.get_data(as_text=True)
        return [f"status {response.status_code}, expected {expected} ({body[:160]!r})"]
    if where:
        location = urlsplit(response.headers.get("Location", ""))
        wanted = {"login": "/login", "home": HOME.get(actor)}.get(where, where)
        if location.path != wanted:
            problems.append(f"redirect to {location.path}, expected {wanted}")
        next_param = parse_qs(location.query).get("next")
        page = FRAGMENT_PAGES.get(path, path)
        if next_param and next_param != [page]:
            problems.append(f"next={next_param}, expected {page}")
    if response.status_code == 401:
        if path.startswith("/api/"):
            if "WWW-Authenticate" not in response.headers:
                problems.append("401 without WWW-Authenticate")
        elif method == "POST":  # an action from a page without a session: told in its card
            if "log in again" not in response.get_data(as_text=True):
                problems.append("htmx action 401 without the session-ended message")
        elif "HX-Redirect" not in response.headers:
            problems.append("htmx 401 without HX-Redirect")
    body = response.get_data(as_text=True)
    for variant in FORBIDDEN[actor]:
        if marker(variant) in body:
            problems.append(f"LEAK: shows a booking of {VARIANT_PEOPLE[variant][0]}'s ({variant})")
    return problems


def run_cell(
    world: World, endpoint: str, rule, method: str, case: str, actor: str, expected: str
) -> list[str]:
    app, is_api = world.app, endpoint.startswith("api.")
    action, target, modifiers = parse_case(case)
    kind = POST_KIND.get(endpoint) if method in ("POST", "PUT") else None
    real_action = action if isinstance(action, Action) else None

    # ---- the URL: the rule's own arguments, filled from the case
    values = {}
    booking_id = None
    if "booking_id" in rule.arguments:
        if target == "missing":
            booking_id = MISSING_ID
        else:
            booking_id = world.booking_for(target, real_action if method == "POST" else None)
        values["booking_id"] = booking_id
    if "provider_id" in rule.arguments:
        values["provider_id"] = {
            "P": world.user_id("provider"),
            "Q": world.user_id("other_provider"),
            "missing": MISSING_ID,
        }[target]
    if "lane_name" in rule.arguments:
        values["lane_name"] = "assigned"  # where the shared bookings are
    for name in ("action", "action_name"):
        if name in rule.arguments:
            values[name] = action.value if isinstance(action, Action) else action
    path = app.url_map.bind("localhost").build(endpoint, values, method=method)

    # ---- the client and the body
    headers, kwargs = {}, {}
    if is_api:
        client = world.api_client
        if actor == "admin_session":
            client = world.clients["admin"]
        elif actor != "anonymous":
            headers["Authorization"] = f"Bearer {world.tokens[actor]}"
    elif actor == "anonymous" and kind in ("login", "logout"):
        client = world.app.test_client()  # its own cookie jar: logging in must not stick
    else:
        client = world.clients[actor]
    csrf = None
    if not is_api:
        csrf = (
            world.csrf[actor]
            if client is world.clients[actor]
            else Page(client.get("/login")).csrf_token
        )

    version = None
    if booking_id not in (None, MISSING_ID):
        db.session.rollback()
        version = db.session.scalar(
            sa.text("SELECT version FROM bookings WHERE id = :i"), {"i": booking_id}
        )
        db.session.rollback()
    created_marker = None
    if kind == "action":
        fields = {"reason": "authorization sweep"}
        if "no-reason" in modifiers:
            fields = {}
        if version is not None:
            fields["version"] = version
        if real_action is not None and LIFECYCLE[real_action].takes_provider:
            fields["provider_id"] = (
                world.free_provider() if real_action is Action.ASSIGN else world.bench_provider()
            )
        if is_api:
            kwargs["json"] = fields
        else:
            kwargs["data"] = {**fields, "confirm": "y", "csrf_token": csrf}
            headers.update(HTMX)
    elif kind == "create":
        variant = {"owner": "A", "other_customer": "B"}.get(actor, "X")
        world.serial += 1
        created_marker = f"{marker(variant)}{world.serial} New Road"
        if is_api:
            kwargs["json"] = {"service": SERVICES[0], "address": created_marker}
        else:
            day = date.today() + timedelta(days=3)
            kwargs["data"] = {
                "service": SERVICES[0],
                "address": created_marker,
                "day": day.isoformat(),
                "slot": "other",
                "start": "09:00",
                "end": "11:00",
                "notes": "",
                "csrf_token": csrf,
            }
    elif kind == "login":
        kwargs["data"] = {"email": PERSON["owner"].email, "password": PASSWORD, "csrf_token": csrf}
    elif kind == "logout":
        kwargs["data"] = {"csrf_token": csrf}
    elif kind == "own-account":
        kwargs["data"] = {"time_zone": "Europe/Berlin", "csrf_token": csrf}
    elif kind == "unchanged":  # as things are: on duty, no services, automation running
        if is_api:
            kwargs["json"] = {"on_duty": True}
        else:
            kwargs["data"] = {"on_duty": "on", "paused": "0", "csrf_token": csrf}
            headers.update(HTMX)
    elif method == "POST":
        return [f"no way to build a POST to {endpoint}: add it to POST_KIND"]

    before = digest() if method in ("POST", "PUT") else None
    response = client.open(path, method=method, headers=headers, **kwargs)
    problems = check_answer(response, expected, actor, path, method)
    if method not in ("POST", "PUT") or problems:
        return [f"{method} {path} as {actor} [{case}]: {p}" for p in problems]

    # ---- the effect on the database
    after = digest()
    succeeded = {
        "action": expected.startswith("2"),
        "create": expected in ("201", "303:home"),
        "login": False,
        "logout": actor != "anonymous",
        "own-account": actor != "anonymous",
        "unchanged": False,
    }[kind]
    if not succeeded:
        if before != after:
            problems.append(f"a refused request changed the database: {state_diff(before, after)}")
    elif kind == "action":
        old, new = before["bookings"][(booking_id,)], after["bookings"].get((booking_id,))
        if (
            new is None
            or new["status"] != LIFECYCLE[real_action].target
            or new["version"] != old["version"] + 1
        ):
            problems.append(f"booking {booking_id} not moved by {real_action}: {old} -> {new}")
        if without_booking(before, booking_id) != without_booking(after, booking_id):
            problems.append(
                "an action changed more than its booking: "
                + state_diff(
                    without_booking(before, booking_id), without_booking(after, booking_id)
                )
            )
        world.pool.pop((target, real_action), None)  # acted on: the next cell gets a fresh one
    elif kind == "create":
        new = [r for k, r in after["bookings"].items() if k not in before["bookings"]]
        if (
            len(new) != 1
            or new[0]["address"] != created_marker
            or new[0]["customer_id"] != world.user_id(actor)
        ):
            problems.append(f"create did not make one booking of {actor}: {new}")
        elif without_booking(before, new[0]["id"]) != without_booking(after, new[0]["id"]):
            problems.append("create changed more than its booking")
    elif kind == "own-account":
        user_id = world.user_id(actor)
        old, new = before["users"][(user_id,)], after["users"][(user_id,)]
        if new["time_zone"] != "Europe/Berlin":
            problems.append("the account page did not set the person's own zone")
        after["users"][(user_id,)] = {**new, "time_zone": old["time_zone"]}
        if before != after:
            problems.append(f"the account page changed more: {state_diff(before, after)}")
    elif kind == "logout":
        user_id = world.user_id(actor)
        old, new = before["users"][(user_id,)], after["users"][(user_id,)]
        if new["session_version"] != old["session_version"] + 1:
            problems.append("logout did not end the account's sessions")
        after["users"][(user_id,)] = old
        if before != after:
            problems.append(f"logout changed more: {state_diff(before, after)}")
    return [f"{method} {path} as {actor} [{case}]: {p}" for p in problems]


# ================================================================================= the sweep


def route_cells(app):
    """(endpoint, rule, method) for every rule × method of the URL map (HEAD, OPTIONS, static
    skipped); and the routes the table does not classify."""
    cells, unclassified = [], []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method not in TABLE.get(rule.endpoint, {}):
                unclassified.append(f"{method} {rule.rule} ({rule.endpoint})")
            else:
                cells.append((rule.endpoint, rule, method))
    return cells, unclassified


def test_every_route_is_classified_and_every_id_route_tries_other_peoples_objects(app):
    cells, unclassified = route_cells(app)
    assert not unclassified, (
        "routes without a row in the authorization table (classify them in TABLE): "
        + ", ".join(unclassified)
    )
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert not set(TABLE) - endpoints, (
        f"rows for routes that no longer exist: {set(TABLE) - endpoints}"
    )
    for endpoint, rule, method in cells:
        cases = TABLE[endpoint][method]
        targets = {parse_case(c)[1] for c in cases}
        if "booking_id" in rule.arguments:
            assert {"A", "B", "missing"} <= targets, (endpoint, targets)
        if "provider_id" in rule.arguments:
            assert {"P", "Q", "missing"} <= targets, (endpoint, targets)
        if {"action", "action_name"} & set(rule.arguments):
            tried = {parse_case(c)[0] for c in cases}
            assert set(BOOKING_ACTIONS) <= tried, (
                f"{endpoint}: no rows for {set(BOOKING_ACTIONS) - tried}"
            )
        if method == "POST":
            assert endpoint in POST_KIND, f"{endpoint}: say in POST_KIND how a success shows"


def test_authorization_sweep(app, people, login):
    started = time.perf_counter()
    cells, unclassified = route_cells(app)
    assert not unclassified, f"unclassified routes: {unclassified}"

    clients = {who: login(who) for who in WEB_ACTORS if who != "anonymous"}
    clients["anonymous"] = app.test_client()
    csrf = {"anonymous": Page(clients["anonymous"].get("/login")).csrf_token}
    for who, client in clients.items():
        if who != "anonymous":
            csrf[who] = Page(client.get(HOME[who])).csrf_token
    tokens = {who: accounts.issue_token(PERSON[who].email) for who in PERSON}
    world = World(app, people, clients, csrf, tokens, app.test_client(), shared={})
    world.shared = {v: world.new_booking(v, Status.ASSIGNED) for v in ("A", "B")}

    def cells_for(method):
        for endpoint, rule, m in cells:
            if m != method:
                continue
            actors = API_ACTORS if endpoint.startswith("api.") else WEB_ACTORS
            for case, row in TABLE[endpoint][m].items():
                assert set(row) == set(actors), (endpoint, case)
                for actor in actors:
                    yield endpoint, rule, m, case, actor, row[actor]

    problems, count = [], 0

    # ---- every GET: right answers, and nothing written anywhere
    before = digest()
    for endpoint, rule, method, case, actor, expected in cells_for("GET"):
        problems += run_cell(world, endpoint, rule, method, case, actor, expected)
        count += 1
    after = digest()
    assert before == after, f"GET requests changed the database: {state_diff(before, after)}"
    # and a few GETs with the positive side: the object asked for is in the answer
    for endpoint, target, actor in (
        ("api.get_booking", "A", "owner"),
        ("api.provider_bookings", "P", "provider"),
        ("customer.booking_detail", "B", "other_customer"),
    ):
        booking_id = world.shared[{"P": "A"}.get(target, target)]
        value = (
            {"provider_id": world.user_id("provider")}
            if target == "P"
            else {"booking_id": booking_id}
        )
        path = app.url_map.bind("localhost").build(endpoint, value)
        if endpoint.startswith("api."):
            response = world.api_client.get(
                path, headers={"Authorization": f"Bearer {tokens[actor]}"}
            )
            ids = [
                b["id"] for b in (json.loads(response.data) if target == "P" else [response.json])
            ]
            assert ids == [booking_id], (endpoint, ids)
        else:
            assert f"{marker(target)}" in clients[actor].get(path).get_data(as_text=True)

    # ---- every POST: right answers; refusals change nothing; successes change their booking
    posts = sorted(
        cells_for("POST"),  # stable: url-map order, session-changing routes last
        key=lambda cell: RUN_LAST.index(cell[0]) + 1 if cell[0] in RUN_LAST else 0,
    )
    for endpoint, rule, method, case, actor, expected in posts:
        problems += run_cell(world, endpoint, rule, method, case, actor, expected)
        count += 1

    elapsed = time.perf_counter() - started
    print(
        f"\nauthorization sweep: {count} cells "
        f"({app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}, {elapsed:.1f} s)"
    )
    assert not problems, f"{len(problems)} cells disagree with the table:\n" + "\n".join(
        problems[:60]
    )
    assert count >= CELL_FLOOR, count


# ============================================================ what of a timeline each one reads

# Reasons only dispatchers may read, each a text no page would otherwise contain.
INTERNAL_REASONS = {
    "rejection": "Marker-rejection-note-I-only-do-windows",
    "force-assign": "Marker-force-assign-reason-VIP",
    "mark-failed": "Marker-mark-failed-reason-no-show",
    "force-cancel": "Marker-dispatcher-cancel-reason-duplicate",
}
OWN_CANCEL_REASON = "Marker-customer-cancel-reason-moved-house"
# What neither a customer nor a provider may read anywhere: the internal reasons, the forced
# flag, actor roles (as the timeline and the API name them), a dispatcher's or the other
# provider's name.
NEVER_SHOWN_BELOW_DISPATCH = (
    *INTERNAL_REASONS.values(),
    "forced",
    "actor_role",
    '"admin"',
    '"system"',
    "(admin,",
    "(system,",
    "(provider,",
    "(customer,",
    PERSON["admin"].name,
    PERSON["other_provider"].name,
)


def history_bookings(people) -> dict[str, int]:
    """The owner's bookings with internal reasons in their histories: `assigned` is Pat's job now
    after Quinn rejected it with a note and a dispatcher marked it failed and force-assigned it
    with reasons; `force-cancelled` a dispatcher cancelled with a reason; `cancelled` the owner
    cancelled with their own reason."""
    owner, admin = people.owner, people.admin
    pat, quinn = people.provider, people.other_provider

    def new() -> int:
        return bookings.create_booking(owner, service=SERVICES[0], address="1 History Lane").id

    assigned, force_cancelled, cancelled = new(), new(), new()
    reasons = INTERNAL_REASONS
    for actor, action, provider, reason in (
        (admin, Action.FORCE_ASSIGN, quinn, reasons["force-assign"]),
        (quinn, Action.REJECT, None, reasons["rejection"]),
        (admin, Action.MARK_FAILED, None, reasons["mark-failed"]),
        (admin, Action.FORCE_ASSIGN, pat, reasons["force-assign"]),
    ):
        provider_id = provider.user_id if provider else None
        bookings.perform_action(actor, assigned, action, provider_id=provider_id, reason=reason)
    bookings.perform_action(
        admin, force_cancelled, Action.FORCE_ASSIGN, provider_id=pat.user_id, reason="x"
    )
    bookings.perform_action(
        admin, force_cancelled, Action.FORCE_CANCEL, reason=reasons["force-cancel"]
    )
    bookings.perform_action(owner, cancelled, Action.CANCEL, reason=OWN_CANCEL_REASON)
    return {"assigned": assigned, "force-cancelled": force_cancelled, "cancelled": cancelled}


def readable_answers(app, who: str, client, token: str, booking_ids, provider_id: int):
    """Every GET the URL map has for this person's blueprint and the API, for each booking (and
    each action form, and Pat's queue), pages both as a browser and as htmx asks: path -> body."""
    blueprint = {"owner": "customer.", "provider": "provider."}[who]
    urls = app.url_map.bind("localhost")
    answers = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.endpoint.startswith((blueprint, "api.")):
            continue
        if not rule.arguments <= {"booking_id", "action_name", "provider_id"}:
            continue
        names = [a.value for a in BOOKING_ACTIONS] if "action_name" in rule.arguments else [None]
        for booking_id in booking_ids:
            for name in names:
                values = {"booking_id": booking_id, "action_name": name}
                values["provider_id"] = provider_id
                values = {k: v for k, v in values.items() if k in rule.arguments}
                path = urls.build(rule.endpoint, values)
                if rule.endpoint.startswith("api."):
                    auth = {"Authorization": f"Bearer {token}"}
                    answers[path] = client.get(path, headers=auth).get_data(as_text=True)
                else:
                    answers[path] = client.get(path).get_data(as_text=True)
                    answers[f"{path} (htmx)"] = client.get(path, headers=HTMX).get_data(
                        as_text=True
                    )
    return answers


def leaks(answers: dict[str, str]) -> list[str]:
    return [
        f"{path}: shows {text!r}"
        for path, body in answers.items()
        for text in NEVER_SHOWN_BELOW_DISPATCH
        if text.lower() in body.lower()
    ]


def test_customers_and_providers_never_read_internal_reasons_forced_flags_or_roles(
    app, people, login
):
    ids = history_bookings(people)
    pat = people.provider.user_id
    tokens = {who: accounts.issue_token(PERSON[who].email) for who in ("owner", "provider")}
    api_client = app.test_client()

    customer = readable_answers(app, "owner", login("owner"), tokens["owner"], ids.values(), pat)
    assert len(customer) > 40  # every customer page and API read, for each booking
    assert not leaks(customer), "\n".join(leaks(customer))
    # ... and the customer does read what happened, in their words, and their own reason
    detail = customer[f"/customer/bookings/{ids['assigned']}"]
    for words in ("Booking requested", "Looking for another provider", "Provider assigned"):
        assert words in detail
    assert OWN_CANCEL_REASON in customer[f"/customer/bookings/{ids['cancelled']}"]
    own_events = api_client.get(
        f"/api/bookings/{ids['cancelled']}/events",
        headers={"Authorization": f"Bearer {tokens['owner']}"},
    ).get_json()
    assert [e["reason"] for e in own_events] == [None, OWN_CANCEL_REASON]

    provider = readable_answers(
        app, "provider", login("provider"), tokens["provider"], ids.values(), pat
    )
    assert not leaks(provider), "\n".join(leaks(provider))
    assert "by dispatch" in provider[f"/provider/bookings/{ids['assigned']}/timeline (htmx)"]
