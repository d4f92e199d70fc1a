"""What real-time matching needs of a large run's statistics, for a few new records.

A request to ``POST /match`` (or a stream's batch of edits) brings a few records to a run
of millions. Their blocking keys and pair features depend on the run's statistics (which
name words are rare, each locality's cell, how common each name is): the lookups here
hold those statistics indexed, so that the part a few records need is found without a
scan, and give exactly what the batch functions of :mod:`poiflow.conflate.blocking` and
:mod:`poiflow.conflate.features` give over the whole run.

For a handful of records the batch functions' fixed cost (a hundred dataframe operations,
sparse matrices, thread pools) is most of the time, so the few-record paths here are plain
Python over the records' values: :meth:`StatsLookup.record_keys` for up to
``FEW_RECORDS`` records and :func:`few_pair_features`. The parity tests hold them to the
batch paths bit for bit.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import h3.api.basic_int as h3
import numpy as np
import polars as pl
import polars_h3 as plh3
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from poiflow.conflate.alike import number_spans
from poiflow.conflate.blocking import most_common_localities
from poiflow.conflate.feature_stats import area_key, name_area_keys
from poiflow.conflate.features import (
    FEATURE_COUNTS_SCHEMA,
    FEATURES,
    FeatureStats,
    agreement_matrix,
    feature_stats,
    same_building,
    shared_pages,
    shared_phones,
)
from poiflow.conflate.geo import haversine_m
from poiflow.conflate.key_rows import keys_of_frame
from poiflow.conflate.keys import (
    DEFAULT_EXTENT_M,
    SYLLABIC,
    TYPO_CELL,
    TYPO_LETTERS,
    TYPO_RING,
    BlockingConfig,
    KeyStats,
    Kind,
    Term,
    extents,
    pair_key,
    polars_engine,
    ring_resolution,
    salt,
)
from poiflow.conflate.pages import own_pages
from poiflow.conflate.rounding import ROUNDED, point_rounding, rounding_of, uncertainty
from poiflow.conflate.terms import all_terms, folded_names, name_words, record_frame

__all__ = ["FEW_RECORDS", "FeatureLookup", "StatsLookup", "few_pair_features"]


class StatsLookup:
    """The ``KeyStats`` of a large set of records, indexed so that the part a few new
    records need is found without scanning the whole (what real-time matching uses:
    :func:`record_keys` with the narrowed stats makes the same keys as with the whole).
    """

    def __init__(self, stats: KeyStats) -> None:
        self.stats = stats
        self.rare = frozenset(stats.rare_words["word"].to_list())
        known = stats.unlocated_terms
        self.terms = None if known is None else np.sort(known["term"].to_numpy())
        self.localities = dict(
            zip(
                stats.localities["cell"].to_list(),
                stats.localities["inferred"].to_list(),
                strict=True,
            )
        )

    def record_keys(self, records: pa.Table, config: BlockingConfig | None = None) -> pl.DataFrame:
        """:func:`record_keys` of a few records (``BLOCKING_COLUMNS`` and ``row``), with
        the part of the stats that their own words, terms and cells need.

        A ~5 km cell the statistics know no locality of takes the most common one of the
        records' own there (as a run of them all would count it): a feed's records with a
        town then lend it to their neighbours without one, which a run of records without
        coordinates alone could not."""
        config = config or BlockingConfig()
        if records.num_rows <= FEW_RECORDS:
            return self._few_keys(records, config)
        base = record_frame(records).lazy()
        engine = polars_engine(records.num_rows)
        names = folded_names(base)
        parts = [
            name_words(names).select("word"),
            base.filter(pl.col("located")).select(
                plh3.latlng_to_cell("lat", "lon", 7).alias("cell"),
                pl.col("keys").struct.field("locality").alias("locality"),
            ),
            all_terms(base, names),
        ]
        words, cells, found = pl.collect_all(parts, engine=engine)
        rare = [w for w in words["word"].unique().to_list() if w in self.rare]
        known = {c: self.localities[c] for c in cells["cell"].unique() if c in self.localities}
        own = cells.filter(~pl.col("cell").is_in(list(known))).drop_nulls("locality")
        counted = own.group_by("cell", pl.col("locality").alias("value")).agg(count=pl.len())
        inferred = most_common_localities(counted)
        localities = known | dict(zip(inferred["cell"], inferred["inferred"], strict=True))
        terms = None
        if self.terms is not None:
            candidates = np.unique(found["term"].to_numpy())
            wanted = candidates[self._unlocated(candidates)] if self.stats.unlocated else []
            terms = pl.DataFrame({"term": wanted}, schema={"term": found["term"].dtype})
        stats = KeyStats(
            self.stats.records,
            pl.DataFrame({"word": rare}, schema={"word": pl.String}),
            pl.DataFrame(
                {"cell": list(localities), "inferred": list(localities.values())},
                schema=self.stats.localities.schema,
            ),
            self.stats.unlocated,
            terms,
            self.stats.rounded,
        )
        return keys_of_frame(base, stats, config, engine)

    def _with_own(self, located: Iterable[tuple[int, str | None]]) -> dict[int, str]:
        """The localities of the cells of a few located records (``(cell, locality)``):
        the statistics' own, and where they know none, the most common of the records'
        (then the first by name: ``most_common_localities`` in plain Python)."""
        found: dict[int, str] = {}
        own: dict[int, Counter[str]] = {}
        for cell, locality in located:
            if cell in self.localities:
                found[cell] = self.localities[cell]
            elif locality is not None:
                own.setdefault(cell, Counter())[locality] += 1
        for cell, counted in own.items():
            found[cell] = min(counted.items(), key=lambda item: (-item[1], item[0]))[0]
        return found

    def _few_keys(self, records: pa.Table, config: BlockingConfig) -> pl.DataFrame:
        rows = records.to_pylist()
        return pl.DataFrame(self.row_keys(rows, config, [r["row"] for r in rows]))

    def row_keys(
        self,
        records: Sequence[Mapping[str, Any]],
        config: BlockingConfig | None = None,
        rows: Sequence[int] | None = None,
        common: frozenset[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """The key rows of :func:`record_keys` (``KEY_ROWS_SCHEMA``'s columns as arrays)
        of a few records given as rows (``BLOCKING_COLUMNS``; their row numbers are
        ``rows``, else their positions), made in plain Python: for a request of one record,
        the hundred-odd dataframe operations of the batch path cost ten milliseconds, and
        these a fraction of one. Only the strings' hash is left to polars (its hash is the
        terms' hash), every string in one call.

        ``common``: the records are counted with the statistics' records, as a run of
        them all would count them; given the words those records have too often to be
        keys, any other word of theirs is rare (fewer than ``rare_token_min`` records
        cannot make a word common), their own terms are wanted where one of them lacks
        coordinates, and typo variants are keys where one's point is rounded
        (``KeyStats.rounded``). A cell's locality is as :meth:`record_keys` says.
        """
        config = config or BlockingConfig()
        extent_of = extents()
        found = []
        strings: dict[str, None] = {}
        numbers = range(len(records)) if rows is None else rows
        for position, record in zip(numbers, records, strict=True):
            keys = record["keys"] or {}
            primary = (record["categories"] or {}).get("primary")
            names = [n for n in [keys.get("name"), *(keys.get("name_alternates") or [])] if n]
            street, number = keys.get("street"), keys.get("housenumber")
            cells: dict[int, int] = {}
            if record["lat"] is not None:
                for r in {6, 7, 8, config.near_resolution, config.domain_resolution}:
                    cells[r] = h3.latlng_to_cell(record["lat"], record["lon"], r)
            one = {
                "row": position,
                "lat": record["lat"],
                "lon": record["lon"],
                "extent": extent_of.get(primary or "", DEFAULT_EXTENT_M),
                "rounding": point_rounding(record["lat"], record["lon"]),
                "names": list(dict.fromkeys(names)),
                "words": [
                    w
                    for w in dict.fromkeys(_record_words(names, record))
                    if (w in self.rare if common is None else w not in common)
                ],
                "typos": _typo_variants(keys.get("name")),
                "prefix": _prefix(keys.get("name")),
                "address": None if street is None or number is None else f"{street}|{number}",
                "phones": list(dict.fromkeys(p for p in record["phones"] or () if p is not None)),
                "domains": list(
                    dict.fromkeys(d for d in keys.get("domains") or () if d is not None)
                ),
                "cells": cells,
                "locality": keys.get("locality"),
                "postcode": keys.get("postcode"),
            }
            found.append(one)
            strings.update(dict.fromkeys([*one["names"], *one["words"], *one["typos"]]))
            strings.update(dict.fromkeys(one["prefix"]))
            strings.update(dict.fromkeys([*one["phones"], *one["domains"]]))
            for value in (one["address"], one["locality"], one["postcode"]):
                if value is not None:
                    strings[value] = None
        # A located record without a town takes the most common one around it.
        around = self._with_own((o["cells"][7], o["locality"]) for o in found if o["cells"])
        for one in found:
            if one["locality"] is None and one["cells"]:
                one["locality"] = around.get(one["cells"][7])
                if one["locality"] is not None:
                    strings[one["locality"]] = None
        # Every string hashed in one polars call, then salted per kind (``string_hash``).
        plain = dict(zip(strings, pl.Series(list(strings), dtype=pl.String).hash(), strict=True))

        def hashed(kind: int, value: str) -> int:
            return int(plain[value] ^ salt(kind))

        made: list[tuple[int, int, int, bool, bool]] = []
        unlocated = self.stats.unlocated or (
            common is not None and any(one["lat"] is None for one in found)
        )
        rounded = self.stats.rounded or (
            common is not None and any(one["rounding"] for one in found)
        )
        # Each record's terms by the kind of locality key they make: (row, located, areas,
        # ((kind, candidate terms), ...)), made once the terms wanted are known.
        local: list[tuple[int, bool, list[int], tuple[tuple[int, list[int]], ...]]] = []
        for one in found:
            row, located = one["row"], one["lat"] is not None
            terms = list(
                dict.fromkeys(
                    [
                        *(hashed(Term.PLAIN, w) for w in one["words"]),
                        *(hashed(Term.WHOLE_NAME, n) for n in one["names"]),
                    ]
                )
            )
            cells = one["cells"]
            if located:
                res = ring_resolution(one["extent"] + one["rounding"])
                for r in (6, 7, 8):
                    made.extend((Kind.NAME, pair_key(cells[r], t), row, True, False) for t in terms)
                ring = dict.fromkeys([*terms, *(hashed(Term.WHOLE_NAME, p) for p in one["prefix"])])
                for cell in h3.grid_disk(cells[res], 1):
                    made.extend((Kind.NAME, pair_key(cell, t), row, False, True) for t in ring)
                typos = list(dict.fromkeys(hashed(Term.TYPO, t) for t in one["typos"]))
                made.extend(
                    (Kind.TYPO, pair_key(cells[TYPO_CELL], t), row, True, True) for t in typos
                )
                if rounded:  # typo variants meet a rounded record's ring
                    own = cells[TYPO_RING]
                    made.extend((Kind.NAME, pair_key(own, t), row, True, False) for t in typos)
                    for cell in h3.grid_disk(own, 1) if one["rounding"] else ():
                        made.extend((Kind.NAME, pair_key(cell, t), row, False, True) for t in typos)
                near = cells[config.near_resolution]
                made.append((Kind.NEAR, near, row, True, False))
                made.extend((Kind.NEAR, c, row, False, True) for c in h3.grid_disk(near, 1))
            for phone in one["phones"]:
                made.append((Kind.PHONE, hashed(Term.PHONE, phone), row, True, True))
            domains = [hashed(Term.DOMAIN, d) for d in one["domains"]]
            for domain in domains if located else ():
                own = cells[config.domain_resolution]
                made.append((Kind.DOMAIN_NEAR, pair_key(domain, own), row, True, False))
                made.extend(
                    (Kind.DOMAIN_NEAR, pair_key(domain, c), row, False, True)
                    for c in h3.grid_disk(own, 1)
                )
            if not unlocated:
                continue
            made.extend((Kind.DOMAIN_ANY, d, row, True, not located) for d in domains)
            locality = one["locality"]
            areas = [hashed(Term.PLAIN, locality)] if locality is not None else []
            areas += [hashed(Term.POSTCODE, one["postcode"])] if one["postcode"] is not None else []
            address = [hashed(Term.PLAIN, one["address"])] if one["address"] is not None else []
            by_kind: tuple[tuple[int, list[int]], ...] = (
                (Kind.LOCALITY_TERM, [*terms, *(hashed(Term.TYPO, t) for t in one["typos"])]),
                (Kind.LOCALITY_ADDRESS, address),
            )
            local.append((row, located, areas, by_kind))
        theirs = np.zeros(0, np.uint64)  # the records' own terms, where one lacks coordinates
        if common is not None:
            terms_of = {t for _, at, _, kinds in local if not at for _, c in kinds for t in c}
            theirs = np.asarray(sorted(terms_of), dtype=np.uint64)
        for row, located, areas, kinds in local:
            for kind, candidates in kinds:
                values = np.asarray(candidates, dtype=np.uint64)
                keep = self._unlocated(values)
                if len(theirs):
                    keep |= np.isin(values, theirs)
                wanted = values[keep].tolist()
                for area, term in dict.fromkeys((a, t) for a in areas for t in wanted):
                    made.append((kind, pair_key(area, term), row, True, not located))
        return _key_arrays(made)

    def _unlocated(self, terms: np.ndarray) -> np.ndarray:
        """Which of ``terms`` some record without coordinates has (the others meet no
        record, and no key is made of them)."""
        if self.terms is None:  # every term (records held for records yet to come)
            return np.ones(len(terms), dtype=bool)
        if not len(terms) or not len(self.terms):
            return np.zeros(len(terms), dtype=bool)
        at = np.minimum(np.searchsorted(self.terms, terms), len(self.terms) - 1)
        return np.asarray(self.terms[at] == terms)


FEW_RECORDS: Final = 64  # at most this many records take the plain-Python key path


def _key_arrays(rows: list[tuple[int, int, int, bool, bool]]) -> dict[str, np.ndarray]:
    """Key rows (``KEY_ROWS_SCHEMA``'s columns) of ``(kind, key, row, left, right)``."""
    kind, key, row, left, right = zip(*rows, strict=True) if rows else ((),) * 5
    return {
        "kind": np.array(kind, dtype=np.int8),
        "key": np.array(key, dtype=np.uint64),
        "row": np.array(row, dtype=np.int64),
        "left": np.array(left, dtype=bool),
        "right": np.array(right, dtype=bool),
    }


def _record_words(names: list[str], record: Mapping[str, Any]) -> Iterator[str]:
    """The words of a record's folded names as ``name_words`` makes them: each of two letters
    or more, and in a syllabic name each two side by side."""
    yield from (w for n in names for w in n.split(" ") if len(w) > 1)
    primary = (record.get("names") or {}).get("primary")
    if primary is not None and _SYLLABIC.search(primary):
        yield from (f"{a} {b}" for n in names for a, b in itertools.pairwise(n.split(" ")))


_SYLLABIC: Final = re.compile(SYLLABIC)


def _prefix(name: str | None) -> list[str]:
    """A folded name without its last word, as ``_prefix_terms`` makes it (none if the
    name is one word, or what is left two letters or fewer)."""
    prefix = _LAST_WORD.sub("", name or "")
    return [prefix] if prefix != (name or "") and len(prefix) > 2 else []


_LAST_WORD: Final = re.compile(r" [^ ]+$")


def _typo_variants(name: str | None) -> list[str]:
    """A name's first ``TYPO_LETTERS`` letters, spaces taken out (at least four), whole
    and with each one letter deleted, as ``terms.typo_terms`` makes them."""
    word = (name or "").replace(" ", "")[:TYPO_LETTERS]
    if len(word) < 4:
        return []
    return [word, *(word[:i] + word[i + 1 :] for i in range(len(word)))]


class FeatureLookup:
    """The ``FeatureStats`` of a large set of records, indexed so that the part a few new
    records need is found without scanning the whole (real-time matching: a view of the
    new records and their candidates with the narrowed stats has the same features as in
    the whole)."""

    def __init__(self, stats: FeatureStats, rounded: pl.DataFrame | None = None) -> None:
        """``rounded``: the records' rounding counts (``conflate.rounding.ROUNDED``, as
        :func:`feature_counts` makes them), for :meth:`plus` (see :meth:`of_counts`)."""
        self.records = stats.records
        self.names = dict(
            zip(stats.names["name"].to_list(), stats.names["records"].to_list(), strict=True)
        )
        self.words = dict(
            zip(stats.words["word"].to_list(), stats.words["records"].to_list(), strict=True)
        )
        self.areas = dict(
            zip(stats.areas["area"].to_list(), stats.areas["records"].to_list(), strict=True)
        )
        self.shared_pages = stats.shared_pages
        self.shared_phones = stats.shared_phones
        self.rounding = dict(stats.rounding)
        self.rounded = rounded

    @classmethod
    def of_counts(cls, counts: pa.Table) -> FeatureLookup:
        """The lookup of records' :func:`feature_counts`, ready for :meth:`plus`."""
        frame = pl.DataFrame(counts.cast(FEATURE_COUNTS_SCHEMA))
        return cls(feature_stats(counts), frame.filter(pl.col("what").is_in(ROUNDED)))

    def plus(self, counts: pa.Table) -> FeatureLookup:
        """These statistics with more records counted (their :func:`feature_counts`; the
        records must be none of those counted already): what a run of them all reads. A
        page (or phone) is shared where the new records' source gives it to several of them."""
        more = FeatureLookup.__new__(FeatureLookup)
        frame = pl.DataFrame(counts.cast(FEATURE_COUNTS_SCHEMA))
        more.records = self.records + int(frame.filter(pl.col("what") == "records")["count"].sum())
        more.names, more.words, more.areas = dict(self.names), dict(self.words), dict(self.areas)
        for kind, held in (("name", more.names), ("word", more.words), ("area", more.areas)):
            part = frame.filter(pl.col("what") == kind)
            for value, count in zip(part["value"].to_list(), part["count"].to_list(), strict=True):
                held[value] = held.get(value, 0) + count
        more.shared_pages = self.shared_pages | shared_pages(frame)
        more.shared_phones = self.shared_phones | shared_phones(frame)
        # A source's rounding, as a run of them all would read it (from the run's counts
        # where kept, else the run's judgement and the new records' own).
        added = frame.filter(pl.col("what").is_in(ROUNDED))
        more.rounded = added if self.rounded is None else pl.concat([self.rounded, added])
        more.rounding = (
            rounding_of(more.rounded)
            if self.rounded is not None
            else {**self.rounding, **rounding_of(added)}
        )
        return more

    def narrowed(self, records: pa.Table) -> FeatureStats:
        """The stats of these records' names, name words and names in their areas only."""
        names = set(pc.fill_null(pc.struct_field(records.column("keys"), "name"), "").to_pylist())
        words = {w for name in names for w in name.split(" ") if w}
        areas = set(name_area_keys(records).drop_nulls().to_list())
        return FeatureStats(
            self.records,
            pl.DataFrame(
                {"name": list(names), "records": [self.names.get(n, 0) for n in names]},
                schema={"name": pl.String, "records": pl.Int64},
            ),
            pl.DataFrame(
                {"word": list(words), "records": [self.words.get(w, 0) for w in words]},
                schema={"word": pl.String, "records": pl.Int64},
            ),
            self.shared_pages,
            self.shared_phones,
            self.rounding,
            pl.DataFrame(
                {"area": list(areas), "records": [self.areas.get(a, 0) for a in areas]},
                schema={"area": pl.String, "records": pl.Int64},
            ),
        )


def few_pair_features(
    records: Sequence[Mapping[str, Any]],
    left: Sequence[int] | np.ndarray,
    right: Sequence[int] | np.ndarray,
    stats: FeatureLookup,
) -> dict[str, np.ndarray]:
    """:func:`pair_features` of a few pairs, computed pair by pair in plain Python.

    For a request of one record and its ten candidates, building a :class:`RecordView` and
    the vectorized features costs several milliseconds of fixed overhead (dataframes,
    sparse matrices, threads for ``cpdist``); these cost tens of microseconds a pair.
    The values are the vectorized path's (the same scorers, the same arithmetic; the
    parity tests hold the two together), for the records in this order, as in
    ``RecordView.of(pa.Table.from_pylist(records), stats.narrowed(...))``.

    Args:
        records: The records (``FEATURE_COLUMNS`` of ``PLACE_SCHEMA`` rows, as dicts).
        left, right: The pairs, as indexes into ``records``.
        stats: The name statistics of all the data.
    """
    keys = [r["keys"] or {} for r in records]
    names = [k.get("name") or "" for k in keys]
    name_code = _first_codes(names)
    street_code = _first_codes([k.get("street") for k in keys])
    category = [(r["categories"] or {}).get("primary") for r in records]
    known = extents()
    extent = np.array([known.get(c or "", DEFAULT_EXTENT_M) for c in category])
    lat = np.array([np.nan if r["lat"] is None else r["lat"] for r in records], dtype=float)
    lon = np.array([np.nan if r["lon"] is None else r["lon"] for r in records], dtype=float)
    vectors = {name: _idf_vector(name, stats) for name in dict.fromkeys(names)}
    areas = [
        area_key(n, r["lat"], r["lon"], k.get("locality"), r["source"])
        for n, r, k in zip(names, records, keys, strict=True)
    ]
    commonness = np.log1p(np.array([stats.names.get(n, 0) for n in names], dtype=np.int64))
    nearby = np.log1p(
        np.array(
            [
                stats.names.get(n, 0) if a is None else stats.areas.get(a, 0)
                for n, a in zip(names, areas, strict=True)
            ],
            dtype=np.int64,
        )
    )
    pages = [own_pages(r["websites"], stats.shared_pages) for r in records]
    phones = [[p for p in r["phones"] or () if p not in stats.shared_phones] for r in records]
    codes, agreement = agreement_matrix()
    coded = [codes.get(c, len(codes)) if c is not None else len(codes) for c in category]
    a, b = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    out: dict[str, list[float]] = {f: [] for f in FEATURES[2:] if f != "housenumber_match"}
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        # Scored as the vectorized path scores a distinct pair: lower code first.
        x, y = (names[i], names[j]) if name_code[i] <= name_code[j] else (names[j], names[i])
        token_set = _score(fuzz.token_set_ratio(x, y)) / 100
        out["name_token_set"].append(token_set)
        out["name_jaro_winkler"].append(_score(JaroWinkler.normalized_similarity(x, y)))
        out["name_partial"].append(_score(fuzz.partial_ratio(x, y)) / 100)
        alternates_i, alternates_j = keys[i].get("name_alternates"), keys[j].get("name_alternates")
        if alternates_i or alternates_j:
            token_set = max(
                token_set,
                *(
                    _score(fuzz.token_set_ratio(u, v)) / 100
                    for u in [names[i], *(alternates_i or [])]
                    for v in [names[j], *(alternates_j or [])]
                ),
            )
        out["name_best_alternate"].append(token_set)
        out["name_tfidf"].append(_cosine(vectors[names[i]], vectors[names[j]]))
        out["name_commonness"].append(max(commonness[i], commonness[j]))
        out["name_area_commonness"].append(max(nearby[i], nearby[j]))
        out["brand_match"].append(_same(keys[i].get("brand"), keys[j].get("brand")))
        out["phone_match"].append(_shared(phones[i], phones[j]))
        out["domain_match"].append(_shared(keys[i].get("domains"), keys[j].get("domains")))
        out["page_match"].append(_shared(pages[i], pages[j]))
        street_i, street_j = keys[i].get("street"), keys[j].get("street")
        if street_i is None or street_j is None:
            out["street_similarity"].append(np.nan)
        else:
            if street_code[i] > street_code[j]:
                street_i, street_j = street_j, street_i
            out["street_similarity"].append(
                _score(JaroWinkler.normalized_similarity(street_i, street_j))
            )
        out["postcode_match"].append(_same(keys[i].get("postcode"), keys[j].get("postcode")))
        out["locality_match"].append(_same(keys[i].get("locality"), keys[j].get("locality")))
        out["located"].append(
            float(records[i]["lat"] is not None) + (records[j]["lat"] is not None)
        )
        out["category_agreement"].append(float(agreement[coded[i], coded[j]]))
        out["same_source"].append(float(records[i]["source"] == records[j]["source"]))
    distance = haversine_m(lat[a], lon[a], lat[b], lon[b])
    # A point's rounding is no distance (see conflate.rounding).
    sources = np.array([r["source"] for r in records], dtype=object)
    rounded = uncertainty(sources, lat, lon, stats.rounding)
    if rounded.any():
        distance = np.maximum(0.0, distance - rounded[a] - rounded[b])
    numbers = [k.get("housenumber") for k in keys]
    columns = {
        "distance_m": distance,
        "distance_over_extent": distance / np.maximum(extent[a], extent[b]),
        "housenumber_match": same_building(
            np.array(_first_codes(numbers), dtype=np.int64),
            number_spans(list(dict.fromkeys(n for n in numbers if n is not None))),
            a,
            b,
        ),
        **{name: np.asarray(values, dtype=float) for name, values in out.items()},
    }
    return {name: np.asarray(columns[name], dtype=np.float32) for name in FEATURES}


def _score(value: float) -> float:
    """A score as ``cpdist`` returns it (single precision)."""
    return float(np.float32(value))


def _first_codes(values: Sequence[str | None]) -> list[int]:
    """Each value's code as ``Encoded.of`` gives it (the order of first appearance)."""
    seen: dict[str, int] = {}
    return [-1 if v is None else seen.setdefault(v, len(seen)) for v in values]


def _idf_vector(name: str, stats: FeatureLookup) -> tuple[list[str], np.ndarray]:
    """A name's words in sorted order and their L2-normalized IDF weights (its row of
    ``_tfidf``)."""
    words = sorted({w for w in name.split(" ") if w})
    if not words:
        return [], np.zeros(0)
    df = np.array([stats.words.get(w, 0) for w in words], dtype=np.int64)
    idf = np.log((stats.records + 1) / (df + 1)) + 1.0
    squares = 0.0
    for weight in idf.tolist():  # in order, as the sparse row sums
        squares += weight * weight
    return words, idf * (1.0 / float(np.sqrt(squares)))


def _cosine(a: tuple[list[str], np.ndarray], b: tuple[list[str], np.ndarray]) -> float:
    """The dot product of two ``_idf_vector``s, summed over shared words in sorted order."""
    weights = dict(zip(b[0], b[1].tolist(), strict=True))
    total = 0.0
    for word, weight in zip(a[0], a[1].tolist(), strict=True):
        if word in weights:
            total += weight * weights[word]
    return total


def _same(a: object, b: object) -> float:
    """``_equal`` of two values: 1 the same, 0 not, NaN where either is missing."""
    return np.nan if a is None or b is None else float(a == b)


def _shared(a: Sequence[str | None] | None, b: Sequence[str | None] | None) -> float:
    """``_overlap`` of two lists: the first values compared, or, where either list has
    several, whether they share any; NaN where either has no first value."""
    first_a, first_b = (a[0] if a else None), (b[0] if b else None)
    if first_a is None or first_b is None:
        return np.nan
    if len(a or ()) > 1 or len(b or ()) > 1:
        return 1.0 if set(a or ()) & set(b or ()) else 0.0
    return float(first_a == first_b)
