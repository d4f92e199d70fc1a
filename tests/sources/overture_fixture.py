"""Write a small file in the Overture Maps places GeoParquet layout, for tests.

The column types follow the published places schema: ``names`` with a ``common`` map and
``rules``, ``categories`` with ``primary``/``alternate``, ``addresses`` as a list, ``brand``
with nested names, ``sources`` with string ``update_time``, WKB ``geometry`` and ``bbox``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

NAMES = pa.struct(
    [
        ("primary", pa.string()),
        ("common", pa.map_(pa.string(), pa.string())),
        (
            "rules",
            pa.list_(
                pa.struct(
                    [
                        ("variant", pa.string()),
                        ("language", pa.string()),
                        ("value", pa.string()),
                        ("between", pa.list_(pa.float64())),
                        ("side", pa.string()),
                    ]
                )
            ),
        ),
    ]
)
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("geometry", pa.binary()),
        (
            "bbox",
            pa.struct(
                [
                    ("xmin", pa.float32()),
                    ("xmax", pa.float32()),
                    ("ymin", pa.float32()),
                    ("ymax", pa.float32()),
                ]
            ),
        ),
        ("version", pa.int32()),
        (
            "sources",
            pa.list_(
                pa.struct(
                    [
                        ("property", pa.string()),
                        ("dataset", pa.string()),
                        ("record_id", pa.string()),
                        ("update_time", pa.string()),
                        ("confidence", pa.float64()),
                    ]
                )
            ),
        ),
        ("names", NAMES),
        ("categories", pa.struct([("primary", pa.string()), ("alternate", pa.list_(pa.string()))])),
        ("confidence", pa.float64()),
        ("websites", pa.list_(pa.string())),
        ("socials", pa.list_(pa.string())),
        ("emails", pa.list_(pa.string())),
        ("phones", pa.list_(pa.string())),
        ("brand", pa.struct([("wikidata", pa.string()), ("names", NAMES)])),
        (
            "addresses",
            pa.list_(
                pa.struct(
                    [
                        ("freeform", pa.string()),
                        ("locality", pa.string()),
                        ("postcode", pa.string()),
                        ("region", pa.string()),
                        ("country", pa.string()),
                    ]
                )
            ),
        ),
        ("operating_status", pa.string()),
    ]
)


def point(lon: float, lat: float) -> bytes:
    return struct.pack("<BIdd", 1, 1, lon, lat)


def place(
    gers_id: str, name: str, lon: float, lat: float, *, geometry: bytes | None = None, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": gers_id,
        "geometry": geometry if geometry is not None else point(lon, lat),
        "bbox": {"xmin": lon, "xmax": lon, "ymin": lat, "ymax": lat},
        "version": 1,
        "sources": [
            {
                "property": "",
                "dataset": "meta",
                "record_id": "123",
                "update_time": "2025-03-01T10:00:00.000Z",
                "confidence": None,
            }
        ],
        "names": {"primary": name, "common": None, "rules": None},
        "categories": {"primary": "coffee_shop", "alternate": ["cafe", "bakery"]},
        "confidence": 0.9,
        "websites": None,
        "socials": None,
        "emails": None,
        "phones": None,
        "brand": None,
        "addresses": [
            {
                "freeform": "Mannerheimintie 5",
                "locality": "Helsinki",
                "postcode": "00100",
                "region": None,
                "country": "FI",
            }
        ],
        "operating_status": "open",
    }
    row.update(extra)
    return row


def write_overture(path: Path, rows: list[dict[str, Any]]) -> Path:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}},
    }
    table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    pq.write_table(table, path)
    return path
