"""What the tests share: fixtures and helpers, loaded by tests/conftest.py through
`pytest_plugins` (so pytest rewrites the asserts of every module here) and imported by name by
the test modules."""
