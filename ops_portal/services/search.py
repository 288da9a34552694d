"""Finding bookings by what a person types: a where-clause for `select(Booking)` (or of its
columns).

The text is read as words: runs of letters and digits, which punctuation separates as spaces
do ("O'Brien" is "O" and "Brien", "olive@example.com" is "olive", "example" and "com"); a part
of the text between spaces without a letter or digit ("%", "&") is looked for as it is. A
booking matches when every word (and every such part) is found in one of its customer's name (as
on the booking), its customer's email, its service, its address or its current provider's name;
and, when the whole text is a booking number ("42" or "#42"), the booking with that id matches
too. Case and diacritics are ignored ("zoe" finds "Zoë", "ÜNAL" finds "Ünal"): the database
folds the words with the same function as the text it searches.

SQLite finds a word at the start of a word of the text ("mil" finds "Mill Lane"), through the
FTS5 table booking_search; PostgreSQL finds it anywhere ("ill" finds it too), through a trigram
index on each booking's folded search text (bookings.search_text). Migration 0004 builds both,
and triggers keep them in step with the bookings and users they are made from.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..domain.numbers import LARGEST_ID, is_ascii_digits, parse_whole_number
from ..extensions import db
from ..models import Booking

# Words past these are ignored or cut short: each word costs the database a lookup, and a long
# word's beginning already narrows the search as far as it can go.
MAX_WORDS = 8
MAX_WORD_LENGTH = 40
# PostgreSQL's trigram index finds a word of three characters or more; a shorter one only
# filters the bookings the others found.
MIN_INDEXED_LENGTH = 3
# SQLite reads a page of a list either by looking up every match and sorting them (~1 us a
# match), or by walking the index of the list's order and checking each booking it passes
# against the matches (~0.1 us a booking), which stops at the end of the page. With m matches
# among N bookings a page of 20 passes about 20 N / m of them: the walk is the cheaper from
# about sqrt(2 N) matches (630 of 200,000 bookings). Its worst case, the matches all at the
# far end of the order, passes every booking (~20 ms for 200,000).
WALK_FROM = 1_000

# The schema objects of the search index that migration 0004 builds and no model describes: the
# FTS5 table and the shadow tables FTS5 keeps for it (SQLite); the folded search text of each
# booking and its trigram index (PostgreSQL; only the triggers write the column and only this
# module reads it, by name, so the models and the ORM's reads leave it out). Comparing the
# migrated schema with the models (autogenerate in migrations/env.py, and
# tests/test_migrations.py) leaves out exactly these.
INDEX_OBJECTS = frozenset(
    {
        *(
            ("table", f"booking_search{shadow}")
            for shadow in ("", "_config", "_content", "_data", "_docsize", "_idx")
        ),
        ("column", "search_text"),
        ("index", "ix_bookings_search_text_trgm"),
    }
)


def not_an_index_object(_object, name, type_, _reflected, _compare_to) -> bool:
    """Alembic's include_object: everything but INDEX_OBJECTS."""
    return (type_, name) not in INDEX_OBJECTS


booking_search = sa.table(
    "booking_search",
    sa.column("rowid"),
    *(
        sa.column(name)
        for name in ("customer_name", "customer_email", "service", "address", "provider_name")
    ),
)


@dataclass(frozen=True)
class Term:
    text: str
    is_word: bool  # letters and digits; else characters without case, looked for as typed


def search_terms(text: str) -> list[Term]:
    """The words of `text`, and its parts between spaces that have none, at most MAX_WORDS."""
    terms = []
    for part in text.split():
        words = "".join(c if _in_a_word(c) else " " for c in part).split()
        terms.extend([Term(w, True) for w in words] if words else [Term(part, False)])
    return [Term(t.text[:MAX_WORD_LENGTH], t.is_word) for t in terms[:MAX_WORDS]]


def _in_a_word(character: str) -> bool:
    # As FTS5's unicode61 tokenizer reads words: letters, numbers, private-use characters, and
    # the marks that combine with them.
    category = unicodedata.category(character)
    return category[0] in "LNM" or category == "Co"


def booking_matches(text: str) -> ColumnElement[bool]:
    """Where-clause: the booking matches `text` (see the module's docstring). Text without
    words matches every booking."""
    return _matches(text.strip(), walk=False)


def matching_ids(text: str, *filters, in_order_of: int | None = None) -> sa.Select:
    """select(Booking.id) of the bookings that match `text` and every filter, written for the
    way the database had best find them. `in_order_of`: the select is to be ordered and
    limited (a page of a list), and this is how many bookings the select finds (as counted
    without it; at least this many, when the count stopped at a cap); otherwise it is
    counted.

    PostgreSQL's planner estimates from its statistics how many bookings a word finds, and
    walks the index of the ORDER BY or collects the matches and sorts them as suits. SQLite
    cannot tell how many rows an FTS5 query finds. It takes the matches from FTS5 and looks
    each booking up by id, checking the filters on it (written so that no index serves them:
    without statistics SQLite would rather scan a status's index, 20 ms for a rare name),
    unless `in_order_of` is WALK_FROM or more: it then walks the index of the ORDER BY (the
    filters may choose it) and checks each booking it passes against the matches, read once."""
    text = text.strip()
    terms = search_terms(text)
    if not terms or db.session.get_bind().dialect.name == "postgresql":
        return sa.select(Booking.id).where(*filters, booking_matches(text))
    if in_order_of is not None and in_order_of >= WALK_FROM:
        return sa.select(Booking.id).where(*filters, _matches(text, walk=True))
    filters = [_unindexed(f) for f in filters]
    if _booking_number(text) is not None:  # the match or that booking: a where-clause
        return sa.select(Booking.id).where(*filters, _matches(text, walk=False))
    # Joined, FTS5 hands SQLite the matches one at a time and a count stops at its cap; an
    # IN (...) list would collect them all first (30 ms for a word in every booking).
    return (
        sa.select(Booking.id)
        .join_from(booking_search, Booking, Booking.id == booking_search.c.rowid)
        .where(*_sqlite_conditions(terms), *filters)
    )


def _matches(text: str, *, walk: bool) -> ColumnElement[bool]:
    terms = search_terms(text)
    if not terms:
        return sa.true()
    if db.session.get_bind().dialect.name == "postgresql":
        matches = _postgres_match(terms)
    else:
        # SQLite: `walk` keeps the bookings from being looked up by these ids (matching_ids).
        matches = (_unindexed(Booking.id) if walk else Booking.id).in_(_sqlite_search(terms))
    booking_id = _booking_number(text)
    return matches if booking_id is None else sa.or_(Booking.id == booking_id, matches)


def _booking_number(text: str) -> int | None:
    """The booking the whole text names by its number ("42" or "#42"), if it does."""
    number = text.removeprefix("#")
    if not is_ascii_digits(number):
        return None
    booking_id = parse_whole_number(number, field="search")
    # A number past the largest id names no booking (and would not fit the column).
    return booking_id if booking_id <= LARGEST_ID else None


# ------------------------------------------------------------------------------------- SQLite


def _sqlite_search(terms: list[Term]) -> sa.Select:
    """The ids of the matching bookings."""
    return sa.select(booking_search.c.rowid).where(*_sqlite_conditions(terms))


def _sqlite_conditions(terms: list[Term]) -> list[ColumnElement[bool]]:
    """One FTS5 query of the words, each quoted as an FTS5 string (nothing typed is ever FTS5
    syntax) and made a prefix: `"zoe"* "mill"*`. FTS5's tokenizer folds case and diacritics.
    Other terms are looked for as typed in the same table (their characters have no case)."""
    conditions = []
    words = [term.text for term in terms if term.is_word]
    if words:
        query = " ".join('"{}"*'.format(word.replace('"', '""')) for word in words)
        conditions.append(sa.literal_column("booking_search").op("MATCH")(query))
    texts = [column for column in booking_search.c if column.name != "rowid"]
    for term in terms:
        if not term.is_word:
            conditions.append(sa.or_(*(sa.func.instr(c, term.text) > 0 for c in texts)))
    return conditions


def _unindexed(expression: ColumnElement) -> ColumnElement:
    """The same value, which SQLite uses no index for: unary + makes it an expression."""
    return UnaryExpression(expression, operator=custom_op("+"), type_=expression.type)


# --------------------------------------------------------------------------------- PostgreSQL

# Each booking's customer name, customer email, service, address and provider name, folded as
# the words are, one a line; kept by triggers, under a trigram index (migration 0004).
SEARCH_TEXT = sa.literal_column("bookings.search_text", sa.Text)


def _fold(value) -> ColumnElement[str]:
    return sa.func.ops_portal_fold(value, type_=sa.String)


def _postgres_match(terms: list[Term]) -> ColumnElement[bool]:
    """Every term in the booking's search text. A term long enough to have trigrams is found
    through the index (LIKE); a shorter one has none to look up, and is checked (strpos, which
    the index cannot answer, so the planner never asks it to) on the bookings the others
    found, or as a list's order reaches them."""
    conditions = []
    for term in terms:
        folded = _fold(sa.literal(term.text, sa.String))
        if _folded_length(term.text) >= MIN_INDEXED_LENGTH:
            conditions.append(SEARCH_TEXT.like(_anywhere(folded), escape="\\"))
        else:
            conditions.append(sa.func.strpos(SEARCH_TEXT, folded) > 0)
    return sa.and_(*conditions)


def _folded_length(term: str) -> int:
    """The term's length once folded, as near as Python tells: without combining marks, and
    ligatures apart, as unaccent does ("o" and a combining diaeresis fold to one letter)."""
    return sum(1 for c in unicodedata.normalize("NFKD", term) if not unicodedata.combining(c))


def _anywhere(folded: ColumnElement[str]) -> ColumnElement[str]:
    """LIKE's pattern for the folded term anywhere, escaped after folding (folding may turn
    "℅" into "c/o"), so that % and _ match themselves."""
    for character in ("\\", "%", "_"):
        folded = sa.func.replace(folded, character, "\\" + character, type_=sa.String)
    return sa.literal("%") + folded + sa.literal("%")
