"""OpenStreetMap tags read as they were, one record at a time in Python: the reference that
the column-wise readers (``tag_columns``, ``tagged_records``) are held to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from poiflow.schema import SOURCE_RECORD_SCHEMA
from poiflow.sources.osm_tags import (
    _CLOSED_LIFECYCLE,
    _META,
    _META_COLUMNS,
    _ROLES,
    OSM_KEY_PRIORITY,
    TAGGED_CONSTANTS,
    _texts,
)
from poiflow.sources.text import read_number, read_time


def tag_fields(tags: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The fields of a source record that an object's tags give: ``names``,
    ``categories`` (``amenity=cafe``, in ``OSM_KEY_PRIORITY`` order), ``source_category``,
    ``address``, ``phones``, ``websites``, ``emails``, ``brand``, ``opening_hours`` and
    ``operating_status`` (permanently closed where only a lifecycle prefix,
    ``disused:shop``, says what it was)."""
    # One pass over the tags, each sorted by its role (iterating tags is the costly part).
    name = None
    category_tags: dict[str, str] = {}
    address: dict[str, str] = {}
    alternates: list[dict[str, str | None]] = []
    phones: list[str] = []
    websites: list[str] = []
    emails: list[str] = []
    brand: dict[str, str | None] = {}
    opening_hours = None
    closed = False
    for key, value in tags:
        role = _ROLES.get(key)
        if role is None:
            if key.startswith("name:") and len(key) > 5:
                alternates.append({"value": value, "language": key[5:], "variant": "common"})
            elif key.startswith(_CLOSED_LIFECYCLE):
                closed = True
            continue
        kind_of, field = role
        if kind_of == "name":
            name = value
        elif kind_of == "category":
            category_tags[key] = value
        elif kind_of == "address":
            address.setdefault(field, value)
        elif kind_of == "variant":
            alternates.extend(
                {"value": part.strip(), "language": None, "variant": field}
                for part in value.split(";")
                if part.strip()
            )
        elif kind_of == "phone":
            phones.append(value)
        elif kind_of == "website":
            websites.append(value)
        elif kind_of == "email":
            emails.append(value)
        elif kind_of == "brand":
            brand[field] = value
        else:
            opening_hours = value
    labels = [
        f"{key}={part.strip()}"
        for key in OSM_KEY_PRIORITY
        if key in category_tags
        for part in category_tags[key].split(";")
        if part.strip()
    ]
    status = "permanently_closed" if closed and not labels else "open"
    return {
        "names": {"primary": name, "alternates": alternates or None},
        "categories": {"primary": labels[0], "alternate": labels[1:]} if labels else None,
        "source_category": labels[0] if labels else None,
        "address": address or None,
        "phones": phones or None,
        "websites": websites or None,
        "emails": emails or None,
        "brand": brand or None,
        "opening_hours": opening_hours,
        "operating_status": status,
    }


def reference_tagged_records(
    raw: pa.Table, origins: Sequence[str], source: str, constants: Mapping[str, str]
) -> pa.Table:
    fallback = [(TAGGED_CONSTANTS[field], value) for field, value in constants.items()]
    used = [
        column
        for column in raw.column_names
        if column not in _META_COLUMNS
        and (column in _ROLES or column.startswith(("name:", *_CLOSED_LIFECYCLE)))
    ]
    tag_values = [(column, _texts(raw.column(column))) for column in used]
    meta_values = {
        field: [_texts(raw.column(name)) for name in names if name in raw.column_names]
        for field, names in _META.items()
    }
    rows = []
    for i, origin in enumerate(origins):
        issues: list[str] = []
        tags = {
            column: value.strip()
            for column, values in tag_values
            if (value := values[i]) is not None and value.strip()
        }
        tags |= {key: value for key, value in fallback if key not in tags}
        meta = {field: _first(columns, i) for field, columns in meta_values.items()}
        rows.append(
            {
                **tag_fields(tags.items()),
                "source": meta["source"] or source,
                "id": meta["id"],
                "lat": read_number("lat", meta["lat"], issues),
                "lon": read_number("lon", meta["lon"], issues),
                "update_time": read_time(meta["update_time"], issues),
                "origin": origin,
                "issues": issues or None,
            }
        )
    return pa.Table.from_pylist(rows, schema=SOURCE_RECORD_SCHEMA)


def _first(columns: list[list[str | None]], row: int) -> str | None:
    """The first of a row's values in ``columns`` that is not empty, trimmed."""
    for values in columns:
        value = values[row]
        if value is not None and value.strip():
            return value.strip()
    return None
