"""docs/operations.md § Production: the app runs on PostgreSQL as a role that may only SELECT and
INSERT events. The grants are read from that document itself, so the document and the test
cannot part: with exactly those grants the whole lifecycle works (pages, API, idempotency keys,
purge), and the database refuses the role any change to the audit trail."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Action, Actor, Role, Source
from ops_portal.extensions import db
from tests.support.databases import (
    POSTGRES_URL,
    create_postgres_database,
    drop_postgres_database,
    make_app,
    migrate_to_head,
    postgres_admin_url,
)

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL")
OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
DOCUMENTED_ROLE = "ops_portal_app"


def documented_grants() -> list[str]:
    production = OPERATIONS.read_text().split("## Production", 1)[1]
    block = re.search(r"```sql\n(.*?)```", production, re.DOTALL).group(1)
    return [line.strip() for line in block.splitlines() if line.strip().upper().startswith("GRANT")]


@pytest.fixture
def app_as_restricted_role():
    owner_url = create_postgres_database("ops_role")
    migrate_to_head(owner_url)  # migrations run as the schema owner
    role = f"ops_app_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(owner_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        for grant in documented_grants():
            conn.exec_driver_sql(grant.replace(DOCUMENTED_ROLE, f'"{role}"'))
    admin.dispose()
    app = make_app(sa.make_url(owner_url).set(username=role).render_as_string(False))
    try:
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        drop_postgres_database(owner_url)
        server = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        server.dispose()


def test_the_documented_grants_run_the_app_and_keep_the_trail_append_only(app_as_restricted_role):
    from ops_portal.services import accounts, bookings, idempotency

    app = app_as_restricted_role
    assert db.session.scalar(sa.text("SELECT current_user")).startswith("ops_app_")
    (_, customer_token), (provider, provider_token), (admin, admin_token) = accounts.create_users(
        [
            accounts.validate_new_user(*person)
            for person in (
                ("c@example.com", "Cara Customer", Role.CUSTOMER),
                ("p@example.com", "Pip Provider", Role.PROVIDER),
                ("a@example.com", "Ari Admin", Role.ADMIN),
            )
        ],
        with_tokens=True,
    )
    client = app.test_client()
    created = client.post(
        "/api/bookings/",
        json={"service": "Leaking tap", "address": "1 Road"},
        headers={"Authorization": f"Bearer {customer_token}", "Idempotency-Key": "role-test-1"},
    )
    assert created.status_code == 201, created.get_json()
    booking_id = created.get_json()["id"]
    steps = [
        (Action.ASSIGN, admin_token, {"provider_id": provider.id}),
        (Action.ACCEPT, provider_token, {}),
        (Action.COMPLETE, provider_token, {}),
    ]
    for action, token, body in steps:
        answer = client.post(
            f"/api/bookings/{booking_id}/{action.value}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.get_json()
    events = client.get(
        f"/api/bookings/{booking_id}/events", headers={"Authorization": f"Bearer {admin_token}"}
    ).get_json()
    assert [e["action"] for e in events] == ["create", "assign", "accept", "complete"]
    idempotency.purge_expired()  # the cron job's DELETE works as the app's role
    # Archive search calls the search index's function (migration 0004) as the app's role.
    dispatcher = Actor(Role.ADMIN, admin.id, Source.WEB)
    assert [b.id for b in bookings.find_bookings(dispatcher, search="cara").items] == [booking_id]

    for statement in (
        "UPDATE booking_events SET reason = 'rewritten'",
        "DELETE FROM booking_events",
        "TRUNCATE booking_events",
    ):
        db.session.rollback()
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            db.session.execute(sa.text(statement))
    db.session.rollback()
