"""The fixtures and helpers of the tests live in tests/support/. Every module there is a plugin,
in this order (each may import the ones before it), so pytest rewrites their asserts too."""

pytest_plugins = [
    "tests.support.databases",
    "tests.support.people",
    "tests.support.builders",
    "tests.support.queries",
    "tests.support.pages",
    "tests.support.api",
    "tests.support.server",
    "tests.support.browser",
]
