"""Golden records: one place per cluster, each attribute chosen with provenance.

Each attribute is chosen by agreement, source trust and recency: the records of a cluster
vote for a value (by its folded key, so "CAFE AALTO" and "Café Aalto" vote together),
weighted by their source's trust, slightly by how recent they are and, for the category
and the address, by how often their source is right; the winning value
is written as its best-spelled member wrote it. The name has rules of its own
(``poiflow.conflate.naming``): a legal form aside, and between two names backed alike, a
branch's added words and a typo yield.

The confidence of an attribute is the probability that the chosen value is right, given
which sources agree on it and how often each source is right (learned per attribute,
``reliability.source_accuracy``; the model is ``poiflow.conflate.belief``'s). The point
has rules of its own (``poiflow.conflate.point``): a weighted median, then the mean of the
points near it, right within ``point.NEAR_M`` metres. Values alike are one
(``poiflow.conflate.alike``): a website is the site it names, an abbreviated street the
street spelled out. The
place's confidence is the probability that it is one whole place of the world, not two
merged nor a fragment of one (``belief.place_confidence``, from ``MergeConfig.whole`` and
``.split``: how much of the world each source covers, ``reliability.place_coverage``).

Provenance follows Overture's ``sources``: every member record, plus one entry per
attribute naming the record it was taken from.

What the clusters say of each source (``poiflow.conflate.reliability``) comes in the config:
how far its points lie from their places' (the golden point weighs each point by it)
and how often its values of each attribute are right (the confidence above).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.alike import address_key, plain_numbers, site, spelled_out
from poiflow.conflate.belief import (
    backing,
    evidence,
    kept_whole,
    place_confidence,
    sure,
    tally,
)
from poiflow.conflate.ids import place_ids
from poiflow.conflate.naming import choose_name, with_name_forms
from poiflow.conflate.point import golden_point
from poiflow.schema import (
    ADDRESS_FIELDS,
    ATTRIBUTE_CONFIDENCE_TYPE,
    GOLDEN_PLACE_SCHEMA,
    MEMBERSHIP_SCHEMA,
    PLACE_ATTRIBUTE_NAMES,
)

__all__ = [
    "CONFIDENT_ATTRIBUTES",
    "MergeConfig",
    "merge_clusters",
]

_LEAST_SAY: Final = 1e-3  # a source no better than chance still votes, barely
# The attributes that have a confidence of their own (``attribute_confidence``).
CONFIDENT_ATTRIBUTES: Final = tuple(field.name for field in ATTRIBUTE_CONFIDENCE_TYPE)
# The attributes whose vote weighs each record by its source's accuracy (``odds_<name>``):
# those with a confidence, and opening hours (voted so, with no confidence of their own).
_WEIGHED: Final = (*CONFIDENT_ATTRIBUTES, "opening_hours")
# Provenance: each chosen attribute's property, and the column of the record it came from.
_GIVERS: Final = (
    ("names", "names_pos"),
    ("categories", "categories_pos"),
    ("geometry", "geometry_pos"),
    ("address", "address_pos"),
    ("phones", "phones_giver"),
    ("websites", "websites_giver"),
    ("opening_hours", "opening_hours_pos"),
)
_L: Final = "label"


@dataclass(frozen=True)
class MergeConfig:
    """How attribute values are chosen.

    Attributes:
        trust: Weight of each source's vote (default 1.0 for sources not named).
        recency_weight: Extra weight of the most recent record in a cluster (linear in age
            rank; 0 turns recency off).
        precision_m: How far each source's points typically lie from their places, in
            metres (a run learns it from its clusters, ``reliability.source_precision``; a
            setting overrides it per source): a point weighs by the inverse square, so a
            source geocoded to the street yields to one surveyed on the spot. A source
            not named weighs as the least precise named.
        accuracy: Per attribute of ``CONFIDENT_ATTRIBUTES``, how often each source's
            value is right (learned likewise, ``reliability.source_accuracy``): what the
            attribute's confidence is reckoned from, a weight of the category's and the
            address's vote, and between phones equally supported, what puts first the
            one from sources right more often (a stale number yields to a current one).
            A source not named counts as the least named, or as
            ``belief.DEFAULT_ACCURACY`` where none is.
        name_words: How many records of the run carry each word of a name key (learned,
            ``reliability.name_words``): between two names a place's records back
            equally, a typo's word is rarer than the word it misspells.
        whole: Per source, how often a place of its records alone is a whole place of
            the world, not a fragment of one the matcher split (learned from how much
            of the world each source covers, ``reliability.place_coverage``): the
            confidence of a place of one record. A source not named counts as the
            least named.
        split: Per source, how often a place without it has a record of it split off:
            a place of more records is as sure as its matches and the product of
            ``1 - split`` over the sources it lacks. Without ``whole``, a place's
            confidence is the older ``(1 - 0.5 ** (sources + 1))`` times its mean
            match strength.
    """

    trust: Mapping[str, float] = field(default_factory=dict)
    recency_weight: float = 0.2
    precision_m: Mapping[str, float] = field(default_factory=dict)
    accuracy: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    name_words: Mapping[str, int] = field(default_factory=dict)
    whole: Mapping[str, float] = field(default_factory=dict)
    split: Mapping[str, float] = field(default_factory=dict)


def _vote(
    frame: pl.DataFrame, key: str, name: str, odds: str | None = None, *, weigh: bool = False
) -> pl.DataFrame:
    """Per label: the winning value of ``key`` (most weight; ties to the first voter), the
    position of its first voter and, given the records' weight of evidence (``odds``),
    the probability that it is right (``belief.sure``). With ``weigh``, each record's weight
    is multiplied by its evidence: a source right more often has more say."""
    summed = pl.col(odds).sum() if odds else pl.lit(0.0)  # without odds: no confidence
    weight = pl.col("weight")
    if weigh and odds:
        weight = weight * pl.col(odds).clip(lower_bound=_LEAST_SAY)
    counted = (
        frame.lazy()
        .filter(pl.col(key).is_not_null())
        .group_by(_L, key)
        .agg(
            tally(weight).alias("tally"),
            pl.col("pos").min().alias("first"),
            summed.alias("evidence"),
        )
    )
    won = counted.sort([_L, "tally", "first"], descending=[False, True, False]).group_by(
        _L, maintain_order=True
    )
    picked = (pl.col(key).first().alias(name), pl.col("first").first().alias(f"{name}_first"))
    if not odds:
        return won.agg(*picked).collect()
    return (
        won.agg(
            *picked,
            pl.col("evidence").first().alias("chosen"),
            pl.col("evidence").slice(1).alias("others"),
        )
        .with_columns(sure(pl.col("chosen"), pl.col("others")).alias(f"{name}_confidence"))
        .drop("chosen", "others")
        .collect()
    )


def _positions(labels: np.ndarray) -> np.ndarray:
    """Each row's position within its run of equal ``labels`` (sorted): 0, 1, ... per
    label (what ``int_range(len()).over(label)`` gives, without a group-by)."""
    n = len(labels)
    if n == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.diff(labels, prepend=labels[0] - 1))
    run_start = np.repeat(starts, np.diff(np.append(starts, n)))
    return np.arange(n, dtype=np.int64) - run_start


def _first_by(frame: pl.DataFrame, by: list[str], descending: list[bool]) -> pl.DataFrame:
    return (
        frame.sort([_L, *by], descending=[False, *descending])
        .group_by(_L, maintain_order=True)
        .first()
    )


def _spellings(listed: pl.LazyFrame) -> pl.LazyFrame:
    """Per label and group of alike values (``alike``): the spelling most records write
    (a secure web address first, between two as common), and the first record that
    writes it (``giver``)."""
    return (
        listed.group_by(_L, "alike", "value")
        .agg(tally(pl.col("weight")).alias("written"), pl.col("pos").min().alias("giver"))
        .with_columns(pl.col("value").str.starts_with("https://").alias("secure"))
        .sort(
            [_L, "alike", "written", "secure", "value"],
            descending=[False, False, True, True, False],
        )
        .group_by(_L, "alike", maintain_order=True)
        .agg(pl.col("value").first(), pl.col("giver").first())
    )


def _union(
    frame: pl.DataFrame,
    column: str,
    belief: Mapping[str, float] | None = None,
    odds: str | None = None,
    same: Callable[[pl.Expr], pl.Expr] | None = None,
) -> pl.DataFrame:
    """Per label: every value of a list column, most supported first (weighted, with
    ``belief``, by each source's, the least named for others; ties to the plain
    support); the position of the first value's first giver; and, given the records'
    weight of evidence (``odds``), the probability that the first value is right
    (``belief.sure``: the records that list it back it, each other record backs its own first
    value). Values alike by ``same`` are one: listed once, as most records write it
    (``_spellings``), and backed by every record that lists any of them."""
    rows = frame.lazy()
    if belief:
        least = min(belief.values())
        rows = rows.with_columns(
            (
                pl.col("weight")
                * pl.col("source").replace_strict(
                    dict(belief), default=least, return_dtype=pl.Float64
                )
            ).alias("belief")
        )
    else:
        rows = rows.with_columns(pl.col("weight").alias("belief"))
    listed_values = (
        rows.select(_L, "pos", "weight", "belief", pl.col(column).alias("value"))
        .explode("value")
        .drop_nulls("value")
    )
    backers = [tally(pl.col("weight")).alias("support"), tally(pl.col("belief")).alias("believed")]
    if same is None:
        support = listed_values.group_by(_L, "value").agg(
            *backers, pl.col("pos").min().alias("giver")
        )
    else:  # alike values are one, spelled as most write it
        listed_values = listed_values.with_columns(same(pl.col("value")).alias("alike"))
        support = (
            listed_values.unique([_L, "pos", "alike"], keep="first", maintain_order=True)
            .group_by(_L, "alike")
            .agg(*backers)
            .join(_spellings(listed_values), on=[_L, "alike"])
        )
    support = support.sort(
        [_L, "believed", "support", "value"], descending=[False, True, True, False]
    )
    chosen = support.group_by(_L, maintain_order=True).agg(
        pl.col("value").alias(column),
        pl.col("value").first().alias("top"),
        pl.col("giver").first().alias(f"{column}_giver"),
    )
    if not odds:  # no confidence asked
        return chosen.drop("top").collect()
    listed, top = pl.col(column), pl.col("top")
    if same is not None:
        listed, top = listed.list.eval(same(pl.element())), same(top)
    backed = backing(
        rows.filter(pl.col(column).list.len() > 0)
        .join(chosen.select(_L, "top"), on=_L, maintain_order="left")
        .select(_L, listed.alias("listed"), top.alias("top"), pl.col(odds).alias("odds"))
        .select(
            _L,
            pl.when(pl.col("listed").list.contains(pl.col("top")))
            .then(pl.col("top"))
            .otherwise(pl.col("listed").list.first())
            .alias("backs"),
            "top",
            "odds",
        ),
        "backs",
        "top",
        "odds",
    ).rename({"confidence": f"{column}_confidence"})
    return chosen.drop("top").join(backed, on=_L).collect()


def merge_clusters(
    records: pa.Table,
    labels: np.ndarray,
    best_probability: np.ndarray,
    config: MergeConfig | None = None,
    ids: Mapping[int, str] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Golden places and membership from clustered records.

    Args:
        records: The records (``PLACE_SCHEMA``).
        labels: Cluster label of each record.
        best_probability: Each record's strongest match probability within its cluster
            (1.0 for a record alone).
        config: Trust and recency.
        ids: The place id of each cluster label (see ``ids.assign_ids``); by default a
            hash of the cluster's first member.

    Returns:
        ``(places, membership)`` as ``GOLDEN_PLACE_SCHEMA`` and ``MEMBERSHIP_SCHEMA``; the
        places sorted by id, independent of the order of the input records. Every rule is
        a polars group-by over all clusters at once; ties are broken by the members'
        (source, id) order, never by row numbers.
    """
    config = config or MergeConfig()
    base = pl.DataFrame(
        records.select(["source", "id", *PLACE_ATTRIBUTE_NAMES, "keys"])
    ).with_columns(
        pl.Series(_L, labels.astype(np.int64)),
        pl.Series("best", best_probability.astype(np.float64)),
    )
    known_times = pl.col("update_time").n_unique().over(_L) - pl.col(
        "update_time"
    ).is_null().any().over(_L).cast(pl.Int64)
    frame = base.sort(_L, "source", "id")
    frame = (
        frame.with_columns(
            pl.Series("pos", _positions(frame[_L].to_numpy())),
            pl.col("names").struct.field("primary").alias("name"),
            pl.col("names").struct.field("alternates").alias("alternates"),
            pl.col("keys").struct.field("name").alias("name_key"),
            pl.col("categories").struct.field("primary").alias("category"),
            pl.col("operating_status").alias("status"),
            (pl.col("update_time").rank("dense").over(_L) / known_times)
            .fill_null(0.0)
            .alias("recency"),
            pl.col("source")
            .replace_strict(dict(config.trust), default=1.0, return_dtype=pl.Float64)
            .alias("trust"),
            address_key(pl.col("address")).alias("address_key"),
            pl.sum_horizontal(
                [
                    pl.col("address").struct.field(f).is_not_null().cast(pl.Int32)
                    for f in ADDRESS_FIELDS
                ]
            ).alias("completeness"),
            pl.coalesce(
                pl.col("brand").struct.field("name"), pl.col("brand").struct.field("wikidata")
            ).alias("brand_key"),
        )
        .with_columns(
            (pl.col("trust") * (1 + config.recency_weight * pl.col("recency"))).alias("weight"),
            pl.when(pl.col("category") != "other").then(pl.col("category")).alias("category_known"),
            *(evidence(config.accuracy.get(attribute, {}), attribute) for attribute in _WEIGHED),
        )
        .pipe(with_name_forms)
        .with_columns(tally(pl.col("weight")).over(_L, "bare").alias("spelling_weight"))
    )
    rows = frame.select(_L, "pos", "source", "id", "update_time", "best")

    name_pick = choose_name(frame, config.name_words)

    alternates_long = pl.concat(
        [
            frame.select(
                _L,
                "pos",
                pl.lit(0, pl.Int64).alias("sub"),
                pl.col("name").alias("value"),
                pl.lit(None, pl.String).alias("language"),
                pl.lit("alternate").alias("variant"),
            ),
            frame.select(_L, "pos", "alternates")
            .explode("alternates")
            .drop_nulls("alternates")
            .with_columns(
                pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(_L, "pos").alias("sub")
            )
            .select(
                _L,
                "pos",
                "sub",
                pl.col("alternates").struct.field("value"),
                pl.col("alternates").struct.field("language"),
                pl.col("alternates").struct.field("variant"),
            ),
        ]
    ).join(name_pick.select(_L, "primary"), on=_L)
    alternates = (
        alternates_long.with_columns(pl.col("value").str.to_lowercase().alias("folded"))
        .filter(pl.col("folded") != pl.col("primary").str.to_lowercase())
        .sort(_L, "pos", "sub")
        .unique([_L, "folded"], keep="first", maintain_order=True)
        .group_by(_L, maintain_order=True)
        .agg(pl.struct("value", "language", "variant").alias("alternates"))
    )

    category = _vote(frame, "category_known", "category_won", "odds_category", weigh=True)
    fallback = _vote(frame, "category", "category_any", "odds_category", weigh=True)
    category = fallback.join(category, on=_L, how="left").select(
        _L,
        pl.coalesce("category_won", "category_any").alias("category"),
        pl.when(pl.col("category_won").is_not_null())
        .then(pl.col("category_won_confidence"))
        .otherwise(pl.col("category_any_confidence"))
        .alias("category_confidence"),
        pl.when(pl.col("category_won").is_not_null())
        .then(pl.col("category_won_first"))
        .otherwise(pl.col("category_any_first"))
        .alias("categories_pos"),
    )
    other_categories = (
        frame.select(_L, pl.col("category").alias("other"))
        .drop_nulls("other")
        .join(category.select(_L, "category"), on=_L)
        .filter(pl.col("other") != pl.col("category"))
        .unique([_L, "other"])
        .sort(_L, "other")
        .group_by(_L, maintain_order=True)
        .agg(pl.col("other").alias("alternate"))
    )

    centre, medoid = golden_point(frame, config.precision_m)

    # A street one record abbreviates ("Liisank.") votes with the same street spelled out
    # by another record of the place ("Liisankatu", same number); the spelled-out wins.
    addressed = spelled_out(
        frame.select(_L, "pos", "address", "address_key", "weight", "odds_address")
    )
    address_vote = _vote(addressed, "address_key", "address_won", "odds_address", weigh=True)
    voters = (
        addressed.join(
            frame.select(_L, "pos", "completeness"), on=[_L, "pos"], maintain_order="left"
        )
        .join(address_vote, on=_L, maintain_order="left")
        .filter(pl.col("address_key") == pl.col("address_won"))
    )
    address = plain_numbers(
        _first_by(
            voters, ["completeness", "abbreviated", "weight", "pos"], [True, False, True, False]
        ).select(
            _L,
            "address",
            pl.col("pos").alias("address_pos"),
            pl.col("address_won_confidence").alias("address_confidence"),
        ),
        voters.select(_L, "address"),
    )

    phones = _union(frame, "phones", config.accuracy.get("phone"), "odds_phone")
    websites = _union(frame, "websites", odds="odds_website", same=site)
    emails = _union(frame, "emails")
    brand_vote = _vote(frame, "brand_key", "brand_won")
    brand = (
        frame.select(_L, "pos", "brand")
        .join(brand_vote, on=_L)
        .filter(pl.col("pos") == pl.col("brand_won_first"))
        .select(_L, "brand")
    )
    # Hours are spelled one way by normalization, so records that agree write one value;
    # a source whose hours agree with the others' more often (current, not stale) has
    # more say.
    hours = _vote(frame, "opening_hours", "opening_hours", "odds_opening_hours", weigh=True).select(
        _L, "opening_hours", pl.col("opening_hours_first").alias("opening_hours_pos")
    )
    status = _vote(frame, "status", "operating_status").select(_L, "operating_status")
    totals = (
        frame.group_by(_L)
        .agg(
            pl.len().alias("members"),
            pl.col("source").n_unique().alias("distinct_sources"),
            pl.col("best").mean().alias("strength"),
            pl.col("update_time").max().alias("update_time"),
            pl.col("source").first().alias("first_source"),
            kept_whole(config.split).alias("kept_whole"),
        )
        .with_columns(place_confidence(config.whole).alias("place_confidence"))
    )

    places = (
        totals.join(name_pick, on=_L, how="left")
        .join(alternates, on=_L, how="left")
        .join(category, on=_L, how="left")
        .join(other_categories, on=_L, how="left")
        .join(centre, on=_L, how="left")
        .join(medoid, on=_L, how="left")
        .join(address, on=_L, how="left")
        .join(phones, on=_L, how="left")
        .join(websites, on=_L, how="left")
        .join(emails.select(_L, "emails"), on=_L, how="left")
        .join(brand, on=_L, how="left")
        .join(hours, on=_L, how="left")
        .join(status, on=_L, how="left")
    )
    # Provenance: every member, then the record behind each chosen attribute.
    chosen = pl.concat(
        [
            places.select(
                _L,
                pl.lit(f"/{prop}").alias("property"),
                pl.lit(order).alias("order"),
                pl.col(column).alias("pos"),
            )
            for order, (prop, column) in enumerate(_GIVERS, start=1)
        ]
    ).drop_nulls("pos")
    refs = (
        pl.concat(
            [
                rows.select(_L, pl.lit("").alias("property"), pl.lit(0).alias("order"), "pos"),
                chosen.with_columns(pl.col("pos").cast(pl.Int64)),
            ],
            how="vertical_relaxed",
        )
        .join(rows, on=[_L, "pos"])
        .sort(_L, "order", "pos")
    )
    sources = refs.group_by(_L, maintain_order=True).agg(
        pl.struct(
            "property",
            pl.col("source").alias("dataset"),
            pl.col("id").alias("record_id"),
            "update_time",
            pl.col("best").cast(pl.Float32).alias("confidence"),
        ).alias("sources")
    )
    first_member = rows.filter(pl.col("pos") == 0).select(
        _L, pl.col("source").alias("fs"), pl.col("id").alias("fi")
    )
    places = places.join(sources, on=_L).join(first_member, on=_L)
    id_of = (
        ids
        if ids is not None
        else dict(
            zip(
                first_member[_L].to_list(),
                place_ids(first_member["fs"], first_member["fi"]),
                strict=True,
            )
        )
    )
    places = places.with_columns(
        pl.col(_L).replace_strict(dict(id_of), return_dtype=pl.String).alias("id")
    )

    def share(column: str) -> pl.Expr:
        return pl.col(column).fill_null(0.0).round(4).cast(pl.Float32)

    out = places.select(
        "id",
        pl.struct(pl.col("primary"), pl.col("alternates")).alias("names"),
        pl.when(pl.col("category").is_not_null())
        .then(pl.struct(pl.col("category").alias("primary"), pl.col("alternate").fill_null([])))
        .alias("categories"),
        pl.col("glat").alias("lat"),
        pl.col("glon").alias("lon"),
        "address",
        "phones",
        "websites",
        "emails",
        "brand",
        "opening_hours",
        "operating_status",
        "update_time",
        pl.col("place_confidence").round(4).cast(pl.Float32).alias("confidence"),
        pl.struct(
            share("name_confidence").alias("name"),
            share("category_confidence").alias("category"),
            share("location_confidence").alias("location"),
            share("address_confidence").alias("address"),
            share("phones_confidence").alias("phone"),
            share("websites_confidence").alias("website"),
        ).alias("attribute_confidence"),
        "sources",
        pl.col("members").cast(pl.Int32),
    ).sort("id")
    membership = (
        frame.select("source", "id", _L)
        .join(places.select(_L, pl.col("id").alias("place_id")), on=_L)
        .select("source", "id", "place_id")
        .sort("source", "id")
    )
    return out.to_arrow().cast(GOLDEN_PLACE_SCHEMA), membership.to_arrow().cast(MEMBERSHIP_SCHEMA)
