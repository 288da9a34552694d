"""HTTP hardening: security headers on every response, production cookie settings."""

from __future__ import annotations

from flask import Flask

# No inline script or style anywhere (htmx is configured not to inject its indicator style and
# not to eval), so the policy can be strict.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
HSTS = "max-age=31536000; includeSubDomains"


def production_cookie_config() -> dict:
    """Cookies only over HTTPS, under __Host- names (bound to this host, path /, Secure)."""
    return {
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_NAME": "__Host-session",
        "REMEMBER_COOKIE_SECURE": True,
        "REMEMBER_COOKIE_NAME": "__Host-remember_token",
        "PREFERRED_URL_SCHEME": "https",
        "HSTS_ENABLED": True,
    }


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config.get("HSTS_ENABLED"):
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
