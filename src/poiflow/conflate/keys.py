"""The vocabulary of blocking keys, shared by the batch blocking in polars
(:mod:`poiflow.conflate.blocking`) and a request's keys in plain Python
(:mod:`poiflow.conflate.lookup`), which must make the same keys.

Two records become a candidate pair when they share one of these keys (``KEYS``):

``name``
    A name word that is rare in the data (or the whole folded name) and an H3 cell: one
    record's own cell, the other's ring of neighbours, at a resolution set by the larger
    place's category extent (a cafe is met within a few hundred metres, an airport within
    kilometres). A name written without spaces between words (Chinese, Japanese, Korean)
    folds to one syllable a word, and no syllable is rare: two side by side make a word
    too ("tian zhong" of "田中"). A name with a word more at its end ("Nordea Kamppi": a
    branch, a district) meets the name without it ("Nordea") in its ring, whatever its
    words. A point rounded to whole hundredths of a degree (about 1 km)
    widens its ring by how far rounding may have moved it, and its typo variants are keys
    in a ring of ~1.2 km, as ``near`` would have met a misspelt name.
``typo``
    A name one typo from another (its first letters, spaces out, less a letter: see
    ``terms.typo_terms``) in the same ~36 km² H3 cell (resolution 6), where at most
    half as many records as ``name``'s cap share it: a misspelt name beyond ``near``'s
    hundred metres ("finalyson" and "finlayson" 150 m apart), and the same name a
    geocoder put kilometres off.
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

Each of these is one or two kinds of key (:class:`Kind`); keys are 64-bit integers, made
of salted string hashes (:class:`Term`, :func:`string_hash`) and H3 cells
(:func:`key_expr`, :func:`pair_key`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final, Literal

import polars as pl
import pyarrow as pa

from poiflow.taxonomy import taxonomy
from poiflow.text import SYLLABIC_CHARACTERS

__all__ = [
    "BLOCKING_COLUMNS",
    "DEFAULT_EXTENT_M",
    "KEYS",
    "KEY_COUNTS_SCHEMA",
    "KEY_ROWS_SCHEMA",
    "KIND_BIT",
    "KIND_NAME",
    "SYLLABIC",
    "TYPO_CELL",
    "TYPO_LETTERS",
    "TYPO_RING",
    "BlockingConfig",
    "KeyStats",
    "Kind",
    "Term",
    "extents",
    "key_expr",
    "pair_key",
    "polars_engine",
    "resolution_expr",
    "ring_resolution",
    "salt",
    "string_hash",
]

KEYS: Final = {"name": 1, "near": 2, "phone": 4, "domain": 8, "locality": 16, "typo": 32}
DEFAULT_EXTENT_M: Final = 80.0


class Kind:
    """The kinds of key: keys of one kind only ever meet keys of the same kind."""

    NAME: Final = 0
    NEAR: Final = 1
    PHONE: Final = 2
    DOMAIN_NEAR: Final = 3
    DOMAIN_ANY: Final = 4
    LOCALITY_TERM: Final = 5
    LOCALITY_ADDRESS: Final = 6
    TYPO: Final = 7


KIND_BIT: Final = {
    Kind.NAME: KEYS["name"],
    Kind.NEAR: KEYS["near"],
    Kind.PHONE: KEYS["phone"],
    Kind.DOMAIN_NEAR: KEYS["domain"],
    Kind.DOMAIN_ANY: KEYS["domain"],
    Kind.LOCALITY_TERM: KEYS["locality"],
    Kind.LOCALITY_ADDRESS: KEYS["locality"],
    Kind.TYPO: KEYS["typo"],
}
_BIT_NAME: Final = {bit: name for name, bit in KEYS.items()}
KIND_NAME: Final = {kind: _BIT_NAME[bit] for kind, bit in KIND_BIT.items()}  # "name", ...

# What blocking reads of a record (its row in the records table aside).
BLOCKING_COLUMNS: Final = ("lat", "lon", "categories", "keys", "phones", "names")

# A name in a script written without spaces between words (``poiflow.text.fold`` folds it
# to one syllable a word): a character class, for polars and ``re`` alike.
SYLLABIC: Final = f"[{SYLLABIC_CHARACTERS}]"

_MIX: Final = 0x9E3779B97F4A7C15  # odd, so multiplying by it permutes the 64-bit integers
_MASK: Final = (1 << 64) - 1


class Term:
    """The kinds of string hashed into keys and terms, each salted apart (:func:`salt`):
    the same text as a rare word and as a whole name, say, makes different terms. Plain
    covers name words, localities, and street with house number."""

    PLAIN: Final = 0
    WHOLE_NAME: Final = 1
    POSTCODE: Final = 2
    TYPO: Final = 3
    PHONE: Final = 7
    DOMAIN: Final = 9


def salt(kind: int) -> int:
    """What a kind of string's hash is XORed with (nothing for ``Term.PLAIN``)."""
    return (kind * _MIX) & _MASK


def string_hash(value: pl.Expr, kind: int = Term.PLAIN) -> pl.Expr:
    """A string's 64-bit hash as a key or term: polars' hash, salted per kind
    (:func:`salt`). One unseeded hash for every kind lets a request's few strings be
    hashed in one call (``poiflow.conflate.lookup``)."""
    hashed = value.hash()
    return hashed if kind == Term.PLAIN else hashed.xor(pl.lit(salt(kind), pl.UInt64))


def pair_key(a: int, b: int) -> int:
    """:func:`key_expr` of two 64-bit values, in plain Python."""
    return ((a * _MIX) & _MASK) ^ b


def key_expr(a: str, b: str) -> pl.Expr:
    """One 64-bit key for a pair of key values (an H3 cell or area and a term, a domain's
    hash and a cell): joining and grouping on one integer column is several times faster
    than on two. ``a`` times an odd constant is a permutation, and XOR with ``b`` keeps
    the pair apart from every other as long as one of the two is a hash (each pair here
    has one), so a collision is as unlikely as a hash's; it would only add a candidate
    pair, never lose one. Plain arithmetic, so a request's keys are made without polars
    (:func:`pair_key`)."""
    return (
        (pl.col(a).cast(pl.UInt64) * pl.lit(_MIX, pl.UInt64))
        .xor(pl.col(b).cast(pl.UInt64))
        .alias("key")
    )


KEY_COUNTS_SCHEMA: Final = pa.schema(
    [
        pa.field("what", pa.string()),  # "records", "unlocated", "rounded", "word", ...
        pa.field("value", pa.string()),  # the word or the locality
        pa.field("cell", pa.uint64()),  # the ~5 km cell of a locality
        pa.field("count", pa.int64()),
    ]
)
KEY_ROWS_SCHEMA: Final = pa.schema(
    [
        pa.field("kind", pa.int8()),
        pa.field("key", pa.uint64()),
        pa.field("row", pa.int64()),
        pa.field("left", pa.bool_()),
        pa.field("right", pa.bool_()),
    ]
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
            Half of it for the ``typo`` key, in its wider cell.
        near_resolution: H3 resolution of the ``near`` key (11: cells about 25 m across).
        domain_resolution: H3 resolution of the ``domain`` key (6: about 3 km).
    """

    rare_token_share: float = 0.01
    rare_token_min: int = 200
    max_group: int = 300
    max_local_group: int = 40
    near_resolution: int = 11
    domain_resolution: int = 6

    def rare_cap(self, records: int) -> int:
        """The most records a name word may have, among ``records``, and be rare."""
        return max(self.rare_token_min, int(self.rare_token_share * records))

    def cap(self, kind: int) -> int:
        """The most records on the left of a key of ``kind`` that still make pairs."""
        if kind == Kind.NAME:
            return self.max_local_group
        if kind == Kind.TYPO:  # a wider cell than a name word's, fewer records
            return max(2, self.max_local_group // 2)
        if kind == Kind.DOMAIN_ANY:
            return self.max_group // 10
        if kind in (Kind.LOCALITY_TERM, Kind.LOCALITY_ADDRESS):
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
        unlocated_terms: The name and address terms of the records without coordinates
            (locality keys are made of these only); None: of every term (records held to
            meet records yet to come, see ``blocking.open_to_unlocated``).
        rounded: Whether any record's point is rounded to 2 decimals or fewer
            (``conflate.rounding.point_rounding_expr``): such a record is hundreds of
            metres from its place, beyond the ``near`` key that meets a misspelt name,
            so its typo variants are keys in its widened ring too, and every located
            record's own cells are keys of its typo variants.
    """

    records: int
    rare_words: pl.DataFrame  # one column "word"
    localities: pl.DataFrame  # "cell", "inferred"
    unlocated: bool
    unlocated_terms: pl.DataFrame | None  # one column "term"
    rounded: bool = False


@functools.cache
def extents() -> dict[str, float]:
    """Each category's extent in metres (how far apart two records of one place may be)."""
    return {c.id: c.extent_m for c in taxonomy().categories.values()}


def polars_engine(rows: int) -> Literal["in-memory", "auto"]:
    """Polars' in-memory engine for a few records (the streaming engine's start-up costs
    several milliseconds, which a request for one record feels), streaming for many."""
    return "in-memory" if rows < 10_000 else "auto"


# Ring-1 of a cell reaches at least one cell edge: res 8 ~ 460 m, 7 ~ 1.2 km, 6 ~ 3.2 km.
_RING_STEPS: Final = ((300.0, 8), (1200.0, 7))  # (largest extent in metres, resolution)
_WIDEST_RING: Final = 6
# The resolution of a rounded record's ring of typo variants (~1.2 km: a point to 2
# decimals is up to ~0.8 km off), where every located record's typo variants are keys.
TYPO_RING: Final = 7
# The cell of the ``typo`` key (~36 km²), and how many of a name's first letters (spaces
# taken out) its typo variants are made of: enough to tell most names apart, few enough
# that a typo is likely among them (a typo past them leaves the variants equal).
TYPO_CELL: Final = 6
TYPO_LETTERS: Final = 12


def resolution_expr(extent_m: pl.Expr) -> pl.Expr:
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
    """:func:`resolution_expr` of one extent."""
    return next((res for top, res in _RING_STEPS if extent_m <= top), _WIDEST_RING)
