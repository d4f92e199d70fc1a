"""The Overture reader as it was, row by row in Python: the reference that the column-wise
reader (``overture_records``) is held to. A record's other names are read as they
were, by the same function (``other_names``), in both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from poiflow.sources.base import records_from_rows
from poiflow.sources.geometry import points_from_wkb
from poiflow.sources.overture_records import other_names, source_time


def reference_records(table: pa.Table, name: str, where: str, start: int) -> pa.Table:
    lat, lon, not_points = points_from_wkb(table.column("geometry"))
    bad_geometry = set(not_points)
    column = {c: table.column(c).to_pylist() for c in table.column_names if c != "geometry"}
    empty: list[Any] = [None] * table.num_rows
    rows = []
    for i in range(table.num_rows):

        def get(field: str, i: int = i) -> Any:
            return column.get(field, empty)[i]

        names = get("names") or {}
        labels = _labels(get("categories"), get("taxonomy"), get("basic_category"))
        brand = get("brand") or {}
        brand_name = (brand.get("names") or {}).get("primary")
        point_ok = lat[i] == lat[i]
        rows.append(
            {
                "source": name,
                "id": get("id"),
                "names": {"primary": names.get("primary"), "alternates": other_names(names)},
                "categories": {"primary": labels[0], "alternate": labels[1:]} if labels else None,
                "source_category": labels[0] if labels else None,
                "lat": float(lat[i]) if point_ok else None,
                "lon": float(lon[i]) if point_ok else None,
                "address": (get("addresses") or [None])[0],
                "phones": get("phones"),
                "websites": get("websites"),
                "emails": get("emails"),
                "brand": {"name": brand_name, "wikidata": brand.get("wikidata")}
                if brand_name or brand.get("wikidata")
                else None,
                "opening_hours": None,
                "operating_status": get("operating_status"),
                "update_time": _latest(get("sources")),
                "origin": f"{where}#row={start + i}",
                "issues": ["geometry: not a point"] if i in bad_geometry else None,
            }
        )
    return records_from_rows(rows)


def _labels(categories: Any, taxonomy: Any, basic: Any) -> list[str]:
    labels: list[str] = []
    if categories:
        labels += [categories.get("primary"), *(categories.get("alternate") or [])]
    if taxonomy:
        labels += [taxonomy.get("primary"), *(taxonomy.get("alternates") or [])]
    if basic:
        labels.append(basic)
    return list(dict.fromkeys(label for label in labels if label))


def _latest(sources: Any) -> datetime | None:
    stamps = [source_time(source.get("update_time")) for source in sources or []]
    return max((stamp for stamp in stamps if stamp is not None), default=None)
