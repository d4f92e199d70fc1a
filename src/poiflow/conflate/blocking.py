"""Blocking: the candidate pairs worth scoring, from cheap shared keys.

Two records become a candidate pair when they share a key (see :mod:`poiflow.conflate.keys`
for the kinds: a rare name word nearby, any record very near, the same phone, domain, or
locality for records without coordinates).

Keys shared by too many records (a chain's call centre, a generic word in a dense centre)
are skipped: they would cost quadratic work and say little. Each pair is produced once
(``left < right``), with the bit set of the keys that proposed it.

Blocking is three steps, each a function that any engine can run on a part of the data:

1. :func:`key_counts` counts, per batch of records, what the keys depend on globally (how
   many records carry each name word, the localities of each ~5 km cell); the counts of all
   batches add up, and :func:`key_stats` turns the sum into :class:`KeyStats`;
2. :func:`record_keys` (:mod:`poiflow.conflate.key_rows`) turns each batch of records
   into key rows ``(kind, key, row, left, right)``: a record's own cells on the left, its
   neighbourhood on the right;
3. :func:`key_pairs` pairs the left and right rows of each key, for any set of whole key
   groups; :func:`finish_pairs` merges the pairs of every group (a pair found by several
   keys keeps all their bits).

So the local engine runs each step once over the whole table, and Spark runs step 1 and 2
per partition and step 3 per hash partition of the keys, with the same result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import polars as pl
import polars_h3 as plh3
import pyarrow as pa

from poiflow.conflate.key_rows import keys_of_frame, record_keys
from poiflow.conflate.keys import (
    BLOCKING_COLUMNS,
    KEY_COUNTS_SCHEMA,
    KEYS,
    KIND_BIT,
    KIND_NAME,
    BlockingConfig,
    KeyStats,
    polars_engine,
)
from poiflow.conflate.terms import (
    all_terms,
    folded_names,
    name_words,
    record_frame,
)
from poiflow.schema import CANDIDATE_SCHEMA

__all__ = [
    "PAIRS_SCHEMA",
    "SharedKey",
    "blocking_recall",
    "candidate_pairs",
    "common_kinds",
    "common_words",
    "finish_pairs",
    "key_counts",
    "key_pairs",
    "key_stats",
    "keys_of_frame",
    "most_common_localities",
    "open_to_unlocated",
    "record_keys",
    "shared_keys",
    "table_stats",
]

# A pair and the bit of a key that proposed it, as one integer: pair * _BIT_SPACE + bit.
_BIT_SPACE: Final = 1 << (max(KEYS.values()).bit_length())
_ONE_NUMBER_ROWS: Final = math.isqrt((2**63 - 1) // _BIT_SPACE) - 1  # n * n * space fits

PAIRS_SCHEMA: Final = pa.schema(
    [pa.field("left", pa.int64()), pa.field("right", pa.int64()), pa.field("keys", pa.int32())]
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
    table = _with_rows(records)
    stats = key_stats(key_counts(table), config)
    keys = record_keys(table, stats, config)
    return finish_pairs([key_pairs(keys, config, once=False)], n)


@dataclass(frozen=True, slots=True)
class SharedKey:
    """A kind of key two records share, and how many records its group holds.

    Attributes:
        kind: The kind (a name of ``KEYS``).
        records: The fewest records on the left of any key of this kind the two share.
        cap: The most such records that still make pairs (``BlockingConfig.cap``).
    """

    kind: str
    records: int
    cap: int

    @property
    def pairs(self) -> bool:
        """Whether the key makes the two a candidate pair (its group is not too large)."""
        return self.records <= self.cap


def table_stats(records: pa.Table, config: BlockingConfig | None = None) -> KeyStats:
    """The ``KeyStats`` of a whole records table (``PLACE_SCHEMA``), as
    :func:`candidate_pairs` counts them."""
    return key_stats(key_counts(_with_rows(records)), config)


def _with_rows(records: pa.Table) -> pa.Table:
    return records.select(list(BLOCKING_COLUMNS)).append_column(
        "row", pa.array(np.arange(records.num_rows, dtype=np.int64))
    )


def shared_keys(
    records: pa.Table,
    rows: tuple[int, int],
    config: BlockingConfig | None = None,
    stats: KeyStats | None = None,
) -> list[SharedKey]:
    """The kinds of key the records at ``rows`` of ``records`` (``PLACE_SCHEMA``) share, as
    :func:`candidate_pairs` makes them (the same counts of the whole table, or ``stats``),
    with the size of each key's group: the two were a candidate pair if and only if one of
    them ``pairs``. Empty if they share no key at all."""
    config = config or BlockingConfig()
    table = _with_rows(records)
    stats = stats or key_stats(key_counts(table), config)
    shared = _shared(table, rows, stats, config)
    if shared.is_empty():
        return []
    groups = (
        record_keys(table, stats, config)
        .filter(pl.col("left"))
        .join(shared.unique(), on=["kind", "key"], how="semi")
        .group_by("kind", "key")
        .len()
        .group_by("kind")
        .agg(pl.col("len").min())
        .sort("kind")
    )
    found: dict[str, SharedKey] = {}
    for kind, size in groups.iter_rows():
        key = SharedKey(KIND_NAME[kind], int(size), config.cap(kind))
        held = found.get(key.kind)
        if held is None or (key.pairs, -key.records) > (held.pairs, -held.records):
            found[key.kind] = key
    return list(found.values())


def common_kinds(
    records: pa.Table, rows: tuple[int, int], config: BlockingConfig, stats: KeyStats
) -> list[str]:
    """The kinds of key the records at ``rows`` share, however many records share them
    too (:func:`shared_keys` without the groups' sizes: two records' keys alone)."""
    shared = _shared(_with_rows(records), rows, stats, config)
    return sorted({KIND_NAME[kind] for kind in shared["kind"].to_list()})


def _shared(
    table: pa.Table, rows: tuple[int, int], stats: KeyStats, config: BlockingConfig
) -> pl.DataFrame:
    """The keys (``kind``, ``key``) one of the two records at ``rows`` has on the left and
    the other on the right."""
    two = record_keys(table.take(pa.array(rows, pa.int64())), stats, config)
    a, b = rows
    left, right = two.filter(pl.col("left")), two.filter(pl.col("right"))
    return pl.concat(
        [
            left.filter(pl.col("row") == x).join(
                right.filter(pl.col("row") == y), on=["kind", "key"]
            )
            for x, y in ((a, b), (b, a))
        ]
    ).select("kind", "key")


def key_counts(records: pa.Table) -> pa.Table:
    """The counts (``KEY_COUNTS_SCHEMA``) of a batch of records that keys depend on.

    The counts of several batches add up (sum ``count`` by ``what``, ``value``, ``cell``).
    """
    base = record_frame(records).lazy()
    names = folded_names(base)
    words = name_words(names).group_by("word").len()
    located = base.filter(pl.col("located"))
    localities = (
        located.select(
            plh3.latlng_to_cell("lat", "lon", 7).alias("cell"),
            pl.col("keys").struct.field("locality").alias("value"),
        )
        .drop_nulls()
        .group_by("cell", "value")
        .len()
    )
    unlocated = base.filter(~pl.col("located"))
    # Every term a record without coordinates could have (rare or not): locality keys of
    # other terms meet no such record, and are not made at all.
    terms = (
        all_terms(unlocated, folded_names(unlocated))
        .select(pl.col("term").alias("cell"))
        .group_by("cell")
        .len()
    )
    engine = polars_engine(records.num_rows)
    rounded = located.filter(pl.col("rounding") > 0)
    sizes = pl.concat([t.select(pl.len()) for t in (base, unlocated, rounded)]).collect(
        engine=engine
    )
    frames = [
        pl.LazyFrame(
            {"what": ["records", "unlocated", "rounded"], "count": sizes["len"].to_list()},
            schema={"what": pl.String, "count": pl.Int64},
        ),
        terms.select(pl.lit("term").alias("what"), "cell", pl.col("len").alias("count")),
        words.select(
            pl.lit("word").alias("what"),
            pl.col("word").alias("value"),
            pl.col("len").alias("count"),
        ),
        localities.select(
            pl.lit("locality").alias("what"), "value", "cell", pl.col("len").alias("count")
        ),
    ]
    counts = pl.concat(frames, how="diagonal_relaxed").select(KEY_COUNTS_SCHEMA.names)
    return counts.collect(engine=engine).to_arrow().cast(KEY_COUNTS_SCHEMA)


def key_stats(
    counts: pa.Table | Iterable[pa.Table], config: BlockingConfig | None = None
) -> KeyStats:
    """The ``KeyStats`` of the summed counts of every batch (see :func:`key_counts`)."""
    config = config or BlockingConfig()
    tables = [counts] if isinstance(counts, pa.Table) else list(counts)
    total = (
        pl.concat([pl.DataFrame(t.cast(KEY_COUNTS_SCHEMA)) for t in tables])
        .group_by("what", "value", "cell")
        .agg(pl.col("count").sum())
    )

    def count_of(what: str) -> int:
        return int(total.filter(pl.col("what") == what)["count"].sum())

    n = count_of("records")
    cap = config.rare_cap(n)
    rare = total.filter((pl.col("what") == "word") & (pl.col("count") <= cap)).select(
        pl.col("value").alias("word")
    )
    localities = most_common_localities(total.filter(pl.col("what") == "locality"))
    terms = total.filter(pl.col("what") == "term").select(pl.col("cell").alias("term"))
    return KeyStats(
        n, rare, localities, count_of("unlocated") > 0, terms, rounded=count_of("rounded") > 0
    )


def most_common_localities(counted: pl.DataFrame) -> pl.DataFrame:
    """Each cell's locality (``cell, inferred``) from how many located records in it have
    each (``cell, value, count``): the most common, then the first by name."""
    return (
        counted.sort("cell", "count", "value", descending=[False, True, False])
        .group_by("cell", maintain_order=True)
        .first()
        .select("cell", pl.col("value").alias("inferred"))
    )


def common_words(counts: pa.Table, config: BlockingConfig | None = None) -> frozenset[str]:
    """The name words too common to be keys, by the counts of one batch of records (one
    :func:`key_counts`): every word is rare but these."""
    config = config or BlockingConfig()
    frame = pl.DataFrame(counts.cast(KEY_COUNTS_SCHEMA))
    n = int(frame.filter(pl.col("what") == "records")["count"].sum())
    words = frame.filter((pl.col("what") == "word") & (pl.col("count") > config.rare_cap(n)))
    return frozenset(words["value"].to_list())


def open_to_unlocated(stats: KeyStats) -> KeyStats:
    """``stats`` for holding records to be matched later with records without
    coordinates, whatever the records they were counted from: their keys are made as if
    such records existed, with any of their terms.

    A run without a record lacking coordinates makes no locality or domain keys, so a
    feed without coordinates matched against it would meet its records by phone alone.
    Located records meet no more records by these keys (those keys pair a located record
    with records without coordinates only), so their candidates stay the run's.
    """
    return replace(stats, unlocated=True, unlocated_terms=None)


def key_pairs(
    keys: pl.DataFrame, config: BlockingConfig | None = None, *, once: bool = True
) -> pl.DataFrame:
    """The pairs (``PAIRS_SCHEMA``) of whole key groups: each left row of a key with each
    right row of it, for keys with at most the kind's cap of left rows.

    Args:
        keys: Key rows (``KEY_ROWS_SCHEMA``).
        config: The caps.
        once: Each pair once per kind (less to send elsewhere). ``finish_pairs`` keeps a
            pair once however often it comes, so where the pairs go straight there, False
            spares a pass over them.
    """
    config = config or BlockingConfig()
    found = []
    # One lazy query for every kind, collected once: polars runs the kinds side by side.
    # Each kind's rows are filtered from the whole lazily, not copied out of it first.
    sides = (
        keys.group_by("kind")
        .agg(pl.len(), pl.col("left").sum(), pl.col("right").sum())
        .sort("kind")
        .iter_rows()
    )
    for kind, count, lefts, rights in sides:
        rows = keys.lazy().filter(pl.col("kind") == kind)
        right = rows.filter(pl.col("right")).select("key", "row")
        left = rows.filter(pl.col("left")).select("key", "row")
        if rights < lefts // 2:  # most locality keys meet no record
            left = left.join(right.select("key").unique(), on="key", how="semi")
        small = left.group_by("key").len().filter(pl.col("len") <= config.cap(kind)).drop("len")
        met = left.join(small, on="key").join(right, on="key", suffix="_r")
        both_sides = lefts == rights == count
        if both_sides:  # each pair met both ways: once
            pairs = met.filter(pl.col("row") < pl.col("row_r")).select(
                pl.col("row").alias("left"), pl.col("row_r").alias("right")
            )
        else:
            pairs = met.filter(pl.col("row") != pl.col("row_r")).select(
                pl.min_horizontal("row", "row_r").alias("left"),
                pl.max_horizontal("row", "row_r").alias("right"),
            )
        # A kind whose every key is on both sides meets a pair by each key the two share:
        # a name's typo variants meet a like name's up to thirteen times. Kept once here.
        if once or both_sides:
            pairs = pairs.unique()
        found.append(pairs.with_columns(pl.lit(KIND_BIT[kind], pl.Int32).alias("keys")))
    if not found:
        return pl.DataFrame(schema={"left": pl.Int64, "right": pl.Int64, "keys": pl.Int32})
    return pl.concat(found).collect(engine=polars_engine(keys.height))


def finish_pairs(parts: Iterable[pl.DataFrame | pa.Table], n: int) -> pa.Table:
    """The candidate pairs (``CANDIDATE_SCHEMA``) of the pairs of every key group: sorted,
    each pair once with the bits of every key that proposed it."""
    frames = [p if isinstance(p, pl.DataFrame) else pl.DataFrame(p) for p in parts]
    frames = [f for f in frames if f.height]
    if not frames:
        return CANDIDATE_SCHEMA.empty_table()
    found = pl.concat([f.select("left", "right", "keys") for f in frames], how="vertical_relaxed")
    pair_of = pl.col("left").cast(pl.Int64) * n + pl.col("right")
    if n <= _ONE_NUMBER_ROWS:
        # The pair and the key's bit in one integer: its distinct values sorted are each
        # pair's bits in a row, at half the cost of sorting the rows of two columns.
        value = (
            found.select(pair_of * _BIT_SPACE + pl.col("keys"))
            .to_series()
            .unique()
            .sort()
            .to_numpy()
        )
        pair, bits = value // _BIT_SPACE, (value % _BIT_SPACE).astype(np.int32)
    else:  # beyond half a billion records
        rows = found.select(pair_of.alias("pair"), "keys").sort("pair")
        pair, bits = rows["pair"].to_numpy(), rows["keys"].to_numpy().astype(np.int32)
    starts = np.concatenate([[0], np.flatnonzero(pair[1:] != pair[:-1]) + 1])
    pair = pair[starts]
    return pa.table(
        {
            "left": pa.array(pair // n, pa.int64()),
            "right": pa.array(pair % n, pa.int64()),
            "keys": pa.array(np.bitwise_or.reduceat(bits, starts), pa.int32()),
        }
    ).cast(CANDIDATE_SCHEMA)


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
