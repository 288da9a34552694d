"""Failed logins are limited per account and per client address; the counts can live in Redis
so that every worker process shares them."""

import os
import secrets
import uuid

import pytest
import redis

from ops_portal.domain.lifecycle import Role
from ops_portal.services import accounts
from tests.support.databases import make_app

PASSWORD = "correct horse battery"
REDIS_URL = os.environ.get("OPS_PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def limited_app(database_url, **limits):
    return make_app(database_url, WTF_CSRF_ENABLED=False, **limits)


def log_in(client, email, password, address="127.0.0.1", **headers):
    return client.post(
        "/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


@pytest.fixture
def two_accounts(app):
    for email in ("ana@example.com", "bo@example.com"):
        accounts.create_user(email, email.split("@")[0], Role.CUSTOMER, PASSWORD)


def test_an_account_is_locked_for_a_while_after_too_many_failed_logins(database_url, two_accounts):
    app = limited_app(database_url, LOGIN_LIMIT_PER_ACCOUNT="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert log_in(client, "ana@example.com", "wrong password").status_code == 400
    refused = log_in(client, "ANA@example.com ", PASSWORD)  # the right password, too late
    assert refused.status_code == 429
    assert "Too many failed logins for this account" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    # Other accounts from the same address are not locked out with it.
    assert log_in(app.test_client(), "bo@example.com", PASSWORD).status_code == 303


def test_an_address_is_limited_across_accounts(database_url, two_accounts):
    app = limited_app(database_url, LOGIN_LIMIT_PER_ADDRESS="4 per minute")
    client = app.test_client()
    for n in range(4):
        assert (
            log_in(client, f"guess{n}@example.com", "wrong password", "198.51.100.7").status_code
            == 400
        )
    assert log_in(client, "ana@example.com", PASSWORD, "198.51.100.7").status_code == 429
    assert log_in(client, "ana@example.com", PASSWORD, "198.51.100.8").status_code == 303


def test_successful_logins_do_not_count_against_the_limits(database_url, two_accounts):
    app = limited_app(database_url, LOGIN_LIMIT_PER_ACCOUNT="2 per minute")
    for _ in range(5):
        assert log_in(app.test_client(), "ana@example.com", PASSWORD).status_code == 303


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(database_url, two_accounts):
    untrusted = limited_app(database_url, LOGIN_LIMIT_PER_ADDRESS="2 per minute")
    client = untrusted.test_client()
    for spoofed in ("203.0.113.1", "203.0.113.2"):
        assert (
            log_in(client, "x@example.com", "nope", **{"X-Forwarded-For": spoofed}).status_code
            == 400
        )
    # A forged header does not buy a fresh allowance: both attempts counted for 127.0.0.1.
    assert (
        log_in(
            client, "ana@example.com", PASSWORD, **{"X-Forwarded-For": "203.0.113.3"}
        ).status_code
        == 429
    )

    behind_proxy = limited_app(
        database_url, LOGIN_LIMIT_PER_ADDRESS="2 per minute", TRUSTED_PROXY_HOPS=1
    )
    client = behind_proxy.test_client()
    for _ in range(2):
        assert (
            log_in(
                client, "x@example.com", "nope", **{"X-Forwarded-For": "203.0.113.1"}
            ).status_code
            == 400
        )
    blocked = log_in(client, "ana@example.com", PASSWORD, **{"X-Forwarded-For": "203.0.113.1"})
    assert blocked.status_code == 429
    other_client = log_in(client, "ana@example.com", PASSWORD, **{"X-Forwarded-For": "203.0.113.2"})
    assert other_client.status_code == 303


def test_redis_storage_shares_the_counts_between_worker_processes(database_url, two_accounts):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("OPS_PORTAL_TEST_REDIS_URL"):
            raise
        pytest.skip(f"no Redis at {REDIS_URL}")
    # Its own account and client address, so its counters in the shared Redis are its alone
    # (the per-address count of 127.0.0.1 would otherwise grow with every run on this host).
    email = f"redis-{uuid.uuid4().hex[:12]}@example.com"
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    accounts.create_user(email, "Redis test", Role.CUSTOMER, PASSWORD)
    shared = {"RATELIMIT_STORAGE_URI": REDIS_URL, "LOGIN_LIMIT_PER_ACCOUNT": "2 per minute"}
    worker_one = limited_app(database_url, **shared)
    worker_two = limited_app(database_url, **shared)  # another process, the same Redis

    def client_of(worker):
        client = worker.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client

    assert log_in(client_of(worker_one), email, "nope").status_code == 400
    assert log_in(client_of(worker_two), email, "nope").status_code == 400
    assert log_in(client_of(worker_one), email, PASSWORD).status_code == 429
