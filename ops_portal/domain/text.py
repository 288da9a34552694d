"""What free text a person may type: any Unicode except control characters (tab and newline
aside). NUL in particular is refused by PostgreSQL with a driver error, and the others (bell,
escape sequences, DEL, C1) have no business in names, addresses, notes or reasons."""

from __future__ import annotations

import unicodedata

ALLOWED_CONTROLS = frozenset("\n\t")
# Longest accepted free text per field: the service enforces them, the page forms and the API's
# schemas (and so the OpenAPI document) state the same numbers.
MAX_LENGTHS = {
    "service": 80,
    "address": 300,
    "notes": 2000,
    "customer_name": 120,
    "customer_phone": 32,
    "reason": 500,
}


def normalize_newlines(value: str) -> str:
    """Browsers send every newline typed into a <textarea> as CRLF: store it as "\\n"."""
    return value.replace("\r\n", "\n")


def has_control_characters(value: str) -> bool:
    """Any character of Unicode category Cc (C0, DEL, C1) other than tab and newline."""
    return any(unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROLS for ch in value)


def fold(value: str) -> str:
    """Text as a search compares it: case and accents set aside ("Zoë" and "ZOE" are alike)."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
