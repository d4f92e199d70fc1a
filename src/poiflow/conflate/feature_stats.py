"""What pair features read of all the records, beyond the two of a pair: counts summed
over batches and shards (:func:`feature_counts`), and the statistics made of their sum
(:class:`FeatureStats`): how common each name is, in all and in each area, and each
word; which pages and phones a source gives to many records, and which sources round
their points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import h3.api.basic_int as h3  # the cells polars_h3 gives, one at a time (area_key)
import polars as pl
import polars_h3 as plh3
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.conflate.pages import record_pages
from poiflow.conflate.rounding import rounding_counts, rounding_of

__all__ = [
    "AREA_RESOLUTION",
    "FEATURE_COUNTS_SCHEMA",
    "SHARED_PHONE",
    "FeatureStats",
    "area_key",
    "feature_counts",
    "feature_counts_with",
    "feature_stats",
    "name_area_keys",
    "shared_pages",
    "shared_phones",
    "word_counts",
]


@dataclass(frozen=True, slots=True)
class FeatureStats:
    """What features read of all the records: how many carry each folded name (a chain's
    name is weak evidence) and each word of it (a word's IDF weight), which web pages
    some source gives to more than one of its records (a chain's store finder, not a
    branch's own page), and which phones some source gives to several (a chain's call
    centre, or a placeholder, not a branch's own number)."""

    records: int
    names: pl.DataFrame  # "name", "records"
    words: pl.DataFrame  # "word", "records"
    shared_pages: frozenset[str]
    shared_phones: frozenset[str]  # that a source gives to SHARED_PHONE or more records
    # The sources that round their points to a kilometre, and by how much (metres).
    rounding: Mapping[str, float] = field(default_factory=dict)
    # How many records of a source carry each name in each area ("area":
    # :func:`name_area_keys`).
    areas: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"area": pl.String, "records": pl.Int64})
    )


# The H3 resolution of the area a name's commonness is counted in (~1,800 km^2: a city
# and its suburbs). Counted in all the data, a name grows commoner with the data itself: an
# independent place's name that a town has once is seen as often as a chain's in a
# country. In its area, in one source, a chain is common and the independent place rare,
# at any scale and with any number of sources.
AREA_RESOLUTION: Final = 4

# A phone that one source gives to this many of its records or more is no branch's own.
# (Two may be one place listed twice: a source's duplicates share their phone.)
SHARED_PHONE: Final = 3

FEATURE_COUNTS_SCHEMA: Final = pa.schema(
    [
        pa.field("what", pa.string()),  # "records", "name", "word", "page" or "phone"
        pa.field("value", pa.string()),
        pa.field("count", pa.int64()),
    ]
)


def feature_counts(records: pa.Table) -> pa.Table:
    """The counts (``FEATURE_COUNTS_SCHEMA``) of a batch of records that features depend
    on; the counts of several batches add up (sum ``count`` by ``what`` and ``value``)."""
    return feature_counts_with(records, record_pages(records))


def feature_counts_with(
    records: pa.Table, pages: pl.DataFrame, areas: pl.Series | None = None
) -> pa.Table:
    """:func:`feature_counts` of records whose web pages (``record_pages``) are known, and
    their names in their areas (``name_area_keys``) where given."""
    names = pl.DataFrame(
        {"name": pc.fill_null(pc.struct_field(records.column("keys"), "name"), "")},
        schema={"name": pl.String},
    )
    by_name = names.group_by("name").len()
    words = _words_of(by_name)
    by_area = (
        pl.DataFrame(
            {"area": name_area_keys(records) if areas is None else areas},
            schema={"area": pl.String},
        )
        .drop_nulls()
        .group_by("area")
        .len()
    )
    # Pages and phones by source: a page that one source gives to several records (a
    # store finder) is no branch's own, nor is a phone it gives to many (a call centre).
    source = pl.Series(records.column("source").combine_chunks(), dtype=pl.String)
    phones = records.column("phones").combine_chunks()
    listed = pl.DataFrame(
        {"row": pc.list_parent_indices(phones).to_numpy(), "phone": pc.list_flatten(phones)},
        schema={"row": pl.Int64, "phone": pl.String},
    )
    by_page = _by_source(source, pages.rename({"page": "value"}))
    by_phone = _by_source(source, listed.drop_nulls().unique().rename({"phone": "value"}))
    frames = [
        pl.DataFrame({"what": ["records"], "value": [""], "len": [records.num_rows]}),
        by_name.select(pl.lit("name").alias("what"), pl.col("name").alias("value"), "len"),
        by_area.select(pl.lit("area").alias("what"), pl.col("area").alias("value"), "len"),
        words.select(pl.lit("word").alias("what"), pl.col("word").alias("value"), "len"),
        by_page.select(pl.lit("page").alias("what"), "value", "len"),
        by_phone.select(pl.lit("phone").alias("what"), "value", "len"),
        rounding_counts(records),
    ]
    counts = pl.concat([f.cast({"len": pl.Int64}) for f in frames]).rename({"len": "count"})
    return counts.to_arrow().cast(FEATURE_COUNTS_SCHEMA)


def name_area_keys(records: pa.Table) -> pl.Series:
    """Each record's name key in its area and source, one string: the name, the area (its
    H3 cell at ``AREA_RESOLUTION``, or for a record without coordinates "L" and its
    locality) and the source, ``_SEPARATOR`` between them; null for a record with neither a
    point nor a locality (its name is counted in all the data only). Counted by source, a
    chain's name is common in its area (a source lists its branches there) and an
    independent place's is not, however many sources list it (:func:`area_key`)."""
    keys = records.column("keys")
    frame = pl.DataFrame(
        {
            "name": pc.fill_null(pc.struct_field(keys, "name"), ""),
            "locality": pc.struct_field(keys, "locality"),
            "lat": records.column("lat"),
            "lon": records.column("lon"),
            "source": records.column("source"),
        },
        schema={
            "name": pl.String,
            "locality": pl.String,
            "lat": pl.Float64,
            "lon": pl.Float64,
            "source": pl.String,
        },
    )
    located = pl.col("lat").is_not_null() & pl.col("lon").is_not_null()
    area = (
        pl.when(located)
        .then(plh3.latlng_to_cell("lat", "lon", AREA_RESOLUTION).cast(pl.String))
        .otherwise(pl.lit("L") + pl.col("locality"))
    )
    return frame.select(
        pl.col("name") + pl.lit(_SEPARATOR) + area + pl.lit(_SEPARATOR) + pl.col("source")
    ).to_series()


def area_key(
    name: str, lat: float | None, lon: float | None, locality: str | None, source: str
) -> str | None:
    """:func:`name_area_keys` of one record, in plain Python (the same strings)."""
    if lat is not None and lon is not None and lat == lat and lon == lon:
        area = str(h3.latlng_to_cell(lat, lon, AREA_RESOLUTION))
    elif locality is not None:
        area = f"L{locality}"
    else:
        return None
    return f"{name}{_SEPARATOR}{area}{_SEPARATOR}{source}"


def _by_source(source: pl.Series, rows: pl.DataFrame) -> pl.DataFrame:
    """``value, len``: how many records of each source carry each value (``rows``: each
    record's ``row`` and a ``value`` of it, once), the value named after its source."""
    return (
        rows.select(
            pl.concat_str(source.gather(rows["row"]), pl.lit(_SEPARATOR), "value").alias("value")
        )
        .group_by("value")
        .len()
    )


def word_counts(names: pa.Array | pa.ChunkedArray) -> pl.DataFrame:
    """``word, len``: how many of ``names`` (name keys: folded words, one space apart)
    carry each word."""
    by_name = pl.DataFrame({"name": names}, schema={"name": pl.String}).group_by("name").len()
    return _words_of(by_name)


def _words_of(by_name: pl.DataFrame) -> pl.DataFrame:
    """``word, len`` of the counts of distinct names (``name, len``)."""
    return (
        by_name.select("len", pl.col("name").str.split(" ").list.unique().alias("word"))
        .explode("word")
        .filter(pl.col("word").is_not_null() & (pl.col("word") != ""))
        .group_by("word")
        .agg(pl.col("len").sum())
    )


def feature_stats(counts: pa.Table | Sequence[pa.Table]) -> FeatureStats:
    """The ``FeatureStats`` of the summed counts of every batch (:func:`feature_counts`)."""
    tables = [counts] if isinstance(counts, pa.Table) else list(counts)
    total = (
        pl.concat([pl.DataFrame(t.cast(FEATURE_COUNTS_SCHEMA)) for t in tables])
        .group_by("what", "value")
        .agg(pl.col("count").sum().alias("records"))
    )

    def part(what: str, column: str) -> pl.DataFrame:
        return total.filter(pl.col("what") == what).select(pl.col("value").alias(column), "records")

    return FeatureStats(
        int(total.filter(pl.col("what") == "records")["records"].sum()),
        part("name", "name"),
        part("word", "word"),
        shared_pages(total.rename({"records": "count"})),
        shared_phones(total.rename({"records": "count"})),
        rounding_of(total),
        part("area", "area"),
    )


def shared_pages(counts: pl.DataFrame) -> frozenset[str]:
    """The pages that some source gives to more than one of its records, from summed
    counts (``FEATURE_COUNTS_SCHEMA``'s columns; other kinds are left out)."""
    return _shared(counts, "page", 2)


def shared_phones(counts: pl.DataFrame) -> frozenset[str]:
    """The phones that some source gives to ``SHARED_PHONE`` or more of its records, from
    summed counts (``FEATURE_COUNTS_SCHEMA``'s columns; other kinds are left out)."""
    return _shared(counts, "phone", SHARED_PHONE)


def _shared(counts: pl.DataFrame, what: str, least: int) -> frozenset[str]:
    """The values of a kind counted by source that some source gives to ``least`` or more
    of its records."""
    shared = counts.filter((pl.col("what") == what) & (pl.col("count") >= least))
    return frozenset(shared["value"].str.split_exact(_SEPARATOR, 1).struct[1].to_list())


# Between a source and a page or phone in the counts by source (no URL or phone has it).
_SEPARATOR: Final = "\x1f"
