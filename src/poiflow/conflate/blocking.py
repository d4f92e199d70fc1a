"""Blocking: the candidate pairs worth scoring, from cheap shared keys.

Two records become a candidate pair when they share one of these keys (``KEYS``):

``name``
    A name word that is rare in the data (or the whole folded name) and an H3 cell: one
    record's own cell, the other's ring of neighbours, at a resolution set by the larger
    place's category extent (a cafe is met within a few hundred metres, an airport within
    kilometres).
``near``
    Any two records within about a hundred metres (a fine H3 cell and its ring), names
    aside: translations and renames share no word.
``phone``
    The same phone number, anywhere.
``domain``
    The same registrable website domain within a few kilometres.
``locality``
    For records without coordinates (many vendor feeds): a rare name word, or the house
    number and street, within the same locality or postcode.

Keys shared by too many records (a chain's call centre, a generic word in a dense centre)
are skipped: they would cost quadratic work and say little. Each pair is produced once
(``left < right``), with the bit set of the keys that proposed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl
import polars_h3 as plh3
import pyarrow as pa

from poiflow.schema import CANDIDATE_SCHEMA
from poiflow.taxonomy import taxonomy

__all__ = ["KEYS", "BlockingConfig", "blocking_recall", "candidate_pairs"]

KEYS: Final = {"name": 1, "near": 2, "phone": 4, "domain": 8, "locality": 16}
_DEFAULT_EXTENT_M: Final = 80.0


@dataclass(frozen=True, slots=True)
class BlockingConfig:
    """How wide blocking casts its net.

    Attributes:
        rare_token_share: A name word is rare when at most this share of records has it.
        rare_token_min: ... or at most this many records, whichever is larger.
        max_group: Keys shared by more records than this are skipped.
        max_local_group: The same, for a name word within one H3 cell: a chain's name is
            common in the data but rare in one neighbourhood, a generic word is not.
        near_resolution: H3 resolution of the ``near`` key (11: cells about 25 m across).
        domain_resolution: H3 resolution of the ``domain`` key (6: about 3 km).
    """

    rare_token_share: float = 0.01
    rare_token_min: int = 200
    max_group: int = 300
    max_local_group: int = 40
    near_resolution: int = 11
    domain_resolution: int = 6


def _resolution(extent_m: pl.Expr) -> pl.Expr:
    # Ring-1 of a cell reaches at least one cell edge: res 8 ~ 460 m, 7 ~ 1.2 km, 6 ~ 3.2 km.
    return (
        pl.when(extent_m <= 300).then(8).when(extent_m <= 1200).then(7).otherwise(6).cast(pl.Int8)
    )


def candidate_pairs(records: pa.Table, config: BlockingConfig | None = None) -> pa.Table:
    """The candidate pairs of a records table (``PLACE_SCHEMA``), as ``CANDIDATE_SCHEMA``.

    Rows are positions in ``records``. Deterministic: the same table gives the same pairs
    in the same order.
    """
    config = config or BlockingConfig()
    n = records.num_rows
    if n < 2:
        return CANDIDATE_SCHEMA.empty_table()
    extents = {c.id: c.extent_m for c in taxonomy().categories.values()}
    base = pl.DataFrame(records.select(["lat", "lon", "categories", "keys", "phones"]))
    base = base.with_row_index("row")
    base = base.with_columns(
        pl.col("categories")
        .struct.field("primary")
        .replace_strict(extents, default=_DEFAULT_EXTENT_M, return_dtype=pl.Float64)
        .alias("extent"),
        pl.col("lat").is_not_null().alias("located"),
    ).with_columns(_resolution(pl.col("extent")).alias("res"))

    terms = _name_terms(base, n, config)
    frames = [
        _spatial_name_pairs(base, terms, config),
        _near_pairs(base, config),
        _group_pairs(
            base.select("row", pl.col("phones").alias("k")).explode("k").drop_nulls("k"),
            ["k"],
            KEYS["phone"],
            config,
        ),
        _domain_pairs(base, config),
        _locality_pairs(base, terms, config),
    ]
    found = [f for f in frames if f.height]
    if not found:
        return CANDIDATE_SCHEMA.empty_table()
    # One integer per pair, sorted; a pair found by several keys keeps all their bits.
    found_pairs = (
        pl.concat(found, how="vertical")
        .select((pl.col("left").cast(pl.Int64) * n + pl.col("right")).alias("pair"), "keys")
        .sort("pair")
    )
    pair = found_pairs["pair"].to_numpy()
    bits = found_pairs["keys"].to_numpy().astype(np.int32)
    starts = np.concatenate([[0], np.flatnonzero(pair[1:] != pair[:-1]) + 1])
    pair = pair[starts]
    return pa.table(
        {
            "left": pa.array(pair // n, pa.int64()),
            "right": pa.array(pair % n, pa.int64()),
            "keys": pa.array(np.bitwise_or.reduceat(bits, starts), pa.int32()),
        }
    ).cast(CANDIDATE_SCHEMA)


def _name_terms(base: pl.DataFrame, n: int, config: BlockingConfig) -> pl.DataFrame:
    """(row, term): each record's rare name words and its whole folded names, hashed."""
    names = (
        base.select(
            "row",
            pl.concat_list(
                pl.col("keys").struct.field("name"),
                pl.col("keys").struct.field("name_alternates").fill_null([]),
            ).alias("name"),
        )
        .explode("name")
        .drop_nulls("name")
        .filter(pl.col("name") != "")
    )
    words = (
        names.select("row", pl.col("name").str.split(" ").alias("word"))
        .explode("word")
        .filter(pl.col("word").str.len_chars() > 1)
        .unique(["row", "word"])
    )
    cap = max(config.rare_token_min, int(config.rare_token_share * n))
    rare = words.join(
        words.group_by("word").len().filter(pl.col("len") <= cap).select("word"), on="word"
    )
    return pl.concat(
        [
            rare.select("row", pl.col("word").hash().alias("term")),
            names.select("row", pl.col("name").hash(seed=1).alias("term")),
        ]
    ).unique(["row", "term"])


def _pairs_from_join(
    left: pl.DataFrame, right: pl.DataFrame, on: list[str], bit: int
) -> pl.DataFrame:
    joined = left.join(right, on=on, suffix="_r").filter(pl.col("row") != pl.col("row_r"))
    return joined.select(
        pl.min_horizontal("row", "row_r").alias("left"),
        pl.max_horizontal("row", "row_r").alias("right"),
        pl.lit(bit, pl.Int32).alias("keys"),
    ).unique(["left", "right"])


def _capped(frame: pl.DataFrame, on: list[str], cap: int) -> pl.DataFrame:
    sizes = frame.group_by(on).len().filter(pl.col("len") <= cap).drop("len")
    return frame.join(sizes, on=on)


def _key(*columns: str) -> pl.Expr:
    """One 64-bit key for several key columns (H3 cells carry their resolution, terms are
    hashes): joining and grouping on one integer column is several times faster than on
    three. A collision would only add a candidate pair, never lose one."""
    return pl.struct(*columns).hash(seed=5).alias("key")


def _spatial_name_pairs(
    base: pl.DataFrame, terms: pl.DataFrame, config: BlockingConfig
) -> pl.DataFrame:
    located = base.filter(pl.col("located")).select(
        "row",
        "res",
        *(plh3.latlng_to_cell("lat", "lon", r).alias(f"cell{r}") for r in (6, 7, 8)),
    )
    # Left: a record's own cell at every resolution; right: its ring at its own resolution.
    own = pl.concat([located.select("row", pl.col(f"cell{r}").alias("cell")) for r in (6, 7, 8)])
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
        .select("row", plh3.grid_disk("center", 1).alias("cell"))
        .explode("cell")
    )
    left = _capped(
        own.join(terms, on="row").select("row", _key("cell", "term")),
        ["key"],
        config.max_local_group,
    )
    right = ring.join(terms, on="row").select("row", _key("cell", "term"))
    return _pairs_from_join(left, right, ["key"], KEYS["name"])


def _near_pairs(base: pl.DataFrame, config: BlockingConfig) -> pl.DataFrame:
    located = base.filter(pl.col("located"))
    r = config.near_resolution
    own = located.select("row", plh3.latlng_to_cell("lat", "lon", r).alias("cell"))
    ring = own.select("row", plh3.grid_disk("cell", 1).alias("cell")).explode("cell")
    left = _capped(own, ["cell"], max(2, config.max_group // 10))
    return _pairs_from_join(left, ring, ["cell"], KEYS["near"])


def _group_pairs(
    frame: pl.DataFrame, on: list[str], bit: int, config: BlockingConfig
) -> pl.DataFrame:
    """All pairs within each group of ``on`` (groups larger than the cap skipped)."""
    grouped = _capped(frame.unique(["row", *on]), on, max(2, config.max_group // 10))
    return _pairs_from_join(grouped, grouped, on, bit)


def _domain_pairs(base: pl.DataFrame, config: BlockingConfig) -> pl.DataFrame:
    domains = (
        base.select(
            "row", "located", "lat", "lon", pl.col("keys").struct.field("domains").alias("domain")
        )
        .explode("domain")
        .drop_nulls("domain")
    )
    located = domains.filter(pl.col("located"))
    r = config.domain_resolution
    own = located.select("row", "domain", plh3.latlng_to_cell("lat", "lon", r).alias("cell"))
    ring = own.select("row", "domain", plh3.grid_disk("cell", 1).alias("cell")).explode("cell")
    left = _capped(own, ["domain", "cell"], max(2, config.max_group // 10))
    spatial = _pairs_from_join(left, ring, ["domain", "cell"], KEYS["domain"])
    # Records without coordinates meet every record of their domain (groups are capped).
    unlocated = domains.filter(~pl.col("located")).select("row", "domain")
    if unlocated.height == 0:
        return spatial
    everyone = domains.select("row", "domain")
    return pl.concat(
        [
            spatial,
            _pairs_from_join(
                _capped(everyone, ["domain"], config.max_group // 10),
                unlocated,
                ["domain"],
                KEYS["domain"],
            ),
        ]
    )


def _locality_pairs(
    base: pl.DataFrame, terms: pl.DataFrame, config: BlockingConfig
) -> pl.DataFrame:
    """Pairs for records without coordinates: same locality or postcode, and a shared name
    term, a name one typo apart, or the same street and house number.

    A located record with no locality of its own takes the most common locality of the
    located records around it (its ~5 km H3 cell), so a feed without coordinates still
    meets an OSM-like source whose objects carry no address.
    """
    if base.filter(~pl.col("located")).height == 0:
        return pl.DataFrame(schema={"left": pl.UInt32, "right": pl.UInt32, "keys": pl.Int32})
    place = base.select(
        "row",
        "located",
        pl.col("keys").struct.field("locality").alias("locality"),
        pl.col("keys").struct.field("postcode").alias("postcode"),
        pl.col("keys").struct.field("street").alias("street"),
        pl.col("keys").struct.field("housenumber").alias("housenumber"),
        pl.when(pl.col("located")).then(plh3.latlng_to_cell("lat", "lon", 7)).alias("cell"),
    )
    around = (
        place.drop_nulls(["cell", "locality"])
        .group_by("cell", "locality")
        .len()
        .sort("cell", "len", "locality", descending=[False, True, False])
        .group_by("cell", maintain_order=True)
        .first()
        .select("cell", pl.col("locality").alias("inferred"))
    )
    place = place.join(around, on="cell", how="left", maintain_order="left").with_columns(
        pl.coalesce("locality", "inferred").alias("locality")
    )
    areas = pl.concat(
        [
            place.select("row", "located", _hashed("locality", seed=0).alias("area")),
            place.select("row", "located", _hashed("postcode", seed=2).alias("area")),
        ],
    ).filter(pl.col("area").is_not_null())  # a missing locality is no area at all
    # Only terms that some record without coordinates has can make a pair here: keep
    # just those before the (large) join with the areas.
    every_term = pl.concat([terms, _typo_terms(base)])
    unlocated_rows = place.filter(~pl.col("located")).select("row")
    wanted = every_term.join(unlocated_rows, on="row", how="semi").select("term").unique()
    by_term = areas.join(every_term.join(wanted, on="term", how="semi"), on="row")
    by_address = areas.join(
        place.filter(pl.col("street").is_not_null() & pl.col("housenumber").is_not_null()).select(
            "row", pl.concat_str("street", "housenumber", separator="|").hash().alias("term")
        ),
        on="row",
    )
    frames = []
    for keyed in (by_term, by_address):
        keyed = keyed.select("row", "located", _key("area", "term"))
        unlocated = keyed.filter(~pl.col("located")).select("row", "key")
        # Only keys that some record without coordinates has can make a pair here.
        wanted = keyed.join(unlocated.select("key").unique(), on="key", how="semi")
        everyone = _capped(wanted.select("row", "key"), ["key"], config.max_group)
        frames.append(_pairs_from_join(everyone, unlocated, ["key"], KEYS["locality"]))
    return pl.concat(frames)


def _hashed(column: str, seed: int) -> pl.Expr:
    """A 64-bit hash of a string column that stays null where the string is null."""
    return pl.when(pl.col(column).is_not_null()).then(pl.col(column).hash(seed=seed))


def _typo_terms(base: pl.DataFrame) -> pl.DataFrame:
    """(row, term): the longest word of each name with each one letter deleted, and whole.

    Two spellings one typo apart (a letter dropped, added, changed or two swapped) share
    at least one of these: "nordea" and "norda", "finlayson" and "fenlayson".
    """
    words = (
        base.select("row", pl.col("keys").struct.field("name").str.split(" ").alias("word"))
        .explode("word")
        .filter(pl.col("word").str.len_chars() >= 4)
        .sort("row", pl.col("word").str.len_chars(), "word", descending=[False, True, False])
        .group_by("row", maintain_order=True)
        .first()
    )
    variants = words.select(
        "row", "word", pl.int_ranges(-1, pl.col("word").str.len_chars()).alias("drop")
    ).explode("drop")
    return variants.select(
        "row",
        pl.when(pl.col("drop") < 0)
        .then(pl.col("word"))
        .otherwise(
            pl.concat_str(
                pl.col("word").str.slice(0, pl.col("drop")),
                pl.col("word").str.slice(pl.col("drop") + 1),
            )
        )
        .hash(seed=3)
        .alias("term"),
    )


def blocking_recall(pairs: pa.Table, truth: pa.Array) -> tuple[float, int, int]:
    """Share of true pairs that became candidates.

    Args:
        pairs: Candidate pairs (``CANDIDATE_SCHEMA``).
        truth: For each record row, the id of the real place it describes.

    Returns:
        ``(recall, true pairs found, true pairs in all)``.
    """
    gold = pl.DataFrame({"place": pl.Series(truth)}).with_row_index("row")
    sizes = gold.group_by("place").len()
    total = int((sizes["len"] * (sizes["len"] - 1) // 2).sum())
    found = (
        (
            pl.DataFrame(pairs.select(["left", "right"]))
            .join(gold.rename({"row": "left", "place": "pl"}), on="left")
            .join(gold.rename({"row": "right", "place": "pr"}), on="right")
            .filter(pl.col("pl") == pl.col("pr"))
            .height
        )
        if pairs.num_rows
        else 0
    )
    return (found / total if total else 1.0), found, total
