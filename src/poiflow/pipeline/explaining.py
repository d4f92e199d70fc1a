"""Why a run put two records in one place, or kept them apart (``poiflow explain``).

From an output folder of ``poiflow conflate`` or ``poiflow run``: the two records as the
run normalized them, whether blocking made them a candidate pair, the matcher's score
taken apart feature by feature (:mod:`poiflow.conflate.explain`), and what clustering
made of it: one place (scored above the threshold, or joined through other records, and
which), or two (scored below it, never compared, or kept apart by a clustering rule).
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.blocking import (
    BlockingConfig,
    KeyStats,
    SharedKey,
    common_kinds,
    shared_keys,
    table_stats,
)
from poiflow.conflate.clustering import ClusterConfig
from poiflow.conflate.diagnosis import RULES, kept_apart_by
from poiflow.conflate.explain import Explanation, explain_scores, threshold_bits
from poiflow.conflate.feature_names import FEATURES
from poiflow.conflate.features import RecordView, feature_counts, feature_stats, pair_features
from poiflow.conflate.fellegi_sunter import FellegiSunter
from poiflow.conflate.matcher import AnyMatcher, load_matcher
from poiflow.errors import InputError, did_you_mean
from poiflow.text import address_line

__all__ = [
    "DRIVERS",
    "PairStory",
    "error_drivers",
    "explain_pair",
    "record_keys",
    "with_drivers",
]

_KEYS: Final = ("left_source", "left_id", "right_source", "right_id")
_Settings = TypeVar("_Settings", ClusterConfig, BlockingConfig)
DRIVERS: Final = 3
"""How many parts of a score :func:`with_drivers` names."""


def record_keys(text: str, sources: list[str]) -> list[tuple[str, str]]:
    """The ``(source, id)`` a record named ``SOURCE:ID`` may be, most likely first: a
    source's name may hold a colon itself, and so may an id, so every split whose source
    is one of ``sources`` is given (shortest source first).

    Raises:
        InputError: No colon, or no source of that name.
    """
    if ":" not in text:
        example = f"{sources[0] if sources else 'osm'}:42"
        raise InputError(f"name a record as SOURCE:ID (e.g. {example}), not '{text}'")
    known = set(sources)
    found = [
        (text[:at], text[at + 1 :]) for at, c in enumerate(text) if c == ":" and text[:at] in known
    ]
    if not found:
        source = text.split(":", 1)[0]
        raise InputError(
            f"no source '{source}' in this run.{did_you_mean(source, sources)} "
            f"Its sources: {', '.join(sources)}"
        )
    return found


@dataclass(frozen=True, slots=True)
class PairStory:
    """What a run did with two records, and why.

    Attributes:
        records: The two records as the run normalized them (name, category, address,
            phones, websites, point, update time), left first.
        candidate: Whether blocking made them a candidate pair (and the run scored them).
        run_probability: The probability the run gave them (None if never compared).
        explanation: The model's score of the pair, taken apart (for a pair never
            compared: what the model would have said).
        model: The model's name.
        threshold: The least probability that joins the two: the run's clustering
            threshold, or for two records of one source its (higher) bar for them.
        places: The place id each record ended in.
        verdict: One sentence: together or apart, and why.
        rule: For two records scored above the threshold and kept apart, the clustering
            rule that keeps their places apart (``diagnosis.RULES``).
        threshold_bits: The score, in bits, from which the model reaches the threshold
            (``explain.threshold_bits``): how far the pair's score is from being joined.
        blocking: For a pair never compared: the kinds of blocking key the two share, each
            with its group's size (empty: they share none).
        path: For two records joined through others: each record along the chain from
            the left one to the right one (the last), with the probability of the link
            that reaches it; the chain whose weakest link is strongest, of links at or
            above the threshold.
    """

    records: tuple[dict[str, Any], dict[str, Any]]
    candidate: bool
    run_probability: float | None
    explanation: Explanation
    model: str
    threshold: float
    places: tuple[str, str]
    verdict: str
    rule: str | None
    path: tuple[tuple[str, float], ...]
    blocking: tuple[SharedKey, ...] = ()
    threshold_bits: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "records": list(self.records),
            "candidate": self.candidate,
            "run_probability": self.run_probability,
            "model": self.model,
            "threshold": self.threshold,
            "threshold_bits": round(self.threshold_bits, 4)
            if math.isfinite(self.threshold_bits)
            else None,
            "places": list(self.places),
            "same_place": self.places[0] == self.places[1],
            "verdict": self.verdict,
            "kept_apart_by": self.rule,
            "path": [{"record": key, "probability": p} for key, p in self.path],
            "shared_keys": [
                {"kind": k.kind, "records": k.records, "cap": k.cap} for k in self.blocking
            ],
            "explanation": self.explanation.as_dict(),
        }


def explain_pair(
    folder: str | Path, left: str, right: str, *, model: str | Path | None = None
) -> PairStory:
    """Why the run in ``folder`` put the records ``left`` and ``right`` (``SOURCE:ID``
    each) in one place or kept them apart.

    Args:
        folder: An output folder of ``poiflow conflate`` or ``poiflow run``.
        left: One record, as ``SOURCE:ID``.
        right: The other.
        model: Score the pair with this model file instead of the run's own
            (``model.json.gz``): what another model would say of it.

    Raises:
        InputError: The folder lacks the run's files, or a record is not in it.
    """
    folder = Path(folder)
    records = _read(folder, "records.parquet")
    sources = sorted(set(records.column("source").to_pylist()))
    found = [_row_of(records, record_keys(text, sources), folder) for text in (left, right)]
    keys = (found[0][0], found[1][0])
    rows = [found[0][1], found[1][1]]
    if rows[0] == rows[1]:
        raise InputError(f"'{left}' and '{right}' are one record: name two")
    run = _run(folder)
    cluster = _settings(ClusterConfig, run, "cluster")
    matcher = load_matcher(model if model is not None else folder / "model.json.gz")
    scored = _scored(folder, keys)
    candidate = scored is not None
    if scored is not None and all(name in scored for name in FEATURES):
        features = {name: np.asarray([scored[name]], dtype=np.float32) for name in FEATURES}
    else:  # what the model would (or did) say, with the counts of the whole run
        stats = feature_stats(feature_counts(records))
        view = RecordView.of(records.take(pa.array(rows, pa.int64())), stats)
        features = pair_features(view, np.array([0]), np.array([1]))
    (explanation,) = explain_scores(matcher, features)
    run_probability = float(scored["match_probability"]) if scored is not None else None
    places = _places(folder, keys)
    blocking: tuple[SharedKey, ...] = ()
    nearer: tuple[str, ...] = ()
    if not candidate:
        counts = table_stats(records, _settings(BlockingConfig, run, "block"))
        blocking = _blocking(records, rows, run, counts)
        nearer = () if blocking else _nearer(records, rows, run, counts)
    metres = float(features["distance_m"][0])
    unpaired = _unpaired(blocking, nearer, metres)
    story = _verdict(folder, keys, places, run_probability, cluster, unpaired)
    return PairStory(
        records=(_shown(records, rows[0]), _shown(records, rows[1])),
        candidate=candidate,
        run_probability=run_probability,
        explanation=explanation,
        model=matcher.version,
        threshold=_bar(keys, cluster),
        places=places,
        verdict=story[0],
        rule=story[1],
        path=story[2],
        blocking=blocking,
        threshold_bits=threshold_bits(matcher, _bar(keys, cluster)),
    )


def _read(folder: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    path = folder / name
    if not path.exists():
        raise InputError(
            f"no {name}: give the output folder of 'poiflow conflate' or 'poiflow run'",
            path=folder,
        )
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read {name} ({exc})", path=path) from exc


def _run(folder: Path) -> dict[str, Any]:
    try:
        found = json.loads((folder / "run.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}  # the default clustering settings
    return found if isinstance(found, dict) else {}


def _row_of(
    records: pa.Table, keys: list[tuple[str, str]], folder: Path
) -> tuple[tuple[str, str], int]:
    """The first of ``keys`` the run holds, and its row."""
    frame = pl.DataFrame(records.select(["source", "id"])).with_row_index("row")
    for key in keys:
        found = frame.filter((pl.col("source") == key[0]) & (pl.col("id") == key[1]))
        if not found.is_empty():
            return key, int(found["row"][0])
    source, record_id = keys[0]
    raise InputError(
        f"no record '{source}:{record_id}' in the run: {_why_missing(folder, keys)}",
        path=folder / "records.parquet",
    )


def _why_missing(folder: Path, keys: list[tuple[str, str]]) -> str:
    """Why a record is not among the run's: quarantined (and why), or not in its inputs."""
    path = folder / "quarantine.parquet"
    if path.exists():
        columns = ["source", "id", "origin", "scope", "reason"]
        held = pl.DataFrame(_read(folder, "quarantine.parquet", columns))
        held = held.filter(pl.col("scope") == "record")
        for source, record_id in keys:
            row = held.filter((pl.col("source") == source) & (pl.col("id") == record_id)).head(1)
            if row.height:
                return f"quarantined ({row['reason'][0]}, at {row['origin'][0]})"
    return "not in its inputs"


def _scored(folder: Path, keys: tuple[tuple[str, str], tuple[str, str]]) -> dict[str, Any] | None:
    """The pair's row of ``pairs.parquet`` (either way round), or None if never scored."""
    path = folder / "pairs.parquet"
    if not path.exists():
        raise InputError("no pairs.parquet: the run's scored pairs are needed", path=folder)
    (a_source, a_id), (b_source, b_id) = keys
    col = pl.col
    one = (col("left_source") == a_source) & (col("left_id") == a_id)
    one &= (col("right_source") == b_source) & (col("right_id") == b_id)
    other = (col("left_source") == b_source) & (col("left_id") == b_id)
    other &= (col("right_source") == a_source) & (col("right_id") == a_id)
    found = pl.scan_parquet(path).filter(one | other).collect()
    return found.row(0, named=True) if found.height else None


def _places(folder: Path, keys: tuple[tuple[str, str], tuple[str, str]]) -> tuple[str, str]:
    membership = pl.DataFrame(_read(folder, "membership.parquet", ["source", "id", "place_id"]))
    found = []
    for source, record_id in keys:
        row = membership.filter((pl.col("source") == source) & (pl.col("id") == record_id))
        if row.is_empty():
            raise InputError(f"'{source}:{record_id}' is in no place", path=folder)
        found.append(str(row["place_id"][0]))
    return found[0], found[1]


def _settings(kind: type[_Settings], run: dict[str, Any], stage: str) -> _Settings:
    """A stage's settings as ``run.json`` records them (``matching``), else the defaults."""
    try:
        return kind(**run.get("matching", {}).get(stage, {}))
    except (TypeError, AttributeError):  # a run.json of another version
        return kind()


def _blocking(
    records: pa.Table, rows: list[int], run: dict[str, Any], stats: KeyStats
) -> tuple[SharedKey, ...]:
    """The blocking keys two records share, with the run's blocking settings and counts."""
    config = _settings(BlockingConfig, run, "block")
    return tuple(shared_keys(records, (rows[0], rows[1]), config, stats))


def _nearer(
    records: pa.Table, rows: list[int], run: dict[str, Any], stats: KeyStats
) -> tuple[str, ...]:
    """The kinds of key two located records would share were the second where the first
    is, with the run's counts (``stats``; empty if either has no point): what only their
    distance keeps apart."""
    lat = records.column("lat").to_numpy(zero_copy_only=False).astype(float)
    lon = records.column("lon").to_numpy(zero_copy_only=False).astype(float)
    a, b = rows
    if np.isnan([lat[a], lat[b]]).any():
        return ()
    lat[b], lon[b] = lat[a], lon[a]
    moved = records.set_column(
        records.schema.get_field_index("lat"),
        "lat",
        pa.array(lat, records.schema.field("lat").type),
    ).set_column(
        records.schema.get_field_index("lon"),
        "lon",
        pa.array(lon, records.schema.field("lon").type),
    )
    config = _settings(BlockingConfig, run, "block")
    return tuple(common_kinds(moved, (a, b), config, stats))


def _unpaired(blocking: tuple[SharedKey, ...], nearer: tuple[str, ...], metres: float) -> str:
    """Why blocking did not compare two records, from the keys they share (and, sharing
    none, those they would share were they in one place, ``nearer``)."""
    if not blocking:
        said = "never compared (blocking gave them no key in common)"
        kinds = [kind for kind in dict.fromkeys(nearer) if kind != "near"]
        if kinds:  # (any two records within about 100 m meet by the near key)
            said += (
                f"; they would share a {' or '.join(kinds)} key were they nearer: they "
                f"lie {metres:,.0f} m apart"
            )
        elif nearer:
            said += (
                f"; only standing within about 100 m would pair them (they lie {metres:,.0f} m "
                "apart, and share no rare name word, phone or website)"
            )
        return said
    if any(key.pairs for key in blocking):
        pairing = ", ".join(key.kind for key in blocking if key.pairs)
        return f"never compared, though blocking would compare them now ({pairing} key)"
    crowded = ", ".join(
        f"a {key.kind} key {key.records:,} records carry (at most {key.cap} make pairs)"
        for key in blocking
    )
    return f"never compared: they share only keys too crowded to pair, {crowded}"


def _verdict(
    folder: Path,
    keys: tuple[tuple[str, str], tuple[str, str]],
    places: tuple[str, str],
    probability: float | None,
    cluster: ClusterConfig,
    unpaired: str,
) -> tuple[str, str | None, tuple[tuple[str, float], ...]]:
    """The sentence, the rule that keeps the places apart, and the chain that joins them
    (``unpaired``: why blocking did not compare them, if it did not)."""
    threshold = f"the run's threshold ({cluster.threshold:g})"
    least = _bar(keys, cluster)
    bar = (
        threshold
        if least == cluster.threshold
        else f"the run's bar for two records of one source ({least:g})"
    )
    if places[0] == places[1]:
        if probability is not None and probability >= least:
            return f"one place: scored above {bar}", None, ()
        path = _chain(folder, keys, places[0], cluster.threshold)
        how = unpaired if probability is None else f"scored below {bar}"
        return f"one place: {how}; joined through other records of the place", None, path
    if probability is None:
        return f"two places: {unpaired}", None, ()
    if probability < cluster.threshold:
        return f"two places: scored below {threshold}", None, ()
    rule = _rule(folder, places, cluster)
    return (
        f"two places: scored above {threshold}, kept apart by clustering: {RULES[rule]}",
        rule,
        (),
    )


def _bar(keys: tuple[tuple[str, str], tuple[str, str]], cluster: ClusterConfig) -> float:
    """The least probability that joins two records: the clustering threshold, or for two
    records of one source the (higher) bar for them."""
    if keys[0][0] == keys[1][0]:
        return max(cluster.threshold, cluster.source_bar)
    return cluster.threshold


def _members(folder: Path, places: tuple[str, ...]) -> pl.DataFrame:
    return (
        pl.DataFrame(_read(folder, "membership.parquet", ["source", "id", "place_id"]))
        .filter(pl.col("place_id").is_in(list(places)))
        .with_row_index("row")
    )


def _pairs_among(folder: Path, members: pl.DataFrame) -> pl.DataFrame:
    """The scored pairs between ``members``, as their rows: ``row, row_r, match_probability``."""
    keys = members.select("row", "source", "id")
    return (
        pl.scan_parquet(folder / "pairs.parquet")
        .select(*_KEYS, "match_probability")
        .join(
            keys.lazy().rename({"source": "left_source", "id": "left_id"}),
            on=["left_source", "left_id"],
        )
        .join(
            keys.lazy().rename({"row": "row_r", "source": "right_source", "id": "right_id"}),
            on=["right_source", "right_id"],
        )
        .select("row", "row_r", "match_probability")
        .collect()
    )


def _rule(folder: Path, places: tuple[str, str], cluster: ClusterConfig) -> str:
    members = _members(folder, places)
    scored = _pairs_among(folder, members)
    errors = pl.DataFrame(
        {
            "error": ["missed"],
            "stage": ["clustering"],
            "place_id": [places[0]],
            "place_id_r": [places[1]],
        }
    )
    ruled = kept_apart_by(errors, scored, members.select("row", "place_id", "source"), cluster)
    return str(ruled["kept_apart_by"][0])


def _chain(
    folder: Path, keys: tuple[tuple[str, str], tuple[str, str]], place: str, threshold: float
) -> tuple[tuple[str, float], ...]:
    """The records between the two, along the chain of links whose weakest is strongest
    (each link scored at or above ``threshold``; empty if none reaches)."""
    members = _members(folder, (place,))
    scored = _pairs_among(folder, members).filter(pl.col("match_probability") >= threshold)
    links: dict[int, list[tuple[float, int]]] = {}
    for a, b, p in scored.iter_rows():
        links.setdefault(a, []).append((p, b))
        links.setdefault(b, []).append((p, a))
    row = {(s, i): r for r, s, i in members.select("row", "source", "id").iter_rows()}
    start, end = row[keys[0]], row[keys[1]]
    # Widest path: the largest least link first (Dijkstra with max-min in place of sums).
    best = {start: 2.0}
    came: dict[int, tuple[int, float]] = {}
    heap = [(-2.0, start)]
    while heap:
        width, node = heapq.heappop(heap)
        if node == end:
            break
        if -width < best.get(node, -1.0):
            continue
        for p, other in links.get(node, []):
            w = min(-width, p)
            if w > best.get(other, -1.0):
                best[other] = w
                came[other] = (node, p)
                heapq.heappush(heap, (-w, other))
    if end not in came:
        return ()
    name = {r: f"{s}:{i}" for (s, i), r in row.items()}
    path = []
    node = end
    while node != start:
        previous, p = came[node]
        path.append((name[node], round(float(p), 6)))
        node = previous
    return tuple(reversed(path))


def _shown(records: pa.Table, row: int) -> dict[str, Any]:
    """One record's attributes as a person compares them."""
    (record,) = records.slice(row, 1).to_pylist()
    names = record.get("names") or {}
    categories = record.get("categories") or {}
    lat, lon = record.get("lat"), record.get("lon")
    update = record.get("update_time")
    return {
        "source": record["source"],
        "id": record["id"],
        "name": names.get("primary"),
        "category": categories.get("primary"),
        "address": address_line(record.get("address") or {}) or None,
        "phones": list(record.get("phones") or []),
        "websites": list(record.get("websites") or []),
        "lat": lat,
        "lon": lon,
        "update_time": None if update is None else str(update),
    }


def with_drivers(
    examples: pl.DataFrame,
    model: AnyMatcher,
    pairs_path: Path,
    *,
    keys: pa.Table | pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``examples`` (pairs by their record keys) with ``drivers``: the parts of each scored
    pair's score that moved it most ("names, Jaro-Winkler 1.00 +6.3 · distance 789 m
    -1.6 · ..."), null for a pair never scored.

    Args:
        examples: A few pairs: ``left_source, left_id, right_source, right_id``.
        model: The model that scored them.
        pairs_path: The run's ``pairs.parquet`` (their features are read from it).
        keys: The record keys of ``pairs_path``'s rows, in order, if read already.
    """
    from poiflow.conflate.explain import FEATURE_WORDS

    if examples.is_empty():
        return examples.with_columns(pl.lit(None, pl.String).alias("drivers"))
    import pyarrow.parquet as pq

    keyed = pl.DataFrame(
        keys if keys is not None else pq.read_table(pairs_path, columns=list(_KEYS))
    )
    rows = (
        examples.select(_KEYS)
        .with_row_index("example")
        .join(keyed.select(_KEYS).with_row_index("pair_row"), on=list(_KEYS), how="left")
        .unique("example", keep="first")
        .sort("example")["pair_row"]
        .to_list()
    )
    scored = sorted({r for r in rows if r is not None})
    features = _parquet_rows(pairs_path, scored, list(model.features))
    explained = dict(zip(scored, explain_scores(model, features), strict=True))
    words = FEATURE_WORDS if not isinstance(model, FellegiSunter) else {}
    text: list[str | None] = []
    for row in rows:
        if row is None:
            text.append(None)
            continue
        parts = explained[row].parts[:DRIVERS]
        text.append(
            " · ".join(f"{words.get(p.name, p.name)} {p.shows} {p.bits:+.1f}" for p in parts)
        )
    return examples.with_columns(pl.Series("drivers", text, pl.String))


def error_drivers(errors: pl.DataFrame, model: AnyMatcher) -> pl.DataFrame:
    """What moved the scores of the pairs the matcher got wrong, kind by kind.

    Args:
        errors: Missed and wrong pairs with their features (``Diagnosis.errors`` of pairs
            read with their features); those never scored are left out.
        model: The model that scored them.

    Returns:
        One row per kind of error (``error``, ``stage``) and feature (or comparison):
        ``pairs``, ``mean_bits`` (the feature's mean part of their scores), ``typical``
        (what the pairs showed there most often) and ``typical_share``; each kind's
        features by the size of their mean part, largest first.
    """
    columns = {
        "error": pl.String,
        "stage": pl.String,
        "feature": pl.String,
        "pairs": pl.Int64,
        "mean_bits": pl.Float64,
        "typical": pl.String,
        "typical_share": pl.Float64,
    }
    scored = errors.filter(pl.col("match_probability").is_not_null())
    rows = []
    for (error, stage), part in sorted(
        scored.partition_by(["error", "stage"], as_dict=True).items()
    ):
        explained = explain_scores(model, {n: part[n].to_numpy() for n in model.features})
        by_name: dict[str, list[tuple[float, str]]] = {}
        for explanation in explained:
            for p in explanation.parts:
                by_name.setdefault(p.name, []).append((p.bits, p.shows))
        for name, seen in by_name.items():
            typical, share = _typical([shown for _, shown in seen], part, name)
            rows.append(
                {
                    "error": error,
                    "stage": stage,
                    "feature": name,
                    "pairs": len(seen),
                    "mean_bits": float(np.mean([bits for bits, _ in seen])),
                    "typical": typical,
                    "typical_share": share,
                }
            )
    found = pl.DataFrame(rows, schema=columns)
    return found.sort(
        "error",
        "stage",
        pl.col("mean_bits").abs(),
        "feature",
        descending=[False, False, True, False],
    )


def _typical(shows: list[str], pairs: pl.DataFrame, name: str) -> tuple[str, float]:
    """What most of the pairs showed for a feature, and the share that showed it; for a
    measure no one value of which most show (a distance, a similarity), the median of the
    pairs that have one, and their share."""
    from poiflow.conflate.explain import describe_feature

    counts = pl.Series(shows).value_counts(sort=True)
    value, count = str(counts[0, 0]), int(counts[0, 1])
    if 2 * count >= len(shows) or name not in pairs.columns:
        return value, count / len(shows)
    known = pairs[name].cast(pl.Float64).fill_nan(None).drop_nulls()
    if known.is_empty():
        return value, count / len(shows)
    median = float(known.median())  # type: ignore[arg-type]
    return f"median {describe_feature(name, median)}", known.len() / len(shows)


def _parquet_rows(path: Path, rows: list[int], columns: list[str]) -> dict[str, np.ndarray]:
    """Rows ``rows`` (sorted) of a Parquet file, reading only the row groups that hold them."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    at = np.asarray(rows, dtype=np.int64)
    groups = np.searchsorted(starts, at, side="right") - 1
    wanted = sorted(set(groups.tolist()))
    table = file.read_row_groups(wanted, columns=columns)
    offset = {g: int(sum(sizes[w] for w in wanted[:k])) for k, g in enumerate(wanted)}
    local = np.asarray([offset[g] + int(r - starts[g]) for g, r in zip(groups, at, strict=True)])
    taken = table.take(pa.array(local, pa.int64()))
    return {name: taken.column(name).to_numpy(zero_copy_only=False) for name in columns}
