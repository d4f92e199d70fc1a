"""Why a run put two records in one place, or kept them apart (``poiflow explain``).

From an output folder of ``poiflow conflate`` or ``poiflow run``: the two records as the
run normalized them, whether blocking made them a candidate pair, the matcher's score
taken apart feature by feature (:mod:`poiflow.conflate.explain`), and what clustering
made of it: one place (scored above the threshold, or joined through other records, and
which), or two (scored below it, never compared, or kept apart by a clustering rule);
or that a person decided it (``poiflow conflate --decisions``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.blocking import SharedKey, common_kinds, shared_keys, table_stats
from poiflow.conflate.clustering import ClusterConfig
from poiflow.conflate.diagnosis import RULES, kept_apart_by
from poiflow.conflate.explain import Explanation, explain_scores, threshold_bits
from poiflow.conflate.feature_names import FEATURES
from poiflow.conflate.features import RecordView, feature_counts, feature_stats, pair_features
from poiflow.conflate.keys import BlockingConfig, KeyStats
from poiflow.conflate.matcher import load_matcher
from poiflow.errors import InputError
from poiflow.pipeline.outputs import (
    RecordName,
    name_text,
    output_path,
    pair_row,
    pairs_among,
    read_output,
    read_run,
    record_keys,
    record_name,
    run_settings,
)
from poiflow.text import address_line

__all__ = ["PHONE_SHARED", "PairStory", "explain_pair", "record_keys"]

# What a pair shows for phones where both records have one but some source gives theirs
# to many records (``features.SHARED_PHONE``): a call centre's, not compared.
PHONE_SHARED: Final = "a source's shared number"


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

    def _repr_html_(self) -> str:
        """A notebook's view: the verdict, the two records side by side and the score as a
        waterfall, as ``poiflow explain ... --html`` draws them."""
        from poiflow.quality.explain_page import explain_fragment

        return explain_fragment(self.as_dict())


def explain_pair(
    folder: str | Path,
    left: RecordName,
    right: RecordName,
    *,
    model: str | Path | None = None,
) -> PairStory:
    """Why the run in ``folder`` put the records ``left`` and ``right`` (``SOURCE:ID``
    or ``(source, id)`` each) in one place or kept them apart.

    Args:
        folder: An output folder of ``poiflow conflate`` or ``poiflow run``.
        left: One record, as ``SOURCE:ID`` or ``(source, id)``.
        right: The other.
        model: Score the pair with this model file instead of the run's own
            (``model.json.gz``): what another model would say of it.

    Raises:
        InputError: The folder lacks the run's files, or a record is not in it.
    """
    left, right = record_name(left), record_name(right)
    folder = Path(folder)
    records = read_output(folder, "records.parquet")
    sources = sorted(set(records.column("source").to_pylist()))
    frame = pl.DataFrame(records.select(["source", "id"])).with_row_index("row")
    found = [_row_of(frame, record_keys(name, sources), folder) for name in (left, right)]
    keys = (found[0][0], found[1][0])
    rows = [found[0][1], found[1][1]]
    if rows[0] == rows[1]:
        raise InputError(f"'{name_text(left)}' and '{name_text(right)}' are one record: name two")
    run = read_run(folder)
    cluster = run_settings(ClusterConfig, run, "cluster")
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
    phones = records.column("phones").take(pa.array(rows, pa.int64())).to_pylist()
    if math.isnan(float(features["phone_match"][0])) and all(phones):
        explanation = _phone_shared(explanation)
    run_probability = float(scored["match_probability"]) if scored is not None else None
    membership = pl.DataFrame(
        read_output(folder, "membership.parquet", ["source", "id", "place_id"])
    )
    places = _places(membership, keys, folder)
    blocking: tuple[SharedKey, ...] = ()
    nearer: tuple[str, ...] = ()
    if not candidate:
        config = run_settings(BlockingConfig, run, "block")
        counts = table_stats(records, config)
        blocking = tuple(shared_keys(records, (rows[0], rows[1]), config, counts))
        nearer = () if blocking else _nearer(records, rows, config, counts)
    metres = float(features["distance_m"][0])
    unpaired = _unpaired(blocking, nearer, metres)
    bar = _bar(keys, cluster)
    decided = _decided(folder, keys)
    if decided is not None:
        line = decided["line"]
        story: tuple[str, str | None, tuple[tuple[str, float], ...]] = (
            f"{'one place' if decided['decision'] == 'match' else 'two places'}: a person "
            f"decided so (line {line} of the run's decisions), whatever the model says",
            None,
            (),
        )
    else:
        story = _verdict(folder, membership, keys, places, run_probability, cluster, bar, unpaired)
    return PairStory(
        records=(_shown(records, rows[0]), _shown(records, rows[1])),
        candidate=candidate,
        run_probability=run_probability,
        explanation=explanation,
        model=matcher.version,
        threshold=bar,
        places=places,
        verdict=story[0],
        rule=story[1],
        path=story[2],
        blocking=blocking,
        threshold_bits=threshold_bits(matcher, bar),
    )


def _row_of(
    frame: pl.DataFrame, keys: list[tuple[str, str]], folder: Path
) -> tuple[tuple[str, str], int]:
    """The first of ``keys`` the run holds (``frame``: its ``row, source, id``), and its
    row."""
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
        held = pl.DataFrame(read_output(folder, "quarantine.parquet", columns))
        held = held.filter(pl.col("scope") == "record")
        for source, record_id in keys:
            row = held.filter((pl.col("source") == source) & (pl.col("id") == record_id)).head(1)
            if row.height:
                return f"quarantined ({row['reason'][0]}, at {row['origin'][0]})"
    return "not in its inputs"


def _phone_shared(explanation: Explanation) -> Explanation:
    """The explanation of a pair whose records both have phones, and whose phones were not
    compared: some source gives a number of theirs to many records (a call centre), so it
    is no record's phone. Said so, not "one lacks it"."""
    parts = tuple(
        replace(part, shows=PHONE_SHARED) if part.name in ("phone_match", "phone") else part
        for part in explanation.parts
    )
    return replace(explanation, parts=parts)


def _scored(folder: Path, keys: tuple[tuple[str, str], tuple[str, str]]) -> dict[str, Any] | None:
    """The pair's row of ``pairs.parquet`` (either way round), or None if never scored."""
    return pair_row(output_path(folder, "pairs.parquet"), keys)


def _decided(folder: Path, keys: tuple[tuple[str, str], tuple[str, str]]) -> dict[str, Any] | None:
    """A person's decision about the pair that the run followed (its row of
    ``decisions.parquet``), or None (an output of a poiflow before decisions has none)."""
    path = folder / "decisions.parquet"
    if not path.exists():
        return None
    row = pair_row(path, keys)
    return row if row is not None and row["in_run"] else None


def _places(
    membership: pl.DataFrame, keys: tuple[tuple[str, str], tuple[str, str]], folder: Path
) -> tuple[str, str]:
    found = []
    for source, record_id in keys:
        row = membership.filter((pl.col("source") == source) & (pl.col("id") == record_id))
        if row.is_empty():
            raise InputError(f"'{source}:{record_id}' is in no place", path=folder)
        found.append(str(row["place_id"][0]))
    return found[0], found[1]


def _nearer(
    records: pa.Table, rows: list[int], config: BlockingConfig, stats: KeyStats
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
    membership: pl.DataFrame,
    keys: tuple[tuple[str, str], tuple[str, str]],
    places: tuple[str, str],
    probability: float | None,
    cluster: ClusterConfig,
    least: float,
    unpaired: str,
) -> tuple[str, str | None, tuple[tuple[str, float], ...]]:
    """The sentence, the rule that keeps the places apart, and the chain that joins them
    (``least``: the probability that joins the two, ``_bar``; ``unpaired``: why blocking
    did not compare them, if it did not)."""
    threshold = f"the run's threshold ({cluster.threshold:g})"
    bar = (
        threshold
        if least == cluster.threshold
        else f"the run's bar for two records of one source ({least:g})"
    )
    if places[0] == places[1]:
        if probability is not None and probability >= least:
            return f"one place: scored above {bar}", None, ()
        path = _chain(folder, _members(membership, places[:1]), keys, cluster.threshold)
        how = unpaired if probability is None else f"scored below {bar}"
        return f"one place: {how}; joined through other records of the place", None, path
    if probability is None:
        return f"two places: {unpaired}", None, ()
    if probability < cluster.threshold:
        return f"two places: scored below {threshold}", None, ()
    rule, detail = _rule(folder, _members(membership, places), places, cluster)
    return (
        f"two places: scored above {threshold}, kept apart by clustering: {RULES[rule]}"
        + (f"; {detail}" if detail else ""),
        rule,
        (),
    )


def _bar(keys: tuple[tuple[str, str], tuple[str, str]], cluster: ClusterConfig) -> float:
    """The least probability that joins two records: the clustering threshold, or for two
    records of one source the (higher) bar for them."""
    if keys[0][0] == keys[1][0]:
        return max(cluster.threshold, cluster.source_bar)
    return cluster.threshold


def _members(membership: pl.DataFrame, places: tuple[str, ...]) -> pl.DataFrame:
    """The records of ``places``, numbered: ``row, source, id, place_id``."""
    return membership.filter(pl.col("place_id").is_in(list(places))).with_row_index("row")


def _rule(
    folder: Path, members: pl.DataFrame, places: tuple[str, str], cluster: ClusterConfig
) -> tuple[str, str]:
    """The clustering rule that keeps ``places`` apart, and what it found there: the pair
    that vetoed, the source both hold, the mean or the share compared across."""
    scored = pairs_among(folder, members)
    errors = pl.DataFrame(
        {
            "error": ["missed"],
            "stage": ["clustering"],
            "place_id": [places[0]],
            "place_id_r": [places[1]],
        }
    )
    ruled = kept_apart_by(errors, scored, members.select("row", "place_id", "source"), cluster)
    rule = str(ruled["kept_apart_by"][0])
    return rule, _rule_detail(rule, scored, members, cluster)


def _rule_detail(
    rule: str, scored: pl.DataFrame, members: pl.DataFrame, cluster: ClusterConfig
) -> str:
    """What ``rule`` found across the two places of ``members`` (``row, source, id,
    place_id``), from their ``scored`` pairs (``row, row_r, match_probability``)."""
    who = members.select(
        "row", "place_id", pl.concat_str("source", "id", separator=":").alias("key")
    )
    across = (
        scored.join(who, on="row")
        .join(who.rename({"row": "row_r", "place_id": "place_r", "key": "key_r"}), on="row_r")
        .filter(pl.col("place_id") != pl.col("place_r"))
        .sort("match_probability", "row", "row_r")
    )
    sizes = members.group_by("place_id").len()["len"].to_list()
    if rule == "veto" and across.height:
        weakest = across.row(0, named=True)
        return (
            f"{weakest['key']} and {weakest['key_r']} scored {weakest['match_probability']:.3f} "
            f"(the veto is {cluster.veto:g})"
        )
    values = across["match_probability"].to_numpy()
    mean = float(values.mean()) if len(values) else 0.0
    if rule == "same source":
        by_place = members.group_by("place_id").agg(pl.col("source").unique())["source"]
        shared = sorted(set(by_place[0].to_list()) & set(by_place[1].to_list()))
        return (
            f"both hold records of {', '.join(shared)}, and the pairs across average "
            f"{mean:.2f} (the bar is {cluster.source_bar:g})"
        )
    if rule == "average":
        return (
            f"the {across.height} pairs across average {mean:.2f} (the threshold is "
            f"{cluster.threshold:g})"
        )
    if rule == "coverage" and len(sizes) == 2:
        return (
            f"{across.height} of the {sizes[0] * sizes[1]} pairs across "
            f"{'was' if across.height == 1 else 'were'} compared (at least "
            f"{cluster.min_coverage:.0%} must be)"
        )
    return ""


def _chain(
    folder: Path,
    members: pl.DataFrame,
    keys: tuple[tuple[str, str], tuple[str, str]],
    threshold: float,
) -> tuple[tuple[str, float], ...]:
    """The records between the two, along the chain of links whose weakest is strongest
    (each link scored at or above ``threshold``; empty if none reaches), within their
    place's ``members``."""
    scored = pairs_among(folder, members).filter(pl.col("match_probability") >= threshold)
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
