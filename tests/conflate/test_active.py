"""Active learning: what is asked first, how answers are kept, and the refined model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from poiflow.conflate.active import (
    agreement,
    append_label,
    append_labels,
    pick_pairs,
    read_labels,
    refine_matcher,
)
from poiflow.conflate.matcher import Matcher, load_matcher
from poiflow.errors import InputError


def pair(left: str, right: str, p: float) -> dict[str, object]:
    return {
        "left_source": "a",
        "left_id": left,
        "right_source": "b",
        "right_id": right,
        "match_probability": p,
    }


def test_disagreements_come_first_then_the_least_sure_one_record_once() -> None:
    pairs = pl.DataFrame(
        [
            pair("1", "1", 0.999),  # sure, and joined: nothing to learn
            pair("2", "2", 0.55),  # unsure, but record a/2 is asked about already
            pair("3", "3", 0.80),  # scored a match, kept apart
            pair("4", "4", 0.25),  # scored apart, joined (and less sure than 3)
            pair("2", "5", 0.49),  # the least sure
            pair("6", "6", 0.001),  # sure apart
        ]
    )
    place = {"1": "P1", "2": "P2", "3": "P3", "4": "P4", "5": "P5", "6": "P6"}
    other = {"1": "P1", "2": "P2", "3": "Q3", "4": "P4", "5": "Q5", "6": "Q6"}
    membership = pl.DataFrame(
        [{"source": "a", "id": k, "place_id": v} for k, v in place.items()]
        + [{"source": "b", "id": k, "place_id": v} for k, v in other.items()]
    )
    chosen = pick_pairs(pairs, membership, count=10)
    assert chosen["left_id"].to_list() == ["4", "3", "2"]
    assert chosen["right_id"].to_list() == ["4", "3", "5"]
    assert chosen["reason"].to_list() == [
        "joined though scored apart",
        "kept apart though scored a match",
        "the model is unsure",
    ]
    answered = chosen.head(1).select("left_source", "left_id", "right_source", "right_id")
    again = pick_pairs(pairs, membership, count=10, labelled=answered)
    assert again["left_id"].to_list() == ["3", "2"]
    assert pick_pairs(pairs, membership, count=0).height == 0
    assert pick_pairs(pairs, membership, count=-1).height == 0


def test_answers_are_appended_and_the_last_answer_wins(tmp_path: Path) -> None:
    store = tmp_path / "labels.csv"
    assert read_labels(store).height == 0
    append_label(store, pair("1", "1", 0.5), "match", labeller="ann")
    append_label(store, pair("2", "2", 0.4), "unsure")
    append_label(store, pair("1", "1", 0.5), "different", labeller="bob")
    labels = read_labels(store)
    assert labels.height == 2
    first = labels.filter(pl.col("left_id") == "1").row(0, named=True)
    assert first["label"] == "different"
    assert first["labeller"] == "bob"
    assert store.read_text().count("\n") == 4  # header and three answers, none rewritten


def test_an_answer_no_reader_takes_is_not_written(tmp_path: Path) -> None:
    store = tmp_path / "labels.csv"
    append_label(store, pair("1", "1", 0.5), "match")
    before = store.read_bytes()
    with pytest.raises(ValueError, match="label 'yes' is not one of match, different, unsure"):
        append_labels(
            store, [(pair("2", "2", 0.5), "different", ""), (pair("3", "3", 0.5), "yes", "")]
        )  # type: ignore[list-item]
    assert store.read_bytes() == before


def test_a_bad_labels_file_names_the_line(tmp_path: Path) -> None:
    store = tmp_path / "labels.csv"
    append_label(store, pair("1", "1", 0.5), "match")
    store.write_text(store.read_text() + "a,2,b,2,yes,0.5,,\n")
    with pytest.raises(InputError, match=r"labels.csv:3: label 'yes' is not one of"):
        read_labels(store)
    (tmp_path / "other.csv").write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match="not a labels file"):
        read_labels(tmp_path / "other.csv")


def test_refining_moves_the_model_towards_the_answers() -> None:
    base = load_matcher("default")
    assert isinstance(base, Matcher)
    rng = np.random.default_rng(3)
    # Made-up pairs the model scores anywhere; the answers say the first 45 match.
    features = {name: rng.random(60).astype(np.float32) for name in base.features}
    labels = (np.arange(60) < 45).astype(np.int8)
    before = base.predict(features)
    refined = refine_matcher(base, features, labels, rounds=20)
    after = refined.predict(features)
    # The answers' matches end up scored further above their non-matches than before.
    assert after[:45].mean() - after[45:].mean() > before[:45].mean() - before[45:].mean() + 0.05
    loss = agreement(refined, features, labels)["log_loss"]
    assert loss < agreement(base, features, labels)["log_loss"]
    assert refined.info["refined_from"] == base.version
    assert refined.booster.num_trees() == base.booster.num_trees() + 20
    with pytest.raises(ValueError, match="needs labelled pairs"):
        refine_matcher(base, features, np.zeros(0, dtype=np.int8))
    with pytest.raises(ValueError, match="answers of both kinds"):
        refine_matcher(base, features, np.ones(60, dtype=np.int8))


def test_answers_that_contradict_the_model_refine_it_strongly_else_gently() -> None:
    from poiflow.conflate.active import STRENGTHS, SURPRISE

    base = load_matcher("default")
    assert isinstance(base, Matcher)
    rng = np.random.default_rng(8)
    features = {name: rng.random(200).astype(np.float32) for name in base.features}
    p = base.predict(features).astype(np.float64)
    # Answers as the model expects them: drawn from its own probabilities.
    agreeing = (rng.random(200) < p).astype(np.int8)
    gentle = refine_matcher(base, features, agreeing)
    said = gentle.info["refined_on"]
    assert abs(said["surprise"]) < SURPRISE
    assert said["strength"] == "gentle"
    assert said["expected_matches"] == pytest.approx(p.sum(), abs=0.01)
    assert gentle.booster.num_trees() == base.booster.num_trees() + STRENGTHS["gentle"][0]
    # Answers far from what it expects: the pairs it doubts most are the matches, those
    # it is surest of are not.
    contradicting = (p <= np.median(p)).astype(np.int8)
    strong = refine_matcher(base, features, contradicting)
    said = strong.info["refined_on"]
    assert abs(said["surprise"]) >= SURPRISE
    assert said["strength"] == "strong"
    assert strong.booster.num_trees() == base.booster.num_trees() + STRENGTHS["strong"][0]
    # Strong refining follows such answers more closely than gentle refining would.
    weak = refine_matcher(base, features, contradicting, rounds=STRENGTHS["gentle"][0])
    strong_loss = agreement(strong, features, contradicting)["log_loss"]
    assert strong_loss < agreement(weak, features, contradicting)["log_loss"]
