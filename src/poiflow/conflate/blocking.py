"""Blocking: the candidate pairs worth scoring, from cheap shared keys.

Two records become a candidate pair when they share one of these keys (``KEYS``):

``name``
    A name word that is rare in the data (or the whole folded name) and an H3 cell: one
    record's own cell, the other's ring of neighbours, at a resolution set by the larger
    place's category extent (a cafe is met within a few hundred metres, an airport within
    kilometres). A name written without spaces between words (Chinese, Japanese, Korean)
    folds to one syllable a word, and no syllable is rare: two side by side make a word
    too ("tian zhong" of "田中"). A name with a word more at its end ("Nordea Kamppi": a
    branch, a district) meets the name without it ("Nordea") in its ring, whatever its
    words.
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

Blocking is three steps, each a function that any engine can run on a part of the data:

1. :func:`key_counts` counts, per batch of records, what the keys depend on globally (how
   many records carry each name word, the localities of each ~5 km cell); the counts of all
   batches add up, and :func:`key_stats` turns the sum into :class:`KeyStats`;
2. :func:`record_keys` turns each batch of records into key rows ``(kind, key, row, left,
   right)``: a record's own cells on the left, its neighbourhood on the right;
3. :func:`key_pairs` pairs the left and right rows of each key, for any set of whole key
   groups; :func:`finish_pairs` merges the pairs of every group (a pair found by several
   keys keeps all their bits).

So the local engine runs each step once over the whole table, and Spark runs step 1 and 2
per partition and step 3 per hash partition of the keys, with the same result.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import polars as pl
import polars_h3 as plh3
import pyarrow as pa

from poiflow.schema import CANDIDATE_SCHEMA
from poiflow.taxonomy import taxonomy
from poiflow.text import SYLLABIC_CHARACTERS

__all__ = [
    "KEYS",
    "KEY_COUNTS_SCHEMA",
    "KEY_ROWS_SCHEMA",
    "PAIRS_SCHEMA",
    "BlockingConfig",
    "KeyStats",
    "SharedKey",
    "blocking_recall",
    "candidate_pairs",
    "common_kinds",
    "finish_pairs",
    "key_counts",
    "key_pairs",
    "key_stats",
    "record_keys",
    "shared_keys",
    "table_stats",
]

KEYS: Final = {"name": 1, "near": 2, "phone": 4, "domain": 8, "locality": 16}
_DEFAULT_EXTENT_M: Final = 80.0

# The kinds of key: keys of one kind only ever meet keys of the same kind.
_NAME, _NEAR, _PHONE, _DOMAIN_NEAR, _DOMAIN_ANY, _LOCALITY_TERM, _LOCALITY_ADDRESS = range(7)
_KIND_BIT: Final = {
    _NAME: KEYS["name"],
    _NEAR: KEYS["near"],
    _PHONE: KEYS["phone"],
    _DOMAIN_NEAR: KEYS["domain"],
    _DOMAIN_ANY: KEYS["domain"],
    _LOCALITY_TERM: KEYS["locality"],
    _LOCALITY_ADDRESS: KEYS["locality"],
}
_BIT_NAME: Final = {bit: name for name, bit in KEYS.items()}
_KIND_NAME: Final = {kind: _BIT_NAME[bit] for kind, bit in _KIND_BIT.items()}  # "name", ...

# What blocking reads of a record (its row in the records table aside).
BLOCKING_COLUMNS: Final = ("lat", "lon", "categories", "keys", "phones", "names")

# A name in a script written without spaces between words (``poiflow.text.fold`` folds it
# to one syllable a word): a character class, for polars and ``re`` alike.
SYLLABIC: Final = f"[{SYLLABIC_CHARACTERS}]"

KEY_COUNTS_SCHEMA: Final = pa.schema(
    [
        pa.field("what", pa.string()),  # "records", "unlocated", "word" or "locality"
        pa.field("value", pa.string()),  # the word or the locality
        pa.field("cell", pa.uint64()),  # the ~5 km cell of a locality
        pa.field("count", pa.int64()),
    ]
)
# A pair and the bit of a key that proposed it, as one integer: pair * _BIT_SPACE + bit.
_BIT_SPACE: Final = 1 << (max(KEYS.values()).bit_length())
_ONE_NUMBER_ROWS: Final = math.isqrt((2**63 - 1) // _BIT_SPACE) - 1  # n * n * space fits

KEY_ROWS_SCHEMA: Final = pa.schema(
    [
        pa.field("kind", pa.int8()),
        pa.field("key", pa.uint64()),
        pa.field("row", pa.int64()),
        pa.field("left", pa.bool_()),
        pa.field("right", pa.bool_()),
    ]
)
PAIRS_SCHEMA: Final = pa.schema(
    [pa.field("left", pa.int64()), pa.field("right", pa.int64()), pa.field("keys", pa.int32())]
)


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

    def cap(self, kind: int) -> int:
        """The most records on the left of a key of ``kind`` that still make pairs."""
        if kind == _NAME:
            return self.max_local_group
        if kind == _DOMAIN_ANY:
            return self.max_group // 10
        if kind in (_LOCALITY_TERM, _LOCALITY_ADDRESS):
            return self.max_group
        return max(2, self.max_group // 10)


@dataclass(frozen=True, slots=True)
class KeyStats:
    """What the keys of one record depend on beyond the record itself.

    Attributes:
        records: How many records there are in all.
        rare_words: The name words rare enough to be keys (see ``BlockingConfig``).
        localities: For each ~5 km cell (H3 resolution 7), the most common locality of the
            located records in it: a located record without an address takes it.
        unlocated: Whether any record lacks coordinates (else no locality keys are made).
        unlocated_terms: The name and address terms of the records without coordinates.
    """

    records: int
    rare_words: pl.DataFrame  # one column "word"
    localities: pl.DataFrame  # "cell", "inferred"
    unlocated: bool
    unlocated_terms: pl.DataFrame  # one column "term": every term of the records without


@functools.cache
def _extents() -> dict[str, float]:
    """Each category's extent in metres (how far apart two records of one place may be)."""
    return {c.id: c.extent_m for c in taxonomy().categories.values()}


def _engine(rows: int) -> Literal["in-memory", "auto"]:
    """Polars' in-memory engine for a few records (the streaming engine's start-up costs
    several milliseconds, which a request for one record feels), streaming for many."""
    return "in-memory" if rows < 10_000 else "auto"


# Ring-1 of a cell reaches at least one cell edge: res 8 ~ 460 m, 7 ~ 1.2 km, 6 ~ 3.2 km.
_RING_STEPS: Final = ((300.0, 8), (1200.0, 7))  # (largest extent in metres, resolution)
_WIDEST_RING: Final = 6


def _resolution(extent_m: pl.Expr) -> pl.Expr:
    """The H3 resolution of a record's name-key ring, by its category's extent."""
    (small, fine), (middle, mid) = _RING_STEPS
    return (
        pl.when(extent_m <= small)
        .then(fine)
        .when(extent_m <= middle)
        .then(mid)
        .otherwise(_WIDEST_RING)
        .cast(pl.Int8)
    )


def ring_resolution(extent_m: float) -> int:
    """:func:`_resolution` of one extent."""
    return next((res for top, res in _RING_STEPS if extent_m <= top), _WIDEST_RING)


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
        key = SharedKey(_KIND_NAME[kind], int(size), config.cap(kind))
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
    return sorted({_KIND_NAME[kind] for kind in shared["kind"].to_list()})


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
    base = _base(records).lazy()
    names = _names(base)
    words = _words(names).group_by("word").len()
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
        _all_terms(unlocated, _names(unlocated))
        .select(pl.col("term").alias("cell"))
        .group_by("cell")
        .len()
    )
    engine = _engine(records.num_rows)
    sizes = pl.concat([base.select(pl.len()), unlocated.select(pl.len())]).collect(engine=engine)
    frames = [
        pl.LazyFrame(
            {"what": ["records", "unlocated"], "count": sizes["len"].to_list()},
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
    cap = max(config.rare_token_min, int(config.rare_token_share * n))
    rare = total.filter((pl.col("what") == "word") & (pl.col("count") <= cap)).select(
        pl.col("value").alias("word")
    )
    localities = (
        total.filter(pl.col("what") == "locality")
        .sort("cell", "count", "value", descending=[False, True, False])
        .group_by("cell", maintain_order=True)
        .first()
        .select("cell", pl.col("value").alias("inferred"))
    )
    terms = total.filter(pl.col("what") == "term").select(pl.col("cell").alias("term"))
    return KeyStats(n, rare, localities, count_of("unlocated") > 0, terms)


def record_keys(
    records: pa.Table, stats: KeyStats, config: BlockingConfig | None = None
) -> pl.DataFrame:
    """The key rows (``KEY_ROWS_SCHEMA``) of a batch of records.

    Args:
        records: The ``BLOCKING_COLUMNS`` of some records and their ``row`` in the table.
        stats: The statistics of all records (:func:`key_stats`).
        config: How wide to cast the net.
    """
    # One lazy query, collected once: a request of one record pays polars' per-operation
    # overhead once, not at every step.
    base = _base(records).lazy()
    return _record_keys(base, stats, config or BlockingConfig(), _engine(records.num_rows))


def _record_keys(
    base: pl.LazyFrame,
    stats: KeyStats,
    config: BlockingConfig,
    engine: Literal["in-memory", "auto"],
) -> pl.DataFrame:
    terms = _name_terms(base, stats)
    frames = [
        _spatial_name_keys(base, terms, _prefix_terms(base)),
        _near_keys(base, config),
        base.select("row", pl.col("phones").alias("k"))
        .explode("k")
        .drop_nulls("k")
        .unique(["row", "k"])
        .select(
            _kind(_PHONE),
            string_hash(pl.col("k"), _PHONE_NUMBER).alias("key"),
            "row",
            *_side(True, True),
        ),
        *_domain_keys(base, config, stats),
        *_locality_keys(base, terms, stats),
    ]
    return (
        pl.concat([f.select(KEY_ROWS_SCHEMA.names) for f in frames])
        .cast({"kind": pl.Int8, "key": pl.UInt64, "row": pl.Int64})
        .collect(engine=engine)
    )


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
    for (kind,), part in sorted(keys.partition_by("kind", as_dict=True).items()):
        rows = part.lazy()
        right = rows.filter(pl.col("right")).select("key", "row")
        left = rows.filter(pl.col("left")).select("key", "row")
        if part["right"].sum() < part["left"].sum() // 2:  # most locality keys meet no record
            left = left.join(right.select("key").unique(), on="key", how="semi")
        small = left.group_by("key").len().filter(pl.col("len") <= config.cap(kind)).drop("len")
        pairs = (
            left.join(small, on="key")
            .join(right, on="key", suffix="_r")
            .filter(pl.col("row") != pl.col("row_r"))
            .select(
                pl.min_horizontal("row", "row_r").alias("left"),
                pl.max_horizontal("row", "row_r").alias("right"),
            )
        )
        if once:
            pairs = pairs.unique()
        found.append(pairs.with_columns(pl.lit(_KIND_BIT[kind], pl.Int32).alias("keys")))
    if not found:
        return pl.DataFrame(schema={"left": pl.Int64, "right": pl.Int64, "keys": pl.Int32})
    return pl.concat(found).collect(engine=_engine(keys.height))


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


def _base(records: pa.Table) -> pl.DataFrame:
    extents = _extents()
    base = pl.DataFrame(records.select([*BLOCKING_COLUMNS, "row"]))
    return base.with_columns(
        pl.col("categories")
        .struct.field("primary")
        .replace_strict(extents, default=_DEFAULT_EXTENT_M, return_dtype=pl.Float64)
        .alias("extent"),
        pl.col("lat").is_not_null().alias("located"),
    ).with_columns(_resolution(pl.col("extent")).alias("res"))


def _kind(kind: int) -> pl.Expr:
    return pl.lit(kind, pl.Int8).alias("kind")


def _side(left: bool, right: bool) -> list[pl.Expr]:
    return [pl.lit(left).alias("left"), pl.lit(right).alias("right")]


def _names(base: pl.LazyFrame) -> pl.LazyFrame:
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


def _words(names: pl.LazyFrame) -> pl.LazyFrame:
    """(row, word): the distinct words of each record's names, and of a syllabic name
    (see ``_names``) each two syllables side by side as one word ("tian zhong")."""
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


def _name_terms(base: pl.LazyFrame, stats: KeyStats) -> pl.LazyFrame:
    """(row, term): each record's rare name words and its whole folded names, hashed."""
    names = _names(base)
    rare = _words(names).join(stats.rare_words.lazy(), on="word", how="semi")
    return pl.concat(
        [
            rare.select("row", string_hash(pl.col("word")).alias("term")),
            names.select("row", string_hash(pl.col("name"), _WHOLE_NAME).alias("term")),
        ]
    ).unique(["row", "term"])


MIX: Final = 0x9E3779B97F4A7C15  # odd, so multiplying by it permutes the 64-bit integers
MASK: Final = (1 << 64) - 1


# The kinds of string hashed into keys and terms, each salted apart (``salt``): the same
# text as a rare word and as a whole name, say, makes different terms. Plain covers name
# words, localities, and street with house number.
_PLAIN, _WHOLE_NAME, _POSTCODE, _TYPO, _PHONE_NUMBER, _DOMAIN_NAME = 0, 1, 2, 3, 7, 9


def salt(kind: int) -> int:
    """What a kind of string's hash is XORed with (nothing for ``_PLAIN``)."""
    return (kind * MIX) & MASK


def string_hash(value: pl.Expr, kind: int = _PLAIN) -> pl.Expr:
    """A string's 64-bit hash as a key or term: polars' hash, salted per kind
    (:func:`salt`). One unseeded hash for every kind lets a request's few strings be
    hashed in one call (``poiflow.conflate.lookup``)."""
    hashed = value.hash()
    return hashed if kind == _PLAIN else hashed.xor(pl.lit(salt(kind), pl.UInt64))


def pair_key(a: int, b: int) -> int:
    """:func:`_key` of two 64-bit values, in plain Python."""
    return ((a * MIX) & MASK) ^ b


def _key(a: str, b: str) -> pl.Expr:
    """One 64-bit key for a pair of key values (an H3 cell or area and a term, a domain's
    hash and a cell): joining and grouping on one integer column is several times faster
    than on two. ``a`` times an odd constant is a permutation, and XOR with ``b`` keeps
    the pair apart from every other as long as one of the two is a hash (each pair here
    has one), so a collision is as unlikely as a hash's; it would only add a candidate
    pair, never lose one. Plain arithmetic, so a request's keys are made without polars
    (:func:`pair_key`)."""
    return (
        (pl.col(a).cast(pl.UInt64) * pl.lit(MIX, pl.UInt64))
        .xor(pl.col(b).cast(pl.UInt64))
        .alias("key")
    )


def _prefix_terms(base: pl.LazyFrame) -> pl.LazyFrame:
    """(row, term): each record's folded name without its last word, as a whole name."""
    name = pl.col("keys").struct.field("name")
    return (
        base.select("row", name.str.replace(r" [^ ]+$", "").alias("prefix"), name)
        .filter((pl.col("prefix") != pl.col("name")) & (pl.col("prefix").str.len_chars() > 2))
        .select("row", string_hash(pl.col("prefix"), _WHOLE_NAME).alias("term"))
    )


def _spatial_name_keys(
    base: pl.LazyFrame, terms: pl.LazyFrame, prefixes: pl.LazyFrame
) -> pl.LazyFrame:
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
    return pl.concat(
        [
            own.join(terms, on="row").select(
                _kind(_NAME), _key("cell", "term"), "row", *_side(True, False)
            ),
            ring.join(pl.concat([terms, prefixes]).unique(), on="row").select(
                _kind(_NAME), _key("cell", "term"), "row", *_side(False, True)
            ),
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
            own.select(_kind(_NEAR), "key", "row", *_side(True, False)),
            ring.select(_kind(_NEAR), "key", "row", *_side(False, True)),
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
            string_hash(pl.col("domain"), _DOMAIN_NAME).alias("domain"),
        )
    )
    r = config.domain_resolution
    own = domains.filter(pl.col("located")).select(
        "row", "domain", plh3.latlng_to_cell("lat", "lon", r).alias("cell")
    )
    ring = own.select("row", "domain", plh3.grid_disk("cell", 1).alias("cell")).explode("cell")
    frames = [
        own.select(_kind(_DOMAIN_NEAR), _key("domain", "cell"), "row", *_side(True, False)),
        ring.select(_kind(_DOMAIN_NEAR), _key("domain", "cell"), "row", *_side(False, True)),
    ]
    if stats.unlocated:  # records without coordinates meet every record of their domain
        frames.append(
            domains.select(
                _kind(_DOMAIN_ANY),
                pl.col("domain").alias("key"),
                "row",
                pl.lit(True).alias("left"),
                (~pl.col("located")).alias("right"),
            )
        )
    return frames


def _locality_keys(base: pl.LazyFrame, terms: pl.LazyFrame, stats: KeyStats) -> list[pl.LazyFrame]:
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
            place.select("row", "located", _hashed("locality", _PLAIN).alias("area")),
            place.select("row", "located", _hashed("postcode", _POSTCODE).alias("area")),
        ],
    ).filter(pl.col("area").is_not_null())  # a missing locality is no area at all
    wanted = stats.unlocated_terms.lazy()
    by_term = areas.join(
        pl.concat([terms, _typo_terms(base)]).join(wanted, on="term", how="semi"), on="row"
    )
    by_address = areas.join(_address_terms(base).join(wanted, on="term", how="semi"), on="row")
    return [
        keyed.select(
            _kind(kind),
            _key("area", "term"),
            "row",
            pl.lit(True).alias("left"),
            (~pl.col("located")).alias("right"),
        )
        for kind, keyed in ((_LOCALITY_TERM, by_term), (_LOCALITY_ADDRESS, by_address))
    ]


def _all_terms(base: pl.LazyFrame, names: pl.LazyFrame) -> pl.LazyFrame:
    """(term): every term a record could meet a record without coordinates by, rare or
    not: its name words, whole names, typo variants, street and house number (hashed)."""
    return pl.concat(
        [
            _words(names).select(string_hash(pl.col("word")).alias("term")),
            names.select(string_hash(pl.col("name"), _WHOLE_NAME).alias("term")),
            _typo_terms(base).select("term"),
            _address_terms(base).select("term"),
        ],
        how="vertical_relaxed",
    )


def _address_terms(base: pl.LazyFrame) -> pl.LazyFrame:
    """(row, term): the street and house number of each record that has both, hashed."""
    address = base.select(
        "row",
        pl.col("keys").struct.field("street").alias("street"),
        pl.col("keys").struct.field("housenumber").alias("housenumber"),
    )
    return address.drop_nulls(["street", "housenumber"]).select(
        "row", string_hash(pl.concat_str("street", "housenumber", separator="|")).alias("term")
    )


def _hashed(column: str, kind: int) -> pl.Expr:
    """A 64-bit hash of a string column that stays null where the string is null."""
    return pl.when(pl.col(column).is_not_null()).then(string_hash(pl.col(column), kind))


def _typo_terms(base: pl.LazyFrame) -> pl.LazyFrame:
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
    return variants.select("row", string_hash(variant, _TYPO).alias("term")).unique()


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
