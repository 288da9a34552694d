"""Fixtures of the page tests (tests/http/test_page*.py), defined in page_support."""

from tests.http.page_support import auth, login, people  # noqa: F401
