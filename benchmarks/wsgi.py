"""The app as the benchmark serves it: `ops_portal.create_app()`, with the SQL statements of each
request counted into an `X-Bench-Statements` response header.

Counting hooks every SQLAlchemy engine (`before_cursor_execute` on the Engine class): every
statement sent to the database while a request is served, SQLite's explicit BEGINs included.
The count lives in a context variable, so the threads of a gthread worker count apart.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path

import sqlalchemy as sa

from ops_portal import create_app

HEADER = "X-Bench-Statements"
# The statements of the request being served in this thread (None outside a request).
_statements: ContextVar[list[str] | None] = ContextVar("bench_statements", default=None)


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _record(_conn, _cursor, statement, _parameters, _context, _executemany):
    statements = _statements.get()
    if statements is not None:
        statements.append(statement)


class CountStatements:
    """WSGI middleware: the request's statements, counted into the HEADER; each request's
    (method, path, statements) also goes to `sink` when one is given (to print them)."""

    def __init__(self, wsgi_app, sink: list | None = None):
        self.wsgi_app = wsgi_app
        self.sink = sink

    def __call__(self, environ, start_response):
        statements: list[str] = []
        token = _statements.set(statements)

        def counted(status, headers, exc_info=None):
            # Flask starts the response once the view has run: the count is complete here.
            headers.append((HEADER, str(len(statements))))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, counted)
        finally:
            _statements.reset(token)
            if self.sink is not None:
                self.sink.append(
                    (environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), statements)
                )


def counted_app(config: dict | None = None):
    app = create_app(config)
    app.wsgi_app = CountStatements(app.wsgi_app)
    return app


app = counted_app()

# Each gunicorn worker imports this module itself (no --preload): a mark per worker that has
# loaded the app, so benchmarks.server knows when every one of them is ready.
if os.environ.get("BENCH_READY_DIR"):
    (Path(os.environ["BENCH_READY_DIR"]) / str(os.getpid())).touch()
