"""Arrow schemas of every table that crosses a stage boundary.

The place model follows the Overture Maps places schema (names with a primary and
alternates, categories with a primary and alternates in one taxonomy, addresses, phones,
websites, emails, brand, operating status, sources), flattened where that makes the
columnar work simpler: one address per record and the point as ``lat``/``lon`` (the
GeoParquet writer adds a WKB ``geometry`` column).

Tables:

``SOURCE_RECORD_SCHEMA``
    What every source yields: one row per input object, values as the source gave them
    (trimmed), ``origin`` says where the row came from and ``issues`` lists what the source
    could not parse (an unparsable latitude, say), for validation to act on.
``PLACE_SCHEMA``
    A validated, normalized record: display values in canonical form (phones in E.164,
    websites as canonical URLs, categories in poiflow's taxonomy, ISO country codes) and
    ``keys``, the folded forms that blocking and matching compare.
``CANDIDATE_SCHEMA``, ``PAIR_KEY_FIELDS``, ``MEMBERSHIP_SCHEMA``, ``GOLDEN_PLACE_SCHEMA``
    What conflation passes on: candidate pairs (rows of the records table), scored pairs,
    each record's place, and the golden places with their provenance (Overture's
    ``sources``) and confidence.
``QUARANTINE_SCHEMA``
    What validation held back: whole records (``scope == "record"``) or single field values
    (``scope == "field"``, the record itself went on), each with the reason and the
    original values as JSON.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

__all__ = [
    "ADDRESS_FIELDS",
    "ADDRESS_TYPE",
    "ALTERNATE_NAME_TYPE",
    "ATTRIBUTE_CONFIDENCE_TYPE",
    "BRAND_TYPE",
    "CANDIDATE_SCHEMA",
    "CATEGORIES_TYPE",
    "CHANGES_SCHEMA",
    "FLAT_EXTRA_FIELDS",
    "FLAT_FIELDS",
    "GOLDEN_PLACE_SCHEMA",
    "KEYS_TYPE",
    "MEMBERSHIP_SCHEMA",
    "NAMES_TYPE",
    "OPERATING_STATUSES",
    "PAIR_KEY_FIELDS",
    "PAIR_RECORD_KEYS",
    "PAIR_SCORE_COLUMNS",
    "PLACE_ATTRIBUTE_NAMES",
    "PLACE_SCHEMA",
    "POINT_FIELD",
    "QUARANTINE_SCHEMA",
    "SOURCE_RECORD_SCHEMA",
    "SOURCE_REF_TYPE",
    "UNKNOWN_CATEGORY",
    "empty_table",
]

ADDRESS_FIELDS: Final = (
    "freeform",
    "street",
    "housenumber",
    "unit",
    "postcode",
    "locality",
    "region",
    "country",
)
"""The parts of an address, in the order of ``ADDRESS_TYPE``; ``country`` is ISO 3166-1 alpha-2."""

ADDRESS_TYPE: Final = pa.struct([pa.field(name, pa.string()) for name in ADDRESS_FIELDS])

ALTERNATE_NAME_TYPE: Final = pa.struct(
    [
        pa.field("value", pa.string(), nullable=False),
        # BCP-47-ish language code ("fi", "sv", "zh-Hant"); null when the name has none.
        pa.field("language", pa.string()),
        # Why the alternate exists: "common" (a translation), "alternate", "short",
        # "official", "old".
        pa.field("variant", pa.string()),
    ]
)

NAMES_TYPE: Final = pa.struct(
    [
        pa.field("primary", pa.string()),
        pa.field("alternates", pa.list_(ALTERNATE_NAME_TYPE)),
    ]
)

CATEGORIES_TYPE: Final = pa.struct(
    [
        pa.field("primary", pa.string()),
        pa.field("alternate", pa.list_(pa.string())),
    ]
)

BRAND_TYPE: Final = pa.struct([pa.field("name", pa.string()), pa.field("wikidata", pa.string())])

OPERATING_STATUSES: Final = ("open", "temporarily_closed", "permanently_closed")

KEYS_TYPE: Final = pa.struct(
    [
        # Folded primary name: casefolded, transliterated, legal forms dropped,
        # abbreviations expanded.
        pa.field("name", pa.string()),
        pa.field("name_alternates", pa.list_(pa.string())),
        pa.field("brand", pa.string()),
        # Registrable domains of the websites ("example.co.uk").
        pa.field("domains", pa.list_(pa.string())),
        # Folded street with street types spelled out ("mannerheimintie", "main street").
        pa.field("street", pa.string()),
        pa.field("housenumber", pa.string()),
        pa.field("postcode", pa.string()),
        pa.field("locality", pa.string()),
    ]
)

# What a place is, whoever describes it: shared by source records and golden places.
_PLACE_ATTRIBUTES: Final = [
    pa.field("names", NAMES_TYPE),
    pa.field("categories", CATEGORIES_TYPE),
    pa.field("lat", pa.float64()),
    pa.field("lon", pa.float64()),
    pa.field("address", ADDRESS_TYPE),
    pa.field("phones", pa.list_(pa.string())),
    pa.field("websites", pa.list_(pa.string())),
    pa.field("emails", pa.list_(pa.string())),
    pa.field("brand", BRAND_TYPE),
    pa.field("opening_hours", pa.string()),
    pa.field("operating_status", pa.string()),
    pa.field("update_time", pa.timestamp("ms", tz="UTC")),
]

PLACE_ATTRIBUTE_NAMES: Final = tuple(f.name for f in _PLACE_ATTRIBUTES)
"""The attributes of a place, in schema order: what records and golden places share."""

_COMMON_FIELDS: Final = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    *_PLACE_ATTRIBUTES,
    # The category as the source spelled it ("amenity=cafe", "Coffee & Tea"), kept for audits.
    pa.field("source_category", pa.string()),
    # Where the record came from: "feed.csv:12", "node/123", "places.parquet#row=7".
    pa.field("origin", pa.string()),
]

SOURCE_RECORD_SCHEMA: Final = pa.schema(
    [*_COMMON_FIELDS, pa.field("issues", pa.list_(pa.string()))],
    metadata={"poiflow.table": "source_records"},
)

PLACE_SCHEMA: Final = pa.schema(
    [*_COMMON_FIELDS, pa.field("keys", KEYS_TYPE)],
    metadata={"poiflow.table": "places"},
)

QUARANTINE_SCHEMA: Final = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("origin", pa.string()),
        # "record": the whole record was held back; "field": one value was, the record went on.
        pa.field("scope", pa.string(), nullable=False),
        pa.field("field", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        # The original values, as JSON, so nothing is lost.
        pa.field("original", pa.string()),
    ],
    metadata={"poiflow.table": "quarantine"},
)
# The quarantine's ``field`` of a record's point withheld (the record went on without it).
POINT_FIELD: Final = "lat, lon"
# The quarantine's ``reason`` of a category label the taxonomy does not know.
UNKNOWN_CATEGORY: Final = "not in the taxonomy"

CANDIDATE_SCHEMA: Final = pa.schema(
    [
        # Rows of the records table, left < right.
        pa.field("left", pa.int64(), nullable=False),
        pa.field("right", pa.int64(), nullable=False),
        # Which blocking keys proposed the pair, as a bit set (see conflate.keys.KEYS).
        pa.field("keys", pa.int32(), nullable=False),
    ],
    metadata={"poiflow.table": "candidate_pairs"},
)

PAIR_KEY_FIELDS: Final = (
    pa.field("left_source", pa.string(), nullable=False),
    pa.field("left_id", pa.string(), nullable=False),
    pa.field("right_source", pa.string(), nullable=False),
    pa.field("right_id", pa.string(), nullable=False),
    pa.field("match_probability", pa.float32(), nullable=False),
)
"""The first columns of ``pairs.parquet``; the features that drove each score follow."""
PAIR_RECORD_KEYS: Final = tuple(f.name for f in PAIR_KEY_FIELDS[:4])
"""The columns of ``pairs.parquet`` that name a pair's two records (source and id each)."""
PAIR_SCORE_COLUMNS: Final = tuple(f.name for f in PAIR_KEY_FIELDS)
"""The two records' keys and the match probability: a pair without its features."""

MEMBERSHIP_SCHEMA: Final = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("place_id", pa.string(), nullable=False),
    ],
    metadata={"poiflow.table": "membership"},
)

SOURCE_REF_TYPE: Final = pa.struct(
    [
        # The attribute this reference backs ("" for the place as a whole), as in Overture.
        pa.field("property", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("record_id", pa.string()),
        pa.field("update_time", pa.timestamp("ms", tz="UTC")),
        pa.field("confidence", pa.float32()),
    ]
)

ATTRIBUTE_CONFIDENCE_TYPE: Final = pa.struct(
    [
        pa.field(name, pa.float32())
        for name in ("name", "category", "location", "address", "phone", "website")
    ]
)

GOLDEN_PLACE_SCHEMA: Final = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        *_PLACE_ATTRIBUTES,
        # How sure poiflow is that the place is one real place, well described (0 to 1).
        pa.field("confidence", pa.float32()),
        pa.field("attribute_confidence", ATTRIBUTE_CONFIDENCE_TYPE),
        # Every contributing record, and which record each chosen attribute came from.
        pa.field("sources", pa.list_(SOURCE_REF_TYPE)),
        pa.field("members", pa.int32()),
    ],
    metadata={"poiflow.table": "golden_places"},
)

CHANGES_SCHEMA: Final = pa.schema(
    [
        pa.field("place_id", pa.string(), nullable=False),
        # created | merged | split | updated | removed
        pa.field("change", pa.string(), nullable=False),
        # For updated (and merged/split) places: which attributes differ from before.
        pa.field("attributes", pa.list_(pa.string())),
        # merged: the previous places taken in (or, for a removed one, where it went);
        # split: the places that took the records.
        pa.field("related", pa.list_(pa.string())),
    ],
    metadata={"poiflow.table": "changes"},
)

FLAT_FIELDS: Final = (
    "source",
    "id",
    "name",
    "lat",
    "lon",
    "category",
    "street",
    "housenumber",
    "postcode",
    "city",
    "country",
    "phone",
    "website",
    "address",
)
"""Columns of the flat place format; all optional but ``id`` and ``name``."""

FLAT_EXTRA_FIELDS: Final = (
    "unit",
    "region",
    "email",
    "brand",
    "opening_hours",
    "operating_status",
    "update_time",
)
"""Further optional columns a flat file or a mapping may fill."""


def empty_table(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema``, for stages that have nothing to pass on."""
    return schema.empty_table()
