"""A feed matched against a run: how right ``poiflow match``'s answers are, and how well it
groups the records no place of the run takes (``new_place``), at what cost.

A generated world's first half of sources is conflated (the run); the others, as one feed,
are matched against it (with ``--feed-first``, the other way round). Each answer is judged
by the truth: a record whose place the run has should get the run's place that holds the
most of that place's records, and a record whose place the run lacks should be new. The
records found new are then grouped among themselves (``poiflow.serving.new_places``:
blocking, the run's model, clustering). Printed against the truth, side by side with two
peers on the same new records:

- each record a new place of its own (what ``poiflow match`` answered before ``new_place``);
- a run of the new records alone (``poiflow conflate`` of them: its own statistics, its own
  clustering), the best this grouping can hope for, with its wall time.

With ``--new-only`` the feed is the same sources of another world (the next seed, its
sources renamed ``new_...``): every place is new, the case of a vendor's feed of another
country, where the grouping does all the work.

The feed is matched as ``poiflow match`` matches a file (``match_file``: read, validated
and normalized in batches, each matched, then the new records grouped). Figures: its
seconds up to the grouping and the grouping's, the process's peak resident memory while
it ran (sampled), pairwise precision, recall and F1 over the pairs of new records the
truth puts in one place.

Usage:
    .venv/bin/python benchmarks/match_feed.py [--places 35000 --sources 4 --seed 2024]
    .venv/bin/python benchmarks/match_feed.py --places 15000 --sources 3 --seed 31 \
        --no-coordinates [--feed-first]
    .venv/bin/python benchmarks/match_feed.py --new-only [--no-alone]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from measure import generated_world, with_peak_rss, world_arguments
from poiflow.conflate.evaluate import plurality, score_membership
from poiflow.pipeline import conflate
from poiflow.serving.answers import match_file
from poiflow.serving.matching import MatchIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser, places=35_000, sources=4, seed=2024)
    parser.add_argument(
        "--no-coordinates", action="store_true", help="a world whose sources lack coordinates"
    )
    parser.add_argument(
        "--feed-first",
        action="store_true",
        help="the first sources are the feed, the last the run (else the other way round)",
    )
    parser.add_argument(
        "--new-only",
        action="store_true",
        help="the feed is the same sources of another world (the next seed): every place new",
    )
    parser.add_argument(
        "--no-alone", action="store_true", help="leave out the run of the new records alone"
    )
    args = parser.parse_args()
    world = generated_world(
        args.places, args.sources, args.seed, no_coordinates=args.no_coordinates
    )
    sources = sorted(world.glob("source_*.csv"))
    kept = len(sources) // 2
    ran, fed = sources[:kept], sources[kept:]
    if args.feed_first:
        ran, fed = sources[-kept:], sources[:-kept]
    run = world / f"run-{'-'.join(s.stem.removeprefix('source_') for s in ran)}"
    if not (run / "run.json").exists():
        conflate(ran, run)
    gold = pl.read_csv(world / "gold.csv", infer_schema_length=0)
    prefix = ""
    if args.new_only:  # another world's records, under sources the run does not have
        other = generated_world(
            args.places, args.sources, args.seed + 1, no_coordinates=args.no_coordinates
        )
        fed, prefix = [other / path.name for path in fed], "new_"
        gold = pl.read_csv(other / "gold.csv", infer_schema_length=0).with_columns(
            source=prefix + pl.col("source")
        )
    with tempfile.TemporaryDirectory() as scratch:
        feed = Path(scratch) / "feed.csv"
        pl.concat(
            [
                pl.read_csv(path, infer_schema_length=0).with_columns(
                    source=pl.lit(prefix + path.stem)
                )
                for path in fed
            ],
            how="diagonal",
        ).write_csv(feed)
        index = MatchIndex(run)
        started = time.perf_counter()
        marks: list[float] = []
        (found, _), peak = with_peak_rss(
            lambda: match_file(index, feed, grouping=lambda _: marks.append(time.perf_counter()))
        )
        matching, grouping = marks[0] - started, time.perf_counter() - marks[0]
        answers = pl.DataFrame(found.select(["source", "id", "decision", "place_id", "new_place"]))
        new = answers.filter(pl.col("decision") == "new").select("source", "id", "new_place")
        started = time.perf_counter()
        alone = None if args.no_alone else alone_run(new, feed, Path(scratch))
        alone_seconds = time.perf_counter() - started
    right, wrong, missed, false_new = judged(answers.select("source", "id", "place_id"), gold, run)
    if alone is not None:
        new = new.join(alone, on=["source", "id"])
    true_pairs = score_membership(new.select("source", "id", place_id="new_place"), gold).true_pairs
    print(
        f"run: {', '.join(s.stem for s in ran)} ({index.size:,} records); "
        f"feed: {', '.join(prefix + s.stem for s in fed)} ({answers.height:,} records)"
    )
    print(
        f"read and matched {answers.height:,} in {matching:.2f} s, grouped in {grouping:.2f} s, "
        f"peak RSS {peak / 2**20:,.0f} MiB; {new.height:,} new, {true_pairs:,} pairs of them "
        "one place by the truth"
    )
    known = right + wrong + missed
    if known:
        print(
            f"of {known:,} records whose place the run has: {right / known:.2%} matched to "
            f"it, {wrong / known:.2%} to another place, {missed / known:.2%} called new; ",
            end="",
        )
    print(f"of {len(answers) - known:,} whose place it lacks, {false_new:,} matched a place")
    print(f"{'grouping of the new records':<40}{'seconds':>9}{'P':>8}{'R':>8}{'F1':>8}")
    own = pl.concat_str("source", pl.lit(":"), "id")
    rows = [
        ("each its own place (before new_place)", 0.0, own),
        ("poiflow match new_place", grouping, pl.col("new_place")),
    ]
    if alone is not None:
        rows.append(("poiflow conflate of them alone", alone_seconds, pl.col("alone")))
    for label, seconds, place in rows:
        scores = score_membership(new.select("source", "id", place.alias("place_id")), gold)
        print(f"{label:<40}{seconds:>9.2f}{scores.precision:>8.4f}{scores.recall:>8.4f}", end="")
        print(f"{scores.f1:>8.4f}")


def judged(answers: pl.DataFrame, gold: pl.DataFrame, run: Path) -> tuple[int, int, int, int]:
    """Answers against the truth: ``(right, wrong, missed, wrongly matched)``, the first
    three over the records whose true place the run has (its place is the run's place
    holding the most of that true place's records), the last over the others."""
    membership = pl.read_parquet(run / "membership.parquet").join(gold, on=["source", "id"])
    best = plurality(membership, "place", "place_id").rename({"place_id": "expected"})
    told = answers.join(gold, on=["source", "id"]).join(best, on="place", how="left")
    known = told.filter(pl.col("expected").is_not_null())
    right = known.filter(pl.col("place_id") == pl.col("expected")).height
    missed = known.filter(pl.col("place_id").is_null()).height
    unknown = told.filter(pl.col("expected").is_null())
    return right, known.height - right - missed, missed, unknown["place_id"].is_not_null().sum()


def alone_run(new: pl.DataFrame, feed: Path, scratch: Path) -> pl.DataFrame:
    """Each new record's place in a run of the new records alone (one file per source)."""
    records = pl.read_csv(feed, infer_schema_length=0).join(
        new.select("source", "id"), on=["source", "id"]
    )
    files = []
    for (name,), part in records.group_by("source", maintain_order=True):
        files.append(scratch / f"{name}.csv")
        part.drop("source").write_csv(files[-1])
    conflate(files, scratch / "alone")
    membership = pl.read_parquet(scratch / "alone" / "membership.parquet")
    return membership.select("source", "id", pl.col("place_id").alias("alone"))


if __name__ == "__main__":
    main()
