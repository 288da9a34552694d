"""Providers on and off duty. A change is made under the provider's row lock, only when it
changes something, and recorded in the same transaction in provider_duty_events (append-only):
who, when and why. An off-duty provider is offered no work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..domain.errors import NotPermitted
from ..domain.lifecycle import Actor, Role
from ..domain.text import MAX_LENGTHS
from ..extensions import db
from ..models import Provider, ProviderDutyEvent, utcnow
from .bookings.rules import check_id, clean_text
from .transactions import locked_row, write_transaction

# Who may put a provider on or off duty: the provider themselves, dispatchers and automation.
DUTY_SETTERS = frozenset({Role.PROVIDER, Role.ADMIN, Role.SYSTEM})


@dataclass(frozen=True)
class DutyChange:
    provider_id: int
    on_duty: bool
    changed: bool  # False: the provider was already so, and nothing was recorded


def may_set_duty(actor: Actor, provider_id: int) -> bool:
    if actor.role not in DUTY_SETTERS:
        return False
    return actor.role is not Role.PROVIDER or actor.user_id == provider_id


def set_duty(
    actor: Actor,
    provider_id: int,
    on_duty: bool,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> DutyChange:
    """Put the provider on or off duty, recording who and why."""
    check_id(provider_id, "provider_id")
    if not may_set_duty(actor, provider_id):
        raise NotPermitted("Only the provider and dispatchers put a provider on or off duty")
    reason = clean_text(reason or "", "reason", max_len=MAX_LENGTHS["reason"]) or None
    with write_transaction() as session:
        provider = locked_row(session, Provider, provider_id, "provider")
        if provider.on_duty == on_duty:
            return DutyChange(provider_id, on_duty, changed=False)
        at = now or utcnow()
        provider.on_duty = on_duty
        provider.duty_since = at
        if on_duty:
            provider.idle_since = at  # idle on duty from now: the time off does not count
        session.add(
            ProviderDutyEvent(
                provider_id=provider_id,
                on_duty=on_duty,
                actor_role=actor.role,
                actor_id=actor.user_id,
                reason=reason,
                source=actor.source,
                created_at=at,
            )
        )
    return DutyChange(provider_id, on_duty, changed=True)


def duty_log(provider_id: int) -> list[ProviderDutyEvent]:
    """The provider's duty changes, oldest first."""
    return list(
        db.session.scalars(
            sa.select(ProviderDutyEvent)
            .where(ProviderDutyEvent.provider_id == provider_id)
            .order_by(ProviderDutyEvent.id)
        )
    )
