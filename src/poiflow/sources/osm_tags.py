"""OpenStreetMap tags as a source record's fields.

Read from an extract's objects (``OsmSource``) and from tables whose columns are OSM tags
(an Overpass export's GeoJSON, All the Places' feeds, ``amenity``/``addr:street`` columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from poiflow.errors import SchemaMismatchError
from poiflow.schema import SOURCE_RECORD_SCHEMA
from poiflow.sources.text import as_text, read_number, read_time

__all__ = ["OSM_KEY_PRIORITY", "TAGGED_CONSTANTS", "looks_tagged", "tag_fields", "tagged_records"]

OSM_KEY_PRIORITY: Final = (
    "amenity",
    "shop",
    "tourism",
    "leisure",
    "healthcare",
    "office",
    "craft",
    "aeroway",
    "railway",
    "public_transport",
)
"""The order in which tags decide a record's primary category."""

_ADDRESS_TAGS: Final = {
    "addr:street": "street",
    "addr:place": "street",
    "addr:housenumber": "housenumber",
    "addr:unit": "unit",
    "addr:flats": "unit",
    "addr:door": "unit",
    "addr:postcode": "postcode",
    "addr:city": "locality",
    "addr:state": "region",
    "addr:province": "region",
    "addr:country": "country",
    "addr:full": "freeform",
    # All the Places' street line ("4200 South Congress Ave"), read as Overture's freeform.
    "addr:street_address": "freeform",
}
_PHONE_TAGS: Final = ("phone", "contact:phone", "contact:mobile", "mobile")
_WEBSITE_TAGS: Final = ("website", "contact:website", "url")
_EMAIL_TAGS: Final = ("email", "contact:email")
_NAME_VARIANTS: Final = {
    "alt_name": "alternate",
    "short_name": "short",
    "official_name": "official",
    "old_name": "old",
    "loc_name": "alternate",
}
_CLOSED_LIFECYCLE: Final = ("disused:", "abandoned:", "was:")
# What each tag that matters is for: (role, field).
_ROLES: Final[dict[str, tuple[str, str]]] = {
    "name": ("name", "primary"),
    "opening_hours": ("opening_hours", "opening_hours"),
    "brand": ("brand", "name"),
    "brand:wikidata": ("brand", "wikidata"),
    **{key: ("category", key) for key in OSM_KEY_PRIORITY},
    **{key: ("address", part) for key, part in _ADDRESS_TAGS.items()},
    **{key: ("variant", variant) for key, variant in _NAME_VARIANTS.items()},
    **{key: ("phone", key) for key in _PHONE_TAGS},
    **{key: ("website", key) for key in _WEBSITE_TAGS},
    **{key: ("email", key) for key in _EMAIL_TAGS},
}
# Columns that say a table holds OSM tags: no flat place file has them.
_TAG_PREFIXES: Final = ("addr:", "contact:", "brand:", "name:")
# A table of tags names a record's own fields as exports of OSM data do: a flat field's
# name, Overpass's GeoJSON ("@id") and its CSV ("::id").
_META: Final = {
    "id": ("id", "@id", "::id"),
    "lat": ("lat", "@lat", "::lat"),
    "lon": ("lon", "@lon", "::lon"),
    "update_time": ("update_time", "@timestamp", "::timestamp", "timestamp"),
    "source": ("source",),
}
_META_COLUMNS: Final = frozenset(column for names in _META.values() for column in names)
TAGGED_CONSTANTS: Final = {
    "name": "name",
    "street": "addr:street",
    "housenumber": "addr:housenumber",
    "unit": "addr:unit",
    "postcode": "addr:postcode",
    "city": "addr:city",
    "region": "addr:state",
    "country": "addr:country",
    "phone": "phone",
    "website": "website",
    "email": "email",
    "brand": "brand",
    "opening_hours": "opening_hours",
}
"""The mapping constants a table of tags takes: flat field -> the tag it stands for where a
row lacks it."""


def looks_tagged(columns: Iterable[str]) -> bool:
    """Whether a table's columns are OpenStreetMap tags (``amenity``, ``addr:street``, ...)
    rather than the flat place format."""
    return any(column in OSM_KEY_PRIORITY or column.startswith(_TAG_PREFIXES) for column in columns)


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


def tagged_records(
    raw: pa.Table, origins: Sequence[str], source: str, constants: Mapping[str, str]
) -> pa.Table:
    """Source records (``SOURCE_RECORD_SCHEMA``) of a table whose columns are OSM tags.

    ``id``, ``lat``, ``lon``, ``update_time`` and ``source`` are read as the record's own
    (also as ``@id``, ``::lat``, ``@timestamp``, ...); every other column is a tag, and a
    row's empty ones are not. ``constants`` (flat fields, ``TAGGED_CONSTANTS``) stand in
    for tags a row lacks.

    Raises:
        SchemaMismatchError: A constant is for a field that no tag gives.
    """
    unknown = sorted(set(constants) - set(TAGGED_CONSTANTS))
    if unknown:
        raise SchemaMismatchError(
            f"a table of OpenStreetMap tags takes constants for {', '.join(TAGGED_CONSTANTS)}; "
            f"not for {', '.join(unknown)}"
        )
    fallback = [(TAGGED_CONSTANTS[field], value) for field, value in constants.items()]
    # Only the tags that give a field are read (an Overpass export has hundreds of keys).
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


def _texts(column: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """A column's values as text (numbers as Python writes them, nested values as JSON)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pylist()  # type: ignore[no-any-return]
    return [as_text(value) for value in column.to_pylist()]


def _first(columns: list[list[str | None]], row: int) -> str | None:
    """The first of a row's values in ``columns`` that is not empty, trimmed."""
    for values in columns:
        value = values[row]
        if value is not None and value.strip():
            return value.strip()
    return None
