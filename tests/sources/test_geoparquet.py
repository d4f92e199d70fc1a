"""GeoParquet inputs: a geometry column read as the place's point, as geopandas, DuckDB
and GDAL write it (WKB or GeoArrow's native points, any coordinate system)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import hypothesis.strategies as st
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from hypothesis import given, settings

from poiflow.config import SourceMapping
from poiflow.errors import CorruptInputError, InputError
from poiflow.pipeline import ingest
from poiflow.sources import TabularSource, open_source
from poiflow.sources.spatial import GeometryColumn, geometry_column, with_points

from .reading import read
from .test_gis import vendor_places, without

# Finland's TM35FIN: what the country's agencies deliver in.
TM35FIN = "EPSG:3067"


def vendor_frame(crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    """The vendor feed's places with coordinates, as a GeoDataFrame of points in ``crs``."""
    table = vendor_places()
    lon = np.array([float(v) for v in table.column("lon").to_pylist()])
    lat = np.array([float(v) for v in table.column("lat").to_pylist()])
    frame = gpd.GeoDataFrame(
        table.drop_columns(["lat", "lon"]).to_pandas(),
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )
    return frame.to_crs(crs)


def csv_records(tmp_path: Path) -> list[dict]:
    """The same places read from a CSV of their lat and lon: what every reading must give."""
    csv = tmp_path / "vendor_feed.csv"
    pa_csv.write_csv(vendor_places(), csv)
    return read(open_source(csv), batch_size=50)[0]


@pytest.mark.parametrize(
    ("crs", "encoding", "covering"),
    [
        ("EPSG:4326", "WKB", False),
        (TM35FIN, "WKB", True),
        ("EPSG:4326", "geoarrow", True),
        (TM35FIN, "geoarrow", False),
    ],
)
def test_geopandas_geoparquet_reads_as_the_same_places_as_a_csv(
    tmp_path: Path, crs: str, encoding: str, covering: bool
) -> None:
    path = tmp_path / "vendor_feed.parquet"
    vendor_frame(crs).to_parquet(path, geometry_encoding=encoding, write_covering_bbox=covering)
    source = open_source(path)
    assert isinstance(source, TabularSource)
    assert source.kind == "GeoParquet"
    rows, rejected = read(source, batch_size=50)
    expected = csv_records(tmp_path)
    assert rejected == []
    assert without(rows, "lat", "lon", "origin") == without(expected, "lat", "lon", "origin")
    for got, want in zip(rows, expected, strict=True):
        # Reprojected there and back: within a nanodegree.
        assert (got["lat"], got["lon"]) == pytest.approx((want["lat"], want["lon"]), abs=1e-9)
    assert rows[1]["origin"] == "vendor_feed.parquet#row=1"


def test_shapes_are_placed_at_their_centroids_in_their_own_system(tmp_path: Path) -> None:
    # A building in TM35FIN, a street as a line, nothing, and an empty point.
    shapes = [
        shapely.box(385_000, 6_672_000, 385_040, 6_672_030),
        shapely.LineString([(386_000, 6_673_000), (386_100, 6_673_000)]),
        None,
        shapely.Point(),
    ]
    frame = gpd.GeoDataFrame(
        {"id": ["a", "b", "c", "d"], "name": ["Talo", "Katu", "Ei", "Tyhjä"]},
        geometry=shapes,
        crs=TM35FIN,
    )
    path = tmp_path / "kohteet.parquet"
    frame.to_parquet(path)
    rows, rejected = read(open_source(path), batch_size=10)
    to_wgs84 = pyproj.Transformer.from_crs(TM35FIN, "EPSG:4326", always_xy=True)
    house = to_wgs84.transform(385_020, 6_672_015)
    street = to_wgs84.transform(386_050, 6_673_000)
    assert rejected == []
    assert [(r["lat"], r["lon"]) for r in rows] == [
        pytest.approx((house[1], house[0]), abs=1e-12),
        pytest.approx((street[1], street[0]), abs=1e-12),
        (None, None),
        (None, None),
    ]


def with_geo(table: pa.Table, column: dict) -> pa.Table:
    """``table`` with GeoParquet's metadata for its ``geometry`` column."""
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})


def test_a_value_that_is_not_wkb_is_rejected_with_the_row_and_the_others_read(
    tmp_path: Path,
) -> None:
    wkb = shapely.to_wkb(shapely.points([24.94, 24.95], [60.17, 60.16]))
    table = pa.table(
        {
            "id": ["1", "2", "3"],
            "name": ["Kahvila", "Rikki", "Baari"],
            "geometry": pa.array([wkb[0], b"\x01\x07garbage", wkb[1]], pa.binary()),
        }
    )
    path = tmp_path / "shops.parquet"
    pq.write_table(with_geo(table, {"encoding": "WKB", "geometry_types": []}), path)
    report = ingest([path], tmp_path / "out.parquet")
    assert (report.read, report.valid, report.quarantined) == (3, 2, 1)
    held = pq.read_table(report.quarantine).to_pylist()
    assert [(h["origin"], h["reason"]) for h in held] == [
        ("shops.parquet#row=1", "geometry: not readable as WKB")
    ]
    places = pq.read_table(tmp_path / "out.parquet", columns=["id", "lat", "lon"]).to_pylist()
    assert places == [
        {"id": "1", "lat": 60.17, "lon": 24.94},
        {"id": "3", "lat": 60.16, "lon": 24.95},
    ]


def test_a_column_that_names_no_system_is_read_as_degrees_or_refused(tmp_path: Path) -> None:
    degrees = shapely.to_wkb(shapely.points([24.94], [60.17]))
    metres = shapely.to_wkb(shapely.points([385_000.0], [6_672_000.0]))
    for name, wkb in (("degrees", degrees), ("metres", metres)):
        table = pa.table({"id": ["1"], "name": ["Kahvila"], "geometry": pa.array(wkb)})
        # GeoParquet's "crs": null says the system is not known.
        pq.write_table(
            with_geo(table, {"encoding": "WKB", "crs": None}), tmp_path / f"{name}.parquet"
        )
    rows, _ = read(open_source(tmp_path / "degrees.parquet"))
    assert (rows[0]["lat"], rows[0]["lon"]) == (60.17, 24.94)
    with pytest.raises(CorruptInputError, match=r"names no coordinate system.*385000, 6672000"):
        read(open_source(tmp_path / "metres.parquet"))


def test_a_system_proj_does_not_know_and_an_unknown_encoding_are_refused(tmp_path: Path) -> None:
    wkb = shapely.to_wkb(shapely.points([24.94], [60.17]))
    table = pa.table({"id": ["1"], "name": ["Kahvila"], "geometry": pa.array(wkb)})
    pq.write_table(
        with_geo(table, {"encoding": "WKB", "crs": "EPSG:999999"}), tmp_path / "a.parquet"
    )
    with pytest.raises(CorruptInputError, match=r"not one PROJ knows \(EPSG:999999\)"):
        read(open_source(tmp_path / "a.parquet"))

    table = pa.table({"id": ["1"], "name": ["Talo"], "geometry": pa.array([b"{}"])})
    odd = {"encoding": "geoarrow.torus", "crs": None}
    pq.write_table(with_geo(table, odd), tmp_path / "b.parquet")
    with pytest.raises(InputError, match=r"an encoding not read here \('geoarrow.torus'\)"):
        read(open_source(tmp_path / "b.parquet"))


@pytest.mark.parametrize(
    "shapes",
    [
        [shapely.box(24, 60, 24.1, 60.1), None, shapely.Polygon(), shapely.box(25, 61, 25.2, 61.4)],
        [shapely.LineString([(24, 60), (24.2, 60.2)]), shapely.LineString([(1, 1), (3, 1)])],
        [
            shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 2)]),
            shapely.MultiPolygon([shapely.box(24, 60, 24.1, 60.1)]),
        ],
        [shapely.MultiPoint([(24, 60), (26, 62)]), shapely.MultiPoint([(1, 2)])],
        [shapely.MultiLineString([[(0, 0), (2, 0)], [(0, 1), (0, 3)]])],
    ],
    ids=["polygon", "linestring", "multipolygon", "multipoint", "multilinestring"],
)
def test_geoarrows_native_shapes_are_placed_at_their_centroids(
    tmp_path: Path, shapes: list
) -> None:
    """GeoParquet 1.1's ``geoarrow`` encoding of shapes: nested lists of x/y, read in
    batches that are slices of a row group."""
    frame = gpd.GeoDataFrame(
        {"id": [str(i) for i in range(len(shapes))], "name": ["Paikka"] * len(shapes)},
        geometry=shapes,
        crs=4326,
    )
    path = tmp_path / "muodot.parquet"
    frame.to_parquet(path, geometry_encoding="geoarrow", row_group_size=3)
    rows, rejected = read(open_source(path), batch_size=2)
    assert rejected == []
    for shape, row in zip(shapes, rows, strict=True):
        if shape is None or shape.is_empty:
            assert (row["lat"], row["lon"]) == (None, None)
        else:
            middle = shapely.centroid(shape)
            assert (row["lat"], row["lon"]) == pytest.approx((middle.y, middle.x), abs=1e-12)


def test_a_mapping_that_names_the_coordinates_columns_leaves_the_geometry(
    tmp_path: Path,
) -> None:
    frame = vendor_frame().head(3)
    frame["y"] = [1.0, 2.0, 3.0]
    frame["x"] = [4.0, 5.0, 6.0]
    path = tmp_path / "feed.parquet"
    frame.to_parquet(path, write_covering_bbox=True)
    mapping = SourceMapping.model_validate({"columns": {"lat": "y", "lon": "x"}})
    rows, _ = read(open_source(path, mapping))
    assert [(r["lat"], r["lon"]) for r in rows] == [(1.0, 4.0), (2.0, 5.0), (3.0, 6.0)]


def test_a_geoarrow_column_without_geoparquet_metadata_is_found() -> None:
    wkb = pa.array(shapely.to_wkb(shapely.points([24.94], [60.17])))
    field = pa.field(
        "where",
        pa.binary(),
        metadata={
            b"ARROW:extension:name": b"geoarrow.wkb",
            b"ARROW:extension:metadata": json.dumps({"crs": TM35FIN}).encode(),
        },
    )
    schema = pa.schema([pa.field("id", pa.string()), field])
    assert geometry_column(schema) == GeometryColumn("where", "WKB", TM35FIN, True)
    # WGS 84 by any of its names needs no reprojection.
    for crs in ("EPSG:4326", "OGC:CRS84", {"id": {"authority": "OGC", "code": "CRS84"}}):
        meta = json.dumps({"crs": crs}).encode()
        plain = pa.schema(
            [field.with_metadata({**field.metadata, b"ARROW:extension:metadata": meta})]
        )
        assert geometry_column(plain) == GeometryColumn("where", "WKB", None, True)
    table = pa.Table.from_arrays([pa.array(["1"]), wkb], schema=schema)
    placed, bad = with_points(table, GeometryColumn("where"), None, "t")
    assert placed.column_names == ["id", "lat", "lon"]
    assert len(bad) == 0


shapes = st.one_of(
    st.builds(
        shapely.Point,
        st.floats(-180, 180, allow_nan=False),
        st.floats(-90, 90, allow_nan=False),
    ),
    st.builds(
        lambda x, y, w, h: shapely.box(x, y, x + w, y + h),
        st.floats(-170, 170, allow_nan=False),
        st.floats(-80, 80, allow_nan=False),
        st.floats(1e-6, 5, allow_nan=False),
        st.floats(1e-6, 5, allow_nan=False),
    ),
    st.builds(
        lambda x, y, dx: shapely.LineString([(x, y), (x + dx, y + dx)]),
        st.floats(-170, 170, allow_nan=False),
        st.floats(-80, 80, allow_nan=False),
        st.floats(1e-6, 5, allow_nan=False),
    ),
    st.none(),
    # Empty shapes have no centroid to take the x of (GEOS refuses it): no point.
    st.sampled_from([shapely.Polygon(), shapely.LineString(), shapely.MultiPolygon()]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(shapes, max_size=30), st.sampled_from(["<", ">"]), st.booleans())
def test_every_geometry_is_placed_where_shapely_puts_its_centroid(
    geometries: list, order: str, with_z: bool
) -> None:
    """Points are read without shapely, in either byte order, 2D or 3D; the others by it:
    each at shapely's centroid, a missing geometry nowhere."""
    if with_z:
        geometries = [None if g is None else shapely.force_3d(g, 7.0) for g in geometries]
    wkb = [
        None
        if g is None
        else shapely.to_wkb(g, byte_order=0 if order == ">" else 1, include_srid=False)
        for g in geometries
    ]
    table = pa.table({"id": [str(i) for i in range(len(wkb))], "g": pa.array(wkb, pa.binary())})
    placed, bad = with_points(table, GeometryColumn("g"), None, "t")
    assert len(bad) == 0
    assert_at_centroids(placed, geometries)


def assert_at_centroids(placed: pa.Table, geometries: list) -> None:
    """Each row's lat and lon are its geometry's centroid; a missing or empty one's none."""
    for geometry, lat, lon in zip(
        geometries, placed.column("lat").to_pylist(), placed.column("lon").to_pylist(), strict=True
    ):
        if geometry is None or geometry.is_empty:
            assert (lat, lon) == (None, None)
        else:
            middle = shapely.centroid(geometry)
            assert (lat, lon) == pytest.approx((middle.y, middle.x), abs=1e-9)


def test_a_csv_export_of_a_spatial_table_is_placed_by_its_geometry_text(tmp_path: Path) -> None:
    """A CSV of a spatial table has its geometry as text in place of lat and lon: WKT (QGIS,
    BigQuery), EWKT with its SRID, or WKB in hex as PostGIS and DuckDB print it."""
    to_wgs84 = pyproj.Transformer.from_crs(TM35FIN, "EPSG:4326", always_xy=True)
    tm_point = shapely.Point(385_000, 6_672_000)
    tm_lon, tm_lat = to_wgs84.transform(385_000, 6_672_000)
    rows = [
        ("1", "Kahvila", "POINT (24.94 60.17)"),
        ("2", "Talo", "POLYGON ((24 60, 24.002 60, 24.002 60.002, 24 60.002, 24 60))"),
        ("3", "Virasto", f"SRID=3067;{tm_point.wkt}"),
        (
            "4",
            "Asema",
            shapely.to_wkb(shapely.set_srid(tm_point, 3067), hex=True, include_srid=True),
        ),
        ("5", "Kioski", shapely.to_wkb(shapely.Point(24.95, 60.16), hex=True)),
        ("6", "Rikki", "POINT (24.9"),
        ("7", "Ei paikkaa", ""),
        ("8", "Kaukana", "POINT (1e400 60.17)"),  # past a number's range: not read either
    ]
    path = tmp_path / "kohteet.csv"
    path.write_text(
        "id,name,WKT\n" + "".join(f'{i},{n},"{g}"\n' for i, n, g in rows), encoding="utf-8"
    )
    read_rows, rejected = read(open_source(path), batch_size=50)
    assert [r["id"] for r in read_rows] == ["1", "2", "3", "4", "5", "7"]
    points = [(r["lat"], r["lon"]) for r in read_rows]
    assert points[:2] == [(60.17, 24.94), pytest.approx((60.001, 24.001))]
    assert points[2] == pytest.approx((tm_lat, tm_lon), abs=1e-12)
    assert points[3] == pytest.approx((tm_lat, tm_lon), abs=1e-12)
    assert points[4:] == [(60.16, 24.95), (None, None)]
    not_read = "geometry: not readable as WKT or hex WKB"
    assert rejected == [("kohteet.csv:7", not_read, ""), ("kohteet.csv:9", not_read, "")]

    # Without an SRID, coordinates that are not degrees are refused, not quarantined one by one.
    metres = tmp_path / "metrit.csv"
    metres.write_text(f'id,name,geometry\n1,Virasto,"{tm_point.wkt}"\n', encoding="utf-8")
    with pytest.raises(CorruptInputError, match="names no coordinate system"):
        read(open_source(metres))

    # A mapping that names the coordinates' columns, and ignores the geometry, reads those.
    both = tmp_path / "molemmat.csv"
    both.write_text('id,name,y,x,geom\n1,Kahvila,1.5,2.5,"POINT (24.94 60.17)"\n', encoding="utf-8")
    mapping = SourceMapping.model_validate(
        {"columns": {"lat": "y", "lon": "x"}, "ignore": ["geom"]}
    )
    (row,), _ = read(open_source(both, mapping))
    assert (row["lat"], row["lon"]) == (1.5, 2.5)

    # The same text in a pandas frame, as BigQuery's client hands a GEOGRAPHY column over.
    import pandas as pd

    from poiflow.sources import FrameSource

    frame = pd.DataFrame({"id": ["1"], "name": ["Kahvila"], "geography": ["POINT(24.94 60.17)"]})
    (framed,), _ = read(FrameSource(frame, "bq"))
    assert (framed["lat"], framed["lon"]) == (60.17, 24.94)


def test_a_parquet_geometry_of_bytes_without_geo_metadata_is_read_as_wkb(tmp_path: Path) -> None:
    # pyarrow, or DuckDB without its spatial extension, writes WKB as plain bytes, with
    # no 'geo' metadata to say that the column holds geometries.
    path = tmp_path / "plain.parquet"
    square = shapely.box(24.0, 60.0, 24.002, 60.002)
    geometry = [*shapely.to_wkb([shapely.Point(24.94, 60.17), square]), b"\x01\x02", None]
    pq.write_table(
        pa.table({"id": ["1", "2", "3", "4"], "name": list("abcd"), "geometry": geometry}), path
    )
    rows, rejected = read(open_source(path))
    assert [(r["id"], r["lat"], r["lon"]) for r in rows] == [
        ("1", 60.17, 24.94),
        ("2", pytest.approx(60.001), pytest.approx(24.001)),
        ("4", None, None),
    ]
    assert rejected == [("plain.parquet#row=2", "geometry: not readable as WKB", "")]


def test_a_parquet_geometry_of_x_and_y_without_geo_metadata_is_read_as_points(
    tmp_path: Path,
) -> None:
    # GeoArrow's native points with no metadata to say so; a struct of anything else, or a
    # list, is no geometry: refused by its column, with what to do.
    path = tmp_path / "points.parquet"
    points = pa.array([{"x": 24.94, "y": 60.17}, None, {"x": 25, "y": 61}])
    pq.write_table(pa.table({"id": ["1", "2", "3"], "name": list("abc"), "geometry": points}), path)
    rows, rejected = read(open_source(path))
    assert [(r["id"], r["lat"], r["lon"]) for r in rows] == [
        ("1", 60.17, 24.94),
        ("2", None, None),
        ("3", 61.0, 25.0),
    ]
    assert rejected == []
    for odd in (pa.array([{"a": 1}, None]), pa.array([[1.0, 2.0], None])):
        pq.write_table(pa.table({"id": ["1", "2"], "name": list("ab"), "geometry": odd}), path)
        with pytest.raises(InputError, match=r"geometry column 'geometry' holds (struct|list)"):
            read(open_source(path))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(shapes, st.sampled_from(["wkt", "ewkt", "hex", "ehex", "geojson"])),
        max_size=25,
    )
)
def test_every_geometry_as_text_is_placed_where_shapely_puts_its_centroid(
    geometries: list[tuple[object, str]],
) -> None:
    """WKT, EWKT, hex (E)WKB and GeoJSON, in WGS 84 by their SRID or by none, mixed in one
    column."""

    def text(geometry: object, how: str) -> str | None:
        if geometry is None:
            return None
        if how == "wkt":
            return shapely.to_wkt(geometry, rounding_precision=-1)
        if how == "ewkt":
            return f"SRID=4326;{shapely.to_wkt(geometry, rounding_precision=-1)}"
        if how == "geojson":
            return str(shapely.to_geojson(geometry))
        tagged = shapely.set_srid(geometry, 4326) if how == "ehex" else geometry
        return shapely.to_wkb(tagged, hex=True, include_srid=how == "ehex")

    column = pa.array([text(g, how) for g, how in geometries], pa.string())
    table = pa.table({"id": [str(i) for i in range(len(column))], "wkt": column})
    placed, bad = with_points(table, GeometryColumn("wkt", "TEXT", known=False), None, "t")
    assert len(bad) == 0
    assert_at_centroids(placed, [geometry for geometry, _ in geometries])
