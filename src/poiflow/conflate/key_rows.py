"""The key rows of a batch of records: step 2 of blocking (:mod:`poiflow.conflate.blocking`).

Each record gives rows ``(kind, key, row, left, right)``: its own cells on the left, its
neighbourhood on the right, for every kind of key (:mod:`poiflow.conflate.keys`). Any
engine runs it on any batch, given the statistics of all records (``KeyStats``).
"""

from __future__ import annotations

from typing import Literal

import polars as pl
import polars_h3 as plh3
import pyarrow as pa

from poiflow.conflate.keys import (
    KEY_ROWS_SCHEMA,
    TYPO_CELL,
    TYPO_RING,
    BlockingConfig,
    KeyStats,
    Kind,
    Term,
    key_expr,
    polars_engine,
    string_hash,
)
from poiflow.conflate.terms import (
    address_terms,
    hashed,
    name_terms,
    prefix_terms,
    record_frame,
    typo_terms,
)

__all__ = ["keys_of_frame", "record_keys"]


def record_keys(
    records: pa.Table, stats: KeyStats, config: BlockingConfig | None = None
) -> pl.DataFrame:
    """The key rows (``KEY_ROWS_SCHEMA``) of a batch of records.

    Args:
        records: The ``BLOCKING_COLUMNS`` of some records and their ``row`` in the table.
        stats: The statistics of all records (``blocking.key_stats``).
        config: How wide to cast the net.
    """
    # One lazy query, collected once: a request of one record pays polars' per-operation
    # overhead once, not at every step.
    base = record_frame(records).lazy()
    return keys_of_frame(base, stats, config or BlockingConfig(), polars_engine(records.num_rows))


def keys_of_frame(
    base: pl.LazyFrame,
    stats: KeyStats,
    config: BlockingConfig,
    engine: Literal["in-memory", "auto"],
) -> pl.DataFrame:
    """:func:`record_keys` of the lazy :func:`~poiflow.conflate.terms.record_frame` of
    some records, collected with polars' ``engine`` (a request's lookup builds the frame
    once for its statistics and its keys)."""
    terms, typos = name_terms(base, stats), typo_terms(base)  # each made once, used twice
    frames = [
        _spatial_name_keys(base, terms, prefix_terms(base), typos, stats.rounded),
        _near_keys(base, config),
        base.select("row", pl.col("phones").alias("k"))
        .explode("k")
        .drop_nulls("k")
        .unique(["row", "k"])
        .select(
            _kind(Kind.PHONE),
            string_hash(pl.col("k"), Term.PHONE).alias("key"),
            "row",
            *_side(True, True),
        ),
        *_domain_keys(base, config, stats),
        *_locality_keys(base, terms, typos, stats),
    ]
    return (
        pl.concat([f.select(KEY_ROWS_SCHEMA.names) for f in frames])
        .cast({"kind": pl.Int8, "key": pl.UInt64, "row": pl.Int64})
        .collect(engine=engine)
    )


def _kind(kind: int) -> pl.Expr:
    return pl.lit(kind, pl.Int8).alias("kind")


def _side(left: bool, right: bool) -> list[pl.Expr]:
    return [pl.lit(left).alias("left"), pl.lit(right).alias("right")]


def _spatial_name_keys(
    base: pl.LazyFrame,
    terms: pl.LazyFrame,
    prefixes: pl.LazyFrame,
    typos: pl.LazyFrame,
    rounded: bool,
) -> pl.LazyFrame:
    """Name keys: a record's own cell at every resolution on the left, its ring at its own
    resolution on the right; ``typo`` keys: its typo variants in its own cell at
    ``TYPO_CELL``, on both sides. ``rounded`` (``KeyStats.rounded``): typo variants as name
    keys too, in every located record's own cell at ``TYPO_RING`` and in a rounded
    record's ring of that resolution."""
    located = base.filter(pl.col("located")).select(
        "row",
        "res",
        "rounding",
        *(plh3.latlng_to_cell("lat", "lon", r).alias(f"cell{r}") for r in (6, 7, 8)),
    )
    own = pl.concat(
        [
            located.select("row", pl.lit(r, pl.Int8).alias("res"), pl.col(f"cell{r}").alias("cell"))
            for r in (6, 7, 8)
        ]
    )
    ring = (
        located.select(
            "row",
            pl.when(pl.col("res") == 8)
            .then(pl.col("cell8"))
            .when(pl.col("res") == 7)
            .then(pl.col("cell7"))
            .otherwise(pl.col("cell6"))
            .alias("center"),
        )
        .with_columns(plh3.grid_disk("center", 1).alias("cell"))
        .explode("cell")
    )
    # (kind, cells, terms, whether on the left, whether on the right)
    parts = [
        (Kind.NAME, own, terms, True, False),
        (Kind.NAME, ring, pl.concat([terms, prefixes]).unique(), False, True),
        (Kind.TYPO, own.filter(pl.col("res") == TYPO_CELL), typos, True, True),
    ]
    if rounded:
        typo_ring = (
            located.filter(pl.col("rounding") > 0)
            .select("row", plh3.grid_disk(f"cell{TYPO_RING}", 1).alias("cell"))
            .explode("cell")
        )
        parts.append((Kind.NAME, own.filter(pl.col("res") == TYPO_RING), typos, True, False))
        parts.append((Kind.NAME, typo_ring, typos, False, True))
    return pl.concat(
        [
            cells.select("row", "cell")
            .join(found, on="row")
            .select(_kind(kind), key_expr("cell", "term"), "row", *_side(left, right))
            for kind, cells, found, left, right in parts
        ]
    )


def _near_keys(base: pl.LazyFrame, config: BlockingConfig) -> pl.LazyFrame:
    located = base.filter(pl.col("located"))
    own = located.select(
        "row", plh3.latlng_to_cell("lat", "lon", config.near_resolution).alias("key")
    )
    ring = own.select("row", plh3.grid_disk("key", 1).alias("key")).explode("key")
    return pl.concat(
        [
            own.select(_kind(Kind.NEAR), "key", "row", *_side(True, False)),
            ring.select(_kind(Kind.NEAR), "key", "row", *_side(False, True)),
        ]
    )


def _domain_keys(base: pl.LazyFrame, config: BlockingConfig, stats: KeyStats) -> list[pl.LazyFrame]:
    domains = (
        base.select(
            "row", "located", "lat", "lon", pl.col("keys").struct.field("domains").alias("domain")
        )
        .explode("domain")
        .drop_nulls("domain")
        .unique(["row", "domain"])
        .select(  # hashed once, before a located record's ring repeats it
            "row",
            "located",
            "lat",
            "lon",
            string_hash(pl.col("domain"), Term.DOMAIN).alias("domain"),
        )
    )
    r = config.domain_resolution
    own = domains.filter(pl.col("located")).select(
        "row", "domain", plh3.latlng_to_cell("lat", "lon", r).alias("cell")
    )
    ring = own.select("row", "domain", plh3.grid_disk("cell", 1).alias("cell")).explode("cell")
    frames = [
        own.select(_kind(Kind.DOMAIN_NEAR), key_expr("domain", "cell"), "row", *_side(True, False)),
        ring.select(
            _kind(Kind.DOMAIN_NEAR), key_expr("domain", "cell"), "row", *_side(False, True)
        ),
    ]
    if stats.unlocated:  # records without coordinates meet every record of their domain
        frames.append(
            domains.select(
                _kind(Kind.DOMAIN_ANY),
                pl.col("domain").alias("key"),
                "row",
                pl.lit(True).alias("left"),
                (~pl.col("located")).alias("right"),
            )
        )
    return frames


def _locality_keys(
    base: pl.LazyFrame, terms: pl.LazyFrame, typos: pl.LazyFrame, stats: KeyStats
) -> list[pl.LazyFrame]:
    """Keys for records without coordinates: same locality or postcode, and a shared name
    term, a name one typo apart, or the same street and house number.

    A located record with no locality of its own takes the most common locality of the
    located records around it (its ~5 km H3 cell), so a feed without coordinates still
    meets an OSM-like source whose objects carry no address.
    """
    if not stats.unlocated:
        return []
    place = base.select(
        "row",
        "located",
        pl.col("keys").struct.field("locality").alias("locality"),
        pl.col("keys").struct.field("postcode").alias("postcode"),
        pl.col("keys").struct.field("street").alias("street"),
        pl.col("keys").struct.field("housenumber").alias("housenumber"),
        pl.when(pl.col("located")).then(plh3.latlng_to_cell("lat", "lon", 7)).alias("cell"),
    )
    place = place.join(
        stats.localities.lazy(), on="cell", how="left", maintain_order="left"
    ).with_columns(pl.coalesce("locality", "inferred").alias("locality"))
    areas = pl.concat(
        [
            place.select("row", "located", hashed("locality", Term.PLAIN).alias("area")),
            place.select("row", "located", hashed("postcode", Term.POSTCODE).alias("area")),
        ],
    ).filter(pl.col("area").is_not_null())  # a missing locality is no area at all
    named, addressed = pl.concat([terms, typos]), address_terms(base)
    if stats.unlocated_terms is not None:  # only terms some record without coordinates has
        wanted = stats.unlocated_terms.lazy()
        named = named.join(wanted, on="term", how="semi")
        addressed = addressed.join(wanted, on="term", how="semi")
    by_term, by_address = areas.join(named, on="row"), areas.join(addressed, on="row")
    return [
        keyed.select(
            _kind(kind),
            key_expr("area", "term"),
            "row",
            pl.lit(True).alias("left"),
            (~pl.col("located")).alias("right"),
        )
        for kind, keyed in ((Kind.LOCALITY_TERM, by_term), (Kind.LOCALITY_ADDRESS, by_address))
    ]
