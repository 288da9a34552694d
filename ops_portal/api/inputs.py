"""Parsing API request bodies: strict about types, clear about what is wrong."""

from __future__ import annotations

import json
from datetime import datetime

from flask import request

from ..domain.errors import InvalidInput, NotPermitted
from ..domain.lifecycle import Actor


def json_body(allowed: set[str]) -> dict:
    """The body as a JSON object ({} when empty), with only known fields."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The body is not valid JSON") from None
    except RecursionError:  # e.g. 60,000 "[" fit under MAX_CONTENT_LENGTH
        raise InvalidInput("The body is nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object")
    unknown = sorted(set(body) - allowed - {"actor_role", "actor_id"})
    if unknown:
        raise InvalidInput(
            f"Unknown field(s): {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}"
        )
    return body


def check_body_actor(body: dict, actor: Actor) -> None:
    """The seed's actor_role / actor_id fields are accepted only when they match the token."""
    if "actor_role" in body:
        role = body["actor_role"]
        if not isinstance(role, str):
            raise InvalidInput("actor_role must be text")
        if role.strip().upper() != actor.role:
            raise NotPermitted(f"actor_role {role!r} does not match your credentials ({actor.role})")
    if "actor_id" in body:
        actor_id = body["actor_id"]
        if actor_id is not None and (isinstance(actor_id, bool) or not isinstance(actor_id, int)):
            raise InvalidInput("actor_id must be an integer")
        if actor_id != actor.user_id:
            raise NotPermitted(f"actor_id {actor_id} does not match your credentials")


def optional_int(body: dict, field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer")
    return value


def optional_text(body: dict, field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field} must be text")
    return value


def optional_datetime(body: dict, field: str) -> datetime | None:
    value = optional_text(body, field)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 date and time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field} must include a time zone offset, e.g. 2026-05-01T09:00:00+00:00")
    return parsed


def expected_version(body: dict) -> int | None:
    """The version the client acted on: the body's `version` or an If-Match header."""
    from_body = optional_int(body, "version")
    header = request.headers.get("If-Match")
    from_header = None
    if header:
        text = header.strip()
        if text.startswith("W/"):
            text = text[2:]
        text = text.strip('"')
        if not text.isdigit():
            raise InvalidInput(f"If-Match must be a booking version number, got {header!r}")
        from_header = int(text)
    if from_body is not None and from_header is not None and from_body != from_header:
        raise InvalidInput("version and If-Match disagree")
    return from_body if from_body is not None else from_header
