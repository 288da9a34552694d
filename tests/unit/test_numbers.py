"""The one reader of whole numbers in URLs, forms and headers: ASCII digits, nothing else."""

import pytest

from ops_portal.domain.errors import InvalidInput
from ops_portal.domain.numbers import (
    BEYOND_ANY,
    LARGEST_ID,
    is_ascii_digits,
    parse_whole_number,
)


@pytest.mark.parametrize(
    "text, number",
    [("0", 0), ("7", 7), ("007", 7), ("2147483647", 2147483647), ("000", 0)],
)
def test_ascii_digits_read_as_their_number(text, number):
    assert is_ascii_digits(text)
    assert parse_whole_number(text, field="page", ceiling=LARGEST_ID) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 7",
        "7 ",
        "+7",
        "-7",
        "1_000",
        "7.0",
        "１",  # fullwidth one: int() reads it as 1
        "٣",  # Arabic-Indic three
        "²",  # superscript two: isdigit() says yes, int() refuses it
        "0x10",
        "1e3",
    ],
)
def test_anything_but_ascii_digits_is_refused_naming_the_field(text):
    assert not is_ascii_digits(text)
    with pytest.raises(InvalidInput) as refused:
        parse_whole_number(text, field="page", ceiling=LARGEST_ID)
    assert refused.value.field == "page"
    assert refused.value.detail == "page must be a positive whole number"


@pytest.mark.parametrize("text", [str(LARGEST_ID + 1), "9" * 19, "9" * 5000, "0" * 30 + "9" * 30])
def test_a_number_past_the_ceiling_reads_as_the_ceiling_however_long(text):
    # int() alone refuses strings of more than 4,300 digits with an error nobody expects.
    assert parse_whole_number(text, field="id", ceiling=LARGEST_ID + 1) == LARGEST_ID + 1
    assert LARGEST_ID < parse_whole_number(text, field="id") <= BEYOND_ANY


def test_without_a_ceiling_a_number_is_read_exactly_up_to_a_hundred_digits():
    assert parse_whole_number("1" + "0" * 30, field="id") == 10**30
    assert parse_whole_number("9" * 100, field="id") == 10**100 - 1


def test_leading_zeros_do_not_count_towards_the_length():
    assert parse_whole_number("0" * 5000 + "42", field="id", ceiling=LARGEST_ID) == 42
