"""What the role blueprints' pages share: role gates, the booking card's answers and messages,
the one booking-action view, the form behind every card button, and the template helpers."""

from __future__ import annotations

from flask import Flask

from . import sessions  # noqa: F401  (registers Flask-Login's user loader)
from .templating import register_template_helpers


def register_web(app: Flask) -> None:
    register_template_helpers(app)
