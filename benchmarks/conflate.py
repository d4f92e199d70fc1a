"""Conflation quality and cost on generated worlds the shipped model never saw.

For each world (seeded; none of them is one the default model was trained on): generate
it, run ``poiflow conflate`` as a whole process (wall time, peak RSS of the process tree),
and score the membership against the truth. Prints blocking recall and candidates per
record, pairwise precision/recall/F1, B-cubed F1, seconds per stage and records/s, how
many true pairs each stage missed and how many wrong pairs each stage joined
(``poiflow.conflate.diagnosis``), and how right the golden records' attributes are
against the true places, beside the naive merge (``poiflow.conflate.accuracy``).

Usage:
    .venv/bin/python benchmarks/conflate.py                  # the quality suite
    .venv/bin/python benchmarks/conflate.py --scale 340000   # one large world (~1M records)
    .venv/bin/python benchmarks/conflate.py --model default --model em  # both matchers
"""

from __future__ import annotations

import argparse
import json
import sys

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from measure import generated_world, measure
from poiflow.conflate.accuracy import ATTRIBUTES
from poiflow.conflate.blocking import blocking_recall, candidate_pairs
from poiflow.conflate.clustering import ClusterConfig
from poiflow.conflate.diagnosis import CAUSES, RULES, diagnose
from poiflow.conflate.evaluate import read_gold, score_membership
from poiflow.conflate.merge import CONFIDENT_ATTRIBUTES
from poiflow.generate import GOLD_PLACES
from poiflow.pipeline.evaluation import score_golden

# The golden records' attributes printed (``poiflow.conflate.accuracy``).
SHOWN = tuple(a for a in ATTRIBUTES if a != "brand")

SUITE = (  # (label, places, sources, seed, vendor feeds without coordinates)
    ("4 sources", 20_000, 4, 7, False),
    ("5 sources", 20_000, 5, 99, False),
    ("3 sources, vendors without coordinates", 15_000, 3, 31, True),
    ("6 sources, one dense city", 2_500, 6, 55, False),
)


def run_world(
    label: str, places: int, sources: int, seed: int, no_coordinates: bool, model: str
) -> dict:
    folder = generated_world(places, sources, seed, no_coordinates=no_coordinates)
    files = sorted(str(p) for p in folder.glob("source_*.csv"))
    out = folder / f"run-{model}"
    command = [sys.executable, "-m", "poiflow", "conflate", *files, "-o", str(out)]
    seconds, peak, _ = measure([*command, "--json", "--model", model])
    gold = read_gold(folder / "gold.csv")
    membership = pl.read_parquet(out / "membership.parquet")
    scores = score_membership(membership, gold)
    run = json.loads((out / "run.json").read_text())
    scored = pq.read_table(
        out / "pairs.parquet",
        columns=["left_source", "left_id", "right_source", "right_id", "match_probability"],
    )
    errors = diagnose(membership, gold, scored, ClusterConfig(**run["matching"]["cluster"]))
    records = pq.read_table(out / "records.parquet").drop_columns(["geometry"])
    truth = (
        pl.DataFrame(records.select(["source", "id"]))
        .join(gold, on=["source", "id"], how="left", maintain_order="left")["place"]
        .to_arrow()
    )
    recall, _, _ = blocking_recall(candidate_pairs(records), pa.array(truth))
    golden = score_golden(membership, gold, out, folder / GOLD_PLACES)
    return {
        "world": label,
        "model": model,
        "records": run["counts"]["records"],
        "wall_s": seconds,
        "peak_rss_mib": peak,
        "blocking_recall": recall,
        "candidates_per_record": run["counts"]["candidates_per_record"],
        "precision": scores.precision,
        "recall": scores.recall,
        "f1": scores.f1,
        "bcubed_f1": scores.bcubed_f1,
        "stages": run["seconds"],
        "errors": errors.counts(),
        "kept_apart": errors.kept_apart(),
        "golden": golden,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, help="places of one large world (4 sources)")
    parser.add_argument(
        "--model",
        action="append",
        help="model to run each world with ('default', 'em' or a file); repeatable",
    )
    args = parser.parse_args()
    worlds = (
        [(f"scale, {args.scale:,} places", args.scale, 4, 1234, False)] if args.scale else SUITE
    )
    results = [run_world(*world, model) for world in worlds for model in args.model or ["default"]]
    print(
        f"{'world':<42} {'model':<8} {'records':>9} {'wall s':>7} {'rec/s':>7} {'RSS MiB':>8} "
        f"{'block R':>7} {'cand/rec':>8} {'P':>7} {'R':>7} {'F1':>7} {'B3 F1':>7}"
    )
    for r in results:
        print(
            f"{r['world']:<42} {r['model'][:8]:<8} {r['records']:>9,} {r['wall_s']:>7.1f} "
            f"{r['records'] / r['wall_s']:>7,.0f} {r['peak_rss_mib']:>8,.0f} "
            f"{r['blocking_recall']:>7.4f} {r['candidates_per_record']:>8.1f} "
            f"{r['precision']:>7.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} {r['bcubed_f1']:>7.4f}"
        )
    kinds = [f"{error}_{stage}" for error, stage in CAUSES]
    print(f"\n{'errors by stage (pairs)':<51} " + " ".join(f"{k:>17}" for k in kinds))
    for r in results:
        counts = " ".join(f"{r['errors'][k]:>17,}" for k in kinds)
        print(f"{r['world']:<42} {r['model'][:8]:<8} {counts}")
    print(
        f"\n{'missed pairs kept apart by (clustering)':<51} " + " ".join(f"{k:>11}" for k in RULES)
    )
    for r in results:
        counts = " ".join(f"{r['kept_apart'][k]:>11,}" for k in RULES)
        print(f"{r['world']:<42} {r['model'][:8]:<8} {counts}")
    _golden_table(results, "accuracy (naive merge)", SHOWN, "accuracy", "naive_accuracy")
    confident = [a for a in SHOWN if a == "place" or a in CONFIDENT_ATTRIBUTES]
    _golden_table(
        results, "calibration error (Brier score)", confident, "calibration_error", "brier"
    )
    for r in results:
        metres = r["golden"].location_m
        print(
            f"golden location, {r['world']}, {r['model']}: median {metres['median']} m, "
            f"p90 {metres['p90']} m (naive: {metres['naive_median']} m, {metres['naive_p90']} m)"
        )
    for r in results:
        print(f"stages (s), {r['world']}, {r['model']}: {r['stages']}")


def _golden_table(
    results: list[dict],
    title: str,
    attributes: list[str] | tuple[str, ...],
    first: str,
    second: str,
) -> None:
    """Each world's golden records, one column per attribute: ``first`` (``second``)."""
    print(f"\n{'golden records: ' + title:<51} " + " ".join(f"{a:>15}" for a in attributes))
    for r in results:
        table = r["golden"].table
        cells = []
        for attribute in attributes:
            row = table.row(by_predicate=pl.col("attribute") == attribute, named=True)
            cells.append(f"{_share(row[first])} ({_share(row[second])})")
        print(f"{r['world']:<42} {r['model'][:8]:<8} " + " ".join(f"{c:>15}" for c in cells))


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
