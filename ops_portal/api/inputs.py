"""Parsing API requests: strict about types, clear about what is wrong. The bodies' shapes are
the marshmallow schemas in `schemas`; this module reads the raw JSON and words the errors."""

from __future__ import annotations

import json

from flask import request
from webargs.flaskparser import FlaskParser

from ..domain.errors import InvalidInput, NotPermitted
from ..domain.lifecycle import Actor
from ..domain.numbers import LARGEST_ID, is_ascii_digits, parse_whole_number


def json_object() -> dict:
    """The body as a JSON object ({} when empty), whatever Content-Type the client sent."""
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
    return body


def _problems(messages, prefix: str = "") -> list[str]:
    """marshmallow's nested messages as "field: message" lines."""
    if isinstance(messages, dict):
        return [
            line
            for key, value in messages.items()
            for line in _problems(
                value, f"{prefix}{key}." if key not in ("json", "query") else prefix
            )
        ]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix.rstrip('.')}: {' '.join(messages)}" if prefix else " ".join(messages)]
    return [line for item in messages for line in _problems(item, prefix)]


class ApiArgumentsParser(FlaskParser):
    """Reads bodies as JSON regardless of Content-Type (as the API always has) and turns
    validation errors into InvalidInput, so they answer 400 through the one error handler."""

    def load_json(self, req, schema):
        return json_object()

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        problems = _problems(error.messages)
        accepted = sorted(name for name, field in schema.fields.items() if not field.dump_only)
        if any("Unknown field" in line for line in problems):
            problems.append(f"accepted fields: {', '.join(accepted)}")
        raise InvalidInput("; ".join(problems))


def check_body_actor(body: dict, actor: Actor) -> None:
    """The actor_role / actor_id fields older clients send are accepted only when they match the
    token: identity comes from the credentials, never from the body."""
    if "actor_role" in body and (body["actor_role"] or "").strip().upper() != actor.role:
        raise NotPermitted(
            f"actor_role {body['actor_role']!r} does not match your credentials ({actor.role})"
        )
    if "actor_id" in body and body["actor_id"] != actor.user_id:
        raise NotPermitted(f"actor_id {body['actor_id']} does not match your credentials")


def expected_version(body: dict) -> int | None:
    """The version the client acted on: the body's `version` or an If-Match header."""
    from_body = body.get("version")
    header = request.headers.get("If-Match")
    from_header = None
    if header and header.strip() != "*":  # "*": any current version will do (RFC 9110)
        text = header.strip()
        text = text.removeprefix("W/")
        text = text.strip('"')
        if not is_ascii_digits(text):
            raise InvalidInput(f"If-Match must be a booking version number, got {header!r}")
        from_header = parse_whole_number(text, field="If-Match", ceiling=LARGEST_ID)
    if from_body is not None and from_header is not None and from_body != from_header:
        raise InvalidInput("version and If-Match disagree")
    return from_body if from_body is not None else from_header
