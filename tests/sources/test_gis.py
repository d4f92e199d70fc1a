"""GeoPackage, Shapefile, FlatGeobuf, spreadsheet, KML and GPX inputs, read through GDAL."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import hypothesis.strategies as st
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyogrio
import pyproj
import pytest
import shapely
from hypothesis import example, given, settings
from pyogrio.raw import write_arrow

from poiflow.config import SourceMapping
from poiflow.errors import CorruptInputError, InputError
from poiflow.sources import Source, TabularSource, open_source
from poiflow.sources.gis import place_ids

from ..conftest import VENDOR_FEED
from .reading import read


def read_all(source: Source) -> tuple[list[dict], list[tuple[str, str, str]]]:
    return read(source, batch_size=50)


def vendor_places() -> pa.Table:
    """The vendor feed's rows that have numeric coordinates, as text columns but for them."""
    table = pa_csv.read_csv(
        VENDOR_FEED,
        parse_options=pa_csv.ParseOptions(invalid_row_handler=lambda row: "skip"),
        convert_options=pa_csv.ConvertOptions(
            column_types={
                "id": pa.string(),
                "phone": pa.string(),
                "postcode": pa.string(),
                "housenumber": pa.string(),
                "lat": pa.string(),
                "lon": pa.string(),
            },
        ),
    )
    rows = [
        r
        for r in table.to_pylist()
        if _number(r["lat"]) and _number(r["lon"]) and abs(float(r["lat"])) <= 90
    ]
    return pa.Table.from_pylist(rows, schema=table.schema)


def _number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True


def write_layer(
    table: pa.Table, path: Path, driver: str, crs: str = "EPSG:4326", layer: str | None = None
) -> Path:
    """The table as a layer of points (its lat and lon, projected into ``crs``)."""
    lon = [float(v) for v in table.column("lon").to_pylist()]
    lat = [float(v) for v in table.column("lat").to_pylist()]
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    geometry = pa.array(shapely.to_wkb(shapely.points(x, y)), pa.binary())
    attributes = table.drop_columns(["lat", "lon"]).append_column("geometry", geometry)
    write_arrow(
        attributes,
        path,
        driver=driver,
        layer=layer,
        geometry_name="geometry",
        geometry_type="Point",
        crs=crs,
    )
    return path


def without(rows: list[dict], *fields: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in fields} for r in rows]


@pytest.mark.parametrize(
    ("name", "driver"),
    [
        ("vendor_feed.gpkg", "GPKG"),
        ("vendor_feed.fgb", "FlatGeobuf"),
        ("vendor_feed.gdb", "OpenFileGDB"),  # a folder that is one input
        ("vendor_feed.sqlite", "SQLite"),  # SpatiaLite
    ],
)
def test_a_layer_of_points_reads_as_the_same_places_in_a_csv(
    tmp_path: Path, name: str, driver: str
) -> None:
    table = vendor_places()
    source = open_source(write_layer(table, tmp_path / name, driver))
    assert isinstance(source, TabularSource)
    assert (source.format, source.name, source.size_hint()) == ("gis", "vendor_feed", len(table))
    rows, rejected = read_all(source)
    csv = tmp_path / "vendor_feed.csv"
    pa_csv.write_csv(table, csv)
    expected, _ = read_all(open_source(csv))
    assert rejected == []

    def by_id(records: list[dict]) -> list[dict]:  # FlatGeobuf orders features in space
        return sorted(without(records, "origin"), key=lambda r: r["id"])

    # A File Geodatabase keeps coordinates on its grid (a billionth of a degree).
    assert without(by_id(rows), "lat", "lon") == without(by_id(expected), "lat", "lon")
    for got, want in zip(by_id(rows), by_id(expected), strict=True):
        assert (got["lat"], got["lon"]) == pytest.approx((want["lat"], want["lon"]), abs=1e-8)
    assert [r["origin"] for r in rows[:2]] == [f"{name}#feature=0", f"{name}#feature=1"]


def test_a_shapefile_in_another_coordinate_system_is_reprojected(tmp_path: Path) -> None:
    table = vendor_places().select(["id", "name", "lat", "lon", "city"])
    folder = tmp_path / "toimittaja"
    folder.mkdir()
    # Finland's TM35FIN, as the country's agencies deliver; a shapefile is five files.
    write_layer(table, folder / "kohteet.shp", "ESRI Shapefile", crs="EPSG:3067")
    assert {p.suffix for p in folder.iterdir()} >= {".shp", ".dbf", ".shx", ".prj", ".cpg"}
    source = open_source(folder)
    assert isinstance(source, TabularSource)
    assert source.files == [folder / "kohteet.shp"]
    rows, _ = read_all(source)
    assert [r["id"] for r in rows] == table.column("id").to_pylist()
    for row, lat, lon in zip(
        rows, table.column("lat").to_pylist(), table.column("lon").to_pylist(), strict=True
    ):
        assert row["lat"] == pytest.approx(float(lat), abs=1e-8)
        assert row["lon"] == pytest.approx(float(lon), abs=1e-8)
        assert row["origin"].startswith("kohteet.shp#feature=")

    # Without its .prj, its coordinates are not longitudes and latitudes: refused, named.
    bare = tmp_path / "bare"
    bare.mkdir()
    for part in folder.iterdir():
        if part.suffix != ".prj":
            (bare / part.name).write_bytes(part.read_bytes())
    with pytest.raises(CorruptInputError, match=r"names no coordinate system, and its coordinates"):
        read_all(open_source(bare / "kohteet.shp"))

    # Zipped as it is mailed, it reads the same.
    zipped = tmp_path / "kohteet.shp.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for part in folder.iterdir():
            archive.write(part, part.name)
    assert without(read_all(open_source(zipped))[0], "origin", "source") == without(
        rows, "origin", "source"
    )


def test_polygons_are_placed_at_their_centroid_and_a_spreadsheet_by_its_columns(
    tmp_path: Path,
) -> None:
    shapes = [
        shapely.box(24.0, 60.0, 24.002, 60.002),
        shapely.LineString([(25, 61), (25.004, 61)]),
        None,
    ]
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "name": ["Alepa", "Silta", "Ilman"],
            "geometry": pa.array(
                [None if s is None else shapely.to_wkb(s) for s in shapes], pa.binary()
            ),
        }
    )
    path = tmp_path / "shapes.gpkg"
    write_arrow(
        table,
        path,
        driver="GPKG",
        geometry_name="geometry",
        geometry_type="Unknown",
        crs="EPSG:4326",
    )
    rows, _ = read_all(open_source(path))
    assert [(r["lat"], r["lon"]) for r in rows] == [
        pytest.approx((60.001, 24.001)),
        pytest.approx((61.0, 25.002)),
        (None, None),
    ]

    # A sheet of text alone has its header read as one, as a CSV's.
    for suffix, driver in ((".xlsx", "XLSX"), (".ods", "ODS")):
        text = tmp_path / f"text{suffix}"
        write_arrow(
            pa.table({"id": ["1", "2"], "name": ["A", "B"], "phone": ["09 1", "09 2"]}),
            text,
            driver=driver,
            layer="places",
        )
        source = open_source(text)
        assert source.size_hint() == 2
        assert [(r["id"], r["phones"]) for r in read_all(source)[0]] == [
            ("1", ["09 1"]),
            ("2", ["09 2"]),
        ]

    sheet = tmp_path / "toimittaja.xlsx"
    write_arrow(
        pa.table({"id": ["1"], "name": ["Kahvila"], "lat": [60.1], "lon": [24.9]}),
        sheet,
        driver="XLSX",
        layer="places",
    )
    ((row,), _) = read_all(open_source(sheet))
    assert (row["id"], row["lat"], row["lon"], row["origin"]) == (
        "1",
        60.1,
        24.9,
        "toimittaja.xlsx#feature=0",
    )


def test_a_geopackage_of_layers_needs_the_one_to_read(tmp_path: Path) -> None:
    table = vendor_places()
    path = tmp_path / "toimitus.gpkg"
    write_layer(table.slice(0, 3), path, "GPKG", layer="kahvilat")
    write_layer(table.slice(3, 2), path, "GPKG", layer="kaupat")
    with pytest.raises(InputError, match=r"it holds 2 layers \(kahvilat, kaupat\); name the one"):
        read_all(open_source(path))
    rows, _ = read_all(TabularSource(path, SourceMapping(layer="kaupat")))
    assert [r["id"] for r in rows] == table.slice(3, 2).column("id").to_pylist()
    with pytest.raises(
        InputError, match=r"no layer 'kauppa' in it\. Did you mean 'kaupat'\? Its layers: kahvilat"
    ):
        read_all(TabularSource(path, SourceMapping(layer="kauppa")))


def test_a_file_gdal_cannot_read_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.gpkg"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(CorruptInputError, match="not readable by GDAL") as err:
        read_all(open_source(path))
    assert err.value.path == str(path)


def test_gdal_reads_what_it_wrote() -> None:
    # The drivers the suffixes promise are in the GDAL that pyogrio's wheel carries.
    drivers = pyogrio.list_drivers()
    assert {"GPKG", "ESRI Shapefile", "FlatGeobuf", "OpenFileGDB", "XLSX", "ODS"} <= set(drivers)


def test_each_input_says_what_kind_it_is(tmp_path: Path) -> None:
    table = vendor_places()
    kinds = {}
    for name, driver in (
        ("a.gpkg", "GPKG"),
        ("b.fgb", "FlatGeobuf"),
        ("c.shp", "ESRI Shapefile"),
        ("d.gdb", "OpenFileGDB"),
    ):
        kinds[name] = open_source(
            write_layer(table.select(["id", "name", "lat", "lon"]), tmp_path / name, driver)
        ).kind
    tags = tmp_path / "tags.csv"
    tags.write_text("id,name,amenity\n1,Kahvila,cafe\n", "utf-8")
    kinds["tags.csv"] = open_source(tags).kind
    assert kinds == {
        "a.gpkg": "GeoPackage",
        "b.fgb": "FlatGeobuf",
        "c.shp": "Shapefile",
        "d.gdb": "File Geodatabase",
        "tags.csv": "CSV, OSM tags",
    }


def test_a_shapefiles_fingerprint_covers_the_files_read_with_it(tmp_path: Path) -> None:
    # A pipeline re-reads an input whose fingerprint changed; a shapefile's attributes are
    # in its .dbf, so a changed name must change the .shp's fingerprint.
    from poiflow.pipeline.runner import file_fingerprint

    table = vendor_places().select(["id", "name", "lat", "lon"]).slice(0, 3)
    renamed = table.set_column(1, "name", pa.array(["Uusi", "Nimi", "Tässä"]))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_layer(table, tmp_path / "a" / "kohteet.shp", "ESRI Shapefile")
    second = write_layer(renamed, tmp_path / "b" / "kohteet.shp", "ESRI Shapefile")
    assert first.read_bytes() == second.read_bytes()  # the points alone: the same
    assert file_fingerprint(first) != file_fingerprint(second)
    (tmp_path / "b" / "kohteet.dbf").write_bytes((tmp_path / "a" / "kohteet.dbf").read_bytes())
    assert file_fingerprint(first) == file_fingerprint(second)


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>Kahvilat</name>
<Folder><name>Keskusta</name>
<Placemark id="p1"><name>Cafe Regatta</name><description>Merikannontie 8</description>
<TimeStamp><when>2024-05-01T08:00:00Z</when></TimeStamp>
<ExtendedData><Data name="phone"><value>040 123 4567</value></Data></ExtendedData>
<Point><coordinates>24.9112,60.1827,0</coordinates></Point></Placemark>
{second}
</Folder>
<Folder><name>Kallio</name>
<Placemark><name>Sävy</name><Polygon><outerBoundaryIs><LinearRing><coordinates>
24.95,60.18 24.952,60.18 24.952,60.182 24.95,60.182 24.95,60.18
</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
</Folder></Document></kml>
"""
EKBERG = (
    "<Placemark><name>Ekberg</name><Point><coordinates>24.9372,60.1637</coordinates></Point>"
    "</Placemark>"
)


def test_kml_placemarks_of_every_folder_are_places(tmp_path: Path) -> None:
    """Google My Maps' and Google Earth's KML: each folder a layer, read one after the
    other; a placemark's name, time and extended data as flat columns; one without an id
    given one from its name and point."""
    path = tmp_path / "kahvilat.kml"
    path.write_text(KML.format(second=EKBERG), encoding="utf-8")
    source = open_source(path)
    assert (source.kind, source.size_hint()) == ("KML", 3)
    rows, rejected = read_all(source)
    assert rejected == []
    assert [(r["id"], r["names"]["primary"], r["phones"], r["origin"]) for r in rows] == [
        ("p1", "Cafe Regatta", ["040 123 4567"], "kahvilat.kml#layer=Keskusta,feature=0"),
        (rows[1]["id"], "Ekberg", None, "kahvilat.kml#layer=Keskusta,feature=1"),
        (rows[2]["id"], "Sävy", None, "kahvilat.kml#layer=Kallio,feature=0"),
    ]
    assert rows[0]["update_time"].isoformat() == "2024-05-01T08:00:00+00:00"
    assert (rows[2]["lat"], rows[2]["lon"]) == pytest.approx((60.181, 24.951))
    assert rows[1]["id"].startswith("h")
    assert rows[1]["id"] != rows[2]["id"]

    # Exported again with the placemarks in another order: the same ids.
    moved = tmp_path / "moved.kml"
    moved.write_text(
        KML.format(second="").replace("<Folder><name>Kallio", EKBERG + "<Folder><name>Kallio"),
        encoding="utf-8",
    )
    again = {r["names"]["primary"]: r["id"] for r in read_all(open_source(moved))[0]}
    assert again == {r["names"]["primary"]: r["id"] for r in rows}

    # Zipped as KMZ, it reads the same; 'layer:' reads one folder.
    kmz = tmp_path / "kahvilat.kmz"
    with zipfile.ZipFile(kmz, "w") as archive:
        archive.write(path, "doc.kml")
    assert without(read_all(open_source(kmz))[0], "origin", "source") == without(
        rows, "origin", "source"
    )
    one = TabularSource(path, SourceMapping(layer="Kallio"))
    assert [r["names"]["primary"] for r in read_all(one)[0]] == ["Sävy"]


MY_MAPS = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>Helsinki favourites</name>
<Folder><name>Cafes</name>{cafes}</Folder>
<Folder><name>Untitled layer</name>
<Placemark><name>Akateeminen</name><Point><coordinates>24.943,60.168</coordinates></Point>
</Placemark></Folder></Document></kml>
"""
REGATTA = (
    "<Placemark><name>Cafe Regatta</name>{data}<Point><coordinates>24.9112,60.1827</coordinates>"
    "</Point></Placemark>"
)


def test_a_kml_folder_that_names_a_kind_of_place_is_its_placemarks_category(
    tmp_path: Path,
) -> None:
    """Google My Maps keeps each map layer in a folder, often named for what is in it: a
    folder the taxonomy reads as a kind of place is the category of its placemarks; one it
    does not ("Untitled layer", the keskusta and kallio folders above) gives none, and a
    placemark's own category column is left as it is."""
    path = tmp_path / "favourites.kml"
    path.write_text(MY_MAPS.format(cafes=REGATTA.format(data="")), encoding="utf-8")
    rows, _ = read_all(open_source(path))
    assert [(r["names"]["primary"], r["source_category"]) for r in rows] == [
        ("Cafe Regatta", "Cafes"),
        ("Akateeminen", None),
    ]
    own = '<ExtendedData><Data name="category"><value>bakery</value></Data></ExtendedData>'
    path.write_text(MY_MAPS.format(cafes=REGATTA.format(data=own)), encoding="utf-8")
    rows, _ = read_all(open_source(path))
    assert [r["source_category"] for r in rows] == ["bakery", None]
    # A mapping names the columns itself: the folder is not read as a category.
    path.write_text(MY_MAPS.format(cafes=REGATTA.format(data="")), encoding="utf-8")
    mapped = TabularSource(
        path, SourceMapping(columns={"name": "Name", "update_time": "timestamp"})
    )
    assert [r["source_category"] for r in read_all(mapped)[0]] == [None, None]
    plain = tmp_path / "kahvilat.kml"
    plain.write_text(KML.format(second=EKBERG), encoding="utf-8")
    assert {r["source_category"] for r in read_all(open_source(plain))[0]} == {None}


def test_a_placemark_twice_is_held_back_as_a_repeat(tmp_path: Path) -> None:
    from poiflow.pipeline import ingest

    path = tmp_path / "kahvilat.kml"
    path.write_text(KML.format(second=EKBERG + EKBERG), encoding="utf-8")
    report = ingest([path], tmp_path / "out.parquet")
    assert (report.read, report.valid, report.quarantined) == (4, 3, 1)


def test_gpx_waypoints_are_places_and_its_tracks_are_not(tmp_path: Path) -> None:
    path = tmp_path / "retki.gpx"
    path.write_text(
        """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="60.1827" lon="24.9112"><ele>3</ele><time>2024-06-01T10:00:00Z</time>
<name>Cafe Regatta</name><desc>kahvila rannalla</desc><link href="https://caferegatta.fi"/>
<sym>Restaurant</sym><type>cafe</type></wpt>
<wpt lat="60.1637" lon="24.9372"><name>Ekberg</name></wpt>
<trk><name>Lenkki</name><trkseg><trkpt lat="60.1" lon="24.9"/><trkpt lat="60.2" lon="24.8"/>
</trkseg></trk>
</gpx>
""",
        encoding="utf-8",
    )
    source = open_source(path)
    assert source.kind == "GPX"
    rows, rejected = read_all(source)
    assert rejected == []
    assert [
        (r["names"]["primary"], r["source_category"], r["websites"], r["lat"], r["lon"])
        for r in rows
    ] == [
        ("Cafe Regatta", "cafe", ["https://caferegatta.fi"], 60.1827, 24.9112),
        ("Ekberg", None, None, 60.1637, 24.9372),
    ]
    assert rows[0]["update_time"].isoformat() == "2024-06-01T10:00:00+00:00"
    assert rows[0]["origin"] == "retki.gpx#feature=0"
    assert all(r["id"] and r["id"].startswith("h") for r in rows)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(min_size=1, max_size=12)),
            st.one_of(st.none(), st.floats(-90, 90, allow_nan=False)),
            st.floats(-180, 180, allow_nan=False),
        ),
        max_size=20,
    ),
    st.randoms(use_true_random=False),
)
# Found by a long run: a point a hair below 0 is the one a hair above ("-0.0000000").
@example(places=[("Kioski", -1e-9, -1e-9), ("Kioski", 1e-9, 1e-9)], shuffler=random.Random(0))
def test_an_id_made_for_a_place_depends_on_its_name_and_point_alone(
    places: list[tuple[str | None, float | None, float]], shuffler: random.Random
) -> None:
    names, lats, lons = (
        (list(column) for column in zip(*places, strict=True)) if places else ([], [], [])
    )
    ids = place_ids(names, lats, lons)
    order = list(range(len(places)))
    shuffler.shuffle(order)
    again = place_ids([names[i] for i in order], [lats[i] for i in order], [lons[i] for i in order])
    assert again == [ids[i] for i in order]
    for (name, lat, lon), made in zip(places, ids, strict=True):
        assert (made is None) == (name is None)
        same = [
            other
            for (n, a, o), other in zip(places, ids, strict=True)
            if (n, None if a is None else round(a, 7), round(o, 7))
            == (name, None if lat is None else round(lat, 7), round(lon, 7))
        ]
        assert set(same) == {made}


def test_a_folder_of_file_geodatabases_is_one_input_of_them_all(tmp_path: Path) -> None:
    """Each .gdb in the folder is one file (its own tables are not inputs), read in name
    order, as a folder of CSVs is."""
    table = vendor_places().select(["id", "name", "lat", "lon"])
    folder = tmp_path / "toimitus"
    folder.mkdir()
    write_layer(table.slice(0, 5), folder / "a_etela.gdb", "OpenFileGDB")
    write_layer(table.slice(5, 4), folder / "b_pohjoinen.gdb", "OpenFileGDB")
    source = open_source(folder)
    assert isinstance(source, TabularSource)
    assert source.files == [folder / "a_etela.gdb", folder / "b_pohjoinen.gdb"]
    assert (source.kind, source.size_hint()) == ("File Geodatabase", 9)
    rows, _ = read_all(source)
    assert [r["id"] for r in rows] == table.column("id").to_pylist()[:9]
    assert rows[5]["origin"] == "b_pohjoinen.gdb#feature=0"


def test_a_flatgeobuf_with_features_without_geometry_reads_whole(tmp_path: Path) -> None:
    """GDAL's FlatGeobuf reader hands such a file over as broken Arrow batches (offsets
    past the data); those batches are read again feature by feature."""
    n = 120
    points = [
        None if i % 7 == 3 else shapely.to_wkb(shapely.Point(24 + i / 1000, 60)) for i in range(n)
    ]
    table = pa.table(
        {
            "id": [str(i) for i in range(n)],
            "name": [f"Paikka {i}" for i in range(n)],
            "geometry": pa.array(points, pa.binary()),
        }
    )
    path = tmp_path / "paikat.fgb"
    write_arrow(
        table,
        path,
        driver="FlatGeobuf",
        geometry_name="geometry",
        geometry_type="Point",
        crs="EPSG:4326",
        layer_options={"SPATIAL_INDEX": "NO"},
    )
    rows, rejected = read(open_source(path), batch_size=50)
    assert rejected == []
    assert [r["id"] for r in rows] == [str(i) for i in range(n)]
    assert [r["lon"] for r in rows] == [
        None if i % 7 == 3 else pytest.approx(24 + i / 1000) for i in range(n)
    ]


@pytest.mark.parametrize(
    ("name", "driver", "parts"),
    [
        ("kohteet.gml", "GML", {".xsd"}),
        ("kohteet.tab", "MapInfo File", {".dat", ".map", ".id"}),
        ("kohteet.mif", "MapInfo File", {".mid"}),
    ],
)
def test_gml_and_mapinfo_read_as_the_same_places_in_wgs84(
    tmp_path: Path, name: str, driver: str, parts: set[str]
) -> None:
    """As Finland's agencies deliver (GML, in TM35FIN) and as MapInfo users do: a folder of
    one file and its parts is one input, the parts read with it."""
    table = vendor_places().select(["id", "name", "lat", "lon", "city"])
    folder = tmp_path / "toimittaja"
    folder.mkdir()
    path = write_layer(table, folder / name, driver, crs="EPSG:3067")
    assert {p.suffix for p in folder.iterdir()} == {path.suffix, *parts}
    source = open_source(folder)
    assert isinstance(source, TabularSource)
    assert source.files == [path]
    rows, rejected = read_all(source)
    assert rejected == []
    names = [name or None for name in table.column("name").to_pylist()]  # "" is no name
    assert [(r["id"], r["names"]["primary"] or None) for r in rows] == list(
        zip(table.column("id").to_pylist(), names, strict=True)
    )
    # MapInfo keeps TM35FIN as UTM zone 35 on WGS 84: the same to a few centimetres.
    for row, lat, lon in zip(
        rows, table.column("lat").to_pylist(), table.column("lon").to_pylist(), strict=True
    ):
        assert (row["lat"], row["lon"]) == pytest.approx((float(lat), float(lon)), abs=1e-6)
    # Reading wrote nothing beside the input (GDAL writes a GML file's .gfs schema else).
    assert {p.suffix for p in folder.iterdir()} == {path.suffix, *parts}
    # The fingerprint covers the parts: the names are in MapInfo's .dat, not its .map.
    from poiflow.pipeline.runner import file_fingerprint

    before = file_fingerprint(path)
    part = next(p for p in folder.iterdir() if p.suffix == sorted(parts)[0])
    part.write_bytes(part.read_bytes() + b" ")
    assert file_fingerprint(path) != before


def test_gml_without_a_schema_takes_its_ids_and_leaves_out_envelopes(tmp_path: Path) -> None:
    table = vendor_places().select(["name", "lat", "lon"]).slice(0, 3)
    path = write_layer(table, tmp_path / "kohteet.gml", "GML", crs="EPSG:3067")
    (tmp_path / "kohteet.xsd").unlink()  # GDAL then reads each feature's envelope too
    rows, rejected = read_all(open_source(path))
    assert rejected == []
    assert [r["id"] for r in rows] == ["kohteet.0", "kohteet.1", "kohteet.2"]  # its gml:id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kohteet.gml"]
