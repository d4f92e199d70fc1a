"""GeoJSON inputs: FeatureCollections, a feature a line, OSM tags or flat properties."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.config import SourceMapping
from poiflow.errors import CorruptInputError, NothingValidError, SchemaMismatchError
from poiflow.pipeline import ingest
from poiflow.sources import TabularSource, open_source
from poiflow.sources.geojson import feature_row, point_of

from .reading import read

KIOSK = {
    "type": "Feature",
    "id": "a1b2",
    "geometry": {"type": "Point", "coordinates": [24.9384, 60.1699]},
    "properties": {
        "ref": "101",
        "@spider": "r_kioski_fi",
        "name": "R-kioski Kamppi",
        "shop": "convenience",
        "brand": "R-kioski",
        "brand:wikidata": "Q11881969",
        "addr:street_address": "Urho Kekkosen katu 1",
        "addr:city": "Helsinki",
        "addr:postcode": "00100",
        "phone": "+358 20 554 4000",
        "website": "https://www.r-kioski.fi/kamppi",
        "opening_hours": "Mo-Su 07:00-22:00",
    },
}
# A supermarket mapped as a building: 0.002 degrees square.
ALEPA = {
    "type": "Feature",
    "id": "c3d4",
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[24.0, 60.0], [24.002, 60.0], [24.002, 60.002], [24.0, 60.002], [24.0, 60.0]]
        ],
    },
    "properties": {"name": "Alepa", "shop": "supermarket", "name:sv": "Alepa Sv"},
}
NO_GEOMETRY = {
    "type": "Feature",
    "id": "e5",
    "geometry": None,
    "properties": {"name": "Kahvila Ilman", "amenity": "cafe", "addr:city": "Espoo"},
}
BAD_POINT = {
    "type": "Feature",
    "id": "f6",
    "geometry": {"type": "Point", "coordinates": ["24.9", 60.1]},
    "properties": {"name": "Huono", "amenity": "bar"},
}
FEATURES = [KIOSK, ALEPA, BAD_POINT, NO_GEOMETRY]


def write(path: Path, layout: str, features: list[dict[str, Any]]) -> Path:
    """The features as a FeatureCollection, a feature a line, or a GeoJSON text sequence."""
    if layout == "collection":
        text = json.dumps({"type": "FeatureCollection", "features": features}, indent=2)
    elif layout == "lines":
        text = "".join(json.dumps(f) + "\n" for f in features)
    else:
        text = "".join("\x1e" + json.dumps(f) + "\n" for f in features)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, "utf-8")
    return path


def test_features_tagged_as_openstreetmap_become_records(tmp_path: Path) -> None:
    source = open_source(write(tmp_path / "alltheplaces.geojson", "collection", FEATURES))
    assert isinstance(source, TabularSource)
    assert (source.format, source.tagged(), source.name) == ("geojson", True, "alltheplaces")
    rows, rejected = read(source)
    kiosk, alepa, cafe = rows
    assert kiosk["id"] == "a1b2"
    assert kiosk["source"] == "alltheplaces"
    assert (kiosk["lat"], kiosk["lon"]) == (60.1699, 24.9384)
    assert kiosk["names"]["primary"] == "R-kioski Kamppi"
    assert kiosk["categories"] == {"primary": "shop=convenience", "alternate": []}
    assert kiosk["brand"] == {"name": "R-kioski", "wikidata": "Q11881969"}
    assert kiosk["address"]["freeform"] == "Urho Kekkosen katu 1"
    assert (kiosk["address"]["locality"], kiosk["address"]["postcode"]) == ("Helsinki", "00100")
    assert kiosk["phones"] == ["+358 20 554 4000"]
    assert kiosk["websites"] == ["https://www.r-kioski.fi/kamppi"]
    assert kiosk["opening_hours"] == "Mo-Su 07:00-22:00"
    assert kiosk["origin"] == "alltheplaces.geojson#feature=0"
    # A building is placed at its middle.
    assert (alepa["lat"], alepa["lon"]) == pytest.approx((60.001, 24.001))
    assert alepa["names"]["alternates"] == [
        {"value": "Alepa Sv", "language": "sv", "variant": "common"}
    ]
    # No geometry is a place without coordinates, not an error.
    assert (cafe["lat"], cafe["lon"], cafe["address"]["locality"]) == (None, None, "Espoo")
    assert cafe["origin"] == "alltheplaces.geojson#feature=3"
    # A coordinate that is not a number is a rejected row with the reason and the feature.
    ((origin, reason, raw),) = rejected
    assert origin == "alltheplaces.geojson#feature=2"
    assert reason == (
        "geometry: a position must be [longitude, latitude] numbers, found ['24.9', 60.1]"
    )
    assert json.loads(raw) == BAD_POINT


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("feed.geojsonl", "lines"),
        ("feed.geojsons", "sequence"),
        ("feed.json", "collection"),
        ("feed.jsonl", "lines"),
        ("feed.geojson.gz", "collection"),
        ("feed.geojsonseq.gz", "sequence"),
    ],
)
def test_every_layout_reads_as_the_collection(tmp_path: Path, name: str, layout: str) -> None:
    expected, expected_rejected = read(
        open_source(write(tmp_path / "feed.geojson", "collection", FEATURES))
    )
    source = open_source(write(tmp_path / name, layout, FEATURES))
    assert isinstance(source, TabularSource)
    assert source.format == "geojson"
    rows, rejected = read(source, batch_size=3)

    def without_origin(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "origin"} for r in records]

    assert without_origin(rows) == without_origin(expected)
    assert [r[1] for r in rejected] == [r[1] for r in expected_rejected]
    if layout != "collection":
        assert [r["origin"] for r in rows] == [f"{name}:1", f"{name}:2", f"{name}:4"]
        assert rejected[0][0] == f"{name}:3"


def test_flat_properties_read_as_the_same_places_in_flat_json_lines(tmp_path: Path) -> None:
    places = [
        {
            "id": "1",
            "name": "Kahvila Kulma",
            "category": "cafe",
            "street": "Fredrikinkatu",
            "housenumber": "22",
            "city": "Helsinki",
            "phone": "09 123 4567",
            "lat": 60.1645,
            "lon": 24.9369,
        },
        {"id": "2", "name": "Baari", "country": "FI", "update_time": "2024-05-01T10:00:00Z"},
    ]
    flat = tmp_path / "vendor.jsonl"
    flat.write_text("".join(json.dumps(p) + "\n" for p in places), "utf-8")
    features = [
        {
            "type": "Feature",
            "geometry": None
            if "lat" not in p
            else {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
            "properties": {k: v for k, v in p.items() if k not in ("lat", "lon")},
        }
        for p in places
    ]
    source = open_source(write(tmp_path / "vendor.geojson", "collection", features))
    assert isinstance(source, TabularSource)
    assert source.tagged() is False
    rows, _ = read(source)
    expected, _ = read(open_source(flat))
    assert [{k: v for k, v in r.items() if k != "origin"} for r in rows] == [
        {k: v for k, v in r.items() if k != "origin"} for r in expected
    ]
    # Flat properties are held to the flat format, as a flat file's columns are.
    features[0]["properties"]["colour"] = "red"
    with pytest.raises(SchemaMismatchError, match="unknown column 'colour'"):
        read(open_source(write(tmp_path / "odd.geojson", "collection", features)))


def test_overpass_exports(tmp_path: Path) -> None:
    # osmtogeojson's older layout: the tags inside the properties, the id in two parts.
    old = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
        "properties": {"type": "node", "id": 123, "tags": {"amenity": "cafe", "name": "Kuppi"}},
    }
    # Overpass turbo's export: the id at "@id", a timestamp with the metadata.
    turbo = {
        "type": "Feature",
        "id": "way/77",
        "geometry": {"type": "LineString", "coordinates": [[24.0, 60.0], [24.002, 60.0]]},
        "properties": {
            "@id": "way/77",
            "@timestamp": "2024-03-01T12:00:00Z",
            "shop": "bakery",
            "name": "Leipomo",
            "disused:amenity": "cafe",
        },
    }
    rows, rejected = read(
        open_source(write(tmp_path / "export.geojson", "collection", [old, turbo]))
    )
    assert rejected == []
    assert [(r["id"], r["source_category"], r["lat"], r["lon"]) for r in rows] == [
        ("node/123", "amenity=cafe", 60.17, 24.95),
        ("way/77", "shop=bakery", 60.0, pytest.approx(24.001)),
    ]
    assert rows[1]["update_time"].isoformat() == "2024-03-01T12:00:00+00:00"

    # Overpass's CSV output: ::id, ::lat and ::lon beside the tags.
    csv = tmp_path / "overpass.tsv"
    csv.write_text(
        "::id\t::lat\t::lon\tname\tamenity\taddr:street\n"
        "123\t60.1\t24.9\tKahvila\tcafe\tMannerheimintie\n",
        "utf-8",
    )
    ((row,), _) = read(open_source(csv))
    assert (row["id"], row["lat"], row["address"]["street"]) == ("123", 60.1, "Mannerheimintie")


def test_constants_stand_in_for_tags_a_feature_lacks(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.geojson", "collection", [KIOSK, NO_GEOMETRY])
    mapping = SourceMapping(source="atp", constants={"country": "FI", "city": "Vantaa"})
    rows, _ = read(TabularSource(path, mapping))
    assert [r["source"] for r in rows] == ["atp", "atp"]
    assert [r["address"]["country"] for r in rows] == ["FI", "FI"]
    # A feature's own tag comes before the constant.
    assert [r["address"]["locality"] for r in rows] == ["Helsinki", "Espoo"]
    with pytest.raises(SchemaMismatchError, match="not for category"):
        read(TabularSource(path, SourceMapping(constants={"category": "shop"})))


def test_files_that_are_not_geojson_say_what_they_are(tmp_path: Path) -> None:
    array = tmp_path / "array.geojson"
    array.write_text("[1, 2, 3]", "utf-8")
    with pytest.raises(CorruptInputError, match=r"not GeoJSON: expected a FeatureCollection"):
        read(open_source(array))

    whole = json.dumps({"type": "FeatureCollection", "features": FEATURES})
    cut = tmp_path / "cut.geojson"
    cut.write_text(whole[: len(whole) // 2], "utf-8")
    with pytest.raises(CorruptInputError, match="is it cut short") as err:
        read(open_source(cut))
    assert err.value.path == str(cut)
    # Python's json.dumps writes a missing value as NaN, which is not JSON: the feature is
    # held back, saying so, and the features after it are read all the same. So in a
    # feature a line.
    for value in ("NaN", "-Infinity"):
        for layout in ("collection", "lines"):
            nan = tmp_path / f"nan.{'geojson' if layout == 'collection' else 'geojsonl'}"
            text = write(nan, layout, FEATURES).read_text("utf-8")
            nan.write_text(text.replace('"ref": "101"', f'"ref": {value}'), "utf-8")
            rows, rejected = read(open_source(nan))
            assert [r["id"] for r in rows] == ["c3d4", "e5"]
            (kiosk, reason, text), (bad_point, _, _) = rejected
            assert kiosk.endswith(("#feature=0", ":1")), kiosk
            assert reason == (
                f"{value} is not JSON (Python's json.dumps writes it for a missing value): "
                "write null"
            )
            assert json.loads(text)["properties"]["name"] == "R-kioski Kamppi"
            assert bad_point.endswith(("#feature=2", ":3"))

    odd = tmp_path / "odd.geojson"
    write(odd, "collection", [KIOSK, {"type": "Point", "coordinates": [1, 2]}, [1], "x"])
    rows, rejected = read(open_source(odd))
    assert [r["id"] for r in rows] == ["a1b2"]
    assert [(origin, reason) for origin, reason, _ in rejected] == [
        ("odd.geojson#feature=1", "expected a GeoJSON Feature, found 'Point'"),
        ("odd.geojson#feature=2", "expected a GeoJSON Feature, found 'list'"),
        ("odd.geojson#feature=3", "expected a GeoJSON Feature, found 'str'"),
    ]

    lines = tmp_path / "lines.geojsonl"
    lines.write_text(json.dumps(KIOSK) + "\n{not json\n", "utf-8")
    rows, rejected = read(open_source(lines))
    assert [r["id"] for r in rows] == ["a1b2"]
    assert rejected[0][0] == "lines.geojsonl:2"
    assert rejected[0][1].startswith("not JSON")


def test_partitions_share_a_collection_batch_by_batch(tmp_path: Path) -> None:
    features = [
        {**KIOSK, "id": f"k{i}", "geometry": {"type": "Point", "coordinates": [24.9, 60 + i / 100]}}
        for i in range(11)
    ]
    source = open_source(write(tmp_path / "many.geojson", "collection", features))
    whole = [b.records.to_pylist() for b in source.batches(3)]
    shared = sorted(
        (b for part in range(2) for b in source.batches(3, part=part, parts=2)),
        key=lambda b: b.chunk,
    )
    assert [b.records.to_pylist() for b in shared] == whole
    assert sum(len(b) for b in whole) == 11


finite = st.floats(-179.0, 179.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    lon=finite, lat=st.floats(-89.0, 89.0), width=st.floats(1e-4, 1.0), height=st.floats(1e-4, 1.0)
)
def test_a_point_is_itself_and_a_box_is_its_middle(
    lon: float, lat: float, width: float, height: float
) -> None:
    assert point_of({"type": "Point", "coordinates": [lon, lat]}) == (lat, lon)
    ring = [
        [lon, lat],
        [lon + width, lat],
        [lon + width, lat + height],
        [lon, lat + height],
        [lon, lat],
    ]
    middle = point_of({"type": "Polygon", "coordinates": [ring]})
    assert middle == pytest.approx((lat + height / 2, lon + width / 2), abs=1e-9)
    # Two boxes weigh by area: a box beside a copy of itself is the middle of the pair.
    twin = [[x + width, y] for x, y in ring]
    pair = point_of({"type": "MultiPolygon", "coordinates": [[ring], [twin]]})
    assert pair == pytest.approx((lat + height / 2, lon + width), abs=1e-9)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
geometries = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "Point",
                "MultiPoint",
                "LineString",
                "MultiLineString",
                "Polygon",
                "MultiPolygon",
                "GeometryCollection",
                "Circle",
            ]
        ),
        "coordinates": json_values,
    }
)


@settings(max_examples=300, deadline=None)
@given(
    feature=st.fixed_dictionaries(
        {
            "type": st.just("Feature"),
            "geometry": st.none() | geometries | json_values,
            "properties": st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=4),
        },
        optional={"id": json_values},
    )
    | json_values
)
def test_any_json_is_a_row_or_a_reason(feature: Any) -> None:
    row, reason = feature_row(feature)
    if row is None:
        assert reason
        return
    assert reason == ""
    assert all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in row.items())
    if "lat" in row:
        lat, lon = float(row["lat"]), float(row["lon"])
        assert math.isfinite(lat)
        assert math.isfinite(lon)


def test_a_folder_of_spiders_outputs_is_one_source(tmp_path: Path) -> None:
    # All the Places writes one file a spider; a spider that found nothing writes none.
    folder = tmp_path / "alltheplaces"
    folder.mkdir()
    write(folder / "a_empty.geojson", "collection", [])
    write(folder / "b_kiosks.geojson", "collection", [KIOSK])
    write(folder / "c_cafes.geojson", "collection", [NO_GEOMETRY])
    source = open_source(folder)
    assert isinstance(source, TabularSource)
    assert source.tagged()
    rows, _ = read(source)
    assert [(r["source"], r["id"], r["source_category"], r["origin"]) for r in rows] == [
        ("alltheplaces", "a1b2", "shop=convenience", "b_kiosks.geojson#feature=0"),
        ("alltheplaces", "e5", "amenity=cafe", "c_cafes.geojson#feature=0"),
    ]


def test_a_parquet_of_tags_reads_typed_values_as_text(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "tags.parquet"
    pq.write_table(
        pa.table(
            {
                "@id": ["node/1", "node/2"],
                "@lat": [60.1, 60.2],
                "@lon": [24.9, 25.0],
                "name": ["Kahvila", "Baari"],
                "amenity": ["cafe", "bar"],
                "addr:housenumber": pa.array([12, None], pa.int64()),
                "wheelchair": ["yes", "no"],  # a tag that gives no field
            }
        ),
        path,
    )
    rows, _ = read(open_source(path))
    assert [(r["id"], r["lat"], r["address"]) for r in rows] == [
        ("node/1", 60.1, {**dict.fromkeys(rows[0]["address"]), "housenumber": "12"}),
        ("node/2", 60.2, None),
    ]


@pytest.mark.parametrize(
    ("crs", "refused"),
    [
        ("urn:ogc:def:crs:EPSG::3067", True),  # Finland's TM35FIN, as GDAL writes it
        ("EPSG:3857", True),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", False),
        ("urn:ogc:def:crs:EPSG::4326", False),
    ],
)
def test_coordinates_in_another_system_are_refused_with_what_to_do(
    tmp_path: Path, crs: str, refused: bool
) -> None:
    path = tmp_path / "kohteet.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": crs}},
                "features": [KIOSK],
            }
        ),
        "utf-8",
    )
    if refused:
        with pytest.raises(CorruptInputError, match=f"its coordinates are in {crs}.*ogr2ogr"):
            read(open_source(path))
    else:
        assert [r["id"] for r in read(open_source(path))[0]] == ["a1b2"]


@pytest.mark.parametrize(
    ("name", "layout"),
    [("bom.geojson", "collection"), ("bom.geojsonl", "lines"), ("bom.geojson.gz", "collection")],
)
def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path: Path, name: str, layout: str) -> None:
    # Windows tools write UTF-8 with a byte-order mark.
    plain = write(tmp_path / f"plain-{name}", layout, [KIOSK])
    data = plain.read_bytes()
    if name.endswith(".gz"):
        data = gzip.compress(b"\xef\xbb\xbf" + gzip.decompress(data))
    else:
        data = b"\xef\xbb\xbf" + data
    (tmp_path / name).write_bytes(data)
    rows, rejected = read(open_source(tmp_path / name))
    assert rejected == []
    assert [r["id"] for r in rows] == ["a1b2"]


@pytest.mark.parametrize("layout", ["collection", "lines"])
def test_an_id_written_as_a_number_past_64_bits_is_read(tmp_path: Path, layout: str) -> None:
    # Valid JSON that the C parser does not hold: the features from there on are read by
    # the Python parser, none twice and none lost.
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [24.93 + n / 100, 60.17]},
            "properties": {"id": number, "name": f"Kahvila {n}", "category": "cafe"},
        }
        for n, number in enumerate([10**400, 12345678901234567890, 3, 2**70])
    ]
    rows, rejected = read(open_source(write(tmp_path / "feed.geojson", layout, features)))
    assert rejected == []
    assert [r["id"] for r in rows] == [str(10**400), "12345678901234567890", "3", str(2**70)]
    assert [r["names"]["primary"] for r in rows] == [f"Kahvila {n}" for n in range(4)]


# Any value JSON holds (integers past 64 bits among them), and NaN and Infinity, which
# JSON has not and Python's json.dumps writes: as a flat file's properties, id and name
# always, others at times.
json_any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.mark.parametrize("block", [1, 3, 7, 1 << 20])
def test_a_collection_past_what_the_fast_parser_reads_is_read_whole_at_any_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    # After a NaN (or an integer past 64 bits) Python's parser reads the rest of the
    # collection from a window of the file: where a block ends must not matter.
    from poiflow.sources import json_items

    monkeypatch.setattr(json_items, "_BLOCK", block)
    features = [
        {**KIOSK, "id": "k0"},
        {**KIOSK, "id": "k1", "properties": {**KIOSK["properties"], "ref": math.nan}},
        {**ALEPA, "properties": {**ALEPA["properties"], "ref": 12345678901234567890123}},
        {**KIOSK, "id": "k3", "properties": {**KIOSK["properties"], "name": 'A "quoted" ]}'}},
        NO_GEOMETRY,
    ]
    document = {"type": "FeatureCollection", "name": "x", "features": features, "bbox": [1, 2]}
    path = tmp_path / "late.geojson"
    path.write_text(json.dumps(document, indent=1), "utf-8")
    rows, rejected = read(open_source(path))
    assert [r["id"] for r in rows] == ["k0", "c3d4", "k3", "e5"]
    assert rows[2]["names"]["primary"] == 'A "quoted" ]}'
    assert [(origin, reason.split(" ")[0]) for origin, reason, _ in rejected] == [
        ("late.geojson#feature=1", "NaN")
    ]
    # Cut short after the NaN: refused, as a file cut short is.
    text = path.read_text("utf-8")
    path.write_text(text[: text.index('"c3d4"') + 40], "utf-8")
    with pytest.raises(CorruptInputError, match="is it cut short"):
        read(open_source(path))


def is_json(value: Any) -> bool:
    """Whether ``value`` is written as JSON without NaN or Infinity."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


@settings(max_examples=40, deadline=None)
@given(
    features=st.lists(
        st.fixed_dictionaries(
            {
                "type": st.just("Feature"),
                "geometry": st.none() | geometries,
                "properties": st.fixed_dictionaries(
                    {"id": json_any, "name": json_any},
                    optional=dict.fromkeys(
                        ("category", "phone", "website", "street", "city"), json_any
                    ),
                ),
            }
        ),
        min_size=1,
        max_size=8,
    ),
    layout=st.sampled_from(["collection", "lines"]),
)
def test_any_flat_feature_file_is_read_and_none_is_lost(
    tmp_path_factory: pytest.TempPathFactory, features: list[dict[str, Any]], layout: str
) -> None:
    # Values of any JSON kind (integers past 64 bits among them): the file is read, each
    # feature a record or held back with a reason (one with NaN or Infinity always), and
    # an id written as a number is read as that number's digits.
    folder = tmp_path_factory.mktemp("features")
    path = write(folder / "feed.geojson", layout, features)
    origin = "feed.geojson#feature={}" if layout == "collection" else "feed.geojson:{}"
    first = 0 if layout == "collection" else 1
    not_json = {origin.format(n + first) for n, f in enumerate(features) if not is_json(f)}
    try:
        report = ingest([path], folder / "p.parquet")
    except NothingValidError:
        report = None
    held = pq.read_table(folder / "p.quarantine.parquet").to_pylist()
    held = [r for r in held if r["scope"] == "record"]
    said_not_json = {r["origin"] for r in held if "is not JSON (" in r["reason"]}
    assert said_not_json == not_json
    if report is None:
        assert len(held) == len(features)
        return
    assert report.read == len(features) == report.valid + report.quarantined
    numbers = {
        origin.format(n + first): str(f["properties"]["id"])
        for n, f in enumerate(features)
        if type(f["properties"].get("id")) is int
    }
    for row in pq.read_table(folder / "p.parquet", columns=["id", "origin"]).to_pylist():
        if row["origin"] in numbers:
            assert row["id"] == numbers[row["origin"]]
