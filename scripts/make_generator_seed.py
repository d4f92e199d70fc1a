"""Write src/poiflow/generate/data/seed.json.gz: the real POIs the generator draws from.

Taken from the bundled Helsinki extract (ODbL, © OpenStreetMap contributors) after
poiflow's own ingest: each named place's name, its translations, its category, street,
house number, brand and website domain. Run: .venv/bin/python scripts/make_generator_seed.py
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

import poiflow

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "poiflow" / "generate" / "data" / "seed.json.gz"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        poiflow.ingest(
            [ROOT / "examples" / "helsinki" / "Helsinki.osm.pbf"], Path(tmp) / "p.parquet"
        )
        places = pq.read_table(Path(tmp) / "p.parquet").to_pylist()
    seed = []
    for place in sorted(places, key=lambda p: p["id"]):
        address = place["address"] or {}
        seed.append(
            {
                "name": place["names"]["primary"],
                "alternates": [
                    [a["language"], a["value"]]
                    for a in place["names"]["alternates"] or []
                    if a["language"] and a["variant"] == "common"
                ],
                "category": (place["categories"] or {}).get("primary") or "other",
                "street": address.get("street"),
                "housenumber": address.get("housenumber"),
                "brand": (place["brand"] or {}).get("name"),
                "domain": (place["keys"]["domains"] or [None])[0],
                "opening_hours": place["opening_hours"],
            }
        )
    payload = {
        "attribution": "© OpenStreetMap contributors, ODbL 1.0 (Helsinki extract)",
        "places": seed,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as handle:
        handle.write(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    print(f"wrote {len(seed)} seed places to {OUT}")


if __name__ == "__main__":
    main()
