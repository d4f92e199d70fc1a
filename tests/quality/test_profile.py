"""``poiflow summary``: the reasons of a quarantine file, counted by their shape, and the
profile of a places file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow import ingest
from poiflow.config import SourceMapping
from poiflow.errors import InputError
from poiflow.quality.profile import QuarantineReason, profile_places, quarantine_reasons


def test_reasons_are_counted_by_shape_commonest_first_with_where_each_first_occurs(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "id,name,lat,lon,phone\n"
        "1,Cafe,60.1,24.9,not a phone\n"  # 2: a value withheld
        "2,,60.1,24.9,\n"  # 3: held back whole
        "3,Bar,60.1,24.9,still not one\n"  # 4: the same shape, another value
        "4,,60.1,24.9,\n"  # 5
        "5,Pub,60.1,24.9,nor this\n",  # 6
        encoding="utf-8",
    )
    ingest([feed], tmp_path / "p.parquet")
    held = tmp_path / "p.quarantine.parquet"
    reasons = quarantine_reasons(held)
    assert [(r.scope, r.records, r.first) for r in reasons] == [
        ("field", 3, "feed.csv:2"),
        ("record", 2, "feed.csv:3"),
    ]
    assert reasons[0].reason.startswith("'…'")  # the phone itself is masked
    assert quarantine_reasons(held, scope="record") == [
        QuarantineReason("record", "name is missing", 2, "feed.csv:3")
    ]
    with pytest.raises(InputError, match="not a readable quarantine file"):
        quarantine_reasons(feed)


def test_a_parquet_that_is_not_a_places_file_is_told_what_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "vendor.parquet"
    pq.write_table(pa.table({"id": ["1"], "name": ["Kahvila"], "lat": [60.1]}), path)
    with pytest.raises(InputError) as caught:
        profile_places(path)
    said = str(caught.value)
    assert "not a places file" in said
    assert "it has no address, categories, names, opening_hours, phones, websites, source" in said
    assert "its columns: id, lat, name" in said
    assert "Binder Error" not in said


def test_the_labels_the_taxonomy_did_not_know_are_counted_for_a_mapping(tmp_path: Path) -> None:
    feed = tmp_path / "codes.csv"
    labels = ["5812", "5812", "Kahvila", "X-17", "5812", "X-17"]
    feed.write_text(
        "id,name,category\n" + "".join(f"{i},Place {i},{c}\n" for i, c in enumerate(labels)),
        encoding="utf-8",
    )
    ingest([feed], tmp_path / "p.parquet")
    profile = profile_places(tmp_path / "p.parquet")
    assert profile.unknown_categories == [("5812", 3), ("X-17", 2)]  # "Kahvila" is a cafe
    mapping = SourceMapping(categories={"5812": "restaurant"})
    ingest([feed], tmp_path / "q.parquet", mapping=mapping)
    assert profile_places(tmp_path / "q.parquet").unknown_categories == [("X-17", 2)]


def test_a_feed_given_for_its_places_file_is_told_to_be_ingested_first(tmp_path: Path) -> None:
    feed = tmp_path / "vendor.csv"
    feed.write_text("id,name,lat,lon\n1,Kahvila,60.17,24.94\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"not a Parquet file: .*poiflow ingest vendor.csv -o"):
        profile_places(feed)
