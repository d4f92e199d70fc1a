from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from poiflow.conflate.evaluate import read_gold, score_membership, with_pair_rows
from poiflow.errors import InputError

from ..row_order import rows_in_any_order


def frame(rows: list[tuple[str, str, str]], column: str) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["source", "id", column], orient="row")


def test_hand_computed_scores() -> None:
    gold = frame([("a", "1", "X"), ("b", "1", "X"), ("c", "1", "X"), ("a", "2", "Y")], "place")
    # Predicted: {a1, b1}, {c1, a2}: one of two predicted pairs right, one of three true pairs.
    predicted = frame(
        [("a", "1", "p"), ("b", "1", "p"), ("c", "1", "q"), ("a", "2", "q")], "place_id"
    )
    scores = score_membership(predicted, gold)
    assert (scores.predicted_pairs, scores.true_pairs, scores.correct_pairs) == (2, 3, 1)
    assert scores.precision == 0.5
    assert scores.recall == pytest.approx(1 / 3, abs=1e-6)
    assert scores.f1 == pytest.approx(0.4, abs=1e-6)
    # B-cubed precision: a1 2/2, b1 2/2, c1 1/2, a2 1/2 -> 0.75; recall: 2/3, 2/3, 1/3, 1 -> 2/3
    assert scores.bcubed_precision == 0.75
    assert scores.bcubed_recall == pytest.approx(2 / 3, abs=1e-6)


def test_perfect_and_missing_records() -> None:
    gold = frame([("a", "1", "X"), ("b", "1", "X"), ("a", "2", "Y")], "place")
    predicted = frame([("a", "1", "p"), ("b", "1", "p")], "place_id")
    scores = score_membership(predicted, gold)
    assert (scores.f1, scores.bcubed_f1, scores.unmatched_records) == (1.0, 1.0, 1)


def test_a_gold_file_with_a_record_in_two_places_or_a_row_half_written_is_refused_by_line(
    tmp_path: Path,
) -> None:
    # A record in two places would be judged against itself; a row without its place
    # would be one place of all such rows. A record listed twice in one place is one row.
    path = tmp_path / "gold.csv"
    path.write_text("source,id,place\na,1,X\nb,1,X\na,1,X\na,2,Y\n", encoding="utf-8")
    assert read_gold(path).rows() == [("a", "1", "X"), ("b", "1", "X"), ("a", "2", "Y")]
    path.write_text("source,id,place\na,1,X\nb,1,X\na,2,Y\na,1,Z\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=r"a:1 is listed in more than one place: X \(line 2\), Z \(line 5\)"
    ) as caught:
        read_gold(path)
    assert caught.value.location == "2"
    for row, lacking in (("a,2,", "place"), (",2,Y", "source"), ("a, ,Y", "id")):
        path.write_text(f"source,id,place\na,1,X\n{row}\n", encoding="utf-8")
        with pytest.raises(InputError, match=f"a row without its {lacking}") as caught:
            read_gold(path)
        assert caught.value.location == "3"


def test_pairs_keep_their_order_when_their_records_rows_are_found() -> None:
    # A held-out share of answers, or a clustering of the pairs, is taken in their order.
    keys = pl.DataFrame({"source": ["a"] * 50, "id": [str(n) for n in range(50)]})
    keys = keys.with_row_index("row")
    pairs = pl.DataFrame(
        {
            "left_source": ["a"] * 60,
            "left_id": [str(n * 7 % 50) for n in range(60)],
            "right_source": ["a"] * 60,
            "right_id": [str((n * 11 + 3) % 50) for n in range(60)],
            "n": list(range(60)),
        }
    )
    with rows_in_any_order(seed=3):
        found = with_pair_rows(pairs, keys)
    assert found["n"].to_list() == list(range(60))
    assert found["left_row"].to_list() == [n * 7 % 50 for n in range(60)]
