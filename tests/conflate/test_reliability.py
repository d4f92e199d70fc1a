"""What a run learns of each source from its clusters: how often its values are right."""

from __future__ import annotations

import numpy as np
import pytest

from poiflow.conflate.merge import MergeConfig
from poiflow.conflate.reliability import learn_sources, name_words, source_accuracy
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
