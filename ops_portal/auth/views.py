"""Login and logout pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..http.htmx import is_htmx
from ..services import accounts
from ..web.gates import home_url
from .forms import LoginForm

auth = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str | None:
    """Only a local path: no scheme, no host, and not //host or /\\host in disguise."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or any(ord(c) < 32 for c in target):
        return None
    return target


def _login_failed(response) -> bool:
    return response.status_code != 303  # only failed attempts count against the limits


def _account_key() -> str:
    return (request.form.get("email") or "").strip().lower()[:254]


@auth.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    scope="login-address",
    deduct_when=_login_failed,
    error_message="Too many failed logins from this address; wait a few minutes and try again.",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    methods=["POST"],
    key_func=_account_key,
    scope="login-account",
    deduct_when=_login_failed,
    error_message="Too many failed logins for this account; wait a few minutes and try again.",
)
def login():
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(home_url(current_user.role))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a fresh session: nothing from before the login carries over
            login_user(user, remember=form.remember.data)
            return redirect(safe_next(request.args.get("next")) or home_url(user.role), 303)
        form.password.errors.append("Wrong email or password.")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@auth.post("/logout")
@login_required
def logout():
    """Sign out everywhere: every session of this account stops working."""
    accounts.end_sessions(current_user.id)
    logout_user()
    session.clear()
    flash("You are logged out.", "success")
    return redirect(url_for("auth.login"), 303)


@auth.get("/")
def root():
    """The home page of whoever is logged in, else the login page."""
    if current_user.is_authenticated:
        return redirect(home_url(current_user.role))
    return redirect(url_for("auth.login"))


def unauthorized():
    """Anonymous visitors go to the login page; htmx requests get 401 + HX-Redirect."""
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if is_htmx():
        return "", 401, {"HX-Redirect": login_url}
    if request.method != "GET":
        return redirect(url_for("auth.login"), 303)
    flash("Please log in to continue.", "message")
    return redirect(login_url)
