"""Tables in memory as inputs (pandas, polars, GeoPandas, Arrow, DuckDB), and Parquet as
pandas writes it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

import poiflow
from poiflow.config import SourceMapping
from poiflow.errors import InputError
from poiflow.pipeline import conflate, ingest
from poiflow.sources import FrameSource, open_source

from ..conftest import ONE_SPARK
from .overture_fixture import place, write_overture
from .reading import read
from .test_geoparquet import TM35FIN, csv_records, vendor_frame
from .test_gis import vendor_places, without


def vendor_table() -> pa.Table:
    """The vendor feed's rows with coordinates, lat and lon as numbers."""
    table = vendor_places()
    for column in ("lat", "lon"):
        index = table.column_names.index(column)
        table = table.set_column(index, column, table.column(column).cast(pa.float64()))
    return table


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda t: t, "Arrow table"),
        (lambda t: t.to_pandas(), "pandas DataFrame"),
        (lambda t: pl.from_arrow(t), "polars DataFrame"),
        (lambda t: pl.from_arrow(t).lazy(), "polars DataFrame"),
        (lambda t: t.to_pylist(), "list of dicts"),
        (lambda t: t.to_pydict(), "dict of columns"),
        (lambda t: duckdb.sql("select * from t"), "duckdb table"),
    ],
)
def test_a_table_in_memory_reads_as_the_same_places_as_its_csv(
    tmp_path: Path, make: object, kind: str
) -> None:
    t = vendor_table()  # DuckDB's query above reads it by this name
    source = FrameSource(make(t), "vendor_feed")  # type: ignore[operator]
    assert (source.kind, source.name, source.size_hint()) == (kind, "vendor_feed", t.num_rows)
    rows, rejected = read(source, batch_size=50)
    assert rejected == []
    assert without(rows, "origin") == without(csv_records(tmp_path), "origin")
    assert [r["origin"] for r in rows[:2]] == ["vendor_feed#row=0", "vendor_feed#row=1"]


def test_a_geodataframe_in_another_system_is_placed_in_wgs84(tmp_path: Path) -> None:
    frame = vendor_frame(TM35FIN)
    source = FrameSource(frame, "vendor_feed")
    assert source.kind == "GeoDataFrame"
    rows, _ = read(source, batch_size=50)
    expected = csv_records(tmp_path)
    assert without(rows, "lat", "lon", "origin") == without(expected, "lat", "lon", "origin")
    for got, want in zip(rows, expected, strict=True):
        assert (got["lat"], got["lon"]) == pytest.approx((want["lat"], want["lon"]), abs=1e-9)


def test_a_named_index_is_read_as_a_column_and_row_numbers_are_not() -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "name": ["Kahvila", "Baari"], "lat": [60.1, 60.2]})
    frame["lon"] = [24.9, 25.0]
    by_id, _ = read(FrameSource(frame.set_index("id"), "feed"))
    assert [(r["id"], r["names"]["primary"]) for r in by_id] == [("a", "Kahvila"), ("b", "Baari")]
    # A filtered frame keeps its old row labels as an unnamed index: not a column.
    kept, _ = read(FrameSource(frame[frame.name != "Kahvila"], "feed"))
    assert [r["id"] for r in kept] == ["b"]


def test_a_mapping_reads_a_frame_of_other_columns() -> None:
    frame = pd.DataFrame(
        {"tunnus": ["1"], "nimi": ["Kahvila Sävy"], "y": [60.17], "x": [24.94], "sisäinen": [3]}
    )
    mapping = SourceMapping.model_validate(
        {
            "columns": {"id": "tunnus", "name": "nimi", "lat": "y", "lon": "x"},
            "constants": {"country": "FI"},
            "ignore": ["sisäinen"],
        }
    )
    rows, _ = read(FrameSource(frame, "toimittaja", mapping))
    assert [
        (r["source"], r["id"], r["names"]["primary"], r["lat"], r["address"]["country"])
        for r in rows
    ] == [("toimittaja", "1", "Kahvila Sävy", 60.17, "FI")]


def test_a_frame_of_osm_tags_is_read_as_tags() -> None:
    frame = pl.DataFrame(
        {
            "id": ["node/1"],
            "name": ["Kahvila"],
            "amenity": ["cafe"],
            "addr:street": ["Mannerheimintie"],
            "addr:housenumber": ["5"],
            "lat": [60.17],
            "lon": [24.94],
        }
    )
    source = FrameSource(frame, "overpass")
    assert source.kind == "polars DataFrame, OSM tags"
    (row,), _ = read(source)
    assert (row["source_category"], row["address"]["street"], row["address"]["housenumber"]) == (
        "amenity=cafe",
        "Mannerheimintie",
        "5",
    )


def test_one_input_alone_needs_no_list(tmp_path: Path) -> None:
    frame = vendor_table().to_pandas()
    path = tmp_path / "vendor.csv"
    frame.to_csv(path, index=False)
    listed = ingest([path], tmp_path / "listed.parquet")
    alone = ingest(str(path), tmp_path / "alone.parquet")  # not read as its letters
    assert alone.read == listed.read == len(frame)
    assert pq.read_table(tmp_path / "alone.parquet").equals(
        pq.read_table(tmp_path / "listed.parquet")
    )
    assert ingest(FrameSource(frame, "vendor"), tmp_path / "framed.parquet").read == len(frame)
    assert conflate(path, tmp_path / "run").records == listed.valid
    # A table alone is still a table to be named, not a list of its columns.
    with pytest.raises(InputError, match=r"input 1 is a table in memory \(DataFrame\): give it"):
        ingest(frame, tmp_path / "out.parquet")  # type: ignore[arg-type]


def test_no_input_at_all_is_refused_before_any_work(tmp_path: Path) -> None:
    """Once an ``OutputError``, "no inputs given", from ingest and conflate (an error class
    a caller catches for a disk that is full), and from train whatever its gold said."""
    from poiflow import ConfigError, train

    says = r"no inputs given: name one or more \(a file, a folder, a URI, or a table as"
    for run in (
        lambda: ingest([], tmp_path / "out.parquet"),
        lambda: conflate((), tmp_path / "run"),
        lambda: conflate(None, tmp_path / "run"),  # type: ignore[arg-type]
        lambda: train([], tmp_path / "model.json", gold=tmp_path / "gold.csv"),
    ):
        with pytest.raises(ConfigError, match=says):
            run()
    assert list(tmp_path.iterdir()) == []


def test_what_is_not_a_table_or_not_named_is_refused(tmp_path: Path) -> None:
    frame = vendor_table().to_pandas()
    with pytest.raises(InputError, match=r"input 2 is a table in memory \(DataFrame\): give it"):
        ingest([tmp_path / "x.csv", frame], tmp_path / "out.parquet")
    with pytest.raises(InputError, match=r"input 1 is a table in memory"):
        conflate([frame], tmp_path / "run")
    with pytest.raises(
        InputError, match=r"input 2 is not a path or a source \(int 42\): give a path"
    ):
        conflate([tmp_path / "x.csv", 42], tmp_path / "run")  # type: ignore[list-item]
    # A mapping keyed to a source opened already would be ignored: refused, saying where it goes.
    named = FrameSource(frame, "vendor")
    with pytest.raises(InputError, match=r"a mapping is given for vendor, which is a source"):
        ingest([named], tmp_path / "out.parquet", mappings={"vendor": SourceMapping()})
    with pytest.raises(InputError, match="needs a source name"):
        FrameSource(frame, " ")
    with pytest.raises(InputError, match=r"not a table: int"):
        FrameSource(3, "feed")
    with pytest.raises(InputError, match=r"a list that is not of dicts"):
        FrameSource([{"id": "1"}, "2"], "feed")
    with pytest.raises(InputError, match=r"cannot be turned into an Arrow table"):
        FrameSource(pd.DataFrame({"id": ["1"], "name": [object()]}), "feed")


def test_a_pandas_column_of_text_and_numbers_mixed_reads_as_its_csv_would(tmp_path: Path) -> None:
    # What pandas makes of a spreadsheet: ids that are sometimes numbers, a name that
    # is one, a latitude as text.
    frame = pd.DataFrame(
        {
            "id": [1, "x2", None],
            "name": ["Kahvila", 1917, "Baari"],
            "lat": [60.1, "60.2", np.nan],
            "lon": [24.9, 24.9, 24.9],
        }
    )
    csv = tmp_path / "mixed.csv"
    csv.write_text("id,name,lat,lon\n1,Kahvila,60.1,24.9\nx2,1917,60.2,24.9\n,Baari,,24.9\n")
    from_frame, held_frame = read(FrameSource(frame, "mixed"))
    from_csv, held_csv = read(open_source(csv))
    fields = ("id", "names", "lat", "lon", "issues")
    assert [[r[f] for f in fields] for r in from_frame] == [
        [r[f] for f in fields] for r in from_csv
    ]
    assert [r["id"] for r in from_frame] == ["1", "x2", None]
    assert len(held_frame) == len(held_csv)
    # Lists or dicts among a column's values are not text: refused, as before.
    with pytest.raises(InputError, match=r"cannot be turned into an Arrow table"):
        FrameSource(pd.DataFrame({"id": [1, "x"], "name": ["a", {"k": 1}]}), "feed")


def test_workers_read_a_large_frame_to_the_same_bytes(tmp_path: Path) -> None:
    table = vendor_table()
    source = FrameSource(table.to_pandas(), "vendor_feed")
    one = ingest([source], tmp_path / "one.parquet", batch_size=16, workers=1)
    two = ingest([source], tmp_path / "two.parquet", batch_size=16, workers=2)
    assert (one.read, one.valid, one.quarantined) == (two.read, two.valid, two.quarantined)
    assert one.read == table.num_rows
    assert pq.read_table(tmp_path / "one.parquet").equals(pq.read_table(tmp_path / "two.parquet"))
    assert [i.kind for i in two.inputs] == ["pandas DataFrame"]


def test_conflating_frames_gives_the_membership_of_their_files(
    conflated: Path, tmp_path: Path
) -> None:
    files = sorted((conflated.parent / "sources").glob("source_*.csv"))
    # As text, as the files are read (a phone read as a number would lose its zeros).
    frames = [FrameSource(pd.read_csv(f, dtype=str, keep_default_na=False), f.stem) for f in files]
    report = poiflow.conflate(frames, tmp_path / "run", workers=1)
    assert report.places > 0
    for name in ("membership.parquet", "pairs.parquet"):  # byte for byte (NaN features)
        assert (tmp_path / "run" / name).read_bytes() == (conflated / name).read_bytes(), name


def test_parquet_as_pandas_writes_it_is_read(tmp_path: Path) -> None:
    """Long strings, categories, nullable integers and timestamps: what pandas 3 writes
    (its strings are Arrow's large strings, which an address could not hold)."""
    frame = pd.DataFrame(
        {
            "id": [1, 2],
            "name": ["Kahvila", "Baari"],
            "lat": [60.17, np.nan],
            "lon": [24.94, np.nan],
            "category": pd.Categorical(["cafe", "bar"]),
            "street": ["Mannerheimintie", None],
            "postcode": ["00100", "00120"],
            "update_time": pd.to_datetime(["2024-05-01T08:00", None], utc=True),
            "housenumber": pd.array([5, None], dtype="Int64"),
        }
    )
    path = tmp_path / "feed.parquet"
    frame.to_parquet(path)
    assert pa.types.is_large_string(pq.read_schema(path).field("name").type)
    rows, rejected = read(open_source(path))
    assert rejected == []
    assert [
        (
            r["id"],
            r["source_category"],
            r["address"]["street"],
            r["address"]["housenumber"],
            r["lat"],
            r["update_time"],
        )
        for r in rows
    ] == [
        ("1", "cafe", "Mannerheimintie", "5", 60.17, pd.Timestamp("2024-05-01T08:00Z")),
        ("2", "bar", None, None, None, None),
    ]
    # The same frame in memory gives the same records.
    assert without(read(FrameSource(frame, "feed"))[0], "origin") == without(rows, "origin")


def test_a_geodataframe_of_overture_columns_is_read_as_overture(tmp_path: Path) -> None:
    path = write_overture(
        tmp_path / "overture.parquet",
        [place("08f1", "Cafe Regatta", 24.9112, 60.1827), place("08f2", "Ravintola", 24.95, 60.17)],
    )
    from_file, _ = read(open_source(path), batch_size=50)
    frame = gpd.read_parquet(path)
    source = FrameSource(frame, "overture")
    assert source.kind == "GeoDataFrame, Overture"
    rows, _ = read(source, batch_size=50)
    assert without(rows, "origin") == without(from_file, "origin")


@pytest.mark.spark
@pytest.mark.slow
@ONE_SPARK
def test_a_spark_dataframe_reads_as_the_same_places_as_its_csv(tmp_path: Path) -> None:
    from poiflow.engines.spark import spark_session

    session = spark_session("local[1]")
    frame = session.createDataFrame(vendor_table().to_pandas())
    source = FrameSource(frame, "vendor_feed")
    assert source.kind == "Spark DataFrame"
    rows, _ = read(source, batch_size=50)
    assert without(rows, "origin") == without(csv_records(tmp_path), "origin")


def test_osmnx_features_are_read_as_an_extracts_tags() -> None:
    """OSMnx's ``features_from_place`` gives a GeoDataFrame of tag columns, indexed by each
    element's kind and number; built here in that shape (OSMnx needs the internet). A node
    and a way of the same number are two places, the way at its centroid."""
    index = pd.MultiIndex.from_tuples([("node", 42), ("way", 42)], names=["element", "id"])
    frame = gpd.GeoDataFrame(
        {
            "name": ["Kahvila Sävy", "Stockmann"],
            "amenity": ["cafe", None],
            "shop": [None, "department_store"],
            "addr:street": ["Fleminginkatu", "Aleksanterinkatu"],
            "opening_hours": ["Mo-Fr 08:00-18:00", None],
        },
        geometry=[shapely.Point(24.953, 60.187), shapely.box(24.940, 60.168, 24.942, 60.170)],
        index=index,
        crs="EPSG:4326",
    )
    source = FrameSource(frame, "osmnx")
    assert source.kind == "GeoDataFrame, OSM tags"
    rows, _ = read(source)
    assert [
        (r["id"], r["source_category"], r["address"]["street"], r["opening_hours"]) for r in rows
    ] == [
        ("node/42", "amenity=cafe", "Fleminginkatu", "Mo-Fr 08:00-18:00"),
        ("way/42", "shop=department_store", "Aleksanterinkatu", None),
    ]
    assert (rows[1]["lat"], rows[1]["lon"]) == pytest.approx((60.169, 24.941))


def osmnx_frame() -> gpd.GeoDataFrame:
    index = pd.MultiIndex.from_tuples([("node", 42), ("way", 42)], names=["element", "id"])
    return gpd.GeoDataFrame(
        {"name": ["Kahvila Sävy", "Stockmann"], "amenity": ["cafe", None]},
        geometry=[shapely.Point(24.953, 60.187), shapely.box(24.940, 60.168, 24.942, 60.170)],
        index=index,
        crs="EPSG:4326",
    )


@pytest.mark.parametrize(
    ("make", "mapping"),
    [
        (lambda path: vendor_table().to_pandas().set_index("id"), None),
        (lambda path: vendor_frame(TM35FIN), None),
        (lambda path: osmnx_frame(), None),
        (
            lambda path: gpd.read_parquet(
                write_overture(path / "o.parquet", [place("08f1", "Cafe", 24.91, 60.18)])
            ),
            None,
        ),
        (
            lambda path: pd.DataFrame(
                {"tunnus": ["1"], "nimi": ["Sävy"], "y": [60.1], "x": [24.9]}
            ),
            SourceMapping(columns={"id": "tunnus", "name": "nimi", "lat": "y", "lon": "x"}),
        ),
    ],
    ids=["pandas", "geopandas-tm35fin", "osmnx", "overture", "mapped"],
)
def test_a_saved_table_reads_as_the_table_does(
    tmp_path: Path, make: object, mapping: object
) -> None:
    source = FrameSource(make(tmp_path), "my.vendor/feed", mapping)  # type: ignore[operator, arg-type]
    file = source.saved(tmp_path / "tables")
    assert file.name == "my.vendor_feed.parquet"
    assert source.saved(tmp_path / "tables") == file  # the same table: the same file
    again, _ = read(open_source(file, source.saved_mapping), batch_size=50)
    rows, _ = read(source, batch_size=50)
    assert {r["source"] for r in again} == {r["source"] for r in rows}
    assert without(again, "origin") == without(rows, "origin")
    assert not list(file.parent.glob(".*"))  # no partial file left beside it


def test_a_changed_table_is_another_file(tmp_path: Path) -> None:
    frame = vendor_table().to_pandas()
    first = FrameSource(frame, "vendor").saved(tmp_path)
    frame.loc[0, "name"] = "Another name"
    second = FrameSource(frame, "vendor").saved(tmp_path)
    assert first != second
    assert first.parent.parent == second.parent.parent == tmp_path
