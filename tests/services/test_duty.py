"""Duty: a provider goes on and off duty by their own hand or a dispatcher's; each change is
recorded once, with who and why, and the log is append-only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ops_portal.domain.errors import NotFound, NotPermitted
from ops_portal.extensions import db
from ops_portal.models import Provider
from ops_portal.services import duty

NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def on_duty(provider_id: int) -> bool:
    db.session.rollback()
    return db.session.scalar(sa.select(Provider.on_duty).where(Provider.id == provider_id))


def test_a_provider_goes_off_and_on_duty_and_each_change_is_recorded_once(cast):
    me = cast.provider.user_id
    assert on_duty(me)  # every provider starts on duty

    off = duty.set_duty(cast.provider, me, False, reason="Lunch", now=NOON)
    again = duty.set_duty(cast.provider, me, False, reason="Still at lunch", now=NOON)
    back = duty.set_duty(cast.admin, me, True, now=NOON)

    assert (off.changed, again.changed, back.changed) == (True, False, True)
    assert on_duty(me)
    log = duty.duty_log(me)
    assert [(e.on_duty, e.actor_role, e.actor_id, e.reason) for e in log] == [
        (False, "PROVIDER", me, "Lunch"),
        (True, "ADMIN", cast.admin.user_id, None),
    ]
    assert all(e.created_at == NOON for e in log)


def test_only_the_provider_and_dispatch_change_a_providers_duty(cast):
    me = cast.provider.user_id
    for stranger in (cast.other_provider, cast.owner):
        with pytest.raises(NotPermitted):
            duty.set_duty(stranger, me, False)
    duty.set_duty(cast.system, me, False, reason="Three offers lapsed")
    assert not on_duty(me) and duty.duty_log(me)[-1].actor_role == "SYSTEM"
    with pytest.raises(NotFound):
        duty.set_duty(cast.admin, 999_999, False)


def test_the_duty_log_is_append_only(cast):
    duty.set_duty(cast.provider, cast.provider.user_id, False)
    with db.engine.connect() as conn:
        for statement in (
            "UPDATE provider_duty_events SET reason = 'x'",
            "DELETE FROM provider_duty_events",
        ):
            with pytest.raises(sa.exc.DBAPIError, match=r"append-only|not allowed"):
                conn.exec_driver_sql(statement)
            conn.rollback()
