from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poiflow.conflate import features
from poiflow.conflate.blocking import candidate_pairs
from poiflow.conflate.feature_stats import area_key, name_area_keys
from poiflow.conflate.features import (
    FEATURE_COLUMNS,
    FEATURES,
    RecordView,
    feature_counts,
    feature_stats,
    pair_features,
)
from poiflow.conflate.lookup import FeatureLookup, few_pair_features

from . import few_records
from .conftest import World


def test_all_features_present_and_float32(world: World) -> None:
    view = RecordView.of(world.records)
    pairs = candidate_pairs(world.records)
    left, right = pairs.column("left").to_numpy()[:500], pairs.column("right").to_numpy()[:500]
    features = pair_features(view, left, right)
    assert tuple(features) == FEATURES
    assert all(v.dtype == np.float32 and len(v) == 500 for v in features.values())


def test_pairs_split_between_threads_get_the_same_features(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = RecordView.of(world.records)
    pairs = candidate_pairs(world.records)
    left, right = pairs.column("left").to_numpy(), pairs.column("right").to_numpy()
    whole = pair_features(view, left, right)  # fewer pairs than PARALLEL_PAIRS: one piece
    monkeypatch.setattr(features, "PARALLEL_PAIRS", 10)
    monkeypatch.setattr(features.os, "cpu_count", lambda: 3)
    split = pair_features(view, left, right)
    assert len(left) > 10 * 3  # three pieces, each of several pairs
    for name in FEATURES:
        assert split[name].dtype == np.float32
        np.testing.assert_array_equal(split[name], whole[name], err_msg=name)


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


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_features_of_a_few_records_with_narrowed_stats_are_those_of_the_whole(
    world: World, data: st.DataObject
) -> None:
    records = world.records
    pairs = candidate_pairs(records)
    picked = data.draw(st.lists(st.integers(0, pairs.num_rows - 1), min_size=1, max_size=20))
    left = pairs.column("left").to_numpy()[picked]
    right = pairs.column("right").to_numpy()[picked]
    whole = pair_features(RecordView.of(records), left, right)
    rows, local = np.unique(np.concatenate([left, right]), return_inverse=True)
    some = records.take(pa.array(rows))
    stats = FeatureLookup(feature_stats(feature_counts(records))).narrowed(some)
    part = pair_features(RecordView.of(some, stats), local[: len(left)], local[len(left) :])
    for name in FEATURES:
        np.testing.assert_array_equal(part[name], whole[name], err_msg=name)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    drawn=st.lists(few_records.row, min_size=1, max_size=8),
    picked=st.lists(st.integers(0, 10**9), max_size=4),
    pairs=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), min_size=1, max_size=30),
)
def test_features_of_a_few_pairs_in_python_are_the_vectorized_ones(
    world: World, drawn: list[dict], picked: list[int], pairs: list[tuple[int, int]]
) -> None:
    # A request's few pairs take a plain-Python path: every feature must be the
    # vectorized path's, bit for bit (the model's splits would see any difference).
    # Drawn records share names, alternates, phones, domains and streets; world records
    # bring the world's statistics (a common name's weight).
    n = world.records.num_rows
    some = pa.concat_tables(
        [
            few_records.records_of(drawn),
            world.records.take(pa.array([p % n for p in picked], pa.int64())),
        ]
    ).select(list(FEATURE_COLUMNS))
    lookup = FeatureLookup(feature_stats(feature_counts(world.records)))
    left = np.array([a % some.num_rows for a, _ in pairs])
    right = np.array([b % some.num_rows for _, b in pairs])
    vectorized = pair_features(RecordView.of(some, lookup.narrowed(some)), left, right)
    few = few_pair_features(some.to_pylist(), left, right, lookup)
    assert tuple(few) == FEATURES
    for name in FEATURES:
        np.testing.assert_array_equal(few[name], vectorized[name], err_msg=name)


def test_a_branch_page_tells_two_branches_of_a_chain_apart() -> None:
    # One chain, one domain: the pages say which branch. A page that source "a" gives to
    # two of its records (a store finder) says nothing, nor does a site's front page.
    rows = [
        ("a", "https://www.burger.fi/fi/ravintolat/kamppi/"),
        ("b", "http://burger.fi/ravintolat/Kamppi"),
        ("b", "https://burger.fi/ravintolat/tapiola"),
        ("a", "https://burger.fi/ravintolat"),
        ("a", "https://burger.fi/ravintolat/"),
        ("b", "https://burger.fi/ravintolat"),
        ("c", "https://www.burger.fi/en/"),
    ]
    records = few_records.records_of(
        [
            {
                "names": {"primary": "Burger", "alternates": []},
                "at": (60.17, 24.93),
                "categories": {"primary": "fast_food_restaurant"},
                "phones": [],
                "websites": [url],
                "address": {},
                "source": source,
            }
            for source, url in rows
        ]
    )
    left, right = np.array([0, 0, 1, 3, 0]), np.array([1, 2, 2, 5, 6])
    found = pair_features(RecordView.of(records), left, right)
    np.testing.assert_array_equal(found["domain_match"], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(found["page_match"], [1, 0, 0, np.nan, np.nan])


def test_two_businesses_pages_on_one_social_site_share_no_domain() -> None:
    # Two cafes next door, each with its Facebook page; a second record of the first.
    def cafe(name: str, url: str, source: str) -> dict:
        return {
            "names": {"primary": name, "alternates": []},
            "at": (60.17, 24.93),
            "categories": {"primary": "cafe"},
            "phones": [],
            "websites": [url],
            "address": {},
            "source": source,
        }

    records = few_records.records_of(
        [
            cafe("Kahvila Kosmos", "https://www.facebook.com/kahvilakosmos", "a"),
            cafe("Cafe Regatta", "https://facebook.com/caferegatta/", "b"),
            cafe("Kosmos", "https://m.facebook.com/kahvilakosmos/posts/7", "b"),
        ]
    )
    found = pair_features(RecordView.of(records), np.array([0, 0]), np.array([1, 2]))
    np.testing.assert_array_equal(found["domain_match"], [0, 1])
    pairs = candidate_pairs(records).to_pylist()
    domain = {(p["left"], p["right"]): bool(p["keys"] & 8) for p in pairs}  # KEYS["domain"]
    assert domain == {(0, 1): False, (0, 2): True, (1, 2): False}


def test_a_chains_call_centre_is_no_branchs_phone() -> None:
    # Source "b" gives one number to three branches (a call centre): it says nothing of
    # which branch. "a" gives another to two records (one place listed twice): it still
    # tells them, and a third source's record, apart from the others.
    rows = [
        ("a", "Alepa Kallio", "+358 9 111 1111"),
        ("a", "Alepa Kallio", "+358 9 111 1111"),
        ("b", "Alepa Kallio", "+358 20 555 0000"),
        ("b", "Alepa Sörnäinen", "+358 20 555 0000"),
        ("b", "Alepa Vallila", "+358 20 555 0000"),
        ("c", "Alepa Kallio", "+358 9 111 1111"),
        ("c", "Alepa Vallila", "+358 20 555 0000"),
    ]
    records = few_records.records_of(
        [
            {
                "names": {"primary": name, "alternates": []},
                "at": (60.18, 24.95),
                "categories": {"primary": "supermarket"},
                "phones": [phone],
                "websites": [],
                "address": {},
                "source": source,
            }
            for source, name, phone in rows
        ]
    )
    left, right = np.array([0, 0, 2, 3, 4]), np.array([1, 5, 3, 6, 6])
    expected = [1, 1, np.nan, np.nan, np.nan]
    found = pair_features(RecordView.of(records), left, right)
    np.testing.assert_array_equal(found["phone_match"], expected)
    few = few_pair_features(
        records.to_pylist(), left, right, FeatureLookup(feature_stats(feature_counts(records)))
    )
    np.testing.assert_array_equal(few["phone_match"], expected)


def test_a_name_is_counted_in_its_area_and_source_and_in_all_the_data() -> None:
    """A name twice in Helsinki in source "a" (a chain's two branches there) and once in
    "b", once in Tampere, once placed only by its town and once by nothing: in its area
    and source a name is as common as there (the record placed by nothing counts in all
    the data), whatever else the data holds."""
    places = [
        ("a", (60.170, 24.940), None),
        ("a", (60.171, 24.941), None),
        ("b", (60.170, 24.940), None),
        ("a", (61.498, 23.760), None),
        ("a", None, "Tampere"),
        ("a", None, None),
    ]
    records = few_records.records_of(
        [
            {
                "names": {"primary": "Kahvila Aalto", "alternates": []},
                "at": at,
                "categories": {"primary": "cafe"},
                "phones": [],
                "websites": [],
                "address": {"locality": town} if town else {},
                "source": source,
            }
            for source, at, town in places
        ]
    )
    left, right = np.array([0, 0, 2, 3, 4]), np.array([1, 2, 3, 4, 5])
    found = pair_features(RecordView.of(records), left, right)
    expected = np.log1p([2, 2, 1, 1, 6])
    np.testing.assert_allclose(found["name_area_commonness"], expected, rtol=1e-6)
    np.testing.assert_allclose(found["name_commonness"], np.log1p([6] * 5), rtol=1e-6)
    few = few_pair_features(
        records.to_pylist(), left, right, FeatureLookup(feature_stats(feature_counts(records)))
    )
    np.testing.assert_array_equal(few["name_area_commonness"], found["name_area_commonness"])
    keys = [
        area_key(r["keys"]["name"], r["lat"], r["lon"], r["keys"]["locality"], r["source"])
        for r in records.to_pylist()
    ]
    assert keys == name_area_keys(records).to_list()
    assert keys[5] is None
    assert keys[0] == keys[1] != keys[2] != keys[3]


def test_one_buildings_house_numbers_agree_as_written_by_two_feeds() -> None:
    # OpenStreetMap writes the building ("14-20", "20 B"), a vendor the number ("16",
    # "20"): one building. A number across the street ("15") or another entrance's letter
    # ("20 A") is not; nor is the key "1420" the range "14-20" once made. A number no
    # building has (a feed's column of numbers shifted) is compared as written.
    long = "12345678901234567890"
    numbers = ["14-20", "16", "15", "20 B", "20", "20 A", "1420", None, "26, 2. krs", "26"]
    numbers += [long, long, long[:-1] + "2"]
    records = few_records.records_of(
        [
            {
                "names": {"primary": "Kahvila", "alternates": []},
                "at": (60.17, 24.93),
                "categories": {"primary": "cafe"},
                "phones": [],
                "websites": [],
                "address": {"street": "Mannerheimintie", "housenumber": number},
                "source": "ab"[i % 2],
            }
            for i, number in enumerate(numbers)
        ]
    )
    pairs = [(0, 1), (0, 2), (3, 4), (3, 5), (4, 5), (0, 6), (0, 7), (8, 9), (1, 1), (0, 4)]
    pairs += [(10, 11), (10, 12), (11, 12)]
    expected = [1, 0, 1, 0, 1, 0, np.nan, 1, 1, 1, 1, 0, 0]
    left, right = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    found = pair_features(RecordView.of(records), left, right)
    np.testing.assert_array_equal(found["housenumber_match"], expected)
    few = few_pair_features(
        records.to_pylist(), left, right, FeatureLookup(feature_stats(feature_counts(records)))
    )
    np.testing.assert_array_equal(few["housenumber_match"], expected)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(split=st.floats(0.05, 0.95))
def test_statistics_plus_more_records_are_the_statistics_of_them_all(
    world: World, split: float
) -> None:
    # A feed matched against a run counts its own names with the run's (poiflow match):
    # the names' and words' counts and the number of records are those of one count of
    # both; a page is shared where either shares it.
    at = int(world.records.num_rows * split)
    first, second = world.records.slice(0, at), world.records.slice(at)
    both = FeatureLookup(feature_stats([feature_counts(first), feature_counts(second)]))
    plus = FeatureLookup(feature_stats(feature_counts(first))).plus(feature_counts(second))
    assert (plus.records, plus.names, plus.words) == (both.records, both.names, both.words)
    # Added in two steps (a file's batches), the same.
    half = second.num_rows // 2
    steps = (
        FeatureLookup(feature_stats(feature_counts(first)))
        .plus(feature_counts(second.slice(0, half)))
        .plus(feature_counts(second.slice(half)))
    )
    assert (steps.records, steps.names, steps.words) == (both.records, both.names, both.words)
    assert plus.shared_pages <= both.shared_pages
    alone = FeatureLookup(feature_stats(feature_counts(first)))
    assert plus.names != alone.names  # and the run's own are left as they were
    assert alone.records == first.num_rows
