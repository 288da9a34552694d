"""The operations command line (README, docs/operations.md), run through Flask's CLI runner against
the test database (SQLite and PostgreSQL): users create / import / token, and demo."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Actor, Role, Status
from ops_portal.extensions import db
from ops_portal.models import ApiToken, Booking, BookingEvent, Customer, Provider, User
from ops_portal.services import accounts, demo, skills
from tests.support.builders import assert_event_chain, booking_in, event_values
from tests.support.people import README, read_printed_demo, readme_demo_people


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(args=list(args))
        if ok:
            assert result.exit_code == 0, result.output
            assert result.exception is None, result.exception
        else:
            assert result.exit_code != 0, result.output
            assert "Traceback" not in result.output
        return result

    return run


def json_lines(result) -> list[dict]:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------------ users create


@pytest.mark.parametrize("role", ["CUSTOMER", "PROVIDER", "ADMIN", "SYSTEM"])
def test_users_create_prints_one_json_line_with_id_email_and_role(cli, role):
    result = cli(
        "users", "create", "New.Person@Example.com", "--name", "New Person", "--role", role
    )
    [line] = json_lines(result)
    assert set(line) == {"id", "email", "role"}
    assert line["email"] == "new.person@example.com"
    assert line["role"] == role
    user = db.session.get(User, line["id"])
    assert (user.email, user.name, user.role) == ("new.person@example.com", "New Person", role)
    assert count(Customer) == (1 if role == "CUSTOMER" else 0)
    assert count(Provider) == (1 if role == "PROVIDER" else 0)
    assert count(ApiToken) == 0


def test_users_create_accepts_a_lowercase_role_and_a_password(cli):
    [line] = json_lines(
        cli(
            "users",
            "create",
            "ann@example.com",
            "--name",
            "Ann",
            "--role",
            "admin",
            "--password",
            "correct horse battery",
        )
    )
    assert line["role"] == "ADMIN"
    user = accounts.user_by_email("ann@example.com")
    assert accounts.check_password(user, "correct horse battery")
    assert not accounts.check_password(user, "wrong password")


def test_a_created_customers_token_works_and_its_id_is_the_apis_customer_id(cli, client):
    [line] = json_lines(
        cli(
            "users",
            "create",
            "cust@example.com",
            "--name",
            "Cara Customer",
            "--role",
            "CUSTOMER",
            "--token",
        )
    )
    assert set(line) == {"id", "email", "role", "token"}
    response = client.post("/api/bookings/", json={}, headers=bearer(line["token"]))
    assert response.status_code == 201
    data = response.get_json()
    assert data["customer_id"] == line["id"]
    assert data["customer_name"] == "Cara Customer"
    assert event_values(data["id"], BookingEvent.actor_id)[0] == line["id"]


def test_a_created_providers_token_works_and_its_id_is_the_apis_provider_id(cli, client, cast):
    [line] = json_lines(
        cli(
            "users",
            "create",
            "prov@example.com",
            "--name",
            "Pia Provider",
            "--role",
            "PROVIDER",
            "--token",
        )
    )
    booking = booking_in(cast, Status.PENDING)
    assigned = client.post(
        f"/api/bookings/{booking.id}/assign",
        json={"provider_id": line["id"]},
        headers=bearer(cast.tokens["admin"]),
    )
    assert assigned.status_code == 200
    queue = client.get(f"/api/providers/{line['id']}/bookings", headers=bearer(line["token"]))
    assert queue.status_code == 200
    assert [b["id"] for b in queue.get_json()] == [booking.id]
    accepted = client.post(
        f"/api/bookings/{booking.id}/accept",
        json={"actor_id": line["id"]},
        headers=bearer(line["token"]),
    )
    assert accepted.status_code == 200
    data = accepted.get_json()
    assert (data["status"], data["provider_id"]) == ("IN_PROGRESS", line["id"])
    assert data["events"][-1]["by"] == "you"
    assert event_values(booking.id, BookingEvent.actor_id)[-1] == line["id"]


@pytest.mark.parametrize("role", ["ADMIN", "SYSTEM"])
def test_a_created_dispatchers_token_reaches_the_admin_endpoints(cli, client, role):
    [line] = json_lines(
        cli("users", "create", "ops@example.com", "--name", "Ops", "--role", role, "--token")
    )
    response = client.get("/api/admin/providers", headers=bearer(line["token"]))
    assert response.status_code == 200
    assert response.get_json() == []


def test_a_system_account_with_a_password_is_refused_and_not_created(cli):
    result = cli(
        "users",
        "create",
        "bot@example.com",
        "--name",
        "Bot",
        "--role",
        "SYSTEM",
        "--password",
        "long enough secret",
        ok=False,
    )
    assert "SYSTEM accounts have no password" in result.output
    assert result.stdout.strip() == ""
    assert count(User) == 0


def test_a_duplicate_email_is_refused_clearly_and_nothing_is_created(cli):
    [first] = json_lines(
        cli("users", "create", "pat@example.com", "--name", "Pat", "--role", "PROVIDER")
    )
    result = cli(
        "users",
        "create",
        "PAT@example.com",
        "--name",
        "Another Pat",
        "--role",
        "CUSTOMER",
        "--token",
        ok=False,
    )
    assert "already registered: pat@example.com" in result.output
    assert result.stdout.strip() == ""
    assert count(User) == 1
    assert count(Customer) == 0
    assert count(ApiToken) == 0
    assert db.session.get(User, first["id"]).name == "Pat"


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody", "--name", "X", "--role", "CUSTOMER"], "email"),
        (["x@example.com", "--name", "X", "--role", "JANITOR"], "role must be one of"),
        (["x@example.com", "--name", "   ", "--role", "CUSTOMER"], "name is required"),
        (
            ["x@example.com", "--name", "X", "--role", "ADMIN", "--password", "short"],
            "8 characters",
        ),
    ],
    ids=["email-without-at", "unknown-role", "blank-name", "short-password"],
)
def test_users_create_refuses_bad_input_with_a_message_and_creates_nothing(cli, args, message):
    result = cli("users", "create", *args, ok=False)
    assert message in result.output
    assert count(User) == 0


# ------------------------------------------------------------------------------ users import

IMPORT_ROLES = ["CUSTOMER"] * 6 + ["PROVIDER"] * 3 + ["ADMIN"]


def write_csv(path, rows, header="email,name,role"):
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def many_rows(n: int) -> list[tuple[str, str, str]]:
    rows = [
        (f"user{i:05d}@example.com", f"User {i}", IMPORT_ROLES[i % len(IMPORT_ROLES)])
        for i in range(n)
    ]
    rows[-1] = ("robot@example.com", "Robot", "SYSTEM")
    return rows


def test_users_import_creates_two_thousand_users_in_one_transaction_with_tokens(
    cli, client, tmp_path
):
    rows = many_rows(2000)
    csv_file = write_csv(tmp_path / "users.csv", rows)
    commits = []

    def on_commit(connection):
        commits.append(connection)

    sa.event.listen(db.engine, "commit", on_commit)
    try:
        result = cli("users", "import", str(csv_file), "--tokens")
    finally:
        sa.event.remove(db.engine, "commit", on_commit)
    assert len(commits) == 1, "the whole import is one transaction"

    lines = json_lines(result)
    assert len(lines) == 2000
    assert all(set(line) == {"id", "email", "role", "token"} for line in lines)
    assert [(line["email"], line["role"]) for line in lines] == [(e, r) for e, _, r in rows]
    assert len({line["id"] for line in lines}) == 2000
    assert len({line["token"] for line in lines}) == 2000
    assert count(User) == 2000
    assert count(Customer) == sum(r == "CUSTOMER" for _, _, r in rows)
    assert count(Provider) == sum(r == "PROVIDER" for _, _, r in rows)
    assert count(ApiToken) == 2000
    assert db.session.scalar(sa.select(sa.func.count()).where(User.password_hash.is_not(None))) == 0

    first_customer = next(line for line in lines if line["role"] == "CUSTOMER")
    created = client.post("/api/bookings/", json={}, headers=bearer(first_customer["token"]))
    assert created.status_code == 201
    assert created.get_json()["customer_id"] == first_customer["id"]
    provider = next(line for line in lines if line["role"] == "PROVIDER")
    robot = lines[-1]
    assert robot["role"] == "SYSTEM"
    assigned = client.post(
        f"/api/bookings/{created.get_json()['id']}/assign",
        json={"provider_id": provider["id"]},
        headers=bearer(robot["token"]),
    )
    assert assigned.status_code == 200
    assert assigned.get_json()["events"][-1]["actor_id"] == robot["id"]
    queue = client.get(
        f"/api/providers/{provider['id']}/bookings", headers=bearer(provider["token"])
    )
    assert [b["id"] for b in queue.get_json()] == [created.get_json()["id"]]


def test_users_import_without_tokens_prints_lines_without_tokens(cli, tmp_path):
    csv_file = write_csv(
        tmp_path / "users.csv",
        [("a@example.com", "A", "CUSTOMER"), ("b@example.com", "B", "PROVIDER", "a-long-password")],
        header="email,name,role,password",
    )
    lines = json_lines(cli("users", "import", str(csv_file)))
    assert [set(line) for line in lines] == [{"id", "email", "role"}] * 2
    assert count(ApiToken) == 0
    assert accounts.check_password(accounts.user_by_email("b@example.com"), "a-long-password")
    assert accounts.user_by_email("a@example.com").password_hash is None


@pytest.mark.parametrize(
    "bad_row, message",
    [
        (("last@example.com", "Last", "JANITOR"), "line 2001"),
        (("pat@example.com", "Pat Again", "PROVIDER"), "already registered: pat@example.com"),
        (("user00007@example.com", "Twice", "CUSTOMER"), "duplicate emails"),
        (("not-an-email", "Nobody", "CUSTOMER"), "line 2001"),
    ],
    ids=["bad-role", "email-already-taken", "email-twice-in-the-file", "bad-email"],
)
def test_a_csv_with_one_bad_row_creates_nothing(cli, tmp_path, bad_row, message):
    [existing] = json_lines(
        cli("users", "create", "pat@example.com", "--name", "Pat", "--role", "PROVIDER")
    )
    rows = many_rows(2000)
    rows[-1] = bad_row
    csv_file = write_csv(tmp_path / "users.csv", rows)
    result = cli("users", "import", str(csv_file), "--tokens", ok=False)
    assert message in result.output
    assert result.stdout.strip() == ""
    assert count(User) == 1
    assert count(Customer) == 0
    assert count(Provider) == 1
    assert count(ApiToken) == 0
    assert db.session.scalar(sa.select(User.id)) == existing["id"]


def test_a_csv_without_the_required_columns_is_refused(cli, tmp_path):
    csv_file = write_csv(
        tmp_path / "users.csv", [("a@example.com", "CUSTOMER")], header="email,role"
    )
    result = cli("users", "import", str(csv_file), ok=False)
    assert "name" in result.output
    assert count(User) == 0


# ------------------------------------------------------------------------------ users token


def test_users_token_prints_a_new_token_that_authenticates(cli, client, cast):
    result = cli("users", "token", "ADA@example.com")
    token = result.stdout.strip()
    assert token and "\n" not in token
    assert token != cast.tokens["admin"]
    response = client.get("/api/admin/providers", headers=bearer(token))
    assert response.status_code == 200
    assert len(response.get_json()) == 2
    stored = db.session.scalars(
        sa.select(ApiToken.token_hash).where(ApiToken.user_id == cast.admin.user_id)
    ).all()
    assert accounts.hash_token(token) in stored
    assert token not in stored


def test_users_token_for_a_customer_acts_as_that_customer(cli, client, cast):
    token = cli("users", "token", "olive@example.com").stdout.strip()
    response = client.post("/api/bookings/", json={}, headers=bearer(token))
    assert response.status_code == 201
    assert response.get_json()["customer_id"] == cast.owner.user_id


def test_users_token_for_an_unknown_email_fails_clearly(cli, cast):
    before = count(ApiToken)
    result = cli("users", "token", "ghost@example.com", ok=False)
    assert "No user ghost@example.com" in result.output
    assert result.stdout.strip() == ""
    assert count(ApiToken) == before


# ------------------------------------------------------------------------------ demo


def assert_demo_data(logins: list[dict]) -> None:
    db.session.rollback()
    roles = set(db.session.scalars(sa.select(User.role)))
    assert roles == set(Role)
    statuses = set(db.session.scalars(sa.select(Booking.status)))
    assert statuses == set(Status)
    for booking_id in db.session.scalars(sa.select(Booking.id)):
        assert_event_chain(booking_id)
    # the same numbers the API uses: each event's actor exists with the role it acted as
    rows = db.session.execute(
        sa.select(BookingEvent.actor_role, User.role).join(User, User.id == BookingEvent.actor_id)
    ).all()
    assert rows and all(actor_role == role for actor_role, role in rows)
    assert {line["role"] for line in logins} == set(Role)
    emails = set(db.session.scalars(sa.select(User.email)))
    assert {line["email"] for line in logins} <= emails


def test_demo_loads_every_role_and_every_status_with_unbroken_histories(cli, client):
    result = cli("demo", "--json")
    logins = json_lines(result)
    assert_demo_data(logins)
    assert count(Booking) >= 20
    for line in logins:
        user = accounts.user_by_email(line["email"])
        assert user.role == line["role"]
        if line["role"] == "SYSTEM":
            assert "password" not in line and user.password_hash is None
        else:
            assert accounts.check_password(user, line["password"])
    admin = next(line for line in logins if line["role"] == "ADMIN")
    providers = client.get("/api/admin/providers", headers=bearer(admin["token"]))
    assert providers.status_code == 200
    by_availability = {p["availability"] for p in providers.get_json()}
    assert by_availability == {"AVAILABLE", "BUSY"}
    customer = next(line for line in logins if line["role"] == "CUSTOMER")
    mine = db.session.scalar(
        sa.select(Booking.id).where(
            Booking.customer_id == accounts.user_by_email(customer["email"]).id
        )
    )
    assert client.get(f"/api/bookings/{mine}", headers=bearer(customer["token"])).status_code == 200


def test_demo_run_twice_without_reset_does_not_duplicate_anything(cli, client):
    first = json_lines(cli("demo", "--json"))
    users, booking_count, events = count(User), count(Booking), count(BookingEvent)
    again = json_lines(cli("demo", "--json"))
    assert (count(User), count(Booking), count(BookingEvent)) == (users, booking_count, events)
    # The same logins and tokens, printed every time, and the tokens work.
    assert again == first
    assert {line["role"] for line in again} == set(Role)
    admin = next(line for line in again if line["role"] == "ADMIN")
    assert client.get("/api/admin/providers", headers=bearer(admin["token"])).status_code == 200


def test_demo_prints_where_to_go_and_who_is_who_as_a_table(cli):
    printed = cli("demo", "--url", "http://127.0.0.1:5077/").stdout
    shown = read_printed_demo(printed)
    assert shown.login_url == "http://127.0.0.1:5077/login"
    assert shown.password == demo.DEMO_PASSWORD
    rows = shown.accounts
    assert rows["admin@example.com"][0] == "dispatcher"
    assert rows["pat@example.com"][0] == "provider"
    assert rows["alice@example.com"][0] == "customer"
    assert rows["automation@example.com"][0] == "automation"
    assert set(rows) == {email for email, _, _ in demo.DEMO_ACCOUNTS}
    for email, row in rows.items():
        assert row[-1] == demo.demo_token(email)
    assert "{" not in printed  # a table, not JSON lines
    # Served on every interface (make run HOST=0.0.0.0): opened through this machine's address.
    everywhere = read_printed_demo(cli("demo", "--url", "http://0.0.0.0:8080/").stdout)
    assert everywhere.login_url == "http://127.0.0.1:8080/login"


def test_an_old_demo_says_how_to_load_it_afresh(cli):
    cli("demo")
    assert "demo-reset" not in cli("demo").output
    with db.engine.begin() as conn:  # as if loaded three days ago
        conn.execute(sa.update(User).values(created_at=datetime.now(UTC) - timedelta(days=3)))
    db.session.remove()  # as a new command would: without the earlier run's snapshot
    stale = cli("demo")
    assert "its bookings' windows run from that day" in stale.stderr
    assert "make demo-reset" in stale.stderr
    assert "Open http" in stale.stdout


def test_demo_refuses_to_mix_into_a_database_that_already_has_users(cli, cast):
    refused = cli("demo", ok=False)
    assert "--reset" in refused.output
    assert count(User) == 6
    assert count(Booking) == 0


def test_demo_reset_rebuilds_the_demo_from_scratch(cli, client):
    first = json_lines(cli("demo", "--json"))
    users, booking_count, events = count(User), count(Booking), count(BookingEvent)
    cli("users", "create", "extra@example.com", "--name", "Extra", "--role", "CUSTOMER")

    rebuilt = cli("demo", "--reset", "--json")
    second = json_lines(rebuilt)
    assert f"rebuilt for today, {date.today():%a %d %b %Y}" in rebuilt.stderr
    assert "rebuilt" not in cli("demo").output  # a run that keeps the demo says nothing of it
    assert accounts.user_by_email("extra@example.com") is None
    assert (count(User), count(Booking), count(BookingEvent)) == (users, booking_count, events)
    assert_demo_data(second)
    assert second == first  # the demo's tokens are the demo's, like its password
    admin_token = next(line["token"] for line in second if line["role"] == "ADMIN")
    assert client.get("/api/admin/providers", headers=bearer(admin_token)).status_code == 200


def test_the_readme_names_the_demo_people_by_what_they_do():
    """The README's table of who to log in as agrees with the demo's accounts."""
    from ops_portal.cli import DEMO_ROLE_WORDS

    roles = {email: DEMO_ROLE_WORDS[role] for email, _, role in demo.DEMO_ACCOUNTS}
    named = readme_demo_people()
    assert named == {
        "dispatcher": "admin@example.com",
        "provider": "pat@example.com",
        "customer": "alice@example.com",
    }
    assert all(roles[email] == word for word, email in named.items())
    assert f"password is `{demo.DEMO_PASSWORD}`" in README.read_text()


# ------------------------------------------------------------------------------ dispatch


def test_dispatch_once_offers_an_open_booking_and_prints_what_it_did(cli, cast):
    from ops_portal.services import bookings

    booking = bookings.create_booking(cast.owner, service="Leaking tap")
    [summary] = json_lines(cli("dispatch", "once"))
    [offer] = summary["offered"]
    assert offer["booking"] == booking.id
    assert offer["reason"].startswith("longest idle of 2 eligible")
    assert offer["provider"] in {
        cast.provider.user_id,
        cast.other_provider.user_id,
    }
    assert summary["paused"] is False and summary["failed"] == []
    assert event_values(booking.id, BookingEvent.actor_role)[-1] == "SYSTEM"


def test_dispatch_run_stops_cleanly_on_sigterm(start_dispatchers):
    """A real process, a real signal: the pass under way finishes, then it exits 0."""
    [dispatcher] = start_dispatchers(1, 0.2)
    assert "a pass every 0.2 s" in dispatcher.log()
    assert dispatcher.stop() == 0
    assert "dispatcher: stopped" in dispatcher.log()


def test_users_import_reads_a_providers_services_and_refuses_the_whole_file_for_an_unknown_one(
    cli, tmp_path
):
    header = "email,name,role,password,services"
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            ("p@example.com", "P", "PROVIDER", "", "Plumbing"),
            ("q@example.com", "Q", "PROVIDER", "", "Plumbing;Juggling"),
        ],
        header=header,
    )
    refused = cli("users", "import", str(bad), ok=False)
    assert "line 3: Unknown service: Juggling" in refused.output
    assert accounts.user_by_email("p@example.com") is None

    good = write_csv(
        tmp_path / "good.csv",
        [
            ("p@example.com", "P", "PROVIDER", "", "Leaking tap; plumbing"),
            ("c@example.com", "C", "CUSTOMER", "", ""),
        ],
        header=header,
    )
    cli("users", "import", str(good))
    admin = Actor(Role.ADMIN, None)
    p = accounts.user_by_email("p@example.com")
    assert skills.services_of(admin, p.id) == ["Plumbing", "Leaking tap"]


def test_users_services_sets_a_providers_services_from_the_command_line(cli, tmp_path):
    cli("users", "create", "pat@example.com", "--name", "Pat", "--role", "PROVIDER")
    line = json_lines(cli("users", "services", "pat@example.com", "Plumbing;Leaking tap"))[0]
    assert line["services"] == ["Plumbing", "Leaking tap"]
    assert (
        "Unknown service: Juggling"
        in cli("users", "services", "pat@example.com", "Juggling", ok=False).output
    )
    assert json_lines(cli("users", "services", "pat@example.com", ""))[0]["services"] == []
