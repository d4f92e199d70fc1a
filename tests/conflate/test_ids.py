from __future__ import annotations

import polars as pl
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from poiflow.conflate.ids import (
    assign_ids,
    changelog,
    fresh_ids,
    place_id_for,
    place_ids,
    reads_keys,
)
from poiflow.schema import GOLDEN_PLACE_SCHEMA


def places(*rows: dict) -> pa.Table:
    full = [
        {
            "names": {"primary": r.get("name", "x")},
            "lat": r.get("lat", 60.0),
            "lon": 24.0,
            "members": 1,
            **{k: v for k, v in r.items() if k not in ("name", "lat")},
        }
        for r in rows
    ]
    return pa.Table.from_pylist(full, schema=GOLDEN_PLACE_SCHEMA)


def test_ids_follow_the_largest_overlap() -> None:
    keys = [("a", "1"), ("b", "1"), ("c", "1"), ("a", "2"), ("a", "3")]
    previous = {("a", "1"): "P1", ("b", "1"): "P1", ("c", "1"): "P2", ("a", "2"): "P2"}
    # Now {a1, b1, c1} (P1 took c1 from P2), {a2}, {a3}
    labels = [0, 0, 0, 3, 4]
    ids = assign_ids(keys, labels, previous, {0: "f0", 3: "f3", 4: "f4"})
    assert ids == {0: "P1", 3: "P2", 4: "f4"}


def test_a_fresh_id_never_reuses_an_old_one() -> None:
    previous = {("a", "1"): "f0"}
    ids = assign_ids([("a", "2")], [0], previous, {0: "f0"})
    assert ids[0] == "f0-1"


def test_keys_are_read_only_to_inherit_ids_or_to_part_alike_fresh_ones() -> None:
    assert not reads_keys({}, {0: "f0", 1: "f1"})
    assert assign_ids([], [0, 1], {}, {0: "f0", 1: "f1"}) == {0: "f0", 1: "f1"}
    assert reads_keys({("a", "1"): "P1"}, {0: "f0"})
    assert reads_keys({}, {0: "f0", 1: "f0"})
    assert assign_ids([("a", "1"), ("b", "1")], [0, 1], {}, {0: "f0", 1: "f0"}) == {
        0: "f0",
        1: "f0-1",
    }


def test_changelog_kinds() -> None:
    before = {
        ("a", "1"): "P1",
        ("b", "1"): "P1",
        ("a", "2"): "P2",
        ("a", "3"): "P3",
        ("a", "4"): "P4",
        ("b", "4"): "P4",
        ("a", "5"): "P5",
    }
    after = {
        ("a", "1"): "P1",
        ("b", "1"): "P1",
        ("a", "2"): "P1",  # P2 merged into P1
        ("a", "3"): "P3",  # updated (renamed)
        ("a", "4"): "P4",
        ("b", "4"): "N1",  # P4 split
        ("a", "6"): "N2",
    }  # created; P5 removed
    old = places(
        {"id": "P1"}, {"id": "P2"}, {"id": "P3", "name": "Old"}, {"id": "P4"}, {"id": "P5"}
    )
    new = places(
        {"id": "P1"}, {"id": "P3", "name": "New"}, {"id": "P4"}, {"id": "N1"}, {"id": "N2"}
    )
    rows = {r["place_id"]: r for r in changelog(before, after, old, new).to_pylist()}
    assert rows["P1"]["change"] == "merged"
    assert rows["P1"]["related"] == ["P2"]
    assert rows["P2"]["change"] == "merged"
    assert rows["P2"]["related"] == ["P1"]
    assert rows["P3"] == {
        "place_id": "P3",
        "change": "updated",
        "attributes": ["names"],
        "related": [],
    }
    assert rows["P4"]["change"] == "split"
    assert rows["P4"]["related"] == ["N1"]
    assert rows["N1"]["change"] == "split"
    assert rows["N1"]["related"] == ["P4"]
    assert rows["N2"]["change"] == "created"
    assert rows["P5"]["change"] == "removed"


def test_new_opening_hours_are_a_change_of_the_place() -> None:
    same = {("a", "1"): "P1"}
    old = places({"id": "P1", "opening_hours": "Mo-Fr 08:00-16:00"})
    new = places({"id": "P1", "opening_hours": "Mo-Su 10:00-22:00"})
    rows = changelog(same, same, old, new).to_pylist()
    assert rows == [
        {"place_id": "P1", "change": "updated", "attributes": ["opening_hours"], "related": []}
    ]


@given(st.lists(st.tuples(st.text(min_size=1), st.text(min_size=1)), max_size=30))
def test_place_ids_at_once_are_each_members_own(keys: list[tuple[str, str]]) -> None:
    # A first release's ids are made for every place at once; a stream's one by one.
    sources = pl.Series([s for s, _ in keys], dtype=pl.String)
    ids = pl.Series([i for _, i in keys], dtype=pl.String)
    assert place_ids(sources, ids) == [place_id_for(s, i) for s, i in keys]


def test_fresh_ids_hash_each_clusters_first_member() -> None:
    sources = ["b", "a", "a", "c"]
    record_ids = ["1", "9", "10", "5"]
    fresh = fresh_ids(sources, record_ids, [7, 7, 7, 2])
    assert fresh == {7: place_id_for("a", "10"), 2: place_id_for("c", "5")}
    assert fresh[7] != place_id_for("a", "9")
