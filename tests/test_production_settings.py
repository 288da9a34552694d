"""OPS_PORTAL_ENV=production refuses to start with settings that would quietly weaken it: no
explicit SECRET_KEY (a key made up per machine logs everyone out on the next one), or login
limits counted in memory (per worker process: with 4 workers the limit is 4 times weaker).
With safe settings it starts, with Secure __Host- cookies and HSTS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops_portal import create_app
from ops_portal.config import UnsafeConfiguration

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("OPS_PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def production(monkeypatch, tmp_path):
    """The environment of a production start, in a folder of its own; tests add or remove
    the settings under test."""
    for name in ("SECRET_KEY", "RATELIMIT_STORAGE_URI", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPS_PORTAL_ENV", "production")
    monkeypatch.setenv("OPS_PORTAL_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ops.sqlite3'}")
    return monkeypatch


def test_production_without_a_secret_key_or_shared_limits_refuses_to_start(production, tmp_path):
    with pytest.raises(UnsafeConfiguration) as refused:
        create_app()

    message = str(refused.value)
    assert "OPS_PORTAL_ENV=production" in message
    assert "SECRET_KEY is not set" in message
    assert "RATELIMIT_STORAGE_URI is memory://" in message and "redis://" in message
    assert not (tmp_path / "instance" / "secret_key").exists(), "no key may be made up"


@pytest.mark.parametrize("storage", ["memory://", "", None], ids=["memory", "empty", "unset"])
def test_production_with_a_key_but_per_process_limits_names_only_the_limits(production, storage):
    production.setenv("SECRET_KEY", "a-long-random-production-secret")
    if storage is not None:  # empty: Flask-Limiter would fall back to memory
        production.setenv("RATELIMIT_STORAGE_URI", storage)

    with pytest.raises(UnsafeConfiguration) as refused:
        create_app()

    assert "RATELIMIT_STORAGE_URI" in str(refused.value)
    assert "SECRET_KEY" not in str(refused.value)


def test_production_with_safe_settings_starts_with_secure_cookies_and_hsts(production):
    production.setenv("SECRET_KEY", "a-long-random-production-secret")
    production.setenv("RATELIMIT_STORAGE_URI", REDIS_URL)

    app = create_app()

    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_outside_production_a_generated_key_and_memory_limits_are_fine(monkeypatch, tmp_path):
    for name in ("SECRET_KEY", "RATELIMIT_STORAGE_URI", "OPS_PORTAL_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPS_PORTAL_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ops.sqlite3'}")

    app = create_app()

    assert app.config["SECRET_KEY"] == (tmp_path / "instance" / "secret_key").read_text()
    assert app.instance_path == str(tmp_path / "instance")


def test_the_command_line_says_why_it_will_not_start(production):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "ops_portal", "routes"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "will not start with OPS_PORTAL_ENV=production" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_demo_data_is_refused_in_production_and_reset_deletes_nothing(production, tmp_path):
    production.setenv("SECRET_KEY", "a-long-random-production-secret")
    production.setenv("RATELIMIT_STORAGE_URI", REDIS_URL)
    flask = [sys.executable, "-m", "flask", "--app", "ops_portal"]
    run = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 120}
    assert subprocess.run([*flask, "db", "upgrade"], env=dict(os.environ), **run).returncode == 0
    made = subprocess.run(
        [*flask, "users", "create", "ana@example.com", "--name", "Ana", "--role", "ADMIN"],
        env=dict(os.environ),
        **run,
    )
    assert made.returncode == 0, made.stderr

    for command in (["demo"], ["demo", "--reset"]):
        refused = subprocess.run([*flask, *command], env=dict(os.environ), **run)
        assert refused.returncode != 0
        assert "demo data is refused with OPS_PORTAL_ENV=production" in refused.stderr

    app = create_app()
    with app.app_context():
        from ops_portal.services import accounts

        assert accounts.user_by_email("ana@example.com") is not None  # nothing was wiped
        assert accounts.user_by_email("admin@example.com") is None  # no demo accounts
