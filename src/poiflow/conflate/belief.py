"""How sure a golden value is: the probability that it is right, from the records that
give it and those that give another, and how often each record's source is right.

The model is the truth-discovery model "ACCU" (Dong, Berti-Equille and Srivastava, 2009):
before the records are read, the right value and each of ``FALSE_VALUES`` wrong values
are alike likely; each record is right with its source's accuracy, else any wrong value
alike. A record's weight of evidence for its value is then
log(``FALSE_VALUES`` * a / (1 - a)) (:func:`evidence`), and a value's probability is
exp(its evidence) over the sum of every value's (:func:`sure`). So a value one record
gives is as sure as its source; two sources that agree make it near certain; two that
differ split it.

A place's own confidence is the probability that it is one whole place of the world
(:func:`place_confidence`): a place of one record, as often as its source's places alone
are whole; of more, as strongly as its records matched and as likely no source it lacks
has a record of it split off (:func:`kept_whole`; both learned from how much of the world
each source covers, ``reliability.place_coverage``).

Every function is a polars expression or query, over all places at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import polars as pl

__all__ = [
    "DEFAULT_ACCURACY",
    "FALSE_VALUES",
    "backing",
    "evidence",
    "kept_whole",
    "place_confidence",
    "sure",
    "tally",
]

FALSE_VALUES: Final = 3  # the wrong values an attribute may take, for its confidence
DEFAULT_ACCURACY: Final = 0.9  # how often a value is right, with nothing learned of any source
_CLIP: Final = 300.0  # evidence beyond this makes a probability of 0 or 1 to a float's precision


def evidence(accuracy: Mapping[str, float], attribute: str) -> pl.Expr:
    """Each record's weight of evidence for its value of ``attribute`` (``odds_<attribute>``),
    from its source's accuracy (``accuracy``: per source; a source not named counts as the
    least named, or as ``DEFAULT_ACCURACY`` where none is)."""
    accuracy = dict(accuracy)
    least = min(accuracy.values(), default=DEFAULT_ACCURACY)
    right = (
        pl.col("source")
        .replace_strict(accuracy, default=least, return_dtype=pl.Float64)
        .clip(0.01, 0.999)
    )
    return (FALSE_VALUES * right / (1 - right)).log().alias(f"odds_{attribute}")


TALLY_DECIMALS: Final = 9
"""The decimals a sum of weights is compared at, when it chooses between values."""


def tally(weights: pl.Expr) -> pl.Expr:
    """The sum of ``weights`` (an aggregation), as the votes that choose a value compare
    it: rounded to ``TALLY_DECIMALS``. polars adds a group's floats in an order that
    depends on how many threads it runs, so two values backed alike can sum a last bit
    apart, one way round on one machine and the other way on another; rounded, they tie
    everywhere, and the tie goes to the first record as it should."""
    return weights.sum().round(TALLY_DECIMALS)


def sure(chosen: pl.Expr, others: pl.Expr) -> pl.Expr:
    """The probability that a value is right, given the weight of evidence for it
    (``chosen``: the sum of its records' :func:`evidence`) and for each other value given
    (``others``, a list): each value's likelihood is exp(its evidence), and the rest of
    the ``FALSE_VALUES + 1`` values, given by none, have evidence 0."""
    chosen = chosen.clip(-_CLIP, _CLIP)
    unseen = (FALSE_VALUES - others.list.len()).clip(lower_bound=0)
    weight = others.list.eval(pl.element().clip(-_CLIP, _CLIP).exp()).list.sum() + unseen
    return 1.0 / (1.0 + weight * (-chosen).exp())


def backing(
    frame: pl.LazyFrame, column: str, chosen: str, odds: str, by: str = "label"
) -> pl.LazyFrame:
    """Per ``by`` (a place): the probability that its value ``chosen`` of ``column`` is
    right (``confidence``, see :func:`sure`), by the records of ``frame`` that give it and
    those that give another (their values of ``column``; nulls give none); ``odds`` is
    each record's evidence."""
    return (
        frame.filter(pl.col(column).is_not_null())
        .group_by(by, column, maintain_order=True)  # "others" in one order: sums to one bit
        .agg(
            pl.col(odds).sum().alias("evidence"),
            (pl.col(column) == pl.col(chosen)).first().alias("is_chosen"),
        )
        .group_by(by)
        .agg(
            pl.col("evidence").filter(pl.col("is_chosen")).sum().alias("chosen"),
            pl.col("evidence").filter(~pl.col("is_chosen")).alias("others"),
        )
        .select(by, sure(pl.col("chosen"), pl.col("others")).alias("confidence"))
    )


def kept_whole(split: Mapping[str, float]) -> pl.Expr:
    """Per place (an aggregation over its records' ``source``): the chance that no source
    it lacks holds a record of it split off, the product of ``1 - split[t]`` over the
    sources ``t`` of ``split`` not among its records'."""
    if not split:
        return pl.lit(1.0)
    logs = {t: float(np.log1p(-v)) for t, v in split.items()}
    held = (
        pl.col("source")
        .replace_strict(logs, default=0.0, return_dtype=pl.Float64)
        .filter(pl.col("source").is_first_distinct())
        .sum()
    )
    return (pl.lit(sum(logs.values())) - held).exp()


def place_confidence(whole: Mapping[str, float]) -> pl.Expr:
    """How likely a place is one whole place of the world, from its ``members``, its
    ``first_source``, its ``strength`` (its records' mean strongest match probability)
    and ``kept_whole`` (:func:`kept_whole`): a place of one record is as likely whole as
    its source's places alone are (``whole``; a source not named counts as the least
    named); a place of more, as strongly as its records matched and as likely no record
    was split off. Without ``whole``, the older reckoning: ``(1 - 0.5 ** (sources + 1))``
    times the match strength (``distinct_sources``)."""
    if not whole:
        return (1 - 0.5 ** (pl.col("distinct_sources") + 1)) * pl.col("strength")
    alone = pl.col("first_source").replace_strict(
        dict(whole), default=min(whole.values()), return_dtype=pl.Float64
    )
    return (
        pl.when(pl.col("members") == 1)
        .then(alone)
        .otherwise(pl.col("strength") * pl.col("kept_whole"))
    )
