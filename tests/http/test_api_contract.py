"""The published contract: the OpenAPI document flask-smorest generates is served
with its page, and Schemathesis fuzzes every operation against it — valid and invalid bodies,
parameters and headers — on both databases: never a 5xx, and every answer (status, headers,
body) must be one the document promises."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import PositiveDataAcceptanceConfig

from ops_portal.domain.lifecycle import BOOKING_ACTIONS, LIFECYCLE, Action, Role, Status
from ops_portal.extensions import db
from tests.support.builders import booking_in
from tests.support.databases import make_app

# The document does not depend on the database; the calls go to each test's own app.
contract = schemathesis.openapi.from_wsgi("/api/openapi.json", make_app("sqlite://"))
# Schema-valid requests may still be refused for reasons no schema can hold, and the document
# says so: 400 when the lifecycle does not allow the action from the booking's current status
# (or the window ends before it starts), 422 when a generated Idempotency-Key repeats with another
# body. Every other check runs as shipped: no 5xx, only documented statuses, headers and bodies,
# and schema-invalid requests must be refused.
contract.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "400", "401", "403", "404", "409", "422"]
)
contract.config.generation.update(max_examples=20)


@pytest.fixture
def seeded(cast):
    # A booking in every status, so generated ids find real bookings as well as missing ones
    # (the two active ones with different providers: one provider, one active booking).
    for status in Status:
        if status not in (Status.ASSIGNED, Status.IN_PROGRESS):
            booking_in(cast, status)
    booking_in(cast, Status.ASSIGNED)
    booking_in(cast, Status.IN_PROGRESS, provider=cast.other_provider)
    return cast


REQUESTS_SENT = Counter()  # per backend, printed with -s: how much the fuzzing really did


@pytest.fixture(scope="module", autouse=True)
def report_requests_sent():
    yield
    for backend, sent in sorted(REQUESTS_SENT.items()):
        print(f"\nschemathesis: {sent} requests on {backend} answered within the contract")


CALLER_FOR_ROLE = {
    Role.CUSTOMER: "owner",
    Role.PROVIDER: "provider",
    Role.ADMIN: "admin",
    Role.SYSTEM: "system",
}


def caller(case) -> str:
    """Someone the operation is meant for (from the lifecycle table), so the fuzzing reaches
    past the permission check: the owner creates and cancels, the provider accepts, …"""
    if case.method == "POST" and case.path == "/api/bookings/":
        return "owner"
    last = case.path.rsplit("/", 1)[-1]
    if case.method == "POST" and last in {a.value for a in BOOKING_ACTIONS}:
        roles = LIFECYCLE[Action(last)].roles
        return next(
            CALLER_FOR_ROLE[r]
            for r in (Role.ADMIN, Role.PROVIDER, Role.CUSTOMER, Role.SYSTEM)
            if r in roles
        )
    return "admin"


@contract.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case, app, seeded):
    # Calls go to this test's app (its own database); the document is the same for every app.
    case.operation.app = case.operation.schema.app = app
    token = seeded.tokens[caller(case)]
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
    REQUESTS_SENT[db.engine.dialect.name] += 1


# ------------------------------------------------------------------ the document and its page


def api_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")]


def openapi_path(rule) -> str:
    return rule.rule.replace("<int:", "{").replace(">", "}")


def test_the_document_covers_every_api_route_and_is_public(client):
    answer = client.get("/api/openapi.json")  # no token: the contract is public
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    document = answer.get_json()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for rule in api_rules(client.application):
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = document["paths"][openapi_path(rule)][method.lower()]
            assert "500" not in operation["responses"], rule.rule
            for status in ("401", "503"):
                assert status in operation["responses"], f"{method} {rule.rule} omits {status}"


def test_each_actions_body_is_derived_from_its_rule(client):
    document = client.get("/api/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    for action in BOOKING_ACTIONS:
        rule = LIFECYCLE[action]
        operation = document["paths"][f"/api/bookings/{{booking_id}}/{action.value}"]["post"]
        body = schemas[
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit(
                "/", 1
            )[-1]
        ]
        assert ("provider_id" in body["properties"]) is rule.takes_provider, action
        # Required-by-the-rule is said in words: the service checks it after who may act.
        if rule.takes_provider:
            assert "Required" in body["properties"]["provider_id"]["description"], action
        assert ("Required" in body["properties"]["reason"]["description"]) is rule.reason_required
        assert body["additionalProperties"] is False
        assert rule.target.value in operation["summary"]


def test_the_reference_page_lists_every_operation_without_a_token(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for rule in api_rules(client.application):
        assert openapi_path(rule) in html, rule.rule
    assert "MarkFailedBody" in html and "Idempotency-Key" in html
    assert "<script>" not in html  # nothing inline for the CSP to refuse


def test_api_errors_name_their_kind_for_machines(api, client):
    refused = api.post("/api/bookings/", as_="owner", json={"service": 5})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_input"
    assert "service" in refused.get_json()["detail"]
    assert client.get("/api/bookings/1").get_json()["error"] == "not_authenticated"
