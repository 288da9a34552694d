"""Flask-Login's user loader: sessions carry "user_id:session_version"."""

from __future__ import annotations

from ..domain.numbers import is_ascii_digits
from ..extensions import db, login_manager
from ..models import User


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    user_id, _, version = session_id.partition(":")
    if not (is_ascii_digits(user_id) and is_ascii_digits(version)):
        return None
    user = db.session.get(User, int(user_id))
    # A session minted before the last logout or password change is dead, and so is every
    # session of a disabled account.
    if user is None or user.session_version != int(version) or not user.is_active:
        return None
    return user
