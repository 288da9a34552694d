"""Idempotency-Key on write requests (API header; the pages' hidden `idempotency_key` field).

The first request with a key runs; its answer (status, body, the headers that matter) is stored
in the same transaction as its change, together with the key itself, so a request that fails
leaves the key free. A repeat gets that answer again, marked `Idempotent-Replayed: true`; the
same key with another body gets 422; a repeat that waits for the first past
IDEMPOTENCY_WAIT_SECONDS gets 409. Requests without a key behave as before."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps

from flask import Response, current_app, g, request, url_for

from ..domain.errors import DomainError
from ..services import idempotency
from ..services.transactions import write_transaction
from .htmx import is_htmx

KEY_HEADER = "Idempotency-Key"
KEY_FIELD = "idempotency_key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers that are part of the answer itself (the rest are added afresh on every response).
STORED_HEADERS = (
    "Content-Type",
    "Location",
    "ETag",
    "HX-Retarget",
    "HX-Reswap",
    "HX-Trigger-After-Settle",
    "Retry-After",
)
# Form fields that differ between two presses of the same button without changing what it asks.
UNHASHED_FIELDS = frozenset({"csrf_token", KEY_FIELD})


def request_key() -> str | None:
    key = request.headers.get(KEY_HEADER)
    if key is None and request.mimetype == "application/x-www-form-urlencoded":
        key = request.form.get(KEY_FIELD) or None
    return key


def request_fingerprint() -> str:
    digest = hashlib.sha256()
    if request.mimetype == "application/x-www-form-urlencoded":
        for name, value in sorted(request.form.items(multi=True)):
            if name not in UNHASHED_FIELDS:
                digest.update(f"{name}={value}\n".encode())
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def request_scope() -> str:
    """The route's canonical path, so /api/bookings and /api/bookings/ share one scope; a
    fragment answer (htmx) is no answer for a plain form post, so they are kept apart."""
    scope = f"{request.method} {url_for(request.endpoint, **(request.view_args or {}))}"
    return scope + " (htmx)" if is_htmx() else scope


def idempotent(view=None, *, refusal: Callable[[DomainError], object] | None = None):
    """Run the view at most once per (user, endpoint, key).

    `refusal` renders a domain error the view raises, and that answer is stored like any other
    (the same request would be refused the same way). Without it, an error raised by the view
    stores nothing and propagates: views that render their own refusals (the card actions)
    return them as answers."""
    if view is None:
        return lambda view: idempotent(view, refusal=refusal)

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request_key()
        if key is None:
            return view(*args, **kwargs)
        fingerprint, scope = request_fingerprint(), request_scope()
        # The view's services join this transaction, so the key, the change and the answer
        # commit together; if anything fails before the commit, none of them exists.
        with write_transaction(keep_loaded=True) as session:
            taken = idempotency.take(
                session,
                g.actor.user_id,
                scope,
                key,
                fingerprint,
                wait_seconds=current_app.config["IDEMPOTENCY_WAIT_SECONDS"],
            )
            if taken.replay is not None:
                return _replay(taken.replay)
            response = _first_answer(view, args, kwargs, refusal)
            headers = {n: response.headers[n] for n in STORED_HEADERS if n in response.headers}
            idempotency.record(
                session,
                taken.key_id,
                response.status_code,
                response.get_data(as_text=True),
                headers,
            )
        return response

    return wrapper


def _first_answer(view, args, kwargs, refusal) -> Response:
    try:
        # A savepoint: a refused view's own work is undone, the key's row stays.
        with write_transaction():
            return current_app.make_response(view(*args, **kwargs))
    except DomainError as error:
        if refusal is None:
            raise
        return current_app.make_response(refusal(error))


def _replay(stored: idempotency.StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status, headers=stored.headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response
