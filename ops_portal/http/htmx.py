"""Answers for htmx: a fragment, or an alert that lands in the page's alert region."""

from __future__ import annotations

from flask import Flask, make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def alert_response(message: str, status: int):
    """An htmx answer that lands in the page's alert region instead of the swap target."""
    response = make_response(render_template("_alert.html", message=message, level="error"), status)
    response.headers["HX-Retarget"] = "#alerts"
    response.headers["HX-Reswap"] = "afterbegin"
    return response


def register_htmx_caching(app: Flask) -> None:
    @app.after_request
    def htmx_aware_caching(response):
        # Pages answer htmx with a fragment and a browser with a whole page: caches must keep
        # them apart, and fragments (per person, always changing) are not kept at all.
        if request.blueprint not in ("api", "health"):
            response.vary.add("HX-Request")
        if is_htmx():
            response.headers["Cache-Control"] = "no-store"
        return response
