"""Operations commands: `flask --app ops_portal users ...`, `... demo`. Output meant for scripts
is JSON, one object a line."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from . import reference
from .domain.errors import DomainError
from .domain.lifecycle import Role
from .services import accounts, demo, idempotency

users = AppGroup("users", help="Create users, import them in bulk, issue API tokens.")


def _emit(data: dict) -> None:
    click.echo(json.dumps(data))


def _fail(error: DomainError) -> None:
    raise click.ClickException(error.detail)


def _user_line(user, token: str | None) -> dict:
    line = {"id": user.id, "email": user.email, "role": user.role}
    if token:
        line["token"] = token
    return line


@users.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", required=True, help="CUSTOMER, PROVIDER, ADMIN or SYSTEM")
@click.option("--password", default=None, help="omit for SYSTEM accounts and token-only users")
@click.option("--token", "with_token", is_flag=True, help="also issue an API token")
def create_user(email, name, role, password, with_token):
    """Create one user; prints {"id", "email", "role", "token"?}."""
    try:
        user, token = accounts.create_user(email, name, role, password, with_token=with_token)
    except DomainError as error:
        _fail(error)
    _emit(_user_line(user, token))


@users.command("services")
@click.argument("email")
@click.argument("services")
def provider_services(email, services):
    """Set the services a provider does ("Plumbing;Leaking tap"; "" for every service); prints
    {"id", "email", "services"}."""
    try:
        user, chosen = accounts.set_provider_services(email, services)
    except DomainError as error:
        _fail(error)
    _emit({"id": user.id, "email": user.email, "services": chosen})


@users.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--tokens", "with_tokens", is_flag=True, help="issue an API token for each user")
def import_users(csv_file, with_tokens):
    """Create many users from CSV (email,name,role[,password][,services]) in one transaction;
    `services`: a provider's, separated by ";" (empty: every service)."""
    reader = csv.DictReader(csv_file)
    missing = {"email", "name", "role"} - set(reader.fieldnames or [])
    if missing:
        raise click.ClickException(f"CSV header lacks column(s): {', '.join(sorted(missing))}")
    new_users = []
    for line_number, row in enumerate(reader, start=2):
        try:
            new_users.append(
                accounts.validate_new_user(
                    row.get("email"),
                    row.get("name"),
                    row.get("role"),
                    row.get("password") or None,
                    row.get("services"),
                )
            )
        except DomainError as error:
            raise click.ClickException(f"line {line_number}: {error.detail}") from None
    if not new_users:
        raise click.ClickException("the CSV file has no users")
    try:
        created = accounts.create_users(new_users, with_tokens=with_tokens)
    except DomainError as error:
        _fail(error)
    for user, token in created:
        _emit(_user_line(user, token))


@users.command("token")
@click.argument("email")
def issue_token(email):
    """Issue a new API token for a user; prints it."""
    try:
        click.echo(accounts.issue_token(email))
    except DomainError as error:
        _fail(error)


@users.command("revoke-tokens")
@click.argument("email")
def revoke_tokens(email):
    """Revoke every API token of a user at once; prints {"email", "revoked"}."""
    try:
        _emit({"email": email, "revoked": accounts.revoke_tokens(email)})
    except DomainError as error:
        _fail(error)


@click.command("demo")
@click.option("--reset", is_flag=True, help="rebuild the database first (all data is lost)")
@click.option("--url", default="http://127.0.0.1:5000/", help="where the app is served (printed)")
@click.option("--json", "as_json", is_flag=True, help="the logins as JSON, one object a line")
@with_appcontext
def demo_command(reset, url, as_json):
    """Load demo accounts and bookings in every status; print the logins and API tokens."""
    if current_app.config["PRODUCTION"]:
        raise click.ClickException(
            "demo data is refused with OPS_PORTAL_ENV=production: it would mix made-up accounts "
            "with real ones, and --reset deletes every row"
        )
    if reset:
        demo.reset()
    if not demo.has_data():
        demo.load()
        if reset:
            click.echo(
                f"The demo was rebuilt for today, {date.today():%a %d %b %Y}: every earlier row "
                "is gone.",
                err=True,
            )
    elif demo.loaded_on() is None:
        raise click.ClickException(
            "the database has data that is not the demo's; --reset rebuilds the demo (all data "
            "is lost)"
        )
    if as_json:
        for email, name, role in demo.DEMO_ACCOUNTS:
            line = {
                "email": email,
                "name": name,
                "role": role.value,
                "token": demo.demo_token(email),
            }
            if role is not Role.SYSTEM:
                line["password"] = demo.DEMO_PASSWORD
            _emit(line)
    else:
        _print_demo_logins(_address_to_open(url).rstrip("/") + "/login")
    loaded_on = demo.loaded_on()
    if loaded_on < date.today():
        click.echo(
            f"This demo was loaded on {loaded_on:%a %d %b %Y}: its bookings' windows run from "
            "that day, so some have passed. `make demo-reset` (demo --reset) loads it afresh "
            "for today.",
            err=True,
        )


def _address_to_open(url: str) -> str:
    """A server listening on every interface (0.0.0.0, ::) is opened through this machine's own
    address: a browser cannot open 0.0.0.0 everywhere."""
    parts = urlsplit(url)
    if parts.hostname in ("0.0.0.0", "::"):
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"127.0.0.1{port}")
    return urlunsplit(parts)


DEMO_ROLE_WORDS = {
    Role.ADMIN: "dispatcher",
    Role.CUSTOMER: "customer",
    Role.PROVIDER: "provider",
    Role.SYSTEM: "automation",
}


def _print_demo_logins(login_url: str) -> None:
    """The demo's accounts as a table a person reads at a glance."""
    rows = [("role", "email", "name", "API token")] + [
        (DEMO_ROLE_WORDS[role], email, name, demo.demo_token(email))
        for email, name, role in demo.DEMO_ACCOUNTS
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    click.echo(f"Open {login_url} and log in with any account below.")
    click.echo(
        f"Password (every account but automation, which uses its token): {demo.DEMO_PASSWORD}"
    )
    click.echo()
    for row in rows:
        click.echo(
            "  "
            + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    click.echo()
    click.echo('API: send a token as "Authorization: Bearer <token>"; /api/docs lists the calls.')
    sys.stdout.flush()


idempotency_group = AppGroup("idempotency", help="Housekeeping of Idempotency-Keys.")


@idempotency_group.command("purge")
def purge_idempotency_keys():
    """Delete Idempotency-Keys older than 24 hours; prints {"purged": N}."""
    _emit({"purged": idempotency.purge_expired()})


docs_group = AppGroup("docs", help="The tables in docs/ that are rendered from the code.")


@docs_group.command("write", with_appcontext=False)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
def write_docs(root):
    """Render the lifecycle and access tables into docs/; prints what changed."""
    for path in reference.write_documents(root):
        click.echo(f"rewrote {path}")


@docs_group.command("check", with_appcontext=False)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
def check_docs(root):
    """Fail if a document's rendered tables no longer match the code."""
    stale = reference.stale_documents(root)
    if stale:
        raise click.ClickException(
            f"stale: {', '.join(stale)}; run `flask --app ops_portal docs write`"
        )


dispatch_group = AppGroup(
    "dispatch", help="The SYSTEM dispatcher: offers open bookings, fails stuck ones."
)


@dispatch_group.command("once")
def dispatch_once():
    """One pass; prints its summary as one JSON line."""
    from .models import utcnow
    from .services import dispatcher

    _emit(dispatcher.run_pass(utcnow(), clock=utcnow).as_json())


@dispatch_group.command("run")
@click.option(
    "--interval", default=2.0, type=click.FloatRange(min=0.1), help="seconds between passes"
)
def dispatch_run(interval):
    """Pass after pass until stopped (SIGTERM or Ctrl-C ends it after the pass under way). Safe to
    run several: every change is conditional on the state it read."""
    import signal
    import threading

    from .extensions import db
    from .models import utcnow
    from .services import dispatcher

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"dispatcher: a pass every {interval:g} s", err=True)
    while not stop.is_set():
        summary = dispatcher.run_pass(utcnow(), clock=utcnow)
        db.session.remove()  # no connection held between passes
        if summary.expired or summary.offered or summary.failed:
            _emit(summary.as_json())
        stop.wait(interval)
    click.echo("dispatcher: stopped", err=True)


def register_commands(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(demo_command)
    app.cli.add_command(idempotency_group)
    app.cli.add_command(docs_group)
    app.cli.add_command(dispatch_group)
