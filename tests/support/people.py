"""The people of the tests, in one table: the service and API tests' `cast` (actors with API
tokens), the page tests' `people` (the same people with passwords, tests.support.pages) and the
browser tests' accounts (both) are all made from PEOPLE. Also the people a newcomer is told to
log in as: the README's table of the demo's accounts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops_portal.domain.lifecycle import Actor, Role, Source


@dataclass(frozen=True)
class Person:
    kind: str  # what the test calls them: an attribute of Cast, a key of tokens
    email: str
    name: str
    role: Role


# Two customers, two providers, an admin and a system account (automation, which has no
# password). Only Oscar's email has an underscore: the archive search tests rely on it.
PEOPLE = (
    Person("owner", "olive@example.com", "Olive Owner", Role.CUSTOMER),
    Person("other_customer", "oscar_other@example.com", "Oscar Other", Role.CUSTOMER),
    Person("provider", "pat@example.com", "Pat Provider", Role.PROVIDER),
    Person("other_provider", "quinn@example.com", "Quinn Provider", Role.PROVIDER),
    Person("admin", "ada@example.com", "Ada Admin", Role.ADMIN),
    Person("system", "robot@example.com", "Robot", Role.SYSTEM),
)
PERSON = {person.kind: person for person in PEOPLE}
ACTOR_KINDS = tuple(PERSON)
PASSWORD = "correct horse battery staple"


@dataclass
class Cast:
    """The people of a lifecycle test: two customers, two providers, an admin, a system account."""

    owner: Actor
    other_customer: Actor
    provider: Actor
    other_provider: Actor
    admin: Actor
    system: Actor
    tokens: dict[str, str]

    def by_name(self, name: str) -> Actor:
        return getattr(self, name)


def create_accounts(
    people: Iterable[Person], *, password: str | None = None, with_tokens: bool = False
) -> tuple[dict[str, Actor], dict[str, str]]:
    """Accounts for `people` in one transaction: their actors and (with_tokens) API tokens, by
    kind. Everyone but a SYSTEM account gets `password`."""
    from ops_portal.services import accounts

    people = list(people)
    created = accounts.create_users(
        [
            accounts.validate_new_user(
                p.email, p.name, p.role, None if p.role is Role.SYSTEM else password
            )
            for p in people
        ],
        with_tokens=with_tokens,
    )
    actors, tokens = {}, {}
    for person, (user, token) in zip(people, created, strict=True):
        actors[person.kind] = Actor(person.role, user.id, Source.API)
        if with_tokens:
            tokens[person.kind] = token
    return actors, tokens


def create_cast(*, password: str | None = None, with_tokens: bool = True) -> Cast:
    """Everyone in PEOPLE, in the app context's database."""
    actors, tokens = create_accounts(PEOPLE, password=password, with_tokens=with_tokens)
    return Cast(**actors, tokens=tokens)


@pytest.fixture
def cast(app) -> Cast:
    """Everyone in PEOPLE, with API tokens."""
    return create_cast()


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_demo_people() -> dict[str, str]:
    """The README's table of who to log in as in the demo: what each does ("dispatcher") ->
    the email it names for them."""
    rows = [
        line.split("|")[1:3] for line in README.read_text().splitlines() if line.startswith("| ")
    ]
    return {cells[0].strip(): cells[1].split("`")[1] for cells in rows if "@" in cells[1]}


# A row of the demo's printed table: what they do, email, name, API token.
_PRINTED_ACCOUNT = re.compile(r"^ +(\S+) +(\S+@\S+) +(.+?) +(\S+)$")


@dataclass
class PrintedDemo:
    """What the demo command printed for a person to read."""

    login_url: str
    password: str
    accounts: dict[str, tuple[str, str, str]]  # email -> (what they do, name, API token)


def read_printed_demo(printed: str) -> PrintedDemo:
    """The demo command's output as a person reads it: where to go, the password, and the
    table of accounts (every line naming an email is a row of it)."""
    login_url = re.search(r"^Open (\S+) and log in", printed, re.MULTILINE)
    password = re.search(r"^Password \(.*\): (\S+)$", printed, re.MULTILINE)
    assert login_url and password, printed
    rows = [_PRINTED_ACCOUNT.match(line) for line in printed.splitlines() if "@" in line]
    assert rows and all(rows), printed
    return PrintedDemo(
        login_url.group(1),
        password.group(1),
        {row.group(2): (row.group(1), row.group(3), row.group(4)) for row in rows},
    )
