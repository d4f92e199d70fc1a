"""A pair's score taken apart: the parts add up to the score the model gives."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.conflate.explain import (
    FEATURE_WORDS,
    describe_feature,
    explain_scores,
    threshold_bits,
)
from poiflow.conflate.feature_names import FEATURES
from poiflow.conflate.fellegi_sunter import (
    COMPARISONS,
    FellegiSunter,
    comparison_levels,
    fit_fellegi_sunter,
)
from poiflow.conflate.matcher import Matcher, load_matcher


@pytest.fixture(scope="module")
def scored(conflated: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Some pairs of a real run, the surest and the least sure among them, and the
    probability the run gave each."""
    pairs = pq.read_table(conflated / "pairs.parquet")
    probability = pairs.column("match_probability").to_numpy()
    # Pairs across the whole range of scores, not only the many clear non-matches.
    order = np.argsort(probability, kind="stable")
    picked = order[np.linspace(0, len(order) - 1, 300).astype(int)]
    features = {name: pairs.column(name).to_numpy()[picked] for name in FEATURES}
    return features, probability[picked]


def test_a_trained_models_parts_add_up_to_its_score(
    conflated: Path, scored: tuple[dict[str, np.ndarray], np.ndarray]
) -> None:
    features, run_probability = scored
    model = load_matcher(conflated / "model.json.gz")
    assert isinstance(model, Matcher)
    found = explain_scores(model, features)
    assert len(found) == len(run_probability)
    matrix = np.column_stack([features[name] for name in model.features]).astype(np.float32)
    uncalibrated = model.booster.predict(matrix)
    for explanation, p, raw in zip(found, run_probability, uncalibrated, strict=True):
        # The start and the parts are the model's own score: its logistic is LightGBM's
        # probability before calibration, and the calibrated one is the run's.
        assert 1 / (1 + 2 ** (-explanation.total_bits)) == pytest.approx(raw, abs=1e-9)
        assert explanation.probability == pytest.approx(float(p), abs=1e-6)
        assert explanation.calibrated
        assert sorted(part.name for part in explanation.parts) == sorted(model.features)
        sizes = [abs(part.bits) for part in explanation.parts]
        assert sizes == sorted(sizes, reverse=True)
    # The surest match and the surest non-match are told apart by their parts.
    assert found[-1].total_bits > 0 > found[0].total_bits


def test_a_fellegi_sunter_models_parts_are_its_match_weights(
    scored: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    features, _ = scored
    model = fit_fellegi_sunter(features)
    found = explain_scores(model, features)
    levels = comparison_levels(features)
    weights = model.match_weight(levels)
    probability = model.predict(features)
    for i, explanation in enumerate(found):
        assert not explanation.calibrated
        assert explanation.start_bits == pytest.approx(math.log2(model.prior / (1 - model.prior)))
        assert explanation.total_bits == pytest.approx(weights[i], abs=1e-9)
        assert explanation.probability == pytest.approx(float(probability[i]), abs=1e-6)
        by_name = {part.name: part for part in explanation.parts}
        assert set(by_name) == set(COMPARISONS)
        for j, (name, labels) in enumerate(COMPARISONS.items()):
            if levels[i, j] < 0:  # not comparable: no part of the score
                assert by_name[name].shows == "not comparable"
                assert by_name[name].bits == 0.0
            else:
                assert by_name[name].shows == labels[levels[i, j]]


def test_a_comparison_weighs_what_its_level_says(
    scored: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    features, _ = scored
    model = fit_fellegi_sunter(features)
    assert isinstance(model, FellegiSunter)
    shared = {name: np.asarray(values[:1]).copy() for name, values in features.items()}
    other = {name: values.copy() for name, values in shared.items()}
    shared["phone_match"][:] = 1.0
    other["phone_match"][:] = 0.0
    (same,) = explain_scores(model, shared)
    (differ,) = explain_scores(model, other)
    phone = {p.name: p for p in same.parts}["phone"]
    assert phone.shows == "shared"
    assert phone.bits > 0
    assert {p.name: p for p in differ.parts}["phone"].bits < 0
    assert same.total_bits > differ.total_bits


def test_no_pairs_no_explanations(conflated: Path) -> None:
    model = load_matcher(conflated / "model.json.gz")
    empty = {name: np.zeros(0, dtype=np.float32) for name in FEATURES}
    assert explain_scores(model, empty) == []


def test_every_feature_has_words() -> None:
    assert set(FEATURE_WORDS) == set(FEATURES)


def test_how_common_a_name_is_reads_as_a_count_of_records() -> None:
    assert describe_feature("name_area_commonness", math.log1p(1)) == "1 record"
    assert describe_feature("name_commonness", math.log1p(1_234)) == "1,234 records"
    assert describe_feature("name_commonness", 0.0) == "0 records"


@given(
    st.sampled_from(FEATURES),
    st.one_of(st.just(math.nan), st.floats(min_value=0, max_value=1e6, allow_nan=False)),
)
def test_any_feature_value_reads_as_words(name: str, value: float) -> None:
    shown = describe_feature(name, value)
    assert shown
    if math.isnan(value):
        assert "unknown" in shown or "lacks" in shown


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.9])
def test_a_score_reaches_the_threshold_from_its_bits(
    conflated: Path, scored: tuple[dict[str, np.ndarray], np.ndarray], threshold: float
) -> None:
    features, _ = scored
    for model in (load_matcher(conflated / "model.json.gz"), fit_fellegi_sunter(features)):
        bar = threshold_bits(model, threshold)
        for explanation in explain_scores(model, features):
            if abs(explanation.total_bits - bar) < 1e-6:
                continue  # on the bar itself, float rounding decides
            assert (explanation.total_bits > bar) == (explanation.probability >= threshold - 1e-6)
