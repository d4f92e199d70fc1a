"""Points rounded to a few decimals: what a source that gives its coordinates to 3 or 2
decimals (about 100 m, about 1 km) does to conflation, and how well poiflow takes it.

Many vendors' feeds and older systems keep a point to a few decimals, or round it on
purpose to hide an address. The generated world (the 100k Splink world by default) is
conflated as it is, again with the last source's points rounded to 3 and to 2 decimals,
and once more with its points left out (the peer a user would try: drop what cannot be
trusted). Printed side by side: pairwise precision, recall and F1 against the truth, the
F1 of the places that hold a record of that source, the candidate pairs per record, and
where the missed pairs were lost (``poiflow evaluate``'s stages: never a candidate pair,
scored below the threshold, kept apart by clustering).

Usage:
    .venv/bin/python benchmarks/rounded_points.py [--places 35000 --sources 4 --seed 2024]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl

from measure import scored_run, their_places, world_files
from poiflow.conflate.clustering import ClusterConfig
from poiflow.conflate.diagnosis import diagnose
from poiflow.conflate.evaluate import read_gold
from poiflow.schema import PAIR_SCORE_COLUMNS

# The worlds: the last source's points to these decimals (None: as generated; 0: none).
WORLDS = (("as generated", None), ("to 3 decimals", 3), ("to 2 decimals", 2), ("left out", 0))


def main() -> None:
    world, frames = world_files(__doc__.splitlines()[0], places=35_000, sources=4, seed=2024)
    last = list(frames)[-1]
    source = Path(last).stem
    gold = read_gold(world / "gold.csv")
    of_source = their_places(gold, frames[last].select(source=pl.lit(source), id="id"))
    print(f"the points of {source} ({frames[last].height:,} records), rounded")
    print(
        f"{'points':<16}{'seconds':>9}{'P':>8}{'R':>8}{'F1':>8}{'its F1':>8}"
        f"{'cand/rec':>10}{'missed:':>9}{'blocking':>10}{'matcher':>9}{'clustering':>12}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for label, decimals in WORLDS:
            folder = world
            if decimals is not None:
                folder = Path(scratch) / f"points-{decimals}"
                folder.mkdir()
                for name, data in frames.items():
                    (rounded(data, decimals) if name == last else data).write_csv(folder / name)
            out = Path(scratch) / f"run-{decimals}"
            seconds, scores, its = scored_run([folder / n for n in frames], out, gold, of_source)
            run = json.loads((out / "run.json").read_text("utf-8"))
            lost = diagnose(
                pl.read_parquet(out / "membership.parquet"),
                gold,
                pl.read_parquet(out / "pairs.parquet", columns=[*PAIR_SCORE_COLUMNS]),
                ClusterConfig(**run["matching"]["cluster"]),
            ).counts()
            print(
                f"{label:<16}{seconds:>9.1f}{scores.precision:>8.4f}{scores.recall:>8.4f}"
                f"{scores.f1:>8.4f}{its.f1:>8.4f}"
                f"{run['counts']['candidates_per_record']:>10.2f}{'':>9}"
                f"{lost['missed_blocking']:>10,}{lost['missed_matcher']:>9,}"
                f"{lost['missed_clustering']:>12,}"
            )


def rounded(data: pl.DataFrame, decimals: int) -> pl.DataFrame:
    """A source's records (text) with their points to ``decimals`` (0: none)."""
    point = ("lat", "lon")
    if decimals == 0:
        return data.with_columns(pl.lit(None, pl.String).alias(c) for c in point)
    return data.with_columns(
        pl.col(c).cast(pl.Float64).round(decimals).cast(pl.String) for c in point
    )


if __name__ == "__main__":
    main()
