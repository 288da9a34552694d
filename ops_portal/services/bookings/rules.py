"""What a booking request may contain: free text without control characters and within its
length, time windows with a zone that end after they start, ids a database can hold."""

from __future__ import annotations

from datetime import UTC, datetime

from ...domain.errors import InvalidInput, NotFound
from ...domain.numbers import LARGEST_ID
from ...domain.text import MAX_LENGTHS, has_control_characters, normalize_newlines

# The first API created bookings with no service named; they are general jobs.
DEFAULT_SERVICE = "General service"


def clean_text(value, field: str, *, max_len: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    value = normalize_newlines(value)
    # Checked before strip(): it would quietly drop some controls (\x1c-\x1f, \x85) at the ends.
    if has_control_characters(value):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} is required", field=field)
    if len(value) > max_len:
        raise InvalidInput(f"{field} must be at most {max_len} characters", field=field)
    return value


PHONE_CHARACTERS = frozenset("0123456789 +-()")
PHONE_DIGITS = (6, 20)


def clean_phone(value, field: str = "customer_phone") -> str:
    """An optional phone number as people write them ("+44 (0)20 7946-0018"): digits, spaces
    and + - ( ), with enough digits to dial and not more than any country uses."""
    value = clean_text(value, field, max_len=MAX_LENGTHS[field])
    if not value:
        return ""
    digits = sum(ch.isascii() and ch.isdigit() for ch in value)
    low, high = PHONE_DIGITS
    if any(ch not in PHONE_CHARACTERS for ch in value) or not low <= digits <= high:
        raise InvalidInput(
            f"A phone number has {low} to {high} digits, and nothing else but spaces and + - ( )",
            field=field,
        )
    return value


def dial_string(phone: str) -> str:
    """What a tel: link dials: the number's digits and its leading +, without the spacing."""
    return "".join(ch for ch in phone if ch.isdigit() or ch == "+")


def time_window(start: datetime | None, end: datetime | None):
    for name, value in (("window_start", start), ("window_end", end)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise InvalidInput(f"{name} must be a date and time with a time zone")
    if start and end and end <= start:
        raise InvalidInput("window_end must be after window_start")
    # As they are stored and read back: in UTC.
    return (start and start.astimezone(UTC)), (end and end.astimezone(UTC))


def check_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer")
    if not 1 <= value <= LARGEST_ID:
        raise NotFound(f"No {what.replace('_id', '').replace('_', ' ')} {value}")
    return value


def check_version(value) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput("version must be an integer")
    return value
