"""A record's terms in polars: its folded names, name words, typo variants and address,
as blocking hashes them into keys (:mod:`poiflow.conflate.keys`).

Each function takes the lazy frame of :func:`record_frame` (or one derived from it) and
gives rows ``(row, ...)``: a record's row in the records table and one of its terms.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from poiflow.conflate.keys import (
    BLOCKING_COLUMNS,
    DEFAULT_EXTENT_M,
    SYLLABIC,
    TYPO_LETTERS,
    KeyStats,
    Term,
    extents,
    resolution_expr,
    string_hash,
)
from poiflow.conflate.rounding import point_rounding_expr

__all__ = [
    "address_terms",
    "all_terms",
    "folded_names",
    "hashed",
    "name_terms",
    "name_words",
    "prefix_terms",
    "record_frame",
    "typo_terms",
]


def record_frame(records: pa.Table) -> pl.DataFrame:
    """The ``BLOCKING_COLUMNS`` and ``row`` of some records, with each one's category
    ``extent`` in metres, whether it is ``located``, and the H3 resolution of its name-key
    ring (``res``): by its extent and, for a rounded point, how far rounding may have moved
    it (``rounding``, metres: ``conflate.rounding.point_rounding_expr``)."""
    known = extents()
    base = pl.DataFrame(records.select([*BLOCKING_COLUMNS, "row"]))
    return base.with_columns(
        pl.col("categories")
        .struct.field("primary")
        .replace_strict(known, default=DEFAULT_EXTENT_M, return_dtype=pl.Float64)
        .alias("extent"),
        pl.col("lat").is_not_null().alias("located"),
        point_rounding_expr(pl.col("lat"), pl.col("lon")).alias("rounding"),
    ).with_columns(resolution_expr(pl.col("extent") + pl.col("rounding")).alias("res"))


def folded_names(base: pl.LazyFrame) -> pl.LazyFrame:
    """(row, name, syllabic): each record's folded name and alternate names, and whether
    its name is written in a script without spaces between words (``SYLLABIC``)."""
    return (
        base.select(
            "row",
            pl.concat_list(
                pl.col("keys").struct.field("name"),
                pl.col("keys").struct.field("name_alternates").fill_null([]),
            ).alias("name"),
            pl.col("names")
            .struct.field("primary")
            .str.contains(SYLLABIC)
            .fill_null(False)
            .alias("syllabic"),
        )
        .explode("name")
        .drop_nulls("name")
        .filter(pl.col("name") != "")
    )


def name_words(names: pl.LazyFrame) -> pl.LazyFrame:
    """(row, word): the distinct words of each record's names, and of a syllabic name
    (see ``folded_names``) each two syllables side by side as one word ("tian zhong")."""
    split = names.select("row", "syllabic", pl.col("name").str.split(" ").alias("word"))
    single = split.select("row", "word").explode("word").filter(pl.col("word").str.len_chars() > 1)
    side_by_side = (
        split.filter(pl.col("syllabic"))
        .select(
            "row",
            pl.col("word")
            .list.eval(pl.concat_str(pl.element(), pl.element().shift(-1), separator=" "))
            .alias("word"),
        )
        .explode("word")
        .drop_nulls("word")
    )
    return pl.concat([single, side_by_side]).unique(["row", "word"])


def name_terms(base: pl.LazyFrame, stats: KeyStats) -> pl.LazyFrame:
    """(row, term): each record's rare name words and its whole folded names, hashed."""
    names = folded_names(base)
    rare = name_words(names).join(stats.rare_words.lazy(), on="word", how="semi")
    return pl.concat(
        [
            rare.select("row", string_hash(pl.col("word")).alias("term")),
            names.select("row", string_hash(pl.col("name"), Term.WHOLE_NAME).alias("term")),
        ]
    ).unique(["row", "term"])


def prefix_terms(base: pl.LazyFrame) -> pl.LazyFrame:
    """(row, term): each record's folded name without its last word, as a whole name."""
    name = pl.col("keys").struct.field("name")
    return (
        base.select("row", name.str.replace(r" [^ ]+$", "").alias("prefix"), name)
        .filter((pl.col("prefix") != pl.col("name")) & (pl.col("prefix").str.len_chars() > 2))
        .select("row", string_hash(pl.col("prefix"), Term.WHOLE_NAME).alias("term"))
    )


def all_terms(base: pl.LazyFrame, names: pl.LazyFrame) -> pl.LazyFrame:
    """(term): every term a record could meet a record without coordinates by, rare or
    not: its name words, whole names, typo variants, street and house number (hashed)."""
    return pl.concat(
        [
            name_words(names).select(string_hash(pl.col("word")).alias("term")),
            names.select(string_hash(pl.col("name"), Term.WHOLE_NAME).alias("term")),
            typo_terms(base).select("term"),
            address_terms(base).select("term"),
        ],
        how="vertical_relaxed",
    )


def address_terms(base: pl.LazyFrame) -> pl.LazyFrame:
    """(row, term): the street and house number of each record that has both, hashed."""
    address = base.select(
        "row",
        pl.col("keys").struct.field("street").alias("street"),
        pl.col("keys").struct.field("housenumber").alias("housenumber"),
    )
    return address.drop_nulls(["street", "housenumber"]).select(
        "row", string_hash(pl.concat_str("street", "housenumber", separator="|")).alias("term")
    )


def hashed(column: str, kind: int) -> pl.Expr:
    """A 64-bit hash of a string column that stays null where the string is null."""
    return pl.when(pl.col(column).is_not_null()).then(string_hash(pl.col(column), kind))


def typo_terms(base: pl.LazyFrame) -> pl.LazyFrame:
    """(row, term): the first ``TYPO_LETTERS`` letters of each name, its spaces taken out,
    with each one letter deleted, and whole (a name of at least four such letters).

    Two spellings one typo apart (a letter dropped, added, changed or two swapped, a space
    lost or put in) share at least one of these: "nordea" and "norda", "finlayson" and
    "fenlayson", "wok pupu" and "wokpupu". A typo past the first letters leaves them equal.
    """
    words = (
        base.select(
            "row",
            pl.col("keys")
            .struct.field("name")
            .str.replace_all(" ", "", literal=True)
            .str.slice(0, TYPO_LETTERS)
            .alias("word"),
        )
        .drop_nulls("word")
        .filter(pl.col("word").str.len_chars() >= 4)
    )
    variants = words.select(
        "row", "word", pl.int_ranges(-1, pl.col("word").str.len_chars()).alias("drop")
    ).explode("drop")
    variant = (
        pl.when(pl.col("drop") < 0)
        .then(pl.col("word"))
        .otherwise(
            pl.concat_str(
                pl.col("word").str.slice(0, pl.col("drop")),
                pl.col("word").str.slice(pl.col("drop") + 1),
            )
        )
    )
    # A doubled letter gives the same variant twice ("kaffe" less either "f"): once each.
    return variants.select("row", string_hash(variant, Term.TYPO).alias("term")).unique()
