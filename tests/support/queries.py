"""Counting the SQL an app sends, for the tests that hold a read to a fixed number of queries."""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from ops_portal.extensions import db


@contextmanager
def counted_statements():
    """Every statement the engine sends while the block runs (BEGINs included). The test's own
    session is rolled back and expired first, so every measurement starts from the same state:
    nothing cached, no transaction open."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(statement)

    db.session.rollback()
    db.session.expire_all()
    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
