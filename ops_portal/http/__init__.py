"""The HTTP plumbing pages and API share: how errors and faults answer, idempotent writes,
security headers, and htmx-aware responses. Nothing here knows a role or a page."""

from __future__ import annotations

from flask import Flask

from .errors import register_error_handlers
from .htmx import register_htmx_caching
from .security import register_security_headers


def register_http(app: Flask) -> None:
    register_error_handlers(app)
    register_security_headers(app)
    register_htmx_caching(app)
