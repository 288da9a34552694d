"""The API's published contract: the OpenAPI document flask-smorest generates from the API
blueprint's routes and schemas, served at /api/openapi.json, and a page that presents it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, render_template
from flask_smorest import Api
from markupsafe import Markup, escape

from .schemas import ErrorSchema

API_SPEC = {
    "API_TITLE": "Ops Portal API",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "The booking lifecycle of Ops Portal. Every request carries "
            "`Authorization: Bearer <token>` (`flask users token EMAIL` issues one). Errors are "
            "JSON: `error` names the kind for machines, `detail` says it in words.",
        },
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    },
}

docs = Blueprint("api_docs", __name__, url_prefix="/api")


class OpenApi(Api):
    """flask-smorest's Api without its own error handler: ops_portal.http.errors answers every
    error, the API's included, so the document's ErrorSchema is what clients really get."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # every answer an operation gives is listed explicitly

    def _register_error_handlers(self):
        pass

    def _register_pagination_header(self):
        pass  # the API does not paginate; keep smorest's pagination schema out of the document


def register_api(app: Flask) -> None:
    from .views import api

    for key, value in API_SPEC.items():
        app.config.setdefault(key, value)
    openapi = OpenApi(app)
    openapi.register_blueprint(api)
    app.extensions["ops_portal.openapi"] = openapi
    app.register_blueprint(docs)


def current_spec() -> dict:
    return current_app.extensions["ops_portal.openapi"].spec.to_dict()


# ------------------------------------------------------------------ the document as a page


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Field]
    body: str | None  # the request body's schema name
    responses: list[tuple[str, str, str]]  # status, description, what the body is


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(prop: dict) -> str:
    """A property's type in words: "integer", "string (date-time)", "Booking", "list of Event"."""
    if "$ref" in prop:
        return _ref_name(prop["$ref"])
    if "allOf" in prop:
        return " and ".join(type_of(part) for part in prop["allOf"])
    if prop.get("type") == "array":
        return f"list of {type_of(prop.get('items', {}))}"
    text = prop.get("type", "any")
    if "format" in prop:
        text += f" ({prop['format']})"
    if "enum" in prop:
        text = "one of " + ", ".join(str(v) for v in prop["enum"] if v is not None)
    if "pattern" in prop:
        text += f" matching {prop['pattern']}"
    if prop.get("nullable"):
        text += " or null"
    return text


def fields_of(schema: dict) -> list[Field]:
    required = set(schema.get("required", ()))
    return [
        Field(name, type_of(prop), name in required, prop.get("description", ""))
        for name, prop in schema.get("properties", {}).items()
    ]


def operations(spec: dict) -> list[Operation]:
    found = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            parameters = [
                Field(
                    f"{p['name']} ({p['in']})",
                    type_of(p.get("schema", {})),
                    p.get("required", False),
                    p.get("description", ""),
                )
                for p in [*shared, *op.get("parameters", [])]
            ]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            responses = [
                (
                    status,
                    answer.get("description", ""),
                    type_of(answer.get("content", {}).get("application/json", {}).get("schema", {}))
                    if answer.get("content")
                    else "",
                )
                for status, answer in sorted(op["responses"].items())
            ]
            found.append(
                Operation(
                    method.upper(),
                    path,
                    op.get("summary", ""),
                    op.get("description", ""),
                    parameters,
                    type_of(body["schema"]) if body else None,
                    responses,
                )
            )
    return found


@docs.app_template_filter("inline_code")
def inline_code(text: str) -> Markup:
    """The document's `backticked` words as <code>, everything else escaped."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


@docs.get("/docs")
def api_reference():
    """The OpenAPI document as a page (server-rendered: no CDN script, nothing for the CSP)."""
    spec = current_spec()
    return render_template(
        "api/docs.html",
        spec=spec,
        operations=operations(spec),
        objects={name: fields_of(schema) for name, schema in spec["components"]["schemas"].items()},
    )
