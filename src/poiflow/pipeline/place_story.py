"""Why a golden place says what it says (``poiflow explain RUN PLACE``).

From an output folder of ``poiflow conflate`` or ``poiflow run``: the place's chosen
values with their confidence, and each of its records beside them: what it says, whether
that agrees with the place, which of the place's values it gave (the provenance), how far
its point lies from the place's, and its strongest link to the other records. Beside them,
how often each source is right (what the run learnt, and what weighs each record's say).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from poiflow.conflate.alike import address_key, site
from poiflow.conflate.geo import haversine_m
from poiflow.conflate.point import NEAR_M
from poiflow.errors import InputError, did_you_mean
from poiflow.pipeline.outputs import (
    RecordName,
    name_text,
    output_path,
    pairs_among,
    read_output,
    read_run,
    record_keys,
    record_name,
)
from poiflow.text import address_line

__all__ = [
    "ATTRIBUTES",
    "PROVENANCE",
    "PlaceStory",
    "explain_place",
    "field_text",
    "point_text",
]

ATTRIBUTES: Final = (
    "name",
    "category",
    "address",
    "phone",
    "website",
    "opening_hours",
    "location",
)
"""The attributes a place story compares, in the order it shows them."""

PROVENANCE: Final = {
    "name": "/names",
    "category": "/categories",
    "address": "/address",
    "phone": "/phones",
    "website": "/websites",
    "opening_hours": "/opening_hours",
    "location": "/geometry",
}
"""The property of each attribute in a place's provenance (``GOLDEN_PLACE_SCHEMA``'s
``sources``)."""


@dataclass(frozen=True, slots=True)
class PlaceStory:
    """A golden place, and its records beside it.

    Attributes:
        place: The place as ``places.parquet`` has it (without its geometry): ``id``, the
            chosen values, ``confidence`` (that its records are one whole place),
            ``attribute_confidence``.
        records: Each record of the place: ``source``, ``id``, ``name``, ``category``,
            ``address``, ``phones``, ``websites``, ``opening_hours``, ``lat``, ``lon``,
            ``metres`` (from the place's point), ``link`` (its strongest match
            probability to another record of the place; None alone or never compared),
            ``gave`` (the attributes the place took from it), and ``agrees``: per
            attribute, whether it says what the place says (None where it says nothing).
        source_accuracy: Per attribute and source, how often the source is right, as the
            run learnt it (``run.json``; empty for a run without it).
        coverage: The run's ``place_coverage`` (the world's size, each source's share).
    """

    place: dict[str, Any]
    records: tuple[dict[str, Any], ...]
    source_accuracy: dict[str, dict[str, float]]
    coverage: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "place": self.place,
            "records": list(self.records),
            "source_accuracy": self.source_accuracy,
            "place_coverage": self.coverage,
        }

    def values(self) -> dict[str, str]:
        """The place's value of each attribute (:data:`ATTRIBUTES`) as text, '' where it
        has none."""
        place = self.place
        address = place.get("address")
        return {
            "name": str((place.get("names") or {}).get("primary") or ""),
            "category": str((place.get("categories") or {}).get("primary") or ""),
            "address": address_line(address) if isinstance(address, dict) else "",
            "phone": ", ".join(place.get("phones") or []),
            "website": ", ".join(place.get("websites") or []),
            "opening_hours": str(place.get("opening_hours") or ""),
            "location": point_text(place.get("lat"), place.get("lon")),
        }

    @staticmethod
    def said(record: dict[str, Any], attribute: str) -> str:
        """What ``record`` (one of :attr:`records`) says of ``attribute`` as text: its
        distance from the place's point for ``location``."""
        if attribute == "location":
            metres = record.get("metres")
            return "" if not isinstance(metres, float) else f"{metres:,.0f} m away"
        return field_text(record, _FIELDS[attribute])

    def _repr_html_(self) -> str:
        """A notebook's view: the place's values and each record's beside them, green
        where the record agrees with the place and yellow where not, as ``poiflow explain
        RUN PLACE`` prints them."""
        colour = {True: "#e3f4e1", False: "#fff3c4", None: ""}

        def cell(text: str, agrees: bool | None = None) -> str:
            style = f' style="background:{colour[agrees]}"' if colour[agrees] else ""
            return f"<td{style}>{html.escape(text)}</td>"

        confidence = self.place.get("attribute_confidence") or {}
        values = self.values()
        head = "".join(f"<th>{html.escape(r['source'] + ':' + r['id'])}</th>" for r in self.records)
        rows = []
        for attribute in ATTRIBUTES:
            sure = confidence.get(attribute)
            value = values[attribute]
            shown = f"{value} ({sure:.2f})" if sure is not None and value else value
            said = "".join(
                cell(self.said(r, attribute), (r.get("agrees") or {}).get(attribute))
                for r in self.records
            )
            rows.append(f"<tr><th>{attribute.replace('_', ' ')}</th>{cell(shown)}{said}</tr>")
        links = "".join(cell("" if r["link"] is None else f"{r['link']:.2f}") for r in self.records)
        gave = "".join(cell(", ".join(r["gave"])) for r in self.records)
        rows.append(f"<tr><th>strongest link</th><td></td>{links}</tr>")
        rows.append(f"<tr><th>the place took</th><td></td>{gave}</tr>")
        n = len(self.records)
        caption = (
            f"{self.place['id']}: {n} record{'s' * (n != 1)}; "
            f"{self.place.get('confidence', math.nan):.2f} sure of the whole"
        )
        return (
            f"<table><caption>{html.escape(caption)}</caption><thead><tr><th></th>"
            f"<th>the place</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )


_FIELDS: Final = {
    "name": "name",
    "category": "category",
    "address": "address",
    "phone": "phones",
    "website": "websites",
    "opening_hours": "opening_hours",
}


def field_text(record: dict[str, Any], field: str) -> str:
    """A record's ``field`` as text: a list's items joined, '' where it has none; its point
    as "lat, lon" for ``point``."""
    if field == "point":
        return point_text(record.get("lat"), record.get("lon"))
    value = record.get(field)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def point_text(lat: object, lon: object) -> str:
    """A point as "lat, lon" to five decimals (a metre); '' without one."""
    if not isinstance(lat, float) or not isinstance(lon, float) or math.isnan(lat):
        return ""
    return f"{lat:.5f}, {lon:.5f}"


def explain_place(folder: str | Path, which: RecordName) -> PlaceStory:
    """The place ``which`` of the run in ``folder``: a place id, or a record as
    ``SOURCE:ID`` or ``(source, id)`` (its place).

    Raises:
        InputError: The folder lacks the run's files, or no place or record is ``which``.
    """
    which = record_name(which)
    folder = Path(folder)
    membership = pl.DataFrame(
        read_output(folder, "membership.parquet", ["source", "id", "place_id"])
    )
    place_id = _place_id(membership, which, folder)
    places = (
        pl.scan_parquet(output_path(folder, "places.parquet"))
        .filter(pl.col("id") == place_id)
        .collect()
    )
    if places.is_empty():
        raise InputError(f"no place '{place_id}' in places.parquet", path=folder)
    place = places.drop("geometry", strict=False).to_dicts()[0]
    members = membership.filter(pl.col("place_id") == place_id).drop("place_id")
    records = (
        pl.scan_parquet(output_path(folder, "records.parquet"))
        .join(members.lazy(), on=["source", "id"], how="semi")
        .collect()
        .sort("source", "id")
        .with_columns(
            address_key(pl.col("address")).alias("address_key"),
            pl.col("websites").list.eval(site(pl.element())).alias("sites"),
        )
    )
    gave = _gave(place)
    links = _links(folder, members)
    golden = _golden(place, records)
    shown = [
        _record(row, place, golden, gave.get((row["source"], row["id"]), []), links)
        for row in records.iter_rows(named=True)
    ]
    run = read_run(folder)
    return PlaceStory(
        place=place,
        records=tuple(shown),
        source_accuracy=run.get("source_accuracy", {}),
        coverage=run.get("place_coverage", {}),
    )


def _place_id(membership: pl.DataFrame, which: RecordName, folder: Path) -> str:
    """The place id ``which`` names: itself, or the place of the record ``SOURCE:ID`` or
    ``(source, id)``."""
    if isinstance(which, str):
        ids = membership["place_id"].unique()
        if ids.is_in([which]).any():
            return which
        if ":" not in which:
            some = ids.filter(ids.str.starts_with(which[:5])).head(10_000).to_list()
            raise InputError(
                f"no place '{which}' in the run.{did_you_mean(which, some)} "
                "Name a place by its id, or a record as SOURCE:ID"
            )
    sources = sorted(set(membership["source"].to_list()))
    for source, record_id in record_keys(which, sources):
        row = membership.filter((pl.col("source") == source) & (pl.col("id") == record_id))
        if row.height:
            return str(row["place_id"][0])
    raise InputError(f"no record '{name_text(which)}' in the run's membership", path=folder)


def _gave(place: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """The attributes each record gave the place (its provenance)."""
    attribute = {prop: name for name, prop in PROVENANCE.items()}
    gave: dict[tuple[str, str], list[str]] = {}
    for ref in place.get("sources") or []:
        name = attribute.get(ref["property"])
        if name is not None:
            gave.setdefault((ref["dataset"], ref["record_id"]), []).append(name)
    return gave


def _links(folder: Path, members: pl.DataFrame) -> dict[tuple[str, str], float]:
    """Each record's strongest match probability to another record of the place."""
    numbered = members.select("source", "id").with_row_index("row")
    scored = pairs_among(folder, numbered)
    ends = pl.concat(
        [
            scored.select("row", "match_probability"),
            scored.select(pl.col("row_r").alias("row"), "match_probability"),
        ]
    )
    best = ends.group_by("row").agg(pl.col("match_probability").max()).join(numbered, on="row")
    return {
        (s, i): float(p)
        for _, p, s, i in best.select("row", "match_probability", "source", "id").iter_rows()
    }


def _record(
    row: dict[str, Any],
    place: dict[str, Any],
    golden: dict[str, Any],
    gave: list[str],
    links: dict[tuple[str, str], float],
) -> dict[str, Any]:
    names = row.get("names") or {}
    categories = row.get("categories") or {}
    address = row.get("address") or {}
    lat, lon = row.get("lat"), row.get("lon")
    metres = None
    if lat is not None and place.get("lat") is not None:
        metres = float(
            haversine_m(
                np.array([lat]), np.array([lon]), np.array([place["lat"]]), np.array([place["lon"]])
            )[0]
        )
    return {
        "source": row["source"],
        "id": row["id"],
        "name": names.get("primary"),
        "category": categories.get("primary"),
        "address": address_line(address) or None,
        "phones": list(row.get("phones") or []),
        "websites": list(row.get("websites") or []),
        "opening_hours": row.get("opening_hours"),
        "lat": lat,
        "lon": lon,
        "metres": None if metres is None else round(metres, 1),
        "link": links.get((row["source"], row["id"])),
        "gave": sorted(gave, key=ATTRIBUTES.index),
        "agrees": _agrees(row, golden, metres),
    }


def _agrees(
    row: dict[str, Any], golden: dict[str, Any], metres: float | None
) -> dict[str, bool | None]:
    """Per attribute, whether the record says what the place says (None: says nothing)."""
    name_key = (row.get("keys") or {}).get("name")
    category = (row.get("categories") or {}).get("primary")
    phones = set(row.get("phones") or [])
    sites = set(row.get("sites") or [])
    hours = row.get("opening_hours")
    return {
        "name": None if name_key is None else name_key == golden["name"],
        "category": None if category is None else category == golden["category"],
        "address": None
        if row.get("address_key") is None
        else row["address_key"] == golden["address"],
        "phone": None if not phones else bool(phones & golden["phones"]),
        "website": None if not sites else bool(sites & golden["sites"]),
        "opening_hours": None if hours is None else hours == golden["opening_hours"],
        "location": None if metres is None else metres <= NEAR_M,
    }


def _golden(place: dict[str, Any], records: pl.DataFrame) -> dict[str, Any]:
    """What the place's values are compared by: the name and address keys its givers
    voted with, its category, phones, websites' sites and opening hours."""
    found: dict[str, Any] = {"name": None, "address": None}
    for ref in place.get("sources") or []:
        if ref["property"] not in ("/names", "/address"):
            continue
        row = records.filter(
            (pl.col("source") == ref["dataset"]) & (pl.col("id") == ref["record_id"])
        )
        if row.is_empty():
            continue
        if ref["property"] == "/names":
            found["name"] = (row["keys"][0] or {}).get("name")
        else:
            found["address"] = row["address_key"][0]
    websites = pl.Series(place.get("websites") or [], dtype=pl.String)
    return {
        **found,
        "category": (place.get("categories") or {}).get("primary"),
        "phones": set(place.get("phones") or []),
        "sites": set(websites.to_frame("w").select(site(pl.col("w")))["w"].to_list()),
        "opening_hours": place.get("opening_hours"),
    }
