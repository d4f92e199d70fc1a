"""Phone numbers with a note after them, as feeds write them."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from poiflow.generate.habits import PHONE_NOTES
from poiflow.normalize.phones import parse_phones

NUMBERS = st.from_regex(r"(\+358 ?|0)[1-9]\d{1,2}[ -]?\d{3} ?\d{2,4}", fullmatch=True)
NOTES = st.one_of(
    st.sampled_from(PHONE_NOTES),
    st.from_regex(r"\{\} \([a-zA-Zäö][a-zA-Zäö0-9 .:-]{0,15}\)", fullmatch=True),
    st.from_regex(r"\{\} [a-zA-Zäö][a-zA-Zäö .:-]{0,15}", fullmatch=True),
)


@given(NUMBERS, NOTES)
@example("09 123 4567", "{} (24h)")
def test_a_note_after_a_number_leaves_the_number_as_it_is(number: str, note: str) -> None:
    plain = parse_phones(number, "FI")
    assert parse_phones(note.format(number), "FI").numbers == plain.numbers


@pytest.mark.parametrize(
    ("written", "region", "numbers"),
    [
        # Once lost: the note made the number none.
        ("040 123 4567 (mobile)", "FI", ("+358401234567",)),
        ("+44 20 7946 0958 (reception)", "GB", ("+442079460958",)),
        ("09 123 4567 Matti, 040 765 4321 (Liisa)", "FI", ("+35891234567", "+358407654321")),
        # Once wrong: the note's digits ran into the number's ("+3589123456724").
        ("09 123 4567 (24h)", "FI", ("+35891234567",)),
        # Not notes: an area code in brackets, an extension, a vanity number.
        ("(09) 123 4567", "FI", ("+35891234567",)),
        ("+1 212 555 0101 ext. 12", "US", ("+12125550101",)),
        ("1 800 FLOWERS", "US", ("+18003569377",)),
    ],
)
def test_numbers_with_notes_as_feeds_write_them(
    written: str, region: str, numbers: tuple[str, ...]
) -> None:
    assert parse_phones(written, region).numbers == numbers


def test_a_note_alone_is_no_number() -> None:
    assert parse_phones("(mobile)", "FI").rejected == ("(mobile)",)
    assert parse_phones("call us!", "FI").numbers == ()


def test_a_long_text_in_a_phone_field_is_read_once_from_its_end() -> None:
    # Words and brackets before a last number: read a word at a time from the end (a
    # pattern that could split the words many ways would not finish).
    words = " ".join(["soita"] * 5_000)
    assert parse_phones(f"09 123 4567 {words}", "FI").numbers == ("+35891234567",)
    assert parse_phones(f"{words} 1", "FI").numbers == ()
    brackets = "09 123 4567 " + "(ma) pe " * 2_000
    assert parse_phones(brackets, "FI").numbers == ("+35891234567",)
