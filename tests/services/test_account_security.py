"""Passwords rehashed when the parameters rise; API tokens revocable, their last use recorded."""

from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher

from ops_portal.domain.lifecycle import Role
from ops_portal.extensions import db
from ops_portal.models import ApiToken, User, utcnow
from ops_portal.services import accounts


def _stored_hash(email: str) -> str:
    db.session.rollback()
    return db.session.scalar(sa.select(User.password_hash).where(User.email == email))


def test_a_login_rehashes_a_password_made_with_weaker_parameters(app):
    accounts.create_user("ana@example.com", "Ana", Role.CUSTOMER, "correct horse battery")
    weak = _stored_hash("ana@example.com")
    assert (
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).check_needs_rehash(weak)
        is False
    )

    app.config.update(ARGON2_TIME_COST=2, ARGON2_MEMORY_COST=2048)
    assert accounts.authenticate("ana@example.com", "correct horse battery") is not None

    strong = _stored_hash("ana@example.com")
    assert strong != weak
    assert "m=2048,t=2" in strong
    # The upgraded hash still verifies, and is not rehashed again.
    assert accounts.authenticate("ana@example.com", "correct horse battery") is not None
    assert _stored_hash("ana@example.com") == strong


def test_a_wrong_password_never_rehashes(app):
    accounts.create_user("ben@example.com", "Ben", Role.CUSTOMER, "correct horse battery")
    before = _stored_hash("ben@example.com")
    app.config.update(ARGON2_TIME_COST=2)
    assert accounts.authenticate("ben@example.com", "wrong password!") is None
    assert _stored_hash("ben@example.com") == before


def test_a_token_records_its_last_use_at_most_every_few_minutes(app):
    _, token = accounts.create_user("bot@example.com", "Bot", Role.SYSTEM, with_token=True)
    assert db.session.scalar(sa.select(ApiToken.last_used_at)) is None

    assert accounts.actor_for_token(token) is not None
    first = db.session.scalar(sa.select(ApiToken.last_used_at))
    assert first is not None and utcnow() - first < timedelta(minutes=1)

    accounts.actor_for_token(token)  # moments later: no new write
    db.session.rollback()
    assert db.session.scalar(sa.select(ApiToken.last_used_at)) == first

    # Once the recorded use is older than the resolution, the next use is recorded again.
    db.session.rollback()
    db.session.execute(
        sa.update(ApiToken).values(last_used_at=first - accounts.LAST_USED_RESOLUTION * 2)
    )
    db.session.commit()
    accounts.actor_for_token(token)
    db.session.rollback()
    assert db.session.scalar(sa.select(ApiToken.last_used_at)) >= first


def test_a_revoked_token_stops_working_at_once_and_others_are_unaffected(client, app):
    _, token = accounts.create_user("ops@example.com", "Ops", Role.ADMIN, with_token=True)
    _, other = accounts.create_user("ops2@example.com", "Ops 2", Role.ADMIN, with_token=True)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/admin/providers", headers=headers).status_code == 200

    assert accounts.revoke_tokens("ops@example.com") == 1

    assert client.get("/api/admin/providers", headers=headers).status_code == 401
    other_headers = {"Authorization": f"Bearer {other}"}
    assert client.get("/api/admin/providers", headers=other_headers).status_code == 200
    # A new token for the same user works: revocation is of tokens, not of the account.
    fresh = {"Authorization": f"Bearer {accounts.issue_token('ops@example.com')}"}
    assert client.get("/api/admin/providers", headers=fresh).status_code == 200


def test_the_revoke_tokens_command_revokes_and_says_how_many(app, client):
    _, token = accounts.create_user("cli@example.com", "Cli", Role.SYSTEM, with_token=True)
    accounts.issue_token("cli@example.com")
    result = app.test_cli_runner().invoke(args=["users", "revoke-tokens", "cli@example.com"])
    assert result.exit_code == 0, result.output
    assert '"revoked": 2' in result.output
    assert (
        client.get("/api/admin/providers", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    unknown = app.test_cli_runner().invoke(args=["users", "revoke-tokens", "nobody@example.com"])
    assert unknown.exit_code != 0 and "No user nobody@example.com" in unknown.output
