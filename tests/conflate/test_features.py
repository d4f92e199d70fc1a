from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate.blocking import candidate_pairs
from poiflow.conflate.features import FEATURES, RecordView, pair_features

from .conftest import World


def test_all_features_present_and_float32(world: World) -> None:
    view = RecordView.of(world.records)
    pairs = candidate_pairs(world.records)
    left, right = pairs.column("left").to_numpy()[:500], pairs.column("right").to_numpy()[:500]
    features = pair_features(view, left, right)
    assert tuple(features) == FEATURES
    assert all(v.dtype == np.float32 and len(v) == 500 for v in features.values())


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_features_are_symmetric(world: World, data: st.DataObject) -> None:
    view = RecordView.of(world.records)
    n = world.records.num_rows
    left = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=40)))
    right = np.array(
        data.draw(st.lists(st.integers(0, n - 1), min_size=len(left), max_size=len(left)))
    )
    forward = pair_features(view, left, right)
    backward = pair_features(view, right, left)
    for name in FEATURES:
        np.testing.assert_allclose(
            forward[name], backward[name], rtol=1e-6, equal_nan=True, err_msg=name
        )


def test_features_tell_matches_from_non_matches(world: World) -> None:
    view = RecordView.of(world.records)
    pairs = candidate_pairs(world.records)
    left, right = pairs.column("left").to_numpy(), pairs.column("right").to_numpy()
    truth = np.array(world.truth, dtype=object)
    match = truth[left] == truth[right]
    features = pair_features(view, left, right)
    assert np.nanmedian(features["distance_m"][match]) < 60
    assert np.nanmedian(features["distance_m"][~match]) > 150
    assert (
        np.nanmean(features["name_tfidf"][match]) > np.nanmean(features["name_tfidf"][~match]) + 0.3
    )
    phones = features["phone_match"]
    assert np.nanmean(phones[match]) > 0.9
    assert np.nanmean(phones[~match]) < 0.05
