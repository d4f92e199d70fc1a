"""House numbers as feeds write them: the key they compare by, and the field taken apart."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from poiflow.generate.habits import NUMBER_FORMS
from poiflow.normalize.house_numbers import house_number_parts, housenumber_key

NUMBERS = st.integers(0, 2000)
LETTERS = st.sampled_from(list("abcABCäÄ"))
NUMBERISH = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("0123456789 -–,;./aAbBkrsFloor#")), max_size=20),
)


@given(NUMBERISH)
@example("14 – 20, 2. krs")
@example("５")
def test_the_key_is_idempotent_and_without_spaces(value: str) -> None:
    key = housenumber_key(value)
    if key is not None:
        assert not any(c.isspace() for c in key)
        assert housenumber_key(key) == key


@given(NUMBERS, LETTERS, st.sampled_from(["", " ", "  "]))
def test_a_letter_after_a_number_is_one_key_however_it_is_spaced_or_cased(
    number: int, letter: str, space: str
) -> None:
    key = housenumber_key(f"{number}{space}{letter}")
    assert key == housenumber_key(f"{number}{letter.swapcase()}")
    assert key == f"{number}{'a' if letter in 'äÄ' else letter.lower()}"


@given(NUMBERS, st.integers(1, 20), st.sampled_from(["-", "–", "—", " - ", " – "]))
def test_a_range_is_one_key_whatever_its_dash(number: int, width: int, dash: str) -> None:
    assert housenumber_key(f"{number}{dash}{number + width}") == f"{number}-{number + width}"


@given(NUMBERS, st.text(max_size=20), st.sampled_from([",", ";"]))
def test_what_follows_a_comma_is_no_part_of_the_key(number: int, rest: str, comma: str) -> None:
    assert housenumber_key(f"{number}{comma}{rest}") == str(number)
    number_, unit = house_number_parts(f"{number}{comma}{rest}", None, None)
    assert number_ == str(number)
    assert unit == (rest.strip(" ,;") or None)


@given(NUMBERS)
def test_a_plain_number_is_its_key_and_its_field_stays_as_it_is(number: int) -> None:
    assert housenumber_key(str(number)) == str(number)
    assert house_number_parts(str(number), "Mannerheimintie", None) == (str(number), None)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        # As OpenStreetMap's Helsinki writes them.
        ("14-20", "14-20"),
        ("2-4", "2-4"),  # once "24": another building's number
        ("20 B", "20b"),
        ("13A", "13a"),
        ("11 B 9", "11b"),  # staircase B, flat 9
        ("13 A, 5. krs./Floor 5", "13a"),
        ("26, 14. krs.", "26"),
        ("7 A, sisäpiha", "7a"),
        ("8, Floor 6", "8"),
        ("Keskuskatu 5", "5"),
        # Elsewhere.
        ("5 bis", "5bis"),
        ("No. 12", "12"),
        ("0012", "12"),
        ("Ground floor", "groundfloor"),  # no number: as written
    ],
)
def test_numbers_as_feeds_write_them(written: str, key: str) -> None:
    assert housenumber_key(written) == key


def test_the_field_is_taken_apart_into_its_number_and_its_unit() -> None:
    assert house_number_parts("26, 14. krs.", "Aleksanterinkatu", None) == ("26", "14. krs.")
    # A unit the address has already stays; the floor after the number is dropped.
    assert house_number_parts("26, 14. krs.", "Aleksanterinkatu", "B 12") == ("26", "B 12")
    assert house_number_parts("Keskuskatu 5", "Keskuskatu", None) == ("5", None)
    # Another street in the number's field (a corner building's second address) stays.
    assert house_number_parts("Keskuskatu 5", "Pohjoisesplanadi", None) == ("Keskuskatu 5", None)
    assert house_number_parts("14 A", "Keskuskatu", None) == ("14 A", None)
    assert house_number_parts("Ground floor, left", None, None) == ("Ground floor, left", None)


@pytest.mark.parametrize("form", NUMBER_FORMS)
def test_every_form_the_generator_writes_keys_as_the_number_or_its_building(form: str) -> None:
    key = housenumber_key(form.format(n=14, m=16, street="Mannerheimintie"))
    assert key in {"14", "14a", "14b", "14c", "14-16"}
