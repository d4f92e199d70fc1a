from __future__ import annotations

import polars as pl
import pytest

from poiflow.conflate.evaluate import score_membership


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
