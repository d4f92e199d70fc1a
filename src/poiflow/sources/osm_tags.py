"""OpenStreetMap tags as a source record's fields.

Read from an extract's objects (``OsmSource``) and from tables whose columns are OSM tags
(an Overpass export's GeoJSON, All the Places' feeds, ``amenity``/``addr:street`` columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.errors import SchemaMismatchError
from poiflow.schema import (
    ADDRESS_FIELDS,
    ADDRESS_TYPE,
    ALTERNATE_NAME_TYPE,
    BRAND_TYPE,
    CATEGORIES_TYPE,
    NAMES_TYPE,
    SOURCE_RECORD_SCHEMA,
)
from poiflow.sources.base import records_table, spread
from poiflow.sources.text import as_text, read_number, read_time

__all__ = [
    "OSM_KEY_PRIORITY",
    "TAGGED_CONSTANTS",
    "TagRows",
    "looks_tagged",
    "tag_columns",
    "tagged_records",
]

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


# The columns of a table of tags that give a field besides those of ``_ROLES``: names in
# other languages and lifecycle prefixes.
_OTHER_KEPT: Final = ("name:", *_CLOSED_LIFECYCLE)
# Each key of ``_ROLES`` by a number, then three for the others.
_CODE_OF: Final = {key: code for code, key in enumerate(_ROLES)}
_COMMON: Final = len(_ROLES)  # name:xx
_CLOSED: Final = _COMMON + 1  # disused:shop, ...
_IGNORED: Final = _COMMON + 2  # "name:" with no language, and tags that give no field


def _codes_of(role: str) -> tuple[int, ...]:
    return tuple(code for key, code in _CODE_OF.items() if _ROLES[key][0] == role)


_ADDRESS_CODES: Final = {
    part: tuple(_CODE_OF[key] for key, field in _ADDRESS_TAGS.items() if field == part)
    for part in ADDRESS_FIELDS
}
_VARIANT_CODES: Final = _codes_of("variant")
_PHONE_CODES: Final = _codes_of("phone")
_WEBSITE_CODES: Final = _codes_of("website")
_EMAIL_CODES: Final = _codes_of("email")


def looks_tagged(columns: Iterable[str]) -> bool:
    """Whether a table's columns are OpenStreetMap tags (``amenity``, ``addr:street``, ...)
    rather than the flat place format."""
    return any(column in OSM_KEY_PRIORITY or column.startswith(_TAG_PREFIXES) for column in columns)


class TagRows:
    """The tags of a batch of records as they are read, record after record, for
    ``tag_columns``."""

    __slots__ = ("counts", "pairs")

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []
        self.counts: list[int] = []

    def add(self, tags: Iterable[tuple[str, str]]) -> None:
        """Add the next record's tags, as ``(key, value)`` pairs."""
        before = len(self.pairs)
        self.pairs.extend(tags)  # every tag: ``tag_columns`` passes over those it ignores
        self.counts.append(len(self.pairs) - before)

    def columns(self) -> dict[str, pa.Array]:
        """The fields of the records (see ``tag_columns``)."""
        count = len(self.counts)
        rows = np.repeat(np.arange(count, dtype=np.int64), self.counts)
        keys = list(map(itemgetter(0), self.pairs))
        values = list(map(itemgetter(1), self.pairs))
        return tag_columns(rows, keys, values, count)


def tag_columns(
    rows: np.ndarray, keys: Sequence[str], values: Sequence[str], count: int
) -> dict[str, pa.Array]:
    """The fields of ``count`` source records that their tags give, column by column:
    ``names``, ``categories`` (``amenity=cafe``, in ``OSM_KEY_PRIORITY`` order; a value
    ``a;b`` is two), ``source_category``, ``address``, ``phones``, ``websites``, ``emails``,
    ``brand``, ``opening_hours`` and ``operating_status`` (permanently closed where only a
    lifecycle prefix, ``disused:shop``, says what it was).

    The tags are in long form: tag ``i`` is ``keys[i]=values[i]`` of record ``rows[i]``;
    ``rows`` rises, and a record's tags are in its own order. Where a key gives one value,
    the last tag of it counts (an address part: the first of its keys, so ``addr:street``
    before ``addr:place`` when it comes first); lists keep every value in tag order.
    """
    # Each distinct key is looked up once.
    encoded = pa.array(keys, pa.string()).dictionary_encode()
    known = np.fromiter(
        (_code_of(key) for key in encoded.dictionary.to_pylist()), np.int16, len(encoded.dictionary)
    )
    codes = known[encoded.indices.to_numpy(zero_copy_only=False)] if len(keys) else known[:0]
    return _tag_columns(rows, codes, keys, values, count)


def _code_of(key: str) -> int:
    """The number ``tag_columns`` knows a tag's key by."""
    code = _CODE_OF.get(key)
    if code is not None:
        return code
    if key.startswith("name:") and len(key) > 5:
        return _COMMON
    return _CLOSED if key.startswith(_CLOSED_LIFECYCLE) else _IGNORED


def _tag_columns(
    rows: np.ndarray, codes: np.ndarray, keys: Sequence[str], values: Sequence[str], count: int
) -> dict[str, pa.Array]:
    text = pa.array(values, pa.string()) if len(values) else pa.array([], pa.string())

    def last(*wanted: int, first: bool = False) -> pa.Array:
        at = _pick(rows, np.isin(codes, wanted), first=first)
        return spread(count, rows[at], text.take(at))

    def every(*wanted: int) -> pa.Array:
        at = np.flatnonzero(np.isin(codes, wanted))
        return _grouped(count, rows[at], text.take(at))

    primary, alternate = _labels(rows, codes, values, count)
    closed = np.zeros(count, dtype=bool)
    closed[rows[codes == _CLOSED]] = True
    labelled = ~np.asarray(primary.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    status = np.where(closed & ~labelled, "permanently_closed", "open")
    address_parts = [last(*_ADDRESS_CODES[part], first=True) for part in ADDRESS_FIELDS]
    brand_parts = [last(_CODE_OF["brand"]), last(_CODE_OF["brand:wikidata"])]
    return {
        "names": pa.StructArray.from_arrays(
            [last(_CODE_OF["name"]), _alternates(rows, codes, keys, values, count)],
            fields=list(NAMES_TYPE),
        ),
        "categories": pa.StructArray.from_arrays(
            [primary, alternate], fields=list(CATEGORIES_TYPE), mask=pa.array(~labelled)
        ),
        "source_category": primary,
        "address": _struct(address_parts, ADDRESS_TYPE),
        "phones": every(*_PHONE_CODES),
        "websites": every(*_WEBSITE_CODES),
        "emails": every(*_EMAIL_CODES),
        "brand": _struct(brand_parts, BRAND_TYPE),
        "opening_hours": last(_CODE_OF["opening_hours"]),
        "operating_status": pa.array(status, pa.string()),
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
    count = raw.num_rows
    # Only the tags that give a field are read (an Overpass export has hundreds of keys).
    used = [
        column
        for column in raw.column_names
        if column not in _META_COLUMNS and (column in _ROLES or column.startswith(_OTHER_KEPT))
    ]
    owners: list[np.ndarray] = []
    places: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    keys: list[str] = []
    values: list[str] = []
    given: dict[str, np.ndarray] = {}

    def add(key: str, found: np.ndarray, texts: list[str]) -> None:
        places.append(np.full(len(found), len(owners)))
        owners.append(found)
        codes.append(np.full(len(found), _code_of(key), dtype=np.int16))
        keys.extend([key] * len(found))
        values.extend(texts)

    for column in used:
        found, texts = _given(raw.column(column))
        given[column] = found
        add(column, found, texts)
    # A constant comes after a row's own tags, where the row lacks its tag.
    for field, value in constants.items():
        key = TAGGED_CONSTANTS[field]
        lacking = np.ones(count, dtype=bool)
        lacking[given.get(key, np.zeros(0, np.int64))] = False
        found = np.flatnonzero(lacking)
        add(key, found, [value] * len(found))
    if owners:
        rows = np.concatenate(owners)
        order = np.lexsort((np.concatenate(places), rows))
        fields = _tag_columns(
            rows[order],
            np.concatenate(codes)[order],
            [keys[i] for i in order],
            [values[i] for i in order],
            count,
        )
    else:
        fields = tag_columns(np.zeros(0, np.int64), [], [], count)
    return records_table(fields | _own_fields(raw, origins, source))


def _own_fields(raw: pa.Table, origins: Sequence[str], source: str) -> dict[str, pa.Array]:
    """The fields of a table of tags that are the record's own, not tags: ``source``,
    ``id``, ``lat``, ``lon``, ``update_time``, ``origin`` and the ``issues`` of reading
    them. Each is the first of its names (``id``, ``@id``, ``::id``) that a row has."""
    count = raw.num_rows
    meta: dict[str, list[str | None]] = {}
    for field, names in _META.items():
        first: list[str | None] = [None] * count
        for name in names:
            if name in raw.column_names:
                found, texts = _given(raw.column(name))
                for row, text in zip(found.tolist(), texts, strict=True):
                    if first[row] is None:
                        first[row] = text
        meta[field] = first
    own: dict[str, list[Any]] = {"lat": [], "lon": [], "update_time": [], "issues": []}
    for lat, lon, time in zip(meta["lat"], meta["lon"], meta["update_time"], strict=True):
        issues: list[str] = []
        own["lat"].append(read_number("lat", lat, issues))
        own["lon"].append(read_number("lon", lon, issues))
        own["update_time"].append(read_time(time, issues))
        own["issues"].append(issues or None)
    own["source"] = [value or source for value in meta["source"]]
    own["id"] = meta["id"]
    own["origin"] = list(origins)
    return {field: pa.array(own[field], SOURCE_RECORD_SCHEMA.field(field).type) for field in own}


def _given(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """The rows where a column has a value that is not blank, and those values, trimmed."""
    valid = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
    rows: list[int] = []
    texts: list[str] = []
    for row, value in zip(valid.tolist(), _texts(column.take(valid)), strict=True):
        if value is not None and (text := value.strip()):
            rows.append(row)
            texts.append(text)
    return np.asarray(rows, dtype=np.int64), texts


def _pick(rows: np.ndarray, mask: np.ndarray, *, first: bool) -> np.ndarray:
    """The position of each record's first (or last) tag among those ``mask`` marks."""
    at = np.flatnonzero(mask)
    if len(at) < 2:
        return at
    of = rows[at]
    change = of[1:] != of[:-1]
    return at[np.concatenate(([True], change)) if first else np.concatenate((change, [True]))]


def _grouped(count: int, owners: np.ndarray, items: pa.Array) -> pa.Array:
    """``count`` lists: each record's items (``owners`` rising, items in order), null for a
    record without any."""
    starts = (
        np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
        if len(owners)
        else np.zeros(0, np.int64)
    )
    offsets = pa.array(np.append(starts, len(owners)).astype(np.int32))
    return spread(count, owners[starts], pa.ListArray.from_arrays(offsets, items))


def _struct(parts: list[pa.Array], kind: pa.StructType) -> pa.Array:
    """A struct of ``parts``, null where every part is."""
    absent = np.ones(len(parts[0]), dtype=bool)
    for part in parts:
        absent &= part.is_null().to_numpy(zero_copy_only=False)
    return pa.StructArray.from_arrays(parts, fields=list(kind), mask=pa.array(absent))


def _labels(
    rows: np.ndarray, codes: np.ndarray, values: Sequence[str], count: int
) -> tuple[pa.Array, pa.Array]:
    """Each record's first category label, and its others (``key=part``: by key in
    ``OSM_KEY_PRIORITY`` order, a key's last value, its ``;`` parts in order)."""
    owners: list[int] = []
    labels: list[str] = []
    made: dict[tuple[str, str], list[str]] = {}
    for key in OSM_KEY_PRIORITY:
        at = _pick(rows, codes == _CODE_OF[key], first=False)
        for row, i in zip(rows[at].tolist(), at.tolist(), strict=True):
            value = values[i]
            parts = made.get((key, value))
            if parts is None:
                parts = made[key, value] = [
                    f"{key}={part.strip()}" for part in value.split(";") if part.strip()
                ]
            owners += [row] * len(parts)
            labels += parts
    mine = np.asarray(owners, dtype=np.int64)
    order = np.argsort(mine, kind="stable")
    lists = _grouped(count, mine[order], pa.array(labels, pa.string()).take(order))
    return pc.list_element(lists, 0), pc.list_slice(lists, 1)


def _alternates(
    rows: np.ndarray, codes: np.ndarray, keys: Sequence[str], values: Sequence[str], count: int
) -> pa.Array:
    """Each record's other names in tag order: ``name:xx`` as the name in language ``xx``,
    ``alt_name``/``short_name``/... as variants (each ``;`` part one)."""
    owners: list[int] = []
    texts: list[str] = []
    languages: list[str | None] = []
    variants: list[str] = []
    at = np.flatnonzero((codes == _COMMON) | np.isin(codes, _VARIANT_CODES))
    for row, i, code in zip(rows[at].tolist(), at.tolist(), codes[at].tolist(), strict=True):
        if code == _COMMON:
            owners.append(row)
            texts.append(values[i])
            languages.append(keys[i][5:])
            variants.append("common")
            continue
        for part in values[i].split(";"):
            if part := part.strip():
                owners.append(row)
                texts.append(part)
                languages.append(None)
                variants.append(_ROLES[keys[i]][1])
    items = pa.StructArray.from_arrays(
        [
            pa.array(texts, pa.string()),
            pa.array(languages, pa.string()),
            pa.array(variants, pa.string()),
        ],
        fields=list(ALTERNATE_NAME_TYPE),
    )
    return _grouped(count, np.asarray(owners, dtype=np.int64), items)


def _texts(column: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """A column's values as text (numbers as Python writes them, nested values as JSON)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pylist()  # type: ignore[no-any-return]
    return [as_text(value) for value in column.to_pylist()]
