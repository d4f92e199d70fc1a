"""Which name a golden place shows, and how sure it is.

The records of a place vote for a name by its key (folded, legal forms aside: what
``normalize`` made of it), each by its source's trust; between two keys backed equally,
one is set back that looks like a variant of the other: the other with words added at its
end (a branch: "subway kamppi" beside "subway"), or a typo of it (as many words, a couple
of edits, and words fewer records of the run carry: ``MergeConfig.name_words``); then
recency decides. Within the winning key, the spelling most records write wins, a legal
form aside, and is written at its best: without the legal form where any record writes it
so, mixed case over all caps, accents kept, spelled out. Its confidence is the probability
that it is right (``belief.backing``): the records that spell it so back it, and a
variant's records (they meant it) as half a record each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from poiflow.conflate.belief import backing, tally
from poiflow.text import LEGAL_FORMS

__all__ = ["bare", "choose_name", "spelling", "spellings", "with_name_forms"]

_L: Final = "label"
_TYPO_EDITS: Final = 2  # a name this few edits from another may be a typo of it
_VARIANT_BACKS: Final = 0.5  # a variant's record backs the name it meant, as half a record
# Legal forms at the end of a spelling ("black store ltd", "kinopalatsi sp z o o"), a word
# kept before them.
_LEGAL_TAIL: Final = (
    r"(?:\s+(?:"
    + "|".join(r"\s+".join(form) for form in sorted(LEGAL_FORMS, key=lambda f: (-len(f), f)))
    + r"))+$"
)


def spelling(name: pl.Expr) -> pl.Expr:
    """A name's spelling with case, accents and punctuation aside: "Café Aalto" and
    "CAFE AALTO" are one spelling, "Cafe Aalto Oy" another."""
    return (
        name.str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
    )


def spellings(names: pl.Series) -> pl.Series:
    """:func:`spelling` of each of ``names``, spelled once per distinct name."""
    spelled = _per_name(
        names.to_frame("name"),
        lambda distinct: distinct.with_columns(spelling(pl.col("name")).alias("spelling")),
    )
    return spelled.get_column("spelling").alias(names.name)


def with_name_forms(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (a record a row, its primary ``name`` among its columns) with what
    :func:`choose_name` reads of the name: ``mixed`` (1 in mixed case), ``nonascii``,
    ``length`` and ``words``; its ``spelling``, that spelling without legal forms
    (``bare``) and ``legal`` (1 where they differ). Made once per distinct name."""
    name = pl.col("name")

    def forms(distinct: pl.DataFrame) -> pl.DataFrame:
        return (
            distinct.with_columns(
                ((name != name.str.to_uppercase()) & (name != name.str.to_lowercase()))
                .cast(pl.Int32)
                .alias("mixed"),
                (
                    name.str.len_chars() - name.str.replace_all(r"[^\x00-\x7F]", "").str.len_chars()
                ).alias("nonascii"),
                name.str.len_chars().alias("length"),
                name.str.count_matches(r"\S+").alias("words"),
                spelling(name).alias("spelling"),
            )
            .with_columns(bare(pl.col("spelling")).alias("bare"))
            .with_columns((pl.col("bare") != pl.col("spelling")).cast(pl.Int32).alias("legal"))
        )

    return _per_name(frame, forms)


def _per_name(frame: pl.DataFrame, forms: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    """``frame`` with the columns ``forms`` adds to a frame of its distinct ``name``s,
    joined back in order: the records of a place mostly share their names (the
    generator's million records hold 278k), so each is worked on once."""
    distinct = forms(frame.select(pl.col("name").unique()))
    return frame.join(distinct, on="name", how="left", maintain_order="left", nulls_equal=True)


def bare(spelled: pl.Expr) -> pl.Expr:
    """A spelling (:func:`spelling`) without the legal forms at its end."""
    return spelled.str.replace(_LEGAL_TAIL, "")


def choose_name(frame: pl.DataFrame, words: Mapping[str, int]) -> pl.DataFrame:
    """Per label: the golden name (``primary``), the position of the record it was taken
    from (``names_pos``), its spelling without legal forms (``bare``) and how sure it is
    (``name_confidence``).

    Args:
        frame: The records, a row each: ``label``, ``pos`` (its position in its place),
            ``name``, ``name_key``, ``trust``, ``weight`` (trust and recency),
            ``odds_name`` (``belief.evidence``), and of the name: ``bare``,
            ``spelling_weight`` (the weight of the records that spell it so), ``legal``
            (1 where it ends in a legal form), ``mixed`` (1 in mixed case),
            ``nonascii``, ``words`` and ``length``.
        words: How many records of the run carry each word of a name key.
    """
    name_vote, meant = _name_vote(frame, words)
    # Within the winning name: the spelling most records write (case, accents and a legal
    # form aside), then its best-written form: no legal form (a place's name, not its
    # company's), mixed case, accents kept, no extra words, spelled out ("International"
    # over "Intl").
    name_pick = (
        frame.select(
            _L,
            "name_key",
            "name",
            "bare",
            "spelling_weight",
            "legal",
            "mixed",
            "nonascii",
            "words",
            "length",
            "pos",
        )
        .join(name_vote, on=_L)
        .filter(pl.col("name_key") == pl.col("name_key_won"))
        .sort(
            [_L, "spelling_weight", "legal", "mixed", "nonascii", "words", "length", "pos"],
            descending=[False, True, False, True, True, False, True, False],
        )
        .group_by(_L, maintain_order=True)
        .first()
        .select(_L, pl.col("name").alias("primary"), pl.col("pos").alias("names_pos"), "bare")
    )
    # How sure the name is, as written (case and accents aside): the records that spell
    # it so back it, and those whose name is a variant of it (a branch, a typo); each
    # other spelling is another value.
    variant = pl.col("variant").is_not_null()
    return name_pick.join(
        backing(
            frame.lazy()
            .select(_L, "name_key", "bare", "odds_name")
            .join(
                name_pick.lazy().select(_L, pl.col("bare").alias("chosen")),
                on=_L,
                maintain_order="left",
            )
            .join(
                meant.lazy().with_columns(pl.lit(True).alias("variant")),
                on=[_L, "name_key"],
                how="left",
                maintain_order="left",
            )
            .with_columns(
                pl.when(variant).then(pl.col("chosen")).otherwise(pl.col("bare")).alias("bare"),
                pl.when(variant)
                .then(pl.col("odds_name") * _VARIANT_BACKS)
                .otherwise(pl.col("odds_name"))
                .alias("odds_name"),
            ),
            "bare",
            "chosen",
            "odds_name",
        )
        .collect()
        .rename({"confidence": "name_confidence"}),
        on=_L,
    )


def _name_vote(frame: pl.DataFrame, words: Mapping[str, int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per label: the winning name key (``name_key_won``). The key most trusted records
    give wins; between keys backed equally, one is set back that looks like a variant of
    another: that key with words added at its end (a branch: "subway kamppi" beside
    "subway"), or a typo of it (as many words, at most ``_TYPO_EDITS`` edits, and words
    that fewer records of the run carry: "erottajna majakka" beside "erottajan
    majakka"); then recency (``weight``), then the first voter. Also the keys set back
    as variants of the key that won (``label, name_key``): their records meant it."""
    counted = (
        frame.filter(pl.col("name_key").is_not_null())
        .group_by(_L, "name_key")
        .agg(
            tally(pl.col("trust")).alias("votes"),
            tally(pl.col("weight")).alias("tally"),
            pl.col("pos").min().alias("first"),
        )
    )
    tied = counted.filter(pl.len().over(_L, "votes") > 1).select(_L, "votes", "name_key")
    variants = pl.DataFrame(
        schema={_L: pl.Int64, "name_key": pl.String, "name_key_other": pl.String}
    )
    if tied.height:
        spelled = (
            tied.select("name_key")
            .unique()
            .with_columns(pl.col("name_key").str.split(" ").alias("word"))
            .explode("word")
        )
        needed = spelled["word"].unique().drop_nulls().to_list()
        carried = pl.DataFrame(
            {"word": needed, "records": [words.get(w, 0) for w in needed]},
            schema={"word": pl.String, "records": pl.Int64},
        )
        commonness = (
            spelled.join(carried, on="word", how="left", maintain_order="left")
            .group_by("name_key")
            .agg(
                tally(pl.col("records").fill_null(0).log1p()).alias("common"),
                pl.len().alias("words"),
            )
        )
        rated = tied.join(commonness, on="name_key")
        pairs = rated.join(rated, on=[_L, "votes"], suffix="_other").filter(
            pl.col("name_key") != pl.col("name_key_other")
        )
        branch = pl.col("name_key").str.starts_with(pl.col("name_key_other") + " ")
        alike = (pl.col("words") == pl.col("words_other")) & (
            pl.col("common") < pl.col("common_other")
        )
        near = pairs.filter(alike)
        edits = process.cpdist(
            near["name_key"].to_list(),
            near["name_key_other"].to_list(),
            scorer=Levenshtein.distance,
            workers=1,
        )
        variants = pl.concat(
            [
                pairs.filter(branch).select(_L, "name_key", "name_key_other"),
                near.filter(pl.Series(np.asarray(edits) <= _TYPO_EDITS)).select(
                    _L, "name_key", "name_key_other"
                ),
            ]
        )
    won = (
        counted.join(
            variants.select(_L, "name_key").unique().with_columns(pl.lit(1).alias("setback")),
            on=[_L, "name_key"],
            how="left",
        )
        .with_columns(pl.col("setback").fill_null(0))
        .sort(
            [_L, "votes", "setback", "tally", "first"],
            descending=[False, True, False, True, False],
        )
        .group_by(_L, maintain_order=True)
        .agg(pl.col("name_key").first().alias("name_key_won"))
    )
    # The keys set back as variants of the key that won: their records meant it.
    meant = (
        variants.join(won, on=_L)
        .filter(pl.col("name_key_other") == pl.col("name_key_won"))
        .select(_L, "name_key")
        .unique()
    )
    return won, meant
