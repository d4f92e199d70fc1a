from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate.naming import bare, spelling, spellings


def spelled(*names: str) -> list[str]:
    return pl.DataFrame({"n": list(names)}).select(spelling(pl.col("n")))["n"].to_list()


def bared(*names: str) -> list[str]:
    frame = pl.DataFrame({"n": list(names)})
    return frame.select(bare(spelling(pl.col("n"))))["n"].to_list()


def test_a_spelling_sets_case_accents_and_punctuation_aside() -> None:
    assert spelled("Café Aalto", "CAFE AALTO", "cafe-aalto!") == ["cafe aalto"] * 3
    assert spelled("Cafe Aalto Oy") == ["cafe aalto oy"]  # another spelling: a legal form


def test_bare_drops_legal_forms_at_the_end_only() -> None:
    assert bared("Kinopalatsi Sp. z o.o.", "Black Store Ltd", "Toscanini S.A.") == [
        "kinopalatsi",
        "black store",
        "toscanini",
    ]
    # A form alone is the name, and one inside it stays.
    assert bared("Oy", "Oy Karl Fazer Ab Cafe") == ["oy", "oy karl fazer ab cafe"]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcdefgéüåö ÄÖ-'.", max_size=30))
def test_a_spelling_is_its_own_spelling_whatever_the_case(name: str) -> None:
    once = spelled(name)[0]
    assert spelled(once) == [once]
    assert spelled(name.upper()) == spelled(name.lower()) == [once]
    assert bared(once)[0] == bared(name)[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.none() | st.sampled_from(["Café Aalto", "CAFE AALTO", "Stockmann Oyj", ""])))
def test_spellings_of_many_names_are_each_ones_spelling_in_order(names: list[str | None]) -> None:
    series = pl.Series("name", names, dtype=pl.String)
    one_by_one = [None if name is None else spelled(name)[0] for name in names]
    spelled_at_once = spellings(series)
    assert spelled_at_once.name == "name"
    assert spelled_at_once.to_list() == one_by_one
