"""When two records' values of an attribute are one value.

A website is the site it names ("https://www.Aalto.fi/" and "http://aalto.fi" are one);
an address votes by its street and house number, lower case; a street one record
abbreviates ("Liisank.") is the street another record of the place spells out
("Liisankatu", same number); and two house numbers agree where one building has both
("14" and "14-20", "20" and "20 B").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import numpy as np
import polars as pl

__all__ = [
    "address_key",
    "number_spans",
    "numbers_agree",
    "plain_numbers",
    "site",
    "spelled_out",
]

# A house number's key as normalization writes it: a number, its letter, and a range's
# end ("14", "20b", "14-20"; ``poiflow.normalize.house_numbers.housenumber_key``). A
# number of more digits than any building's is compared as written (nor would it fit).
_SPAN: Final = re.compile(r"^(\d{1,9})([^\W\d_]*)(?:-(\d{1,9})[^\W\d_]*)?$")
WIDEST_RANGE: Final = 20
"""A range of house numbers wider than this ("1-99") is compared as written: no building
spans it, and the Queens-style "37-15" is one number."""

_L: Final = "label"


def address_key(address: pl.Expr) -> pl.Expr:
    """Street and building, lower case (null without a street): what an address votes by.
    The building is the house number's first number: "14", "14 A" and "14-16" vote
    together (a number without one, as written)."""
    number = address.struct.field("housenumber").fill_null("").str.to_lowercase()
    return pl.when(address.struct.field("street").is_not_null()).then(
        pl.concat_str(
            address.struct.field("street").str.to_lowercase(),
            pl.coalesce(number.str.extract(r"^(\d+)", 1), number),
            separator="\x1f",
        )
    )


def plain_numbers(chosen: pl.DataFrame, voters: pl.DataFrame) -> pl.DataFrame:
    """``chosen`` (label, address: each place's golden address) with its house number as
    its building's number ("14") where its ``voters`` (label, address: the records whose
    address won, one building's by :func:`address_key`) write the number more than one
    way ("14", "14 A", "14-16"; "59 A" and "59b"): the number every one of them agrees
    with. Where they write it one way, it stays as written."""
    number = pl.col("address").struct.field("housenumber")
    # One building's numbers of digits alone are one number: only a place with another
    # form among its voters ("14 A", "14-16") can have two.
    formed = voters.filter(~number.str.contains(r"^\d+$")).select(_L).unique()
    if formed.is_empty():
        return chosen
    plain = (
        voters.join(formed, on=_L, how="semi")
        .filter(number.is_not_null())
        .group_by(_L)
        .agg(
            number.n_unique().alias("ways"),
            number.first().str.extract(r"^(\d+)", 1).alias("plain"),
        )
        .filter(pl.col("ways") > 1)
    )
    if plain.is_empty():
        return chosen
    return (
        chosen.join(plain.select(_L, "plain"), on=_L, how="left")
        .with_columns(
            pl.col("address").struct.with_fields(
                pl.coalesce(pl.col("plain"), pl.field("housenumber")).alias("housenumber")
            )
        )
        .drop("plain")
    )


def site(url: pl.Expr) -> pl.Expr:
    """A website as the site it names: without its scheme, letter case, a "www." and a
    trailing "/" ("https://www.Aalto.fi/" and "http://aalto.fi" are one)."""
    return (
        url.str.to_lowercase()
        .str.replace(r"^[a-z][a-z0-9+.-]*://", "")
        .str.replace(r"^www\.", "")
        .str.strip_suffix("/")
    )


def spelled_out(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (label, pos, address, address_key, weight) with the address key of a
    record whose street abbreviates a word ("Liisank.", "Mannerheimint.") replaced by
    the key of a record of the same place that spells it out with the same house number
    (the first such, by position), and ``abbreviated`` (1 where the street has a word
    ending in ".")."""
    street = pl.col("address").struct.field("street")
    frame = frame.with_columns(
        street.str.contains(r"\.(\s|,|/|$)").fill_null(False).cast(pl.Int32).alias("abbreviated")
    )
    short = frame.filter(pl.col("abbreviated") == 1).select(
        _L,
        "pos",
        street.alias("short"),
        pl.col("address_key").str.split("\x1f").list.last().alias("number"),
    )
    if short.is_empty():
        return frame
    full = frame.filter((pl.col("abbreviated") == 0) & pl.col("address_key").is_not_null()).select(
        _L,
        pl.col("pos").alias("full_pos"),
        street.alias("long"),
        "address_key",
        pl.col("address_key").str.split("\x1f").list.last().alias("number"),
    )
    found = short.join(full, on=[_L, "number"]).with_row_index("pair")
    if found.is_empty():
        return frame
    spelled = (
        found.join(_abbreviating(found), on="pair", how="semi")
        .sort(_L, "pos", "full_pos")
        .group_by(_L, "pos", maintain_order=True)
        .first()
        .select(_L, "pos", pl.col("address_key").alias("spelled_key"))
    )
    return (
        frame.join(spelled, on=[_L, "pos"], how="left", maintain_order="left")
        .with_columns(pl.coalesce("spelled_key", "address_key").alias("address_key"))
        .drop("spelled_key")
    )


def _abbreviating(pairs: pl.DataFrame) -> pl.DataFrame:
    """The ``pair`` of each row of ``pairs`` whose street ``short`` is ``long`` with some
    words cut and ended with "." ("Liisank." of "Liisankatu"; "Aleksanterink./
    Mannerheimint." of "Aleksanterinkatu/Mannerheimintie"): word by word, in polars."""
    words = pairs.select(
        "pair",
        *(
            pl.col(c).str.to_lowercase().str.extract_all(r"[^\s,/]+").alias(c)
            for c in ("short", "long")
        ),
    ).filter(pl.col("short").list.len() == pl.col("long").list.len())
    cut, whole = pl.col("short"), pl.col("long")
    stem = cut.str.strip_suffix(".")
    return (
        words.explode("short", "long")
        .group_by("pair")
        .agg(
            (
                (cut == whole)
                | (cut.str.ends_with(".") & whole.str.starts_with(stem) & (whole != stem))
            ).all()
        )
        .filter(pl.col("short"))
        .select("pair")
    )


def number_spans(keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, last, letter)`` of each house number key: the numbers it covers (a range
    "14-20" from 14 to 20, a number from itself to itself) and a code of its letter (0 for
    none; a range has none). -1 in ``first`` and ``last`` for a key that is no number or
    range (compared as written): no digits, more than nine, a range backwards or wider
    than ``WIDEST_RANGE``."""
    first = np.full(len(keys), -1, dtype=np.int64)
    last = np.full(len(keys), -1, dtype=np.int64)
    letter = np.zeros(len(keys), dtype=np.int64)
    letters: dict[str, int] = {"": 0}
    for i, key in enumerate(keys):
        read = _SPAN.match(key)
        if read is None:
            continue
        lo = int(read[1])
        hi = lo if read[3] is None else int(read[3])
        if lo <= hi <= lo + WIDEST_RANGE:
            first[i], last[i] = lo, hi
            if read[3] is None:
                letter[i] = letters.setdefault(read[2], len(letters))
    return first, last, letter


def numbers_agree(
    spans: tuple[np.ndarray, np.ndarray, np.ndarray], left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """Whether house numbers ``left[i]`` and ``right[i]`` (indexes into ``spans``, of
    :func:`number_spans`; both present) are one building's: the same key, or numbers
    that meet on the same side of the street (one within the other's range: "16" and
    "14-20", not "15") and no two letters that differ ("20" and "20b", not "20a" and
    "20b")."""
    first, last, letter = spans
    a_first, b_first = first[left], first[right]
    meet = (
        (a_first >= 0)
        & (b_first >= 0)
        & (a_first <= last[right])
        & (b_first <= last[left])
        & ((a_first - b_first) % 2 == 0)
    )
    a_letter, b_letter = letter[left], letter[right]
    letters = (a_letter == b_letter) | (a_letter == 0) | (b_letter == 0)
    return np.asarray((left == right) | (meet & letters), dtype=bool)
