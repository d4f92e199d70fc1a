"""A chain's number for its store after a name, as the chain's own list writes it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.generate.habits import STORE_FORMS
from poiflow.normalize.name_asides import store_number_in_name

NAMES = st.from_regex(r"[A-ZÄÖ][a-zäö]{1,10}( [A-Z][a-z]{1,8}){0,2}", fullmatch=True)


@given(NAMES, st.integers(10, 999_999), st.sampled_from(STORE_FORMS))
def test_a_store_number_after_a_name_is_read_apart_from_it(
    name: str, number: int, form: str
) -> None:
    written = form.format(name, number)
    if "#" in form or number >= 100:
        assert store_number_in_name(written) == name
    else:  # a word and two digits: the name's own number
        assert store_number_in_name(written) is None
    assert store_number_in_name(name) is None


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("Walmart Supercenter #1234", "Walmart Supercenter"),
        ("CVS Pharmacy #05678", "CVS Pharmacy"),
        ("7-Eleven Store 35517", "7-Eleven"),
        ("Starbucks - Store #123", "Starbucks"),
        ("Alko - Myymälä 452", "Alko"),
        # A name's own number, or a name that is all number.
        ("Route 66", None),
        ("Studio 54", None),
        ("Pizzeria 2000", None),
        ("Bar #1", None),
        ("Barber Shop 2", None),
        ("Store 24", None),
        ("Cafe (1920)", None),
    ],
)
def test_store_numbers_as_chains_write_them(name: str, read: str | None) -> None:
    assert store_number_in_name(name) == read
