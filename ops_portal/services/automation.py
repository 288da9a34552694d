"""Whether dispatch automation runs: one row in the database (dispatch_settings), so every
process (web workers, every dispatcher) reads the same answer. Dispatchers pause and resume it
from the board."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..domain.errors import NotPermitted
from ..domain.lifecycle import Actor, Role
from ..extensions import db
from ..models import DispatchSettings, utcnow
from .transactions import locked_row, write_transaction


@dataclass(frozen=True)
class AutomationState:
    paused: bool
    changed_by: int | None
    changed_at: datetime | None


def automation_state() -> AutomationState:
    """Paused or running (the row migration 0007 made)."""
    row = db.session.execute(
        sa.select(
            DispatchSettings.paused, DispatchSettings.changed_by, DispatchSettings.changed_at
        ).where(DispatchSettings.id == 1)
    ).one()
    return AutomationState(*row)


def set_paused(actor: Actor, paused: bool, *, now: datetime | None = None) -> AutomationState:
    """Pause or resume automation (dispatchers only). A pass already under way finishes the
    booking it is on; the next one reads the new state."""
    if actor.role is not Role.ADMIN:
        raise NotPermitted("Only dispatchers pause and resume automation")
    with write_transaction() as session:
        settings = locked_row(session, DispatchSettings, 1, "settings row")
        if settings.paused != paused:
            settings.paused = paused
            settings.changed_by = actor.user_id
            settings.changed_at = now or utcnow()
    return automation_state()
