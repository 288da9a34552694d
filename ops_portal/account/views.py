"""A person's own account page, whatever their role: the time zone they read times in."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..domain.errors import InvalidInput
from ..services import accounts
from .forms import TimeZoneForm

account = Blueprint("account", __name__, url_prefix="/account")


@account.route("/", methods=["GET", "POST"])
@login_required
def profile():
    """Choose the time zone pages show and forms take times in."""
    form = TimeZoneForm()
    if request.method == "GET":
        form.time_zone.data = current_user.time_zone or current_app.config["DISPLAY_TIMEZONE"]
    elif form.validate_on_submit():
        try:
            accounts.set_time_zone(current_user.id, form.time_zone.data)
        except InvalidInput as error:
            form.time_zone.errors = [*form.time_zone.errors, error.detail + "."]
        else:
            flash(f"Times are now shown in {form.time_zone.data}.", "success")
            return redirect(url_for("account.profile"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("account/profile.html", form=form), status
