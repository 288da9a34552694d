"""Fixtures of the page tests (defined in page_support) and of the real-server tests (defined in
test_concurrency)."""

from tests.http.page_support import auth, login, people  # noqa: F401
from tests.http.test_concurrency import server, start_server  # noqa: F401
