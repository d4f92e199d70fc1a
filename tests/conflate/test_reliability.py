"""What a run learns of each source from its clusters: how often its values are right."""

from __future__ import annotations

import numpy as np
import pytest

from poiflow.conflate.merge import MergeConfig, merge_clusters
from poiflow.conflate.reliability import (
    learn_sources,
    name_words,
    place_coverage,
    source_accuracy,
    with_learned,
)
from poiflow.normalize import normalize_records
from poiflow.sources import records_from_rows

# How often each source's category is right, and its point within 50 m.
TRUE_ACCURACY = {"good": 0.95, "fair": 0.8, "poor": 0.6}
CATEGORIES = ["cafe", "bakery", "restaurant", "bar", "pharmacy", "bank", "hotel", "museum"]


def world(places: int, seed: int) -> tuple[list[dict], np.ndarray]:
    """Places each described by the three sources, which err independently: a wrong
    category is any other; a wrong point lies 300-800 m off, a right one within 15 m."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for place in range(places):
        category = CATEGORIES[place % len(CATEGORIES)]
        lat, lon = 60.1 + (place % 50) * 0.01, 24.8 + (place // 50) * 0.01
        for source, accuracy in TRUE_ACCURACY.items():
            said = category
            if rng.random() > accuracy:
                said = str(rng.choice([c for c in CATEGORIES if c != category]))
            off = rng.uniform(0, 15) if rng.random() <= accuracy else rng.uniform(300, 800)
            angle = rng.uniform(0, 2 * np.pi)
            rows.append(
                {
                    "source": source,
                    "id": f"{source}{place}",
                    "origin": f"{source}{place}",
                    "names": {"primary": "Paikka"},
                    "categories": {"primary": said},
                    "lat": lat + off * np.sin(angle) / 111_195,
                    "lon": lon + off * np.cos(angle) / (111_195 * np.cos(np.radians(lat))),
                }
            )
            labels.append(place)
    return rows, np.array(labels)


def test_each_sources_accuracy_is_learned_from_how_often_sources_agree() -> None:
    rows, labels = world(1500, seed=7)
    records = normalize_records(records_from_rows(rows)).places
    learned = source_accuracy(records, labels)
    for source, accuracy in TRUE_ACCURACY.items():
        # Agreement of two wrong categories (one in 7 * 7 of the pairs both wrong) makes
        # the estimate a little high for the poorest; within 0.04 of the truth.
        assert learned["category"][source] == pytest.approx(accuracy, abs=0.04), source
        # A point is judged by its place's median, off where the others are: a little
        # low for all here, where one source in three is wrong two times in five.
        assert accuracy - 0.1 <= learned["location"][source] <= accuracy, source
    assert learned["location"]["good"] > learned["location"]["fair"] > learned["location"]["poor"]
    assert learned["name"] == dict.fromkeys(TRUE_ACCURACY, 0.999)  # all write "Paikka"
    assert "phone" not in learned  # no source gives one


def test_too_few_records_learn_nothing_and_what_is_told_wins() -> None:
    rows, labels = world(5, seed=1)  # 5 places: fewer than a source is judged by
    records = normalize_records(records_from_rows(rows)).places
    assert source_accuracy(records, labels) == {}
    rows, labels = world(200, seed=2)
    records = normalize_records(records_from_rows(rows)).places
    told = MergeConfig(accuracy={"category": {"poor": 0.3}})
    config = learn_sources(records, labels, told)
    assert config.accuracy["category"]["poor"] == 0.3
    assert config.accuracy["category"]["good"] > 0.85  # learned beside it
    # Records left out of every cluster (label -1) teach nothing.
    assert source_accuracy(records, np.full(len(labels), -1)) == {}


def test_name_words_count_the_records_that_carry_each_word() -> None:
    rows = [
        {"source": "a", "id": "1", "names": {"primary": "Café Aalto Oy"}},
        {"source": "b", "id": "2", "names": {"primary": "CAFE AALTO"}},
        {"source": "a", "id": "3", "names": {"primary": "Aalto Aalto Bar"}},
    ]
    table = normalize_records(records_from_rows([{**r, "origin": r["id"]} for r in rows])).places
    # Folded, legal forms aside, each word once a record.
    assert name_words(table) == {"aalto": 3, "bar": 1, "cafe": 2}
    learned = learn_sources(table, np.zeros(3, dtype=np.int64), MergeConfig())
    assert learned.name_words == {"aalto": 3, "bar": 1, "cafe": 2}
    # What a setting gives wins, as for every thing learned.
    given = learn_sources(table, np.zeros(3, dtype=np.int64), MergeConfig(name_words={"bar": 9}))
    assert given.name_words == {"aalto": 3, "bar": 9, "cafe": 2}


def covered_world(
    places: int, coverage: dict[str, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Records of ``places`` places, each held by each source with its coverage (not at
    all: left out): each record's source, place, and row."""
    rng = np.random.default_rng(seed)
    sources, owners = [], []
    for place in range(places):
        for source, share in coverage.items():
            if rng.random() < share:
                sources.append(source)
                owners.append(place)
    return np.array(sources), np.array(owners), np.arange(len(sources))


def within(owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of records of one place (left row < right row)."""
    left, right = np.triu_indices(len(owners), k=1)
    same = owners[left] == owners[right]
    return left[same], right[same]


def test_how_much_of_the_world_each_source_covers_from_the_places_they_share() -> None:
    coverage = {"a": 0.6, "b": 0.75, "c": 0.9}
    sources, owners, _ = covered_world(1500, coverage, 3)
    left, right = within(owners)
    learned = place_coverage(sources, owners, left, right, np.full(len(left), 0.99))
    seen = len(set(owners.tolist()))  # places no source holds are not in the world seen
    assert learned["places"] == pytest.approx(1500, rel=0.05)
    assert learned["places"] >= seen
    for source, share in coverage.items():
        assert learned["coverage"][source] == pytest.approx(share, abs=0.04)
    # Matched without a miss: a place of one source alone is as whole as can be, and
    # none lacks a record split off.
    assert all(w >= 0.9 for w in learned["whole"].values())
    assert all(s <= 0.005 for s in learned["split"].values())


def test_places_split_by_the_matcher_are_told_from_places_one_source_alone_holds() -> None:
    coverage = {"a": 0.5, "b": 0.6, "c": 0.7}
    sources, owners, rows = covered_world(1500, coverage, 4)
    left, right = within(owners)
    labels = owners.copy()
    # The matcher missed a third of c's records of places others hold too: each is a
    # place of its own, scored 0.97 with the records of its true place (clustering cut it).
    rng = np.random.default_rng(5)
    shared = np.array([(owners == owners[r]).sum() > 1 for r in rows])
    missed = rows[(sources == "c") & shared & (rng.random(len(rows)) < 1 / 3)]
    labels[missed] = labels.max() + 1 + np.arange(len(missed))
    cut = np.isin(left, missed) | np.isin(right, missed)
    learned = place_coverage(sources, labels, left, right, np.where(cut, 0.97, 0.99))
    # The places the split hides from the overlaps are counted back by their probability;
    # counted as if none was hidden, the world would seem larger.
    assert learned["places"] == pytest.approx(1500, rel=0.05)
    blind = place_coverage(sources, labels, left, right, np.where(cut, 0.0, 0.99))
    assert blind["places"] > 1.1 * learned["places"]
    # Of each source's places alone, the share whole in the world: c's are mostly its
    # fragments, the others' mostly what is left of a place when c's record split off.
    for source in coverage:
        alone = [
            place
            for place in set(labels[sources == source].tolist())
            if set(sources[labels == place]) == {source}
        ]
        whole = [p for p in alone if (owners == owners[labels == p][0]).sum() == 1]
        assert learned["whole"][source] == pytest.approx(len(whole) / len(alone), abs=0.1)
    assert learned["whole"]["c"] < 0.5
    # A place without c lacks a record of it split off about as often as it happened.
    without_c = len(set(labels.tolist())) - len(set(labels[sources == "c"].tolist()))
    assert learned["split"]["c"] == pytest.approx(len(missed) / without_c, rel=0.35)
    assert learned["split"]["a"] < learned["split"]["c"] / 4
    # One source alone says nothing of how much of the world it covers.
    one = np.array(["a"] * 40)
    assert (
        place_coverage(one, np.arange(40), np.arange(39), np.arange(1, 40), np.full(39, 0.2)) == {}
    )


def test_a_source_too_small_to_judge_is_left_to_the_merges_defaults() -> None:
    coverage = {"a": 0.6, "b": 0.75, "c": 0.9}
    sources, owners, _ = covered_world(800, coverage, 6)
    # A small feed of new places: ten records, of places no other source has.
    sources = np.concatenate([sources, np.array(["d"] * 10)])
    owners = np.concatenate([owners, np.arange(10_000, 10_010)])
    left, right = within(owners)
    learned = place_coverage(sources, owners, left, right, np.full(len(left), 0.99))
    assert set(learned["whole"]) == set(learned["split"]) == {"a", "b", "c"}
    assert learned["coverage"]["d"] > 0  # its share of the world is still said
    # Its places alone are as sure as the least whole source's, not certain.
    places, _ = merge_clusters(
        normalize_records(
            records_from_rows(
                [{"source": "d", "id": "1", "names": {"primary": "Uusi"}, "origin": "1"}]
            )
        ).places,
        np.zeros(1, dtype=np.int64),
        np.ones(1),
        with_learned(MergeConfig(), learned),
    )
    assert places.column("confidence")[0].as_py() == pytest.approx(min(learned["whole"].values()))
