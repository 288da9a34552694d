"""Ops Portal: the booking lifecycle of an on-demand home-services marketplace."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from .config import check_production_settings, from_environment, normalize_database_url
from .domain.numbers import parse_whole_number
from .extensions import csrf, db, limiter, login_manager, migrate
from .http.security import production_cookie_config

PACKAGE = Path(__file__).resolve().parent


def resource_folder(name: str) -> str:
    """templates/, static/ or migrations/: inside the package when installed from the wheel,
    beside it in the repository."""
    inside = PACKAGE / name
    return str(inside if inside.is_dir() else PACKAGE.parent / name)


class AsciiIntegerConverter(IntegerConverter):
    """<int:…> in ASCII digits only: werkzeug's \\d+ also matches "１" (fullwidth) and other
    scripts' digits, which int() reads, so /bookings/１ would be a second address of booking 1."""

    regex = r"[0-9]+"

    def to_python(self, value: str) -> int:
        return parse_whole_number(value, field="id")


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=os.environ.get("OPS_PORTAL_INSTANCE_PATH") or None,
        instance_relative_config=True,
        template_folder=resource_folder("templates"),
        static_folder=resource_folder("static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(from_environment(app.instance_path))
    if config:
        app.config.update(config)
    if app.config["PRODUCTION"]:
        check_production_settings(app.config)
        app.config.update(production_cookie_config())
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    app.url_map.converters["int"] = AsciiIntegerConverter  # before any route is added
    register_extensions(app)
    register_blueprints(app)
    register_http(app)
    register_cli(app)
    return app


def _engine_options(app: Flask) -> dict:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # sqlite3's timeout is SQLite's busy timeout: how long a writer waits for the lock.
        return {"connect_args": {"timeout": app.config["SQLITE_BUSY_TIMEOUT"]}}
    return {"pool_pre_ping": True}


def register_extensions(app: Flask) -> None:
    from .services.transactions import configure_engine

    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app))
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, busy_timeout=app.config["SQLITE_BUSY_TIMEOUT"])
    migrate.init_app(app, db, directory=resource_folder("migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    if app.config["TRUSTED_PROXY_HOPS"]:
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_blueprints(app: Flask) -> None:
    from .account.views import account
    from .admin.views import admin
    from .api.docs import register_api
    from .api.views import api, health
    from .auth.views import auth, unauthorized
    from .customer.views import customer
    from .live import register_live
    from .provider.views import provider
    from .web import register_web

    csrf.exempt(api)  # bearer tokens, no cookies: nothing for a cross-site form to ride on
    register_api(app)
    for blueprint in (health, auth, account, customer, provider, admin):
        app.register_blueprint(blueprint)
    login_manager.unauthorized_handler(unauthorized)
    register_live(app)
    register_web(app)


def register_http(app: Flask) -> None:
    """Error answers, security headers and htmx-aware caching, for pages and API alike."""
    from .http import register_http as register

    register(app)


def register_cli(app: Flask) -> None:
    from .cli import register_commands

    register_commands(app)
