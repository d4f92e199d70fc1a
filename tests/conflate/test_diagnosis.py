from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate import diagnosis
from poiflow.conflate.clustering import ClusterConfig
from poiflow.conflate.diagnosis import CAUSES, RULES, diagnose
from poiflow.conflate.evaluate import score_membership
from poiflow.errors import InputError

from ..row_order import rows_in_any_order


def keyed(rows: list[tuple[str, str, str]], column: str) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["source", "id", column], orient="row")


def scored(rows: list[tuple[str, str, str, str, float]]) -> pl.DataFrame:
    columns = ["left_source", "left_id", "right_source", "right_id", "match_probability"]
    return pl.DataFrame(rows, schema=columns, orient="row")


# The truth: X = {a1, b1, c1}, W = {a3, b3}, and a2, b2, c3 each a place of its own.
GOLD = keyed(
    [
        ("a", "1", "X"),
        ("b", "1", "X"),
        ("c", "1", "X"),
        ("a", "2", "Y"),
        ("b", "2", "Z"),
        ("c", "3", "U"),
        ("a", "3", "W"),
        ("b", "3", "W"),
    ],
    "place",
)
# The run: c1 left out of X, W split, and a2, b2, c3 wrongly put together.
MEMBERSHIP = keyed(
    [
        ("a", "1", "p"),
        ("b", "1", "p"),
        ("c", "1", "q"),
        ("a", "2", "r"),
        ("b", "2", "r"),
        ("c", "3", "r"),
        ("a", "3", "s"),
        ("b", "3", "t"),
    ],
    "place_id",
)
PAIRS = scored(
    [
        ("a", "1", "b", "1", 0.9),
        ("c", "1", "a", "1", 0.1),  # the other way round: the same pair
        ("a", "1", "c", "1", 0.05),  # scored twice: the higher one counts
        ("a", "2", "b", "2", 0.8),
        ("a", "2", "c", "3", 0.5),
        ("a", "3", "b", "3", 0.7),
    ]
)


def test_each_error_is_traced_to_the_stage_that_lost_it() -> None:
    found = diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.3))
    assert found.counts() == {
        "missed_blocking": 1,  # b1-c1: never compared
        "missed_matcher": 1,  # a1-c1: 0.1
        "missed_clustering": 1,  # a3-b3: 0.7, yet apart
        "wrong_matcher": 2,  # a2-b2 0.8, a2-c3 0.5
        "wrong_clustering": 1,  # b2-c3: never compared, joined through a2
        "missed_decision": 0,
        "wrong_decision": 0,
    }
    kinds = {
        (r["left_source"] + r["left_id"], r["right_source"] + r["right_id"]): (
            r["error"],
            r["stage"],
            r["match_probability"],
        )
        for r in found.errors.iter_rows(named=True)
    }
    assert kinds[("a1", "c1")] == ("missed", "matcher", 0.1)
    assert kinds[("b1", "c1")] == ("missed", "blocking", None)
    assert kinds[("b2", "c3")] == ("wrong", "clustering", None)
    row = found.errors.filter(pl.col("left_id") == "3").row(0, named=True)
    assert (row["left_place"], row["right_place"]) == ("W", "W")
    assert (row["left_place_id"], row["right_place_id"]) == ("s", "t")
    # At a higher threshold the same grouping is the clustering's doing, not the model's.
    higher = diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.75)).counts()
    assert higher["missed_clustering"] == 0
    assert higher["missed_matcher"] == 2
    assert (higher["wrong_matcher"], higher["wrong_clustering"]) == (1, 2)


def test_each_error_pair_is_written_in_the_membership_order_whatever_polars_does() -> None:
    # The run's pairs come in its records' order; the errors must too, or an error pair
    # turned the other way round is not found among the run's pairs.
    found = diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.3)).errors
    order = {(s, i): n for n, (s, i, _) in enumerate(MEMBERSHIP.iter_rows())}
    for row in found.iter_rows(named=True):
        ends = (row["left_source"], row["left_id"]), (row["right_source"], row["right_id"])
        assert order[ends[0]] < order[ends[1]]
    for seed in range(6):
        with rows_in_any_order(seed):
            assert diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.3)).errors.equals(found)


def test_an_error_a_person_decided_is_the_decisions() -> None:
    # A person said a3 and b3 are two places, and a2 and b2 one (both wrong, as the truth
    # has it): those two errors are the decisions', the rest is traced as before; a
    # decision the run did not follow (in_run false) and one it got right change nothing.
    decisions = pl.DataFrame(
        [
            ("b", "3", "a", "3", "different", True),
            ("a", "2", "b", "2", "match", True),
            ("a", "2", "c", "3", "different", False),
            ("a", "1", "b", "1", "match", True),
        ],
        schema=[*diagnosis.PAIR_RECORD_KEYS, "decision", "in_run"],
        orient="row",
    )
    found = diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.3), decisions=decisions)
    assert found.counts() == {
        "missed_blocking": 1,
        "missed_matcher": 1,
        "missed_clustering": 0,
        "wrong_matcher": 1,  # a2-c3
        "wrong_clustering": 1,
        "missed_decision": 1,  # a3-b3
        "wrong_decision": 1,  # a2-b2
    }
    decided = found.errors.filter(pl.col("stage") == "decision")
    assert decided["kept_apart_by"].null_count() == decided.height
    assert CAUSES[("missed", "decision")] == "a person decided they are different places"


def test_scores_per_pair_of_sources() -> None:
    table = diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.3)).by_sources
    rows = {(r["left_source"], r["right_source"]): r for r in table.iter_rows(named=True)}
    # a-b: true a1b1, a3b3; predicted a1b1, a2b2; one right.
    ab = rows[("a", "b")]
    assert (ab["true_pairs"], ab["predicted_pairs"], ab["correct_pairs"]) == (2, 2, 1)
    assert ab["precision"] == ab["recall"] == ab["f1"] == 0.5
    # a-c: true a1c1 (missed); predicted a2c3 (wrong).
    assert (rows[("a", "c")]["precision"], rows[("a", "c")]["recall"]) == (0.0, 0.0)
    assert rows[("a", "c")]["f1"] == 0.0
    assert sorted(rows) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_examples_put_the_surest_mistakes_first_with_names_and_distances() -> None:
    records = pl.DataFrame(
        {
            "source": ["a", "b", "b", "c"],
            "id": ["2", "2", "1", "1"],
            "names": [{"primary": n} for n in ("Cafe Aalto", "Aalto", "Kiosk", "Kioski")],
            "lat": [60.0, 60.001, 60.0, None],  # c1 has no coordinates
            "lon": [25.0, 25.0, 25.0, 25.0],
        }
    )
    found = diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.3), records=records)
    wrong = found.examples("wrong", "matcher", 5)
    assert wrong["match_probability"].to_list() == [0.8, 0.5]
    first = wrong.row(0, named=True)
    assert (first["left_name"], first["right_name"]) == ("Cafe Aalto", "Aalto")
    assert first["metres_apart"] == pytest.approx(111.2, abs=0.5)  # a thousandth of a degree
    assert found.examples("wrong", "matcher", 1).height == 1
    # A pair never compared still says how far apart it is, where both have coordinates.
    never = found.examples("missed", "blocking", 5).row(0, named=True)
    assert (never["left_name"], never["right_name"]) == ("Kiosk", "Kioski")
    assert never["metres_apart"] is None
    assert never["match_probability"] is None


def test_the_features_of_each_error_pair_come_along() -> None:
    pairs = PAIRS.with_columns(pl.Series("distance_m", [5.0, 900.0, 900.0, 12.0, 40.0, 8.0]))
    errors = diagnose(MEMBERSHIP, GOLD, pairs, ClusterConfig()).errors
    a1c1 = errors.filter((pl.col("left_id") == "1") & (pl.col("right_source") == "c"))
    assert a1c1.filter(pl.col("left_source") == "a")["distance_m"].to_list() == [900.0]


def test_pairs_without_keys_and_runs_gone_wrong_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(InputError, match="lack match_probability"):
        diagnose(MEMBERSHIP, GOLD, PAIRS.drop("match_probability"), ClusterConfig())
    monkeypatch.setattr(diagnosis, "MAX_PAIRS", 5)
    with pytest.raises(InputError, match="pairs of records in one place"):
        diagnose(MEMBERSHIP, GOLD, PAIRS, ClusterConfig(0.3))


@st.composite
def runs(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, float]:
    n = draw(st.integers(1, 14))
    keys = [(draw(st.sampled_from("abc")), str(i)) for i in range(n)]
    gold = keyed([(s, i, f"P{draw(st.integers(0, 4))}") for s, i in keys], "place")
    membership = keyed([(s, i, f"c{draw(st.integers(0, 4))}") for s, i in keys], "place_id")
    candidates = [(x, y) for k, x in enumerate(keys) for y in keys[k + 1 :]]
    chosen = draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
    rows = []
    for x, y in chosen:
        p = draw(st.floats(0.0, 1.0))
        rows.append((*y, *x, p) if draw(st.booleans()) else (*x, *y, p))
    return gold, membership, scored(rows), draw(st.sampled_from([0.05, 0.3, 0.5]))


@settings(max_examples=150, deadline=None)
@given(runs())
def test_every_error_is_counted_once_and_agrees_with_the_scores(
    run: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, float],
) -> None:
    gold, membership, pairs, threshold = run
    found = diagnose(membership, gold, pairs, ClusterConfig(threshold))
    scores = score_membership(membership, gold)
    counts = found.counts()
    assert set(counts) == {f"{e}_{s}" for e, s in CAUSES}
    missed = sum(v for k, v in counts.items() if k.startswith("missed"))
    wrong = sum(v for k, v in counts.items() if k.startswith("wrong"))
    assert missed == scores.true_pairs - scores.correct_pairs
    assert wrong == scores.predicted_pairs - scores.correct_pairs
    for row in found.errors.iter_rows(named=True):
        p = row["match_probability"]
        same_truth = row["left_place"] == row["right_place"]
        same_run = row["left_place_id"] == row["right_place_id"]
        assert same_truth != same_run
        assert row["error"] == ("missed" if same_truth else "wrong")
        if row["stage"] == "blocking":
            assert p is None
        elif (row["error"], row["stage"]) in {("missed", "clustering"), ("wrong", "matcher")}:
            assert p is not None
            assert p >= threshold
        else:
            assert p is None or p < threshold
    table = found.by_sources
    assert int(table["true_pairs"].sum()) == scores.true_pairs
    assert int(table["predicted_pairs"].sum()) == scores.predicted_pairs
    assert int(table["correct_pairs"].sum()) == scores.correct_pairs
    # The order of the pairs, and of each pair's two records, changes nothing.
    swapped = pairs.select(
        pl.col("right_source").alias("left_source"),
        pl.col("right_id").alias("left_id"),
        pl.col("left_source").alias("right_source"),
        pl.col("left_id").alias("right_id"),
        "match_probability",
    ).reverse()
    assert diagnose(membership, gold, swapped, ClusterConfig(threshold)).errors.equals(found.errors)


def test_the_rule_that_kept_each_true_pair_apart_is_named() -> None:
    # Five true places, each split in two by the run, each by another rule.
    split = {
        "veto": ([("a", "1"), ("b", "1")], [("c", "1")]),
        "same source": ([("a", "2")], [("a", "3")]),
        "average": ([("b", "2"), ("c", "2")], [("d", "2")]),
        "coverage": ([("b", "3"), ("c", "3"), ("e", "3")], [("d", "3")]),
        "order": ([("b", "4")], [("c", "4")]),
    }
    gold = keyed([(*k, rule) for rule, (x, y) in split.items() for k in x + y], "place")
    membership = keyed(
        [
            (*k, f"{rule}-{side}")
            for rule, parts in split.items()
            for side, part in enumerate(parts)
            for k in part
        ],
        "place_id",
    )
    pairs = scored(
        [
            ("a", "1", "b", "1", 0.99),
            ("a", "1", "c", "1", 0.9),
            ("b", "1", "c", "1", 0.01),  # below the veto
            ("a", "2", "a", "3", 0.85),  # one source: below its bar
            ("b", "2", "c", "2", 0.99),
            ("b", "2", "d", "2", 0.4),
            ("c", "2", "d", "2", 0.1),  # the mean across, 0.25, is below 0.3
            ("b", "3", "c", "3", 0.99),
            ("b", "3", "e", "3", 0.99),
            ("c", "3", "e", "3", 0.99),
            ("b", "3", "d", "3", 0.9),  # one of three pairs across compared
            ("b", "4", "c", "4", 0.9),  # nothing holds them apart now
        ]
    )
    found = diagnose(membership, gold, pairs, ClusterConfig(0.3, same_source=0.95))
    apart = found.errors.filter(pl.col("stage") == "clustering").filter(pl.col("error") == "missed")
    by_place = dict(zip(apart["left_place"], apart["kept_apart_by"], strict=True))
    assert by_place == {rule: rule for rule in RULES}
    assert found.kept_apart() == dict.fromkeys(RULES, 1)
    others = found.errors.filter(pl.col("stage") != "clustering")
    assert others["kept_apart_by"].null_count() == others.height
    # With a lower bar for one source, that pair is no longer kept apart by it.
    lower = diagnose(membership, gold, pairs, ClusterConfig(0.3, same_source=0.8))
    assert lower.kept_apart()["same source"] == 0
    assert lower.kept_apart()["order"] == 2


def test_a_sweep_at_the_runs_own_threshold_gives_the_runs_scores() -> None:
    from poiflow.conflate.clustering import cluster_records
    from poiflow.conflate.diagnosis import sweep_thresholds

    keys = [(s, i) for s, i, _ in GOLD.iter_rows()]
    rows = {key: n for n, key in enumerate(keys)}
    left = np.array([rows[(r[0], r[1])] for r in PAIRS.iter_rows()])
    right = np.array([rows[(r[2], r[3])] for r in PAIRS.iter_rows()])
    probability = PAIRS["match_probability"].to_numpy()
    sources = np.array([s for s, _ in keys], dtype=object)
    config = ClusterConfig(0.3, same_source=0.95)
    labels = cluster_records(len(keys), left, right, probability, sources, config)
    membership = keyed(
        [(s, i, str(label)) for (s, i), label in zip(keys, labels, strict=True)], "place_id"
    )
    swept = sweep_thresholds(membership, GOLD, PAIRS, config, thresholds=(0.1, 0.95))
    assert swept["threshold"].to_list() == [0.1, 0.3, 0.95]  # the run's own added
    own = swept.filter(pl.col("threshold") == 0.3).row(0, named=True)
    scores = score_membership(membership, GOLD)
    assert (own["precision"], own["recall"], own["f1"]) == (
        scores.precision,
        scores.recall,
        scores.f1,
    )
    # Above every score, every record is a place of its own: nothing predicted, nothing found.
    top = swept.filter(pl.col("threshold") == 0.95).row(0, named=True)
    assert (top["places"], top["recall"], top["precision"]) == (len(keys), 0.0, 1.0)


def test_a_sweep_of_a_run_with_decisions_follows_them_too(decided: dict[str, Any]) -> None:
    import json

    import pyarrow.parquet as pq

    from poiflow.conflate.diagnosis import sweep_thresholds
    from poiflow.conflate.evaluate import read_gold

    out = decided["out"]
    membership = pq.read_table(out / "membership.parquet")
    gold = read_gold(decided["gold"])
    pairs = pq.read_table(out / "pairs.parquet", columns=list(diagnosis.PAIR_SCORE_COLUMNS))
    config = ClusterConfig(**json.loads((out / "run.json").read_text())["matching"]["cluster"])
    decisions = pq.read_table(out / "decisions.parquet")
    own = score_membership(membership, gold)

    def at_own(**given: Any) -> float:
        swept = sweep_thresholds(membership, gold, pairs, config, thresholds=(), **given)
        return float(swept.row(0, named=True)["f1"])

    assert at_own(decisions=decisions) == own.f1  # the run, as it was made
    assert at_own() != own.f1  # without them, another clustering
