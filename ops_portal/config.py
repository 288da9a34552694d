"""Configuration from the environment (12-factor): DATABASE_URL, SECRET_KEY, ..."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def normalize_database_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class UnsafeConfiguration(RuntimeError):
    """Settings production must not run with; the message says what to set instead."""


def check_production_settings(config) -> None:
    """With OPS_PORTAL_ENV=production, refuse to start rather than run weakened."""
    problems = []
    if not config.get("SECRET_KEY"):
        problems.append(
            "SECRET_KEY is not set: set it to a long random string, the same for every worker "
            "(a key generated per machine would log everyone out on the next one)"
        )
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "")
    if not storage or storage.startswith("memory://"):
        # Empty too: Flask-Limiter then falls back to memory.
        problems.append(
            f"RATELIMIT_STORAGE_URI is {storage or 'empty'}, which keeps failed-login counts in "
            "each worker's memory, so with 4 workers the login limit is 4 times weaker; use "
            "redis://host:6379/0"
        )
    if problems:
        raise UnsafeConfiguration(
            "Ops Portal will not start with OPS_PORTAL_ENV=production: " + "; ".join(problems)
        )


def _secret_key(instance_path: str, production: bool) -> str | None:
    """SECRET_KEY from the environment, else (outside production) one generated once and kept
    in the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    if production:
        return None  # refused by check_production_settings, never made up
    key_file = Path(instance_path) / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def from_environment(instance_path: str) -> dict:
    default_db = "sqlite:///" + str(Path(instance_path) / "ops_portal.sqlite3")
    production = os.environ.get("OPS_PORTAL_ENV", "") == "production"
    return {
        # OPS_PORTAL_ENV=production: HTTPS-only __Host- cookies and HSTS (ops_portal.http.security),
        # and no start with unsafe settings (check_production_settings).
        "PRODUCTION": production,
        "SECRET_KEY": _secret_key(instance_path, production),
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(
            os.environ.get("DATABASE_URL", default_db)
        ),
        # Seconds a SQLite writer waits for the write lock before answering 503.
        "SQLITE_BUSY_TIMEOUT": float(os.environ.get("SQLITE_BUSY_TIMEOUT", "15")),
        # Seconds a repeated Idempotency-Key waits for the first request before answering 409
        # (PostgreSQL; on SQLite a repeat waits for the write lock like any writer).
        "IDEMPOTENCY_WAIT_SECONDS": float(os.environ.get("IDEMPOTENCY_WAIT_SECONDS", "5")),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", str(64 * 1024))),
        # OWASP's argon2id minimum (m=19 MiB, t=2, p=1); tests lower it for speed.
        "ARGON2_TIME_COST": int(os.environ.get("ARGON2_TIME_COST", "2")),
        "ARGON2_MEMORY_COST": int(os.environ.get("ARGON2_MEMORY_COST", str(19 * 1024))),
        "ARGON2_PARALLELISM": 1,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,  # valid for the session: a page left open keeps working
        "DISPLAY_TIMEZONE": os.environ.get("DISPLAY_TIMEZONE", "UTC"),
        # Seconds a provider has to accept or reject an offer before it lapses.
        "OFFER_TIMEOUT_SECONDS": int(os.environ.get("OFFER_TIMEOUT_SECONDS", "300")),
        # Offers a provider lets lapse in a row before they are put off duty.
        "LAPSES_BEFORE_OFF_DUTY": int(os.environ.get("LAPSES_BEFORE_OFF_DUTY", "3")),
        # Failed logins allowed per account and per client address. Memory storage counts per
        # process: with several workers use Redis (RATELIMIT_STORAGE_URI=redis://host:6379/0).
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_LIMIT_PER_ADDRESS": os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "50 per 15 minutes"),
        # Reverse proxies in front of the app whose X-Forwarded-For / -Proto are trusted.
        "TRUSTED_PROXY_HOPS": int(os.environ.get("TRUSTED_PROXY_HOPS", "0")),
        # Live pages (server-sent events, served by gevent workers). Each process's one
        # listener reads the change feed this often on SQLite (PostgreSQL wakes it by NOTIFY,
        # and it reads anyway this often times ten, should a notification be lost).
        "LIVE_POLL_SECONDS": float(os.environ.get("LIVE_POLL_SECONDS", "0.1")),
        # Streams a process holds at most; one more is answered 503 with a random Retry-After.
        "LIVE_MAX_STREAMS": int(os.environ.get("LIVE_MAX_STREAMS", "3000")),
        # A stream ends itself after about this long (the browser reconnects at once).
        "LIVE_STREAM_SECONDS": float(os.environ.get("LIVE_STREAM_SECONDS", "600")),
        "LIVE_HEARTBEAT_SECONDS": float(os.environ.get("LIVE_HEARTBEAT_SECONDS", "15")),
        # A live page still redraws its region this often, as a safety net (0: never); a
        # page whose stream is blocked asks the cheap poll this often instead.
        "LIVE_SAFETY_POLL_SECONDS": int(os.environ.get("LIVE_SAFETY_POLL_SECONDS", "120")),
        "LIVE_FALLBACK_POLL_SECONDS": int(os.environ.get("LIVE_FALLBACK_POLL_SECONDS", "5")),
    }
