"""The lifecycle model of tests/services/test_state_machine.py, driven through the JSON API:
the same rules, actors, model and invariants, but every step is a real
request with the Flask test client and the actor's bearer token, and the predicted refusal is
the HTTP status the API answers. A success must answer 200/201 with the booking as the model
has it (status, provider, version).

The system actor is a SYSTEM account with a token here (the API has no tokenless automation).
Same profiles: bounded by default, OPS_PORTAL_LONG_PROPERTIES=1 for a long hunt.
"""

from __future__ import annotations

from hypothesis.stateful import run_state_machine_as_test

from ops_portal.extensions import db
from tests.services import test_state_machine as sm


def make_api_machine(app):
    client = app.test_client()
    base = sm.make_machine(app)

    class ApiLifecycleMachine(base):
        use_system_account = True

        def _post(self, who, path, body):
            db.session.rollback()
            response = client.post(
                path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"}
            )
            db.session.rollback()
            assert response.status_code < 500, (path, body, response.get_json())
            return response

        def call_create(self, who):
            response = self._post(who, "/api/bookings", {"service": "Fix it", "address": "1 St"})
            if response.status_code == 201:
                return response.get_json()["id"], None
            assert response.get_json()["detail"]
            return None, response.status_code

        def call_action(self, who, booking_id, action, provider_id, reason, version):
            body = {}
            if provider_id is not None:
                body["provider_id"] = provider_id
            if reason is not None:
                body["reason"] = reason
            if version is not None:
                body["version"] = version
            response = self._post(who, f"/api/bookings/{booking_id}/{action.value}", body)
            if response.status_code == 200:
                answer = response.get_json()
                row = sm.RULES_BY_HAND[action]
                assert answer["status"] == row.target, answer
                assert answer["version"] == self.model[booking_id].version + 1, answer
                if row.takes_provider:
                    assert answer["provider_id"] == provider_id, answer
                return None
            assert response.get_json()["detail"], response.get_json()
            return response.status_code

    return ApiLifecycleMachine


def test_lifecycle_state_machine_through_api(app):
    machine = make_api_machine(app)
    sm.OUTCOMES.clear()
    run_state_machine_as_test(machine, settings=sm.SETTINGS)
    print(f"\napi state machine: {sm.OUTCOMES['steps']} steps;", dict(sorted(sm.OUTCOMES.items())))
    assert sm.OUTCOMES["accept -> ok"] > 0
