"""The place taxonomy: OSM tags, Overture categories and vendor labels in one tree.

Reference data every stage shares (normalization maps labels into it, blocking reads each
category's extent), so it sits beside the schemas. The tree lives in
``data/categories.yaml`` inside the package; see its header for the fields.
:func:`taxonomy` loads it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Final

import yaml

from poiflow.text import ASCII_ONLY, fold, fold_ascii

__all__ = ["Category", "Taxonomy", "taxonomy"]

# The category of an object whose tag value the taxonomy does not list ("shop=yarn").
_OSM_KEY_FALLBACK: Final = {
    "amenity": "other",
    "shop": "shopping",
    "tourism": "arts_and_entertainment",
    "leisure": "active_life",
    "healthcare": "health",
    "office": "professional_service",
    "craft": "craft_service",
    "aeroway": "transportation",
    "railway": "transportation",
    "public_transport": "transportation",
}
_MAX_TERM_WORDS: Final = 4


@dataclass(frozen=True, slots=True)
class Category:
    """One node of the taxonomy.

    Attributes:
        id: The category id ("cafe").
        parent: The broader category's id, or ``None`` at the top.
        extent_m: How far apart two records of one such place can plausibly be.
    """

    id: str
    parent: str | None
    extent_m: float


class Taxonomy:
    """The place taxonomy, with lookups from OSM tags and from free text."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self.categories: dict[str, Category] = {}
        self._by_osm: dict[tuple[str, str], str] = {}
        self._by_term: dict[str, str] = {}
        self._osm_terms: dict[str, str] = {}
        # A category's own id names it, whichever other category lists it as a term
        # ("attraction" is a term of arts_and_entertainment and a category of its own).
        for category_id in entries:
            self._by_term[fold(category_id.replace("_", " "))] = category_id
        for category_id, entry in entries.items():
            entry = entry or {}
            self.categories[category_id] = Category(
                id=category_id,
                parent=entry.get("parent"),
                extent_m=float(entry.get("extent_m", 80)),
            )
            for tag in entry.get("osm", []):
                key, _, value = str(tag).partition("=")
                self._by_osm.setdefault((key, value), category_id)
                if value != "yes":  # an OSM value is also a vendor's word ("bureau de change")
                    self._osm_terms.setdefault(fold(value.replace("_", " ")), category_id)
            for term in entry.get("terms", []):
                self._by_term.setdefault(fold(str(term)), category_id)
        for term, category_id in self._osm_terms.items():
            self._by_term.setdefault(term, category_id)
        # The words a term starts with: a phrase of a name is looked up only from one.
        self._first_words = frozenset(term.split(" ", 1)[0] for term in self._by_term)
        for category in self.categories.values():
            if category.parent is not None and category.parent not in self.categories:
                msg = f"category '{category.id}' has unknown parent '{category.parent}'"
                raise ValueError(msg)

    def __contains__(self, category_id: object) -> bool:
        return category_id in self.categories

    def ancestors(self, category_id: str) -> list[str]:
        """The chain from ``category_id`` up to its top-level category, both included."""
        chain = []
        current: str | None = category_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self.categories[current].parent if current in self.categories else None
        return chain

    def from_label(self, label: str | None) -> str | None:
        """The category of one source label: an OSM tag ("shop=bakery") or free text.

        An OSM tag whose value the taxonomy does not list falls back to its key's broad
        category ("shop=yarn" -> "shopping"); an unknown key or text gives ``None``.
        """
        if not label:
            return None
        key, sep, value = label.partition("=")
        if sep and key in _OSM_KEY_FALLBACK and " " not in key:
            return self._by_osm.get((key, value.strip())) or _OSM_KEY_FALLBACK[key]
        return self.from_text(label)

    def from_text(self, text: str | None) -> str | None:
        """The category of a free-text label ("Coffee & Tea", "italian_restaurant"), or None."""
        if not text:
            return None
        return _from_text(self, text)

    def from_texts(self, texts: Sequence[str | None]) -> list[str | None]:
        """``[from_text(t) for t in texts]``, for many texts (a run's place names).

        Most names hold no word a term starts with, and most are ASCII, whose folding is a
        few string operations: polars finds those names (all at once, on every core) and
        only the rest are read one by one.
        """
        import polars as pl

        frame = pl.DataFrame({"text": list(texts)}, schema={"text": pl.String})
        words = (
            frame.with_row_index("row")
            .filter(pl.col("text").str.contains(ASCII_ONLY))
            .select("row", fold_ascii(pl.col("text")).str.split(" ").alias("word"))
            .explode("word")
        )
        plural = (
            (pl.col("word").str.len_bytes() > 3)
            & pl.col("word").str.ends_with("s")
            & ~pl.col("word").str.ends_with("ss")
        )
        singular = pl.when(plural).then(
            pl.col("word").str.slice(0, pl.col("word").str.len_bytes() - 1)
        )
        # One list of words to look in (a bare Series would be read as a column by polars).
        firsts = pl.Series(sorted(self._first_words), dtype=pl.String).implode()
        starts = pl.col("word").is_in(firsts) | singular.is_in(firsts).fill_null(False)
        # Each word's answer first, then any per text: asked inside the aggregation, polars
        # repeats the list of words for every group (2.5 GB and 1.7 s for 250k texts).
        hits = words.with_columns(starts.alias("hit")).group_by("row").agg(pl.col("hit").any())
        # A text is read one by one unless it is ASCII and none of its words starts a term.
        skip = set(hits.filter(~pl.col("hit"))["row"].to_list())
        return [
            None if row in skip else self.from_text(text)
            for row, text in enumerate(frame["text"].to_list())
        ]

    def from_labels(self, labels: Iterable[str]) -> list[str]:
        """The distinct categories of several labels, in order, unknown labels skipped."""
        out: list[str] = []
        for label in labels:
            category = self.from_label(label)
            if category is not None and category not in out:
                out.append(category)
        return out


@lru_cache(maxsize=1 << 14)
def _from_text(tax: Taxonomy, text: str) -> str | None:
    words = fold(text.replace("_", " ")).split()
    if not words:
        return None
    singular = [
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words
    ]
    firsts = tax._first_words
    starts = [
        (variant, start)
        for variant in (words, singular)
        for start, word in enumerate(variant)
        if word in firsts
    ]
    if not starts:  # most names: no word a term starts with
        return None
    # Longest phrase first; among phrases of one length the most specific category, then the
    # leftmost: "gift shop" is a gift shop (not just a shop), "coffee & tea" a cafe.
    for size in range(min(_MAX_TERM_WORDS, len(words)), 0, -1):
        found: list[tuple[int, int, str]] = []
        for variant, start in starts:
            if start + size <= len(variant):
                category = tax._by_term.get(" ".join(variant[start : start + size]))
                if category is not None:
                    found.append((-len(tax.ancestors(category)), start, category))
        if found:
            return min(found)[2]
    return None


@cache
def taxonomy() -> Taxonomy:
    """The taxonomy shipped with poiflow (loaded once in each process that uses it: every
    ingest worker does). Read by libyaml where PyYAML has it: 0.01 s against 0.1 s."""
    text = resources.files("poiflow").joinpath("data/categories.yaml").read_text("utf-8")
    if hasattr(yaml, "CSafeLoader"):
        return Taxonomy(yaml.load(text, Loader=yaml.CSafeLoader))
    return Taxonomy(yaml.safe_load(text))
