from __future__ import annotations

import gzip
import itertools
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.features import FEATURES
from poiflow.conflate.fellegi_sunter import (
    COMPARISONS,
    FellegiSunter,
    PatternCounts,
    _decreasing,
    comparison_levels,
    count_patterns,
    fit_fellegi_sunter,
    fit_patterns,
)
from poiflow.conflate.matcher import ModelError, load_matcher, save_model
from poiflow.conflate.training import labelled_pairs
from poiflow.errors import NoCandidatesError

from .conftest import World


@pytest.fixture(scope="module")
def labelled(world: World) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return labelled_pairs(world.folder / "records.parquet", read_gold(world.gold))


@pytest.fixture(scope="module")
def fitted(labelled: tuple[dict[str, np.ndarray], np.ndarray]) -> FellegiSunter:
    return fit_fellegi_sunter(labelled[0])


def _pairs(**columns: list[float]) -> dict[str, np.ndarray]:
    n = len(next(iter(columns.values())))
    out = {name: np.full(n, np.nan, dtype=np.float32) for name in FEATURES}
    out.update({k: np.asarray(v, dtype=np.float32) for k, v in columns.items()})
    return out


def test_levels_leave_out_what_cannot_be_compared() -> None:
    features = _pairs(
        name_token_set=[1.0, 0.3, 0.92],
        name_best_alternate=[1.0, 0.3, 0.92],
        name_jaro_winkler=[1.0, 0.4, 0.95],
        name_commonness=[np.log1p(1), np.log1p(1), np.log1p(1)],
        distance_over_extent=[0.1, np.nan, 9.0],
        locality_match=[1.0, 0.0, 1.0],
        phone_match=[1.0, np.nan, 0.0],
        street_similarity=[1.0, np.nan, 0.2],
        housenumber_match=[1.0, np.nan, np.nan],
        postcode_match=[np.nan, np.nan, 1.0],
        category_agreement=[2.0, 0.0, np.nan],
    )
    levels = comparison_levels(features)
    names = list(COMPARISONS)

    def label(row: int, comparison: str) -> str | None:
        level = int(levels[row, names.index(comparison)])
        return None if level < 0 else COMPARISONS[comparison][level]

    assert label(0, "name") == "exact, rare name"
    assert label(0, "where") == "within a quarter of the category's extent"
    assert label(0, "phone") == "shared"
    assert label(0, "address") == "same street and number"
    assert label(0, "website") is None  # neither has a website: no evidence either way
    assert label(1, "name") == "different"
    assert label(1, "where") == "no coordinates, other locality"
    assert label(1, "phone") is None
    assert label(1, "address") is None
    assert label(1, "category") == "unrelated"
    assert label(2, "name") == "similar (>= 0.9)"
    assert label(2, "where") == "further"
    assert label(2, "address") == "different"  # same postcode, other street
    assert label(2, "category") is None


def test_em_without_labels_finds_the_matches(
    fitted: FellegiSunter, labelled: tuple[dict[str, np.ndarray], np.ndarray]
) -> None:
    features, labels = labelled
    assert fitted.info["converged"]
    # The class EM grows is "same place": its size is near the true share of matches.
    assert 0.5 * labels.mean() < fitted.prior < 1.5 * labels.mean()
    predicted = fitted.predict(features) >= 0.5
    tp = (predicted & (labels == 1)).sum()
    assert tp / predicted.sum() > 0.9
    assert tp / labels.sum() > 0.7
    weights = fitted.weights()
    assert weights["phone"]["shared"] > 5 > 0 > weights["phone"]["different"]
    assert weights["name"]["exact, rare name"] > weights["name"]["exact, common name"]
    assert weights["name"]["different"] < -3


def test_weights_of_levels_matches_seldom_show_are_near_the_truth(
    fitted: FellegiSunter, labelled: tuple[dict[str, np.ndarray], np.ndarray]
) -> None:
    """A name only alike, or unlike: true pairs seldom show these, and the anchored
    stages alone weighed them about 3 bits below what the truth says (counted from the
    labels), scoring apart true pairs with a typo or an abbreviation. The free stage
    brings them near it."""
    features, labels = labelled
    levels = comparison_levels(features)
    names = list(COMPARISONS)
    match = labels == 1
    for comparison, label in (("name", "alike (>= 0.75)"), ("name", "different")):
        column = levels[:, names.index(comparison)]
        level = COMPARISONS[comparison].index(label)
        known = column >= 0
        m = ((column == level) & match).sum() / (known & match).sum()
        u = ((column == level) & ~match).sum() / (known & ~match).sum()
        truth = float(np.log2(m / u))
        assert fitted.weights()[comparison][label] == pytest.approx(truth, abs=1.5), comparison


def test_weights_respect_the_order_of_levels(fitted: FellegiSunter) -> None:
    for name, levels in fitted.weights().items():
        values = list(levels.values())
        if name == "where":
            assert values[:5] == sorted(values[:5], reverse=True)
        elif name in ("phone", "website", "category", "brand"):
            assert values == sorted(values, reverse=True)
    name = list(fitted.weights()["name"].values())
    assert name[0] >= name[1] >= name[2] >= name[4] >= name[5] >= name[6]
    # Another locality weighs at least 4 bits less than the same one (rounded to 0.001).
    where = fitted.weights()["where"]
    same, other = where["no coordinates, same locality"], where["no coordinates, other locality"]
    assert other <= same - 4 + 0.001
    # And a record further than four extents at least 4 bits less than one within them.
    assert where["further"] <= where["within 4 extents"] - 4 + 0.001


def test_em_cannot_pool_far_with_near() -> None:
    """Where EM would weigh every distance alike (it did on a generated world of Japanese
    names: chains' far branches shared name, brand and domain), the least gap holds."""
    from poiflow.conflate.fellegi_sunter import _GAPS, _ORDER, _monotone

    u = np.full(7, 1 / 7)
    m = u.copy()  # every level the same weight: 0 bits
    fitted = _monotone(m, u, np.ones(7), _ORDER["where"], _GAPS["where"])
    bits = np.log2(fitted / u)
    within, further = bits[3], bits[4]
    assert further <= within - 4 + 1e-9
    assert bits[6] <= bits[5] - 4 + 1e-9


def test_the_fit_does_not_depend_on_pair_order(
    fitted: FellegiSunter, labelled: tuple[dict[str, np.ndarray], np.ndarray]
) -> None:
    features, _ = labelled
    order = np.random.default_rng(5).permutation(len(features["distance_m"]))
    shuffled = fit_fellegi_sunter({k: v[order] for k, v in features.items()})
    assert shuffled.prior == pytest.approx(fitted.prior, rel=1e-9)
    for name in COMPARISONS:
        np.testing.assert_allclose(shuffled.m[name], fitted.m[name], rtol=1e-9)


@pytest.fixture(scope="module")
def counted(labelled: tuple[dict[str, np.ndarray], np.ndarray]) -> PatternCounts:
    features, _ = labelled
    return count_patterns(features)


def test_the_model_fitted_to_the_counted_patterns_is_the_model_of_the_pairs(
    fitted: FellegiSunter, counted: PatternCounts
) -> None:
    # All EM needs of the pairs is their patterns' counts (which the Spark engine brings
    # to the driver a part at a time): fitted to them, the very model of the pairs.
    again = fit_patterns(counted)
    assert again.prior == fitted.prior
    for name in COMPARISONS:
        np.testing.assert_array_equal(again.m[name], fitted.m[name])
        np.testing.assert_array_equal(again.u[name], fitted.u[name])


@given(st.lists(st.integers(0, 10**9), max_size=6))
def test_patterns_counted_in_parts_add_up_to_the_counts_of_the_whole(
    labelled: tuple[dict[str, np.ndarray], np.ndarray], counted: PatternCounts, cuts: list[int]
) -> None:
    # So the model fitted to the parts' counts added up is the model of the whole (above):
    # the fit reads nothing but the codes and counts compared here.
    features, _ = labelled
    n = len(features["distance_m"])
    bounds = [0, *sorted(c % (n + 1) for c in cuts), n]
    parts = [
        count_patterns({k: v[start:end] for k, v in features.items()})
        for start, end in itertools.pairwise(bounds)
    ]
    added = parts[0]
    for part in parts[1:]:
        added += part
    np.testing.assert_array_equal(added.codes, counted.codes)
    np.testing.assert_array_equal(added.counts, counted.counts)
    assert int(counted.counts.sum()) == n


def test_save_load_round_trip_and_broken_files(
    fitted: FellegiSunter, labelled: tuple[dict[str, np.ndarray], np.ndarray], tmp_path: Path
) -> None:
    features, _ = labelled
    path = save_model(fitted, tmp_path / "em.json.gz")
    again = load_matcher(path)
    assert isinstance(again, FellegiSunter)
    assert again.threshold == fitted.threshold
    np.testing.assert_array_equal(again.predict(features), fitted.predict(features))
    payload = json.loads(gzip.decompress(path.read_bytes()))
    payload["m"]["name"] = payload["m"]["name"][:3]
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(gzip.compress(json.dumps(payload).encode()))
    with pytest.raises(ModelError, match=r"broken Fellegi-Sunter.*'name' needs 7 levels"):
        load_matcher(broken)


def test_no_pairs_is_an_error() -> None:
    with pytest.raises(NoCandidatesError, match="needs candidate pairs, and these records give"):
        fit_fellegi_sunter({n: np.zeros(0, np.float32) for n in FEATURES})
    # It crosses from a worker process whole, and is a ValueError for older callers.
    error = NoCandidatesError("fitting a Fellegi-Sunter model")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert isinstance(error, ValueError)


@given(
    st.lists(
        st.tuples(st.floats(-50, 50, allow_nan=False), st.floats(0.01, 100, allow_nan=False)),
        min_size=1,
        max_size=12,
    )
)
def test_decreasing_fit_is_monotone_and_keeps_the_weighted_mean(
    points: list[tuple[float, float]],
) -> None:
    values = np.array([v for v, _ in points])
    weight = np.array([w for _, w in points])
    fitted = _decreasing(values, weight)
    assert (np.diff(fitted) <= 1e-9).all()
    assert np.average(fitted, weights=weight) == pytest.approx(
        np.average(values, weights=weight), abs=1e-6
    )
    if (np.diff(values) <= 0).all():  # already in order: left as it is
        np.testing.assert_allclose(fitted, values)
