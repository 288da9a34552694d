"""Who is acting on a page, where their home is, and the role gate of each blueprint."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, request, url_for
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from ..domain.lifecycle import Actor, Role, Source
from ..extensions import login_manager
from ..http.htmx import is_htmx

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


# Blueprints whose GET routes are pages a person may be sent back to after logging in.
PAGE_BLUEPRINTS = frozenset({"customer", "provider", "admin", "account"})


def fragment_of(page_endpoint: str) -> Callable:
    """Marks a view as an htmx-only fragment of a page (a region the page polls): opened
    without htmx (a pasted link, a login's `next`) it redirects to that page, query kept."""

    def decorate(view):
        @wraps(view)
        def fragment(*args, **kwargs):
            if not is_htmx():
                query = request.query_string.decode("ascii", "replace")
                return redirect(_with_query(url_for(page_endpoint), query))
            return view(*args, **kwargs)

        fragment.page_endpoint = page_endpoint
        return fragment

    return decorate


def _with_query(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def local_path(target: str | None) -> str | None:
    """Only a local path: no scheme, no host, and not //host or /\\host in disguise."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or any(ord(c) < 32 for c in target):
        return None
    return target


def page_to_return_to(target: str | None) -> str | None:
    """Where a person may be sent back to: a local URL of a page (a role's GET page), with an
    htmx-only fragment replaced by its page; None for anything else (the API, the login page,
    a URL no page answers), so the caller sends them home."""
    target = local_path(target)
    if target is None:
        return None
    parts = urlsplit(target)
    try:
        endpoint, _ = current_app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:
        return None
    if endpoint.partition(".")[0] not in PAGE_BLUEPRINTS:
        return None
    page = getattr(current_app.view_functions[endpoint], "page_endpoint", None)
    if page is not None:
        return _with_query(url_for(page), parts.query)
    return target
