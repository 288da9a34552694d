"""Whole numbers as URLs, forms and headers carry them: ASCII digits only.

`str.isdigit()` and `int()` also accept other scripts' digits ("１", "٣"), and `int()` reads
" 7 " and "1_000" too; nothing of ours ever writes those, so they are refused rather than read
as a second spelling of a number (`/bookings/１` is not booking 1). `isdigit()` even accepts "²",
which `int()` then refuses with an error no caller expects."""

from __future__ import annotations

from .errors import InvalidInput

# Ids are 32-bit integer columns: a larger one cannot exist (404, not a driver error).
LARGEST_ID = 2**31 - 1
# Larger than any number a caller could mean (and than every ceiling); int() refuses numbers of
# more than 4,300 digits, so a longer text reads as this without being converted.
BEYOND_ANY = 10**100


def is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_whole_number(text: str, *, field: str, ceiling: int = BEYOND_ANY) -> int:
    """The number `text` writes, in ASCII digits ("007" is 7); above `ceiling` it reads as
    `ceiling`, so a page or an id past any that can exist is simply past the end."""
    if not is_ascii_digits(text):
        raise InvalidInput(f"{field} must be a positive whole number", field=field)
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(BEYOND_ANY)):
        return ceiling
    return min(int(digits), ceiling)
