from __future__ import annotations

import json
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.errors import SchemaMismatchError
from poiflow.sources import OvertureSource, Source, open_source
from poiflow.sources.overture import OVERTURE_COLUMNS
from poiflow.sources.overture_records import overture_records

from .overture_fixture import SCHEMA, place, point, write_overture
from .overture_reference import reference_records


def test_reads_overture_layout(tmp_path: Path) -> None:
    path = write_overture(
        tmp_path / "places.parquet",
        [
            place(
                "08f1",
                "Café Regatta",
                24.9,
                60.18,
                names={
                    "primary": "Café Regatta",
                    "common": [("sv", "Kafé Regatta")],
                    "rules": [
                        {
                            "variant": "short",
                            "language": None,
                            "value": "Regatta",
                            "between": None,
                            "side": None,
                        }
                    ],
                },
                phones=["+358 40 123 4567"],
                websites=["https://caferegatta.fi"],
                brand={
                    "wikidata": "Q1",
                    "names": {"primary": "Regatta", "common": None, "rules": None},
                },
            ),
            place(
                "08f2",
                "Kiosk",
                24.95,
                60.17,
                categories=None,
                addresses=None,
                operating_status="temporarily_closed",
            ),
        ],
    )
    source = open_source(path)
    assert isinstance(source, OvertureSource)
    assert source.size_hint() == 2
    rows = pa.concat_tables(b.records for b in source.batches()).to_pylist()
    first, second = rows
    assert first["source"] == "overture"
    assert first["id"] == "08f1"
    assert (first["lat"], first["lon"]) == (60.18, 24.9)  # full double precision, not bbox float32
    assert {(a["value"], a["language"], a["variant"]) for a in first["names"]["alternates"]} == {
        ("Kafé Regatta", "sv", "common"),
        ("Regatta", None, "short"),
    }
    assert first["categories"] == {"primary": "coffee_shop", "alternate": ["cafe", "bakery"]}
    assert first["address"]["locality"] == "Helsinki"
    assert first["address"]["country"] == "FI"
    assert first["brand"] == {"name": "Regatta", "wikidata": "Q1"}
    assert first["update_time"].year == 2025
    assert second["categories"] is None
    assert second["address"] is None
    assert second["operating_status"] == "temporarily_closed"


def test_non_point_geometry_is_flagged(tmp_path: Path) -> None:
    line = struct.pack("<BII", 1, 2, 2) + struct.pack("<4d", 24.9, 60.1, 24.91, 60.11)
    big_endian = struct.pack(">BIdd", 0, 1, 24.5, 60.5)
    path = write_overture(
        tmp_path / "p.parquet",
        [place("a", "Line", 0, 0, geometry=line), place("b", "Big", 0, 0, geometry=big_endian)],
    )
    rows = pa.concat_tables(b.records for b in OvertureSource(path).batches()).to_pylist()
    assert rows[0]["issues"] == ["geometry: not a point"]
    assert rows[0]["lat"] is None
    assert (rows[1]["lat"], rows[1]["lon"]) == (60.5, 24.5)
    assert rows[1]["issues"] is None


def test_missing_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["1"], "names": [{"primary": "x"}]}), path)
    # Without geometry this is not Overture: read as flat places, which lack 'name'.
    with pytest.raises(SchemaMismatchError, match="unknown column 'names'"):
        list(open_source(path).batches())
    with pytest.raises(SchemaMismatchError, match="missing column"):
        list(OvertureSource(path).batches())


# Every shape a column of the places theme takes: missing, null, empty, partly null.
LABEL = st.sampled_from(["cafe", "bar", "restaurant", "", "cafe"])
MAYBE_TEXT = st.one_of(st.none(), st.just(""), st.text("abcÄ ", max_size=4))
RULE = st.fixed_dictionaries(
    {
        "variant": st.sampled_from([None, "", "alternate", "short"]),
        "language": st.sampled_from([None, "en", "fi"]),
        "value": MAYBE_TEXT,
        "between": st.none(),
        "side": st.none(),
    }
)
NAMES_VALUE = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "primary": MAYBE_TEXT,
            "common": st.one_of(
                st.none(),
                st.lists(st.tuples(st.sampled_from(["en", "sv"]), MAYBE_TEXT), max_size=2),
            ),
            "rules": st.one_of(st.none(), st.lists(RULE, max_size=2)),
        }
    ),
)
LABELS = st.one_of(st.none(), st.lists(st.one_of(st.none(), LABEL), max_size=3))
ADDRESS = st.fixed_dictionaries(
    dict.fromkeys(("freeform", "locality", "postcode", "region", "country"), MAYBE_TEXT)
)
TIMES = st.sampled_from(
    [None, "2024-06-01T00:00:00Z", "2024-06-01T00:00:00.123+02:00", "2023-01-05", "soon"]
)
SOURCE = st.fixed_dictionaries(
    {
        "property": st.just(""),
        "dataset": st.just("meta"),
        "record_id": st.none(),
        "update_time": TIMES,
        "confidence": st.none(),
    }
)
STRINGS = st.one_of(st.none(), st.lists(st.text("a1+ ", max_size=3), max_size=2))
LINE = struct.pack("<BII", 1, 2, 2) + struct.pack("<4d", 24.9, 60.1, 24.91, 60.11)
ROW = st.fixed_dictionaries(
    {
        "geometry": st.one_of(
            st.none(),
            st.just(LINE),
            st.tuples(st.floats(-180, 180), st.floats(-90, 90)).map(lambda p: point(*p)),
        ),
        "names": NAMES_VALUE,
        "categories": st.one_of(
            st.none(),
            st.fixed_dictionaries({"primary": st.one_of(st.none(), LABEL), "alternate": LABELS}),
        ),
        "taxonomy": st.one_of(
            st.none(),
            st.fixed_dictionaries({"primary": st.one_of(st.none(), LABEL), "alternates": LABELS}),
        ),
        "basic_category": st.one_of(st.none(), LABEL),
        "addresses": st.one_of(st.none(), st.lists(st.one_of(st.none(), ADDRESS), max_size=2)),
        "phones": STRINGS,
        "websites": STRINGS,
        "emails": STRINGS,
        "brand": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "wikidata": st.sampled_from([None, "", "Q37158"]),
                    "names": st.one_of(
                        st.none(),
                        st.fixed_dictionaries(
                            {"primary": MAYBE_TEXT, "common": st.none(), "rules": st.none()}
                        ),
                    ),
                }
            ),
        ),
        "sources": st.one_of(st.none(), st.lists(SOURCE, max_size=3)),
        "operating_status": st.sampled_from([None, "open", "closed"]),
    }
)
TAXONOMY = pa.struct([("primary", pa.string()), ("alternates", pa.list_(pa.string()))])
WIDEST = SCHEMA.append(pa.field("taxonomy", TAXONOMY)).append(
    pa.field("basic_category", pa.string())
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(ROW, min_size=1, max_size=12),
    dropped=st.sets(st.sampled_from(["taxonomy", "basic_category", "brand", "sources", "emails"])),
    start=st.integers(0, 10**6),
)
def test_the_column_wise_reader_reads_as_the_row_reader_did(
    rows: list[dict], dropped: set[str], start: int
) -> None:
    for number, row in enumerate(rows):
        row["id"] = f"g{number}"
    columns = [c for c in OVERTURE_COLUMNS if c in WIDEST.names and c not in dropped]
    table = pa.Table.from_pylist(rows, schema=WIDEST).select(columns)
    got = overture_records(table, "overture", "part-1.parquet", start)
    expected = reference_records(table, "overture", "part-1.parquet", start)
    assert got.to_pylist() == expected.to_pylist()
    assert got.schema == expected.schema


def test_a_layout_without_some_nested_fields_reads_them_as_missing() -> None:
    # Releases differ: a taxonomy without alternates, categories without alternates, a
    # brand without names, sources without times, addresses with fewer parts.
    strings = pa.list_(pa.string())
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("geometry", pa.binary()),
            ("names", pa.struct([("primary", pa.string())])),
            ("categories", pa.struct([("primary", pa.string())])),
            ("taxonomy", pa.struct([("primary", pa.string()), ("hierarchy", strings)])),
            ("brand", pa.struct([("wikidata", pa.string())])),
            ("addresses", pa.list_(pa.struct([("freeform", pa.string())]))),
            ("sources", pa.list_(pa.struct([("dataset", pa.string())]))),
        ]
    )
    rows = [
        {
            "id": "a",
            "geometry": point(24.9, 60.1),
            "names": {"primary": "Kahvila"},
            "categories": {"primary": "cafe"},
            "taxonomy": {"primary": "coffee_shop", "hierarchy": ["food", "coffee_shop"]},
            "brand": {"wikidata": "Q37158"},
            "addresses": [{"freeform": "Mannerheimintie 5"}],
            "sources": [{"dataset": "meta"}],
        },
        {"id": "b", "geometry": point(24.9, 60.2), "names": {"primary": "Baari"}},
    ]
    table = pa.Table.from_pylist(rows, schema=schema)
    got = overture_records(table, "overture", "p.parquet", 0)
    assert got.to_pylist() == reference_records(table, "overture", "p.parquet", 0).to_pylist()
    first = got.to_pylist()[0]
    assert first["categories"] == {"primary": "cafe", "alternate": ["coffee_shop"]}
    assert first["brand"] == {"name": None, "wikidata": "Q37158"}
    assert first["address"]["freeform"] == "Mannerheimintie 5"
    assert first["update_time"] is None


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=12), layout=st.sampled_from(["geojson", "lines"]))
def test_overtures_own_geojson_reads_as_its_geoparquet(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict], layout: str
) -> None:
    for number, row in enumerate(rows):
        row["id"] = f"g{number}"
        if row["geometry"] == LINE:
            row["geometry"] = None
    rows[0]["names"] = rows[0]["names"] or {"primary": "Kahvila", "common": None, "rules": None}
    table = pa.Table.from_pylist(rows, schema=WIDEST)
    folder = tmp_path_factory.mktemp("overture")
    parquet = folder / "places.parquet"
    pq.write_table(table, parquet)
    # As Overture's download tool writes GeoJSON: each row's values that are not null as
    # properties (a names.common map as its pairs), the WKB as a GeoJSON geometry.
    features = []
    for row in table.to_pylist():
        geometry = row.pop("geometry")
        lon, lat = struct.unpack("<dd", geometry[5:21]) if geometry else (None, None)
        features.append(
            {
                "type": "Feature",
                "geometry": None
                if geometry is None
                else {"type": "Point", "coordinates": [lon, lat]},
                "properties": {k: v for k, v in row.items() if v is not None},
            }
        )
    path = folder / ("places.geojson" if layout == "geojson" else "places.geojsonseq")
    if layout == "geojson":
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    else:
        path.write_text("".join(json.dumps(f) + "\n" for f in features), "utf-8")
    source = open_source(path)
    assert source.kind == "GeoJSON, Overture"

    def records(source: Source) -> list[dict]:
        return [
            {k: v for k, v in r.items() if k != "origin"}
            for batch in source.batches(5)
            for r in batch.records.to_pylist()
        ]

    assert records(source) == records(open_source(parquet))


def test_an_overture_feature_with_every_part(tmp_path: Path) -> None:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.9414, 60.1699]},
        "properties": {
            "id": "08f1126b2e6a1b1a03a4c7b3d2c2f0e1",
            "version": 2,
            "names": {
                "primary": "Kahvila Kulma",
                "common": {"en": "Corner Café", "sv": "Kafé Hörnet"},
                "rules": [{"variant": "short", "value": "Kulma"}],
            },
            "basic_category": "coffee_shop",
            "taxonomy": {
                "primary": "coffee_shop",
                "hierarchy": ["food_and_drink", "cafe"],
                "alternates": ["bakery"],
            },
            "confidence": 0.93,
            "websites": ["https://kulma.example.fi"],
            "phones": ["+358 9 123 4567"],
            "brand": {"names": {"primary": "Kulma"}, "wikidata": "Q999"},
            "addresses": [
                {
                    "freeform": "Fredrikinkatu 22",
                    "locality": "Helsinki",
                    "postcode": "00120",
                    "country": "FI",
                }
            ],
            "sources": [
                {
                    "property": "",
                    "dataset": "meta",
                    "record_id": "1",
                    "update_time": "2025-06-01T08:00:00.000Z",
                },
                {
                    "property": "/properties/phones",
                    "dataset": "msft",
                    "update_time": "2025-07-01T08:00:00Z",
                },
            ],
            "operating_status": "open",
        },
    }
    path = tmp_path / "helsinki.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), "utf-8")
    source = open_source(path)
    assert source.kind == "GeoJSON, Overture"
    ((record,),) = [batch.records.to_pylist() for batch in source.batches()]
    assert record["source"] == "overture"
    assert record["id"] == "08f1126b2e6a1b1a03a4c7b3d2c2f0e1"
    assert (record["lat"], record["lon"]) == (60.1699, 24.9414)
    assert record["names"] == {
        "primary": "Kahvila Kulma",
        "alternates": [
            {"value": "Corner Café", "language": "en", "variant": "common"},
            {"value": "Kafé Hörnet", "language": "sv", "variant": "common"},
            {"value": "Kulma", "language": None, "variant": "short"},
        ],
    }
    assert record["categories"] == {"primary": "coffee_shop", "alternate": ["bakery"]}
    assert record["address"]["freeform"] == "Fredrikinkatu 22"
    assert record["address"]["postcode"] == "00120"
    assert record["phones"] == ["+358 9 123 4567"]
    assert record["brand"] == {"name": "Kulma", "wikidata": "Q999"}
    assert record["update_time"].isoformat() == "2025-07-01T08:00:00+00:00"
    assert record["origin"] == "helsinki.geojson#feature=0"


def test_an_overture_feature_whose_nested_value_is_not_json_is_held_back(tmp_path: Path) -> None:
    # Its names as a plain text, not an object: that feature is held back with the reason,
    # and the others are read (before, the whole file failed on it).
    def feature(number: int, names: object) -> dict:
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [24.93, 60.17 + number / 1000]},
            "properties": {"id": f"g{number}", "names": names, "confidence": 0.9},
        }

    features = [
        feature(0, {"primary": "Kahvila"}),
        feature(1, "Baari"),
        feature(2, {"primary": "Ravintola"}),
    ]
    path = tmp_path / "places.geojsonseq"
    path.write_text("".join(json.dumps(f) + "\n" for f in features), "utf-8")
    source = open_source(path)
    assert source.kind == "GeoJSON, Overture"
    batches = list(source.batches(5))
    rows = [r for batch in batches for r in batch.records.to_pylist()]
    assert [r["id"] for r in rows] == ["g0", "g2"]
    assert [r["names"]["primary"] for r in rows] == ["Kahvila", "Ravintola"]
    rejected = [r for batch in batches for r in batch.rejected]
    assert [(origin, reason.split(" (")[0]) for origin, reason, _ in rejected] == [
        ("places.geojsonseq:2", "names: not JSON")
    ]
    assert json.loads(rejected[0][2])["names"] == "Baari"


def test_an_overture_json_value_of_the_wrong_kind_is_refused_naming_the_file(
    tmp_path: Path,
) -> None:
    rows = [
        {"id": "g0", "names": {"primary": "Kahvila"}, "brand": {"names": {"primary": "K"}}},
        {"id": "g1", "names": {"primary": "Baari"}, "brand": 12345},
    ]
    path = tmp_path / "places.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    with pytest.raises(SchemaMismatchError, match="Overture's 'brand' is not as its schema") as err:
        list(open_source(path).batches(5))
    assert err.value.path == str(path)
