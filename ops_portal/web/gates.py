"""Who is acting on a page, where their home is, and the role gate of each blueprint."""

from __future__ import annotations

from flask import Blueprint, abort, g, url_for
from flask_login import current_user

from ..domain.lifecycle import Actor, Role, Source
from ..extensions import login_manager

HOME_ENDPOINT = {
    Role.CUSTOMER: "customer.index",
    Role.PROVIDER: "provider.queue",
    Role.ADMIN: "admin.board",
}


def current_actor() -> Actor:
    return Actor(current_user.role, current_user.id, Source.WEB)


def home_url(role: Role | str) -> str:
    return url_for(HOME_ENDPOINT[Role(role)])


def gate_blueprint(blueprint: Blueprint, role: Role) -> None:
    """Anonymous → the login page (401 + HX-Redirect for htmx); another role → 403."""

    @blueprint.before_request
    def require_role():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.role != role:
            abort(403)
        g.actor = current_actor()
