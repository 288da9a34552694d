"""Idempotency-Key on write requests (API header; the pages' hidden `idempotency_key` field).

The first request with a key runs; its answer (status, body, the headers that matter) is stored
in the same transaction as its change. A repeat gets that answer again, marked
`Idempotent-Replayed: true`; the same key with another body gets 422; a repeat while the first
is still running gets 409. Requests without a key behave as before."""

from __future__ import annotations

import hashlib
from functools import wraps

from flask import Response, current_app, g, request, url_for

from ..domain.errors import DomainError
from ..services import idempotency
from ..services.transactions import write_transaction
from .errors import refusal_response

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


def _store(key_id: int, response: Response) -> None:
    headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
    idempotency.complete(key_id, response.status_code, response.get_data(as_text=True), headers)


def _replay(stored: idempotency.StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status, headers=stored.headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def idempotent(view):
    """Run the view at most once per (user, endpoint, key)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request_key()
        if key is None:
            return view(*args, **kwargs)
        # The route's canonical path, so /api/bookings and /api/bookings/ share one scope.
        endpoint = f"{request.method} {url_for(request.endpoint, **(request.view_args or {}))}"
        if request.headers.get("HX-Request") == "true":
            endpoint += " (htmx)"  # a fragment answer is no answer for a plain form post
        claim = idempotency.claim(g.actor.user_id, endpoint, key, request_fingerprint())
        if claim.replay is not None:
            return _replay(claim.replay)
        try:
            # The service's own transaction joins this one, so change and answer commit together.
            with write_transaction(keep_loaded=True):
                response = current_app.make_response(view(*args, **kwargs))
                _store(claim.key_id, response)
            return response
        except DomainError as error:
            # A refusal is an answer too: the same request would be refused the same way.
            response = current_app.make_response(refusal_response(error))
            with write_transaction():
                _store(claim.key_id, response)
            return response
        except BaseException:
            # No answer worth keeping (a fault, not a refusal): free the key so a retry runs.
            try:
                idempotency.release(claim.key_id)
            except Exception:  # noqa: BLE001  (the database may be what failed; the claim times out)
                current_app.logger.warning("could not release idempotency key %s", claim.key_id)
            raise

    return wrapper
