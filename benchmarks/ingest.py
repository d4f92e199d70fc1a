"""Ingest throughput and peak memory on a large generated input, against a named peer.

Generates (seeded, so every figure can be reproduced) N synthetic POIs whose names, tags and
addresses are drawn from the bundled Helsinki extract and scattered over many synthetic
cities, written both as an OSM PBF (nodes with POI tags) and as a flat place Parquet. Then
it times, each in its own process so peak RSS is its own:

- ``poiflow ingest`` of the PBF (read, validate, normalize, write GeoParquet);
- ``poiflow ingest`` of the flat Parquet;
- ``poiflow ingest`` of the same places as Overture Maps GeoParquet (Overture's nested
  columns: ``names``, ``categories``, ``addresses``, ``sources``, WKB ``geometry``);
- ``poiflow ingest`` of the PBF's nodes as a GeoJSON FeatureCollection of OSM tags, as
  Overpass exports them (``@id`` and the tags as properties);
- ``poiflow ingest`` of the flat places as a GeoPackage of points (read by GDAL);
- ``poiflow ingest`` of the flat places as GeoParquet (geopandas' ``to_parquet``: WKB
  points in a ``geometry`` column, no ``lat``/``lon``);
- ``poiflow.ingest`` of the flat places as a pandas DataFrame in memory (the Parquet read
  by pandas, then ``poiflow.FrameSource``; the read is counted);
- ``poiflow ingest`` of a PBF shaped like a real extract (``--input extract``; its own
  file, of ``--extract-nodes`` nodes): most nodes untagged, the corners of buildings and
  the points of streets; buildings as closed ways, 3% of them shops; POIs as nodes inside
  5% of them; a park multipolygon now and then. Where the synthetic PBF above is all
  POIs, this one is mostly geometry, as a country's extract is;
- ``poiflow ingest`` of a PBF of 20,000 forests (``--input forests``): each a multipolygon
  relation of two ways around 400 nodes, and a named cafe by one forest in fifty. A
  country's extract has many such relations (land use, water, nature reserves) that are
  no place;
- the peers: pyrosm's ``get_pois`` on the same PBF (reads POIs into a GeoDataFrame),
  DuckDB flattening the Overture file into flat columns (name, category, point, first
  address, phone and website) as Overture's own guides do, and pyogrio (GDAL, what
  ``geopandas.read_file`` uses) reading the GeoJSON and the GeoPackage into GeoDataFrames, and
  ``geopandas.read_parquet`` reading the GeoParquet; none
  validates or normalizes, so they are floors for reading, not like-for-likes.

Usage:
    .venv/bin/python benchmarks/ingest.py [--records 1000000] [--seed 42] [--skip-peer]
        [--input pbf --input geojson ...]
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import time
from pathlib import Path

import orjson
import osmium
import pyarrow as pa
import pyarrow.parquet as pq

from measure import measure
from poiflow.schema import FLAT_FIELDS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
HELSINKI = ROOT / "examples" / "helsinki" / "Helsinki.osm.pbf"
KEYS = ("amenity", "shop", "tourism", "leisure", "office", "craft", "healthcare")
COPY_TAGS = ("addr:street", "addr:housenumber", "addr:postcode", "opening_hours", "cuisine")
INPUTS = (
    "pbf",
    "parquet",
    "overture",
    "geojson",
    "gpkg",
    "geoparquet",
    "frame",
    "extract",
    "forests",
)


def _templates() -> list[dict[str, str]]:
    """Tag sets of the real named POIs in the Helsinki extract."""
    out = []
    for obj in osmium.FileProcessor(str(HELSINKI)).with_filter(osmium.filter.KeyFilter("name")):
        tags = dict(obj.tags)
        if any(k in tags for k in KEYS):
            out.append({k: v for k, v in tags.items() if k in (*KEYS, "name", *COPY_TAGS)})
    return out


def overture(flat: Path) -> Path:
    """The flat places of ``flat`` in Overture's layout, beside it (skipped if it exists):
    the address as one line with the country, the record's source and update time."""
    target = flat.with_suffix(".overture.parquet")
    if target.exists():
        return target
    rows = []
    for r in pq.read_table(flat).to_pylist():
        street = " ".join(x for x in (r["street"], r["housenumber"]) if x)
        rows.append(
            {
                "id": f"08f{int(r['id']):013x}",
                "geometry": struct.pack("<BIdd", 1, 1, r["lon"], r["lat"]),
                "bbox": {"xmin": r["lon"], "xmax": r["lon"], "ymin": r["lat"], "ymax": r["lat"]},
                "names": {"primary": r["name"]},
                "categories": {"primary": r["category"], "alternate": None},
                "addresses": [
                    {
                        "freeform": street or None,
                        "locality": r["city"],
                        "postcode": r["postcode"],
                        "country": "FI",
                    }
                ],
                "phones": [r["phone"]] if r["phone"] else None,
                "websites": [r["website"]] if r["website"] else None,
                "sources": [
                    {
                        "dataset": "bench",
                        "record_id": r["id"],
                        "update_time": "2024-06-01T00:00:00Z",
                    }
                ],
            }
        )
    partial = target.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(rows), partial, row_group_size=100_000)
    partial.rename(target)
    return target


def generate(records: int, seed: int) -> tuple[Path, Path]:
    """Write DATA/pois-N-S.osm.pbf and DATA/pois-N-S.parquet (skipped if they exist)."""
    DATA.mkdir(parents=True, exist_ok=True)
    pbf = DATA / f"pois-{records}-{seed}.osm.pbf"
    flat = DATA / f"pois-{records}-{seed}.parquet"
    if pbf.exists() and flat.exists():
        return pbf, flat
    rng = random.Random(seed)
    templates = _templates()
    cities = [(rng.uniform(-40, 65), rng.uniform(-120, 140)) for _ in range(400)]
    fields = [f for f in FLAT_FIELDS if f not in ("source", "country", "address")]
    columns: dict[str, list[object]] = {k: [] for k in fields}
    tmp = pbf.with_suffix(".tmp.pbf")
    tmp.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(tmp)) as writer:
        for i in range(records):
            tags = dict(rng.choice(templates))
            lat0, lon0 = rng.choice(cities)
            lat, lon = lat0 + rng.gauss(0, 0.05), lon0 + rng.gauss(0, 0.08)
            if rng.random() < 0.5:
                tags["name"] = f"{tags['name']} {rng.randint(1, 999)}"
            phone = f"+1 {rng.randint(200, 999)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}"
            if rng.random() < 0.4:
                tags["phone"] = phone
            website = f"https://www.{tags['name'].split()[0].lower()}{i % 5000}.com/"
            if rng.random() < 0.5:
                tags["website"] = website
            writer.add_node(
                osmium.osm.mutable.Node(
                    id=i + 1,
                    location=(lon, lat),
                    tags=tags,
                    version=1,
                    timestamp="2024-01-01T00:00:00Z",
                )
            )
            key = next(k for k in KEYS if k in tags)
            for name, value in (
                ("id", str(i + 1)),
                ("name", tags["name"]),
                ("lat", lat),
                ("lon", lon),
                ("category", tags[key]),
                ("street", tags.get("addr:street")),
                ("housenumber", tags.get("addr:housenumber")),
                ("postcode", tags.get("addr:postcode")),
                ("city", f"City {cities.index((lat0, lon0))}"),
                ("phone", tags.get("phone")),
                ("website", tags.get("website")),
            ):
                columns[name].append(value)
    tmp.rename(pbf)
    pq.write_table(pa.table(columns), flat)
    return pbf, flat


def geojson(pbf: Path) -> Path:
    """The PBF's nodes as a GeoJSON FeatureCollection of their tags, beside it (skipped if it
    exists), as an Overpass export lays them out."""
    target = pbf.with_suffix("").with_suffix(".geojson")
    if target.exists():
        return target
    tmp = target.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(b'{"type": "FeatureCollection", "features": [\n')
        first = True
        for obj in osmium.FileProcessor(str(pbf)):
            feature = {
                "type": "Feature",
                "id": f"node/{obj.id}",
                "geometry": {"type": "Point", "coordinates": [obj.location.lon, obj.location.lat]},
                "properties": {"@id": f"node/{obj.id}", **dict(obj.tags)},
            }
            out.write((b"" if first else b",\n") + orjson.dumps(feature))
            first = False
        out.write(b"\n]}\n")
    tmp.rename(target)
    return target


def geopackage(flat: Path) -> Path:
    """The flat places as a GeoPackage layer of points, beside them (skipped if it exists)."""
    import pyogrio.raw
    import shapely

    target = flat.with_suffix(".gpkg")
    if target.exists():
        return target
    table = pq.read_table(flat)
    points = shapely.points(table.column("lon").to_numpy(), table.column("lat").to_numpy())
    layer = table.drop_columns(["lat", "lon"]).append_column(
        "geometry", pa.array(shapely.to_wkb(points), pa.binary())
    )
    tmp = target.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    pyogrio.raw.write_arrow(
        layer, tmp, driver="GPKG", geometry_name="geometry", geometry_type="Point", crs="EPSG:4326"
    )
    tmp.rename(target)
    return target


def geoparquet(flat: Path) -> Path:
    """The flat places as GeoParquet written by geopandas, beside them (skipped if it
    exists): WKB points, no ``lat``/``lon`` columns."""
    import geopandas as gpd

    target = flat.with_suffix(".geoparquet")
    if target.exists():
        return target
    table = pq.read_table(flat)
    frame = gpd.GeoDataFrame(
        table.drop_columns(["lat", "lon"]).to_pandas(),
        geometry=gpd.points_from_xy(table.column("lon").to_numpy(), table.column("lat").to_numpy()),
        crs="EPSG:4326",
    )
    tmp = target.with_suffix(".tmp.parquet")
    frame.to_parquet(tmp)
    tmp.rename(target)
    return target


PEER = f"""
import sys, pyrosm
osm = pyrosm.OSM(sys.argv[1])
pois = osm.get_pois(custom_filter={{k: True for k in {KEYS!r}}})
print(len(pois))
"""
FLATTEN = """
import sys, duckdb
db = duckdb.connect()
db.execute(f\"\"\"COPY (SELECT id, names.primary AS name, categories.primary AS category,
    bbox.ymin AS lat, bbox.xmin AS lon, addresses[1].freeform AS address,
    addresses[1].locality AS city, addresses[1].postcode AS postcode, phones[1] AS phone,
    websites[1] AS website FROM read_parquet('{sys.argv[1]}')) TO '{sys.argv[2]}'
    (FORMAT parquet)\"\"\")
print(db.execute(f"SELECT count(*) FROM read_parquet('{sys.argv[2]}')").fetchone()[0])
"""

INGEST_FRAME = """
import sys, json, pandas, poiflow
frame = pandas.read_parquet(sys.argv[1])
report = poiflow.ingest([poiflow.FrameSource(frame, "pois")], sys.argv[2])
print(json.dumps(report.to_dict()))
"""

READ_GEOPARQUET = """
import sys, geopandas
frame = geopandas.read_parquet(sys.argv[1])
print(len(frame))
"""


def extract(nodes: int, seed: int) -> Path:
    """Write DATA/extract-N-S.osm.pbf, shaped like a real extract (skipped if it exists)."""
    from osmium.osm.mutable import Node, Relation, Way

    target = DATA / f"extract-{nodes}-{seed}.osm.pbf"
    if target.exists():
        return target
    rng = random.Random(seed)
    stamp = "2024-01-01T00:00:00Z"
    node = way = relation = 0
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    parks: list[tuple[int, int]] = []
    tmp = target.with_suffix(".tmp.pbf")
    tmp.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(tmp)) as writer:
        while node < nodes:  # a town: 2,000 buildings and 200 streets around its centre
            lat0, lon0 = rng.uniform(-40, 60), rng.uniform(-120, 140)
            for number in range(2000):
                lat, lon = lat0 + rng.gauss(0, 0.02), lon0 + rng.gauss(0, 0.03)
                ring = []
                for dx, dy in ((0, 0), (1e-4, 0), (1e-4, 1e-4), (0, 1e-4)):
                    node += 1
                    writer.add_node(
                        Node(id=node, location=(lon + dx, lat + dy), version=1, timestamp=stamp)
                    )
                    ring.append(node)
                tags = {"building": "yes"}
                draw = rng.random()
                if draw < 0.03:
                    tags |= {
                        "shop": rng.choice(["bakery", "supermarket", "clothes"]),
                        "name": f"Shop {node}",
                        "addr:street": "Main Street",
                        "addr:housenumber": str(number),
                    }
                way += 1
                ways.append((way, [*ring, ring[0]], tags))
                if draw > 0.999:
                    relation += 1
                    parks.append((relation, way))
                if rng.random() < 0.05:
                    node += 1
                    tags = {
                        "amenity": rng.choice(["cafe", "restaurant", "pharmacy"]),
                        "name": f"Place {node}",
                        "phone": "+358 9 123 4567",
                        "opening_hours": "Mo-Fr 08:00-18:00",
                        "website": f"https://p{node}.fi",
                    }
                    writer.add_node(
                        Node(
                            id=node,
                            location=(lon + 5e-5, lat + 5e-5),
                            tags=tags,
                            version=1,
                            timestamp=stamp,
                        )
                    )
            for street in range(200):
                first = node + 1
                for _ in range(20):
                    node += 1
                    point = (lon0 + rng.gauss(0, 0.03), lat0 + rng.gauss(0, 0.02))
                    writer.add_node(Node(id=node, location=point, version=1, timestamp=stamp))
                way += 1
                tags = {"highway": "residential", "name": f"Street {street}"}
                ways.append((way, list(range(first, node + 1)), tags))
        for number, refs, tags in ways:
            writer.add_way(Way(id=number, nodes=refs, tags=tags, version=1, timestamp=stamp))
        for number, outer in parks:
            writer.add_relation(
                Relation(
                    id=number,
                    members=[("w", outer, "outer")],
                    tags={"type": "multipolygon", "leisure": "park", "name": f"Park {number}"},
                    version=1,
                    timestamp=stamp,
                )
            )
    tmp.rename(target)
    return target


def forests(count: int, seed: int) -> Path:
    """Write DATA/forests-N-S.osm.pbf: ``count`` forest multipolygons (two ways around 400
    nodes each) and a named cafe by one in fifty (skipped if it exists)."""
    import math

    from osmium.osm.mutable import Node, Relation, Way

    target = DATA / f"forests-{count}-{seed}.osm.pbf"
    if target.exists():
        return target
    rng = random.Random(seed)
    stamp = "2024-01-01T00:00:00Z"
    node = 0
    firsts: list[int] = []  # each forest's first node
    tmp = target.with_suffix(".tmp.pbf")
    tmp.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(tmp)) as writer:
        for forest in range(count):
            lat0, lon0 = rng.uniform(-40, 60), rng.uniform(-120, 140)
            firsts.append(node + 1)
            for step in range(400):
                angle = 2 * math.pi * step / 400
                node += 1
                point = (lon0 + 0.01 * math.cos(angle), lat0 + 0.01 * math.sin(angle))
                writer.add_node(Node(id=node, location=point, version=1, timestamp=stamp))
            if forest % 50 == 0:
                node += 1
                tags = {"amenity": "cafe", "name": f"Cafe {forest}"}
                writer.add_node(
                    Node(id=node, location=(lon0, lat0), tags=tags, version=1, timestamp=stamp)
                )
        for forest, first in enumerate(firsts):
            ring = list(range(first, first + 400))
            for half, refs in enumerate((ring[:201], [*ring[200:], ring[0]])):
                writer.add_way(
                    Way(id=2 * forest + half + 1, nodes=refs, version=1, timestamp=stamp)
                )
        for forest in range(count):
            members = [("w", 2 * forest + 1, "outer"), ("w", 2 * forest + 2, "outer")]
            tags = {"type": "multipolygon", "landuse": "forest"}
            writer.add_relation(
                Relation(id=forest + 1, members=members, tags=tags, version=1, timestamp=stamp)
            )
    tmp.rename(target)
    return target


READ_GDAL = """
import sys, pyogrio
frame = pyogrio.read_dataframe(sys.argv[1])
print(len(frame))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument(
        "--extract-nodes", type=int, default=4_000_000, help="nodes of --input extract's PBF"
    )
    parser.add_argument(
        "--input",
        action="append",
        choices=INPUTS,
        help="time only these inputs (and their peers); default: all of them",
    )
    args = parser.parse_args()
    inputs = args.input or list(INPUTS)

    t0 = time.perf_counter()
    pbf, flat = generate(args.records, args.seed)
    places = overture(flat)
    features = geojson(pbf)
    layer = geopackage(flat)
    geo = geoparquet(flat)
    shaped = extract(args.extract_nodes, args.seed) if "extract" in inputs else None
    wooded = forests(20_000, args.seed) if "forests" in inputs else None
    print(
        f"input: {args.records:,} POIs, seed {args.seed} ({time.perf_counter() - t0:.0f} s to "
        f"generate or find); PBF {pbf.stat().st_size / 2**20:.0f} MiB, "
        f"Parquet {flat.stat().st_size / 2**20:.0f} MiB, "
        f"Overture GeoParquet {places.stat().st_size / 2**20:.0f} MiB, "
        f"GeoJSON {features.stat().st_size / 2**20:.0f} MiB, "
        f"GeoPackage {layer.stat().st_size / 2**20:.0f} MiB, "
        f"GeoParquet {geo.stat().st_size / 2**20:.0f} MiB"
        + (f", extract {shaped.stat().st_size / 2**20:.0f} MiB" if shaped else "")
        + (f", forests {wooded.stat().st_size / 2**20:.0f} MiB" if wooded else "")
    )
    out = DATA / "out"
    out.mkdir(parents=True, exist_ok=True)
    poiflow = [sys.executable, "-m", "poiflow", "ingest", "--json", "-o"]
    rows = []
    for label, source, name in (
        ("poiflow ingest (PBF)", pbf, "pbf"),
        ("poiflow ingest (flat Parquet)", flat, "parquet"),
        ("poiflow ingest (Overture)", places, "overture"),
        ("poiflow ingest (GeoJSON of tags)", features, "geojson"),
        ("poiflow ingest (GeoPackage)", layer, "gpkg"),
        ("poiflow ingest (GeoParquet)", geo, "geoparquet"),
        ("poiflow ingest (extract-shaped PBF)", shaped, "extract"),
        ("poiflow ingest (forests PBF)", wooded, "forests"),
    ):
        if name not in inputs or source is None:
            continue
        seconds, peak, stdout = measure([*poiflow, str(out / f"{name}.parquet"), str(source)])
        report = json.loads(stdout)
        rows.append((label, report["read"], seconds, peak))
    if "frame" in inputs:
        command = [sys.executable, "-c", INGEST_FRAME, str(flat), str(out / "frame.parquet")]
        seconds, peak, stdout = measure(command)
        report = json.loads(stdout.strip().splitlines()[-1])
        rows.append(("poiflow.ingest (pandas DataFrame)", report["read"], seconds, peak))
    peers = (
        ("pyrosm get_pois (PBF, read only)", "pbf", [PEER, str(pbf)]),
        (
            "DuckDB flatten (Overture, read only)",
            "overture",
            [FLATTEN, str(places), str(out / "duckdb-flat.parquet")],
        ),
        ("pyogrio (GeoJSON, read only)", "geojson", [READ_GDAL, str(features)]),
        ("pyogrio (GeoPackage, read only)", "gpkg", [READ_GDAL, str(layer)]),
        ("geopandas (GeoParquet, read only)", "geoparquet", [READ_GEOPARQUET, str(geo)]),
        ("pyrosm get_pois (extract, read only)", "extract", [PEER, str(shaped)]),
        ("pyrosm get_pois (forests, read only)", "forests", [PEER, str(wooded)]),
    )
    for label, name, command in peers:
        if args.skip_peer or name not in inputs:
            continue
        seconds, peak, stdout = measure([sys.executable, "-c", *command])
        rows.append((label, int(stdout.strip().splitlines()[-1]), seconds, peak))
    print(f"{'command':<36} {'records':>10} {'wall s':>8} {'records/s':>10} {'peak RSS MiB':>13}")
    for label, n, seconds, peak in rows:
        print(f"{label:<36} {n:>10,} {seconds:>8.1f} {n / seconds:>10,.0f} {peak:>13,.0f}")


if __name__ == "__main__":
    main()
