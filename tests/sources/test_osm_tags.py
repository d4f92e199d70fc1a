"""OpenStreetMap tags read column by column (``tag_columns``, ``tagged_records``), held to
the reader they replaced, which read them one record at a time (``osm_reference``)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from poiflow.schema import SOURCE_RECORD_SCHEMA
from poiflow.sources.osm_tags import (
    _ROLES,
    OSM_KEY_PRIORITY,
    TAGGED_CONSTANTS,
    TagRows,
    tagged_records,
)
from tests.sources.osm_reference import reference_tagged_records, tag_fields

KEYS = [
    *_ROLES,
    "name:fi",
    "name:sv",
    "name:zh-Hant",
    "name:",
    "disused:shop",
    "was:amenity",
    "abandoned:railway",
    "wheelchair",
    "building",
]
# Text as tags hold it: parts split by ';', blanks and whitespace that Python's strip()
# takes and other libraries' do not (U+001C, U+00A0, U+3000).
VALUES = st.text(
    alphabet=st.sampled_from("ab é;; \t\x1c\u00a0\u3000"), max_size=6
) | st.sampled_from(["cafe", "cafe;bar", " ; ", "", "+358 9 123", "https://x.fi"])
TAGS = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=8)


def columns_of(records: list[list[tuple[str, str]]]) -> pa.Table:
    tags = TagRows()
    for record in records:
        tags.add(record)
    return pa.table(tags.columns())


def reference_of(records: list[list[tuple[str, str]]]) -> pa.Table:
    rows = [tag_fields(record) for record in records]
    names = list(rows[0]) if rows else list(columns_of([]).column_names)
    schema = pa.schema([SOURCE_RECORD_SCHEMA.field(name) for name in names])
    return pa.Table.from_pylist(rows, schema=schema)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(TAGS, max_size=12))
@example(records=[])
@example(records=[[("disused:shop", "bakery")], [("disused:shop", "x"), ("amenity", " ; ")]])
@example(records=[[("addr:place", "Kylä"), ("addr:street", "Tie"), ("addr:street", "Katu")]])
@example(records=[[("shop", "b;a"), ("amenity", "cafe"), ("amenity", "bar;pub")]])
def test_tags_read_column_by_column_as_one_by_one(records: list[list[tuple[str, str]]]) -> None:
    new, old = columns_of(records), reference_of(records)
    assert new.select(old.column_names).to_pylist() == old.to_pylist()
    assert new.select(old.column_names).schema.equals(old.schema)


def test_a_record_without_tags_is_open_and_has_no_fields() -> None:
    [row] = columns_of([[("wheelchair", "yes")]]).to_pylist()
    assert row["names"] == {"primary": None, "alternates": None}
    assert row["operating_status"] == "open"
    assert all(row[field] is None for field in ("categories", "address", "phones", "brand"))


def test_categories_by_key_priority_and_lifecycle_closes_only_what_has_none() -> None:
    rows = columns_of(
        [
            [("shop", "bakery"), ("amenity", "cafe; bar"), ("disused:shop", "kiosk")],
            [("disused:shop", "kiosk"), ("name", "Old kiosk")],
        ]
    ).to_pylist()
    assert rows[0]["categories"] == {
        "primary": "amenity=cafe",
        "alternate": ["amenity=bar", "shop=bakery"],
    }
    assert rows[0]["operating_status"] == "open"
    assert rows[1]["operating_status"] == "permanently_closed"
    assert OSM_KEY_PRIORITY[0] == "amenity"


columns = st.sampled_from(
    [
        *[key for key in _ROLES if not key.startswith("addr:s")][:30],
        "addr:street",
        "name:sv",
        "was:shop",
        "wheelchair",
        "@id",
        "id",
        "lat",
        "::lon",
        "@timestamp",
        "source",
    ]
)
cell = (
    st.none() | VALUES | st.integers(-5, 5) | st.sampled_from(["60.1", "x", "2024-01-02T03:04:05Z"])
)


@st.composite
def tag_tables(draw: Any) -> tuple[pa.Table, dict[str, str]]:
    names = draw(st.lists(columns, unique=True, max_size=7))
    count = draw(st.integers(0, 6))
    data = {}
    for name in names:
        values = draw(st.lists(cell, min_size=count, max_size=count))
        if any(isinstance(v, int) for v in values):
            # A typed column (Parquet's numbers): read as text.
            values = [v if isinstance(v, int) or v is None else len(v) for v in values]
            data[name] = pa.array(values, pa.int64())
        else:
            data[name] = pa.array(values, pa.string())
    constants = draw(st.dictionaries(st.sampled_from(list(TAGGED_CONSTANTS)), VALUES, max_size=3))
    table = pa.table(data) if data else pa.table({"x": pa.array([None] * count, pa.string())})
    return table, constants


@settings(max_examples=300, deadline=None)
@given(drawn=tag_tables())
def test_tables_of_tags_read_column_by_column_as_row_by_row(
    drawn: tuple[pa.Table, dict[str, str]],
) -> None:
    table, constants = drawn
    origins = [f"t.csv#row={i}" for i in range(table.num_rows)]
    new = tagged_records(table, origins, "tags", constants)
    old = reference_tagged_records(table, origins, "tags", constants)
    assert new.to_pylist() == old.to_pylist()
    assert new.schema.equals(SOURCE_RECORD_SCHEMA)
