"""Golden records: one place per cluster, each attribute chosen with provenance.

Each attribute is chosen by agreement, source trust and recency: the records of a cluster
vote for a value (by its folded key, so "CAFE AALTO" and "Café Aalto" vote together),
weighted by their source's trust and, slightly, by how recent they are; the winning value
is written as its best-spelled member wrote it (mixed case beats all caps). Confidence of an
attribute is the weighted share of the records that agree with the chosen value; the
place's confidence grows with the number of sources that describe it and with how strongly
they were matched. Provenance follows Overture's ``sources``: every member record, plus one
entry per attribute naming the record it was taken from.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from poiflow.schema import GOLDEN_PLACE_SCHEMA, MEMBERSHIP_SCHEMA

__all__ = ["MergeConfig", "merge_clusters", "place_id_for"]


@dataclass(frozen=True)
class MergeConfig:
    """How attribute values are chosen.

    Attributes:
        trust: Weight of each source's vote (default 1.0 for sources not named).
        recency_weight: Extra weight of the most recent record in a cluster (linear in age
            rank; 0 turns recency off).
    """

    trust: Mapping[str, float] = field(default_factory=dict)
    recency_weight: float = 0.2


def place_id_for(source: str, record_id: str) -> str:
    """A stable place id from the cluster's first member (by source, then id)."""
    digest = hashlib.blake2b(f"{source}\x1f{record_id}".encode(), digest_size=8).hexdigest()
    return f"p{digest}"


@dataclass(slots=True)
class _Columns:
    source: list[str]
    id: list[str]
    name: list[str]
    name_key: list[str]
    alternates: list[list[dict[str, Any]] | None]
    category: list[str | None]
    lat: list[float]  # NaN where missing
    lon: list[float]
    address: list[dict[str, Any] | None]
    phones: list[list[str] | None]
    websites: list[list[str] | None]
    emails: list[list[str] | None]
    brand: list[dict[str, Any] | None]
    opening_hours: list[str | None]
    status: list[str | None]
    update_time: list[datetime | None]
    # Keys the votes compare, computed once per record.
    category_known: list[str | None]  # the category, unless it is "other"
    address_key: list[tuple[str, str] | None]
    brand_key: list[str | None]


def merge_clusters(
    records: pa.Table,
    labels: np.ndarray,
    best_probability: np.ndarray,
    config: MergeConfig | None = None,
    ids: Mapping[int, str] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Golden places and membership from clustered records.

    Args:
        records: The records (``PLACE_SCHEMA``).
        labels: Cluster label of each record.
        best_probability: Each record's strongest match probability within its cluster
            (1.0 for a record alone).
        config: Trust and recency.
        ids: The place id of each cluster label (see ``ids.assign_ids``); by default a
            hash of the cluster's first member.

    Returns:
        ``(places, membership)`` as ``GOLDEN_PLACE_SCHEMA`` and ``MEMBERSHIP_SCHEMA``; the
        places sorted by id, independent of the order of the input records.
    """
    config = config or MergeConfig()
    cols = _columns(records)
    groups: dict[int, list[int]] = defaultdict(list)
    for row, label in enumerate(labels.tolist()):
        groups[label].append(row)
    places: list[dict[str, Any]] = []
    membership_source: list[str] = []
    membership_id: list[str] = []
    membership_place: list[str] = []
    best = best_probability.astype(float).tolist()
    for label, rows in groups.items():
        rows.sort(key=lambda r: (cols.source[r], cols.id[r]))
        place = _golden(rows, cols, best, config)
        if ids is not None:
            place["id"] = ids[label]
        places.append(place)
        for row in rows:
            membership_source.append(cols.source[row])
            membership_id.append(cols.id[row])
            membership_place.append(place["id"])
    places.sort(key=lambda p: p["id"])
    membership = pa.table(
        {"source": membership_source, "id": membership_id, "place_id": membership_place},
        schema=MEMBERSHIP_SCHEMA,
    ).sort_by([("source", "ascending"), ("id", "ascending")])
    return pa.Table.from_pylist(places, schema=GOLDEN_PLACE_SCHEMA), membership


def _columns(records: pa.Table) -> _Columns:
    names = records.column("names").to_pylist()
    keys = records.column("keys").to_pylist()
    categories = [(c or {}).get("primary") for c in records.column("categories").to_pylist()]
    addresses = records.column("address").to_pylist()
    brands = records.column("brand").to_pylist()
    return _Columns(
        source=records.column("source").to_pylist(),
        id=records.column("id").to_pylist(),
        name=[n["primary"] for n in names],
        name_key=[k["name"] for k in keys],
        alternates=[n["alternates"] for n in names],
        category=categories,
        lat=records.column("lat").to_numpy(zero_copy_only=False).astype(float).tolist(),
        lon=records.column("lon").to_numpy(zero_copy_only=False).astype(float).tolist(),
        address=addresses,
        phones=records.column("phones").to_pylist(),
        websites=records.column("websites").to_pylist(),
        emails=records.column("emails").to_pylist(),
        brand=brands,
        opening_hours=records.column("opening_hours").to_pylist(),
        status=records.column("operating_status").to_pylist(),
        update_time=records.column("update_time").to_pylist(),
        category_known=[c if c != "other" else None for c in categories],
        address_key=[_address_key(a) for a in addresses],
        brand_key=[(b or {}).get("name") or (b or {}).get("wikidata") for b in brands],
    )


def _weights(rows: list[int], cols: _Columns, config: MergeConfig) -> dict[int, float]:
    stamps = [cols.update_time[r] for r in rows]
    known = sorted({s for s in stamps if s is not None})
    weights = {}
    for row, stamp in zip(rows, stamps, strict=True):
        recency = (known.index(stamp) + 1) / len(known) if stamp is not None and known else 0.0
        weights[row] = config.trust.get(cols.source[row], 1.0) * (
            1 + config.recency_weight * recency
        )
    return weights


def _vote(
    rows: list[int], weights: dict[int, float], column: Sequence[Any]
) -> tuple[Any, list[int], float]:
    """The winning value of ``column`` among rows that have one, its voters, and their
    share of the weight. Ties go to the value whose first voter comes first (rows are in
    (source, id) order, and dicts keep the order values first appear in)."""
    tally: dict[Any, float] = {}
    voters: dict[Any, list[int]] = {}
    for row in rows:
        value = column[row]
        if value is None:
            continue
        if value in tally:
            tally[value] += weights[row]
            voters[value].append(row)
        else:
            tally[value] = weights[row]
            voters[value] = [row]
    if not tally:
        return None, [], 0.0
    winner = None
    most = -1.0
    for value, weight in tally.items():
        if weight > most:
            winner, most = value, weight
    return winner, voters[winner], most / sum(tally.values())


def _display_rank(name: str) -> tuple[int, int, int]:
    # Mixed case beats all caps or all lower case; accents beat their stripped form (sources
    # lose them, never add them); then the longer, fuller spelling.
    mixed = int(name != name.upper() and name != name.lower())
    return mixed, sum(1 for ch in name if not ch.isascii()), len(name)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _golden(
    rows: list[int], cols: _Columns, best: list[float], config: MergeConfig
) -> dict[str, Any]:
    weights = _weights(rows, cols, config)
    first = rows[0]
    # Ties are broken by (source, id) order, never by row numbers: the input order of the
    # records must not change a golden record.
    rank = {row: i for i, row in enumerate(rows)}
    chosen: dict[str, int] = {}

    _, name_voters, name_share = _vote(rows, weights, cols.name_key)
    name_row = max(name_voters, key=lambda r: (weights[r], _display_rank(cols.name[r]), -rank[r]))
    chosen["names"] = name_row
    primary = cols.name[name_row]
    alternates: list[dict[str, Any]] = []
    seen = {primary.casefold()}
    for row in rows:
        for candidate in [
            {"value": cols.name[row], "language": None, "variant": "alternate"},
            *(cols.alternates[row] or []),
        ]:
            if candidate["value"].casefold() not in seen:
                seen.add(candidate["value"].casefold())
                alternates.append(candidate)

    category, category_voters, category_share = _vote(rows, weights, cols.category_known)
    if category is None:
        category, category_voters, category_share = _vote(rows, weights, cols.category)
    if category_voters:
        chosen["categories"] = category_voters[0]
    other_categories = sorted({c for r in rows if (c := cols.category[r]) and c != category})

    located = [r for r in rows if not math.isnan(cols.lat[r])]
    lat = lon = None
    location_confidence = 0.0
    if located:
        lat = _median([cols.lat[r] for r in located])
        lon = _median([cols.lon[r] for r in located])
        medoid = min(
            located, key=lambda r: ((cols.lat[r] - lat) ** 2 + (cols.lon[r] - lon) ** 2, rank[r])
        )
        chosen["geometry"] = medoid
        location_confidence = sum(weights[r] for r in located) / sum(weights.values())

    _, address_voters, address_share = _vote(rows, weights, cols.address_key)
    address = None
    if address_voters:
        address_row = max(
            address_voters, key=lambda r: (_completeness(cols.address[r]), weights[r], -rank[r])
        )
        address = cols.address[address_row]
        chosen["address"] = address_row

    phones, phone_share, phone_row = _union(rows, weights, cols.phones)
    websites, website_share, website_row = _union(rows, weights, cols.websites)
    emails, _, _ = _union(rows, weights, cols.emails)
    if phone_row is not None:
        chosen["phones"] = phone_row
    if website_row is not None:
        chosen["websites"] = website_row
    brand_key, brand_voters, _ = _vote(rows, weights, cols.brand_key)
    hours = next(
        (
            cols.opening_hours[r]
            for r in sorted(rows, key=lambda r: -weights[r])
            if cols.opening_hours[r]
        ),
        None,
    )
    status, _, _ = _vote(rows, weights, cols.status)
    stamps = [s for r in rows if (s := cols.update_time[r]) is not None]

    members = len(rows)
    strength = sum(best[r] for r in rows) / members
    distinct_sources = len({cols.source[r] for r in rows})
    confidence = (1 - 0.5 ** (distinct_sources + 1)) * strength
    sources = [
        {
            "property": "",
            "dataset": cols.source[r],
            "record_id": cols.id[r],
            "update_time": cols.update_time[r],
            "confidence": float(best[r]),
        }
        for r in rows
    ] + [
        {
            "property": f"/{prop}",
            "dataset": cols.source[r],
            "record_id": cols.id[r],
            "update_time": cols.update_time[r],
            "confidence": float(best[r]),
        }
        for prop, r in chosen.items()
    ]
    return {
        "id": place_id_for(cols.source[first], cols.id[first]),
        "names": {"primary": primary, "alternates": alternates or None},
        "categories": {"primary": category, "alternate": other_categories} if category else None,
        "lat": lat,
        "lon": lon,
        "address": address,
        "phones": phones or None,
        "websites": websites or None,
        "emails": emails or None,
        "brand": cols.brand[brand_voters[0]] if brand_key is not None else None,
        "opening_hours": hours,
        "operating_status": status,
        "update_time": max(stamps) if stamps else None,
        "confidence": round(confidence, 4),
        "attribute_confidence": {
            "name": round(name_share, 4),
            "category": round(category_share, 4),
            "location": round(location_confidence, 4),
            "address": round(address_share, 4),
            "phone": round(phone_share, 4),
            "website": round(website_share, 4),
        },
        "sources": sources,
        "members": members,
    }


def _address_key(address: dict[str, Any] | None) -> tuple[str, str] | None:
    if not address or not address.get("street"):
        return None
    return (str(address["street"]).casefold(), str(address.get("housenumber") or "").casefold())


def _completeness(address: dict[str, Any] | None) -> int:
    return sum(1 for v in (address or {}).values() if v)


def _union(
    rows: list[int], weights: dict[int, float], values: list[list[str] | None]
) -> tuple[list[str], float, int | None]:
    """Every value any member gives, most supported first; the first's share; who gave it."""
    support: dict[str, float] = defaultdict(float)
    giver: dict[str, int] = {}
    for row in rows:
        for value in values[row] or []:
            support[value] += weights[row]
            giver.setdefault(value, row)
    if not support:
        return [], 0.0, None
    ordered = sorted(support, key=lambda v: (-support[v], v))
    having = sum(weights[r] for r in rows if values[r])
    return ordered, support[ordered[0]] / having, giver[ordered[0]]
