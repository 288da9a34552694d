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
from ..web.gates import home_url, page_to_return_to
from .forms import LoginForm

auth = Blueprint("auth", __name__)


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
    back_to = page_to_return_to(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(back_to or home_url(current_user.role))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a fresh session: nothing from before the login carries over
            login_user(user, remember=form.remember.data)
            return redirect(back_to or home_url(user.role), 303)
        form.password.errors.append("Wrong email or password.")
    status = 400 if request.method == "POST" else 200
    ended = session.pop(SESSION_ENDED, False)
    return render_template("auth/login.html", form=form, session_ended=ended), status


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


# Set when a page's request finds its session gone; the login page then says so, once.
SESSION_ENDED = "session_ended"


def unauthorized():
    """Someone not logged in asks for a page or acts (Flask-Login's unauthorized handler).

    A visitor is sent to the login page and back. A request from a page whose session ended
    (logged out in another tab, expired, account disabled) is told so: an htmx poll leads to
    the login page, which comes back to the page the person was on (HX-Current-URL), never to
    the fragment; an htmx action answers the message for the card that was pressed, with a
    link to log in that comes back to the page."""
    # A request no visitor sends, or a session cookie whose account no longer lets it in.
    if is_htmx() or request.method != "GET" or "_user_id" in session:
        session[SESSION_ENDED] = True
    else:
        flash("Please log in to continue.", "message")
    if not is_htmx():
        if request.method != "GET":
            back_to = page_to_return_to(_referrer_path())
            return redirect(url_for("auth.login", next=back_to), 303)
        return redirect(url_for("auth.login", next=page_to_return_to(_requested_path())))
    back_to = page_to_return_to(_path_of(request.headers.get("HX-Current-URL")))
    login_url = url_for("auth.login", next=back_to or page_to_return_to(_requested_path()))
    if request.method == "GET":
        return "", 401, {"HX-Redirect": login_url}
    return render_template("auth/_session_ended.html", login_url=login_url), 401


def _path_of(url: str | None) -> str | None:
    """The local part of a URL of this site (htmx sends whole URLs)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _requested_path() -> str:
    return request.full_path.rstrip("?")


def _referrer_path() -> str | None:
    return _path_of(request.referrer)
