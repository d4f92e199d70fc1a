"""Write examples/helsinki/vendor_feed.csv: a small vendor-style feed for the demo.

Derived from the bundled OSM extract (so ODbL applies): 150 named places re-spelled the way
vendor feeds spell them (upper case, legal forms, national phone formats, no coordinates
for some), plus a few rows that are broken on purpose so the demo shows the quarantine.
Run: .venv/bin/python scripts/make_vendor_feed.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pyarrow.compute as pc

from poiflow.schema import FLAT_FIELDS
from poiflow.sources import OsmSource

HERE = Path(__file__).resolve().parent.parent / "examples" / "helsinki"


def main() -> None:
    rng = random.Random(7)
    records = next(iter(OsmSource(HERE / "Helsinki.osm.pbf").batches(100_000))).records
    rows = records.to_pylist()
    street = pc.struct_field(records.column("address"), "street").to_pylist()
    picked = [r for r, s in zip(rows, street, strict=True) if s and r["phones"]]
    picked = rng.sample(picked, min(150, len(picked)))
    out = []
    truth: list[tuple[str, str]] = []
    for i, r in enumerate(picked):
        truth.append((f"V{1000 + i}", r["id"]))
        name = r["names"]["primary"]
        name = name.upper() if i % 5 == 0 else name + (" Oy" if i % 7 == 0 else "")
        phone = r["phones"][0].replace("+358 ", "0").replace("+358", "0")
        has_point = i % 6 != 0
        address = r["address"] or {}
        out.append(
            {
                "id": f"V{1000 + i}",
                "name": name,
                "lat": f"{r['lat'] + rng.uniform(-2e-4, 2e-4):.6f}" if has_point else "",
                "lon": f"{r['lon'] + rng.uniform(-4e-4, 4e-4):.6f}" if has_point else "",
                "category": (r["source_category"] or "").split("=")[-1].replace("_", " ").title(),
                "street": address.get("street") or "",
                "housenumber": address.get("housenumber") or "",
                "postcode": address.get("postcode") or "",
                "city": "Helsinki",
                "country": "Finland",
                "phone": phone,
                "website": (r["websites"] or [""])[0]
                .replace("https://", "")
                .replace("http://", ""),
            }
        )
    out += [
        {"id": "V9001", "name": "", "lat": "60.17", "lon": "24.94", "city": "Helsinki"},
        {"id": "V9002", "name": "Kahvila Virhe", "lat": "north", "lon": "24.94"},
        # (0, 0): its point is withheld, and the record goes on without it.
        {"id": "V9003", "name": "Null Island Cafe", "lat": "0", "lon": "0"},
        {"id": "V9004", "name": "Ravintola Väärä", "lat": "160.2", "lon": "24.9"},
        {"id": "V1003", "name": "Duplicate id", "lat": "60.16", "lon": "24.93"},
        {
            "id": "V9005",
            "name": "Puhelin Rikki",
            "lat": "60.165",
            "lon": "24.935",
            "phone": "call us!",
        },
    ]
    fields = [f for f in FLAT_FIELDS if f not in ("source", "address")]
    path = HERE / "vendor_feed.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(out)
    with path.open("a", encoding="utf-8") as handle:  # a row with a column too many
        handle.write("V9006,Liikaa Sarakkeita,60.1,24.9,cafe,,,,,,,,surplus\n")
    with (HERE / "vendor_feed.truth.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("vendor_id", "osm_id"))
        writer.writerows(truth)
    print(f"wrote {len(out) + 1} rows to {path}, and which OSM object each came from")


if __name__ == "__main__":
    main()
