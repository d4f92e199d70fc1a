"""Records geocoded to a town's centre: what a point that a source gives to many records of
many streets does to conflation, and how well poiflow takes it.

A vendor's geocoder that cannot place an address often gives it the centre of its town
(or postcode). Blocking then looks for the record's place near the centre, kilometres
from it, and the distance between the record and its place's other records says "not
the same". The generated world (the 100k Splink world by default) is conflated as it is,
and again after every tenth record of the last source with a town and coordinates is
moved to its town's centre: the mean point of the town's records in all sources, rounded
to 6 decimals, as a geocoder gives one point to all of them. Printed side by side:
pairwise precision, recall and F1 against the truth, the F1 of the moved records' places
alone, how many points ingest withheld, and how many golden places the report's checks
flag as stacked on one point (``stacked_point``) and as without a point (``has_location``).

Then the last source, as generated and as moved, is matched as a feed against a run of
the others (``poiflow.match``, as ``poiflow match`` matches a file): the share of its
records whose place the run has that get the run's place holding most of that place's
records, over all of them and over the moved ones.

Last, the moved records are asked about one at a time, as ``POST /match`` requests (or
the stream's edits) ask, against the run of all four sources with town centres: one
record cannot show a stack of its own, so the points that run withheld are withheld from
them (``MatchIndex.stacks``); printed against the same requests with those points kept.

Usage:
    .venv/bin/python benchmarks/town_centres.py [--places 35000 --sources 4 --seed 2024]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import polars as pl

from measure import conflated, scored_run, their_places, world_files
from poiflow import match
from poiflow.conflate.evaluate import plurality, read_gold
from poiflow.normalize.points import KnownStacks
from poiflow.serving.matching import MatchIndex

EVERY = 10  # every tenth record of the last source with a town and coordinates is moved


def main() -> None:
    world, frames = world_files(__doc__.splitlines()[0], places=35_000, sources=4, seed=2024)
    point = [pl.col("lat").cast(pl.Float64), pl.col("lon").cast(pl.Float64)]
    centres = (
        pl.concat([f.select("city", *point) for f in frames.values()])
        .drop_nulls()
        .group_by("city")
        .agg(pl.col("lat").mean().round(6), pl.col("lon").mean().round(6))
    )
    last = list(frames)[-1]
    located = pl.col("city").is_not_null() & pl.col("lat").is_not_null()
    frame = frames[last].with_row_index("row")
    chosen = frame.filter(located).gather_every(EVERY)["row"]
    moved = frame.filter(pl.col("row").is_in(chosen.implode()))
    frames[last] = (
        frame.join(centres.rename({"lat": "c_lat", "lon": "c_lon"}), on="city", how="left")
        .with_columns(
            lat=pl.when(pl.col("row").is_in(chosen.implode()))
            .then(pl.col("c_lat").cast(pl.String))
            .otherwise("lat"),
            lon=pl.when(pl.col("row").is_in(chosen.implode()))
            .then(pl.col("c_lon").cast(pl.String))
            .otherwise("lon"),
        )
        .select(frames[last].columns)
    )
    gold = read_gold(world / "gold.csv")
    source = Path(last).stem
    of_moved = their_places(gold, moved.select(source=pl.lit(source), id="id"))
    with tempfile.TemporaryDirectory() as scratch:
        centred = Path(scratch) / "centred"
        centred.mkdir()
        for name, data in frames.items():
            data.write_csv(centred / name)
        towns = moved["city"].n_unique()
        print(f"{moved.height:,} records of {source} moved to the centres of {towns:,} towns")
        print(
            f"{'world':<26}{'seconds':>9}{'P':>8}{'R':>8}{'F1':>8}"
            f"{'moved F1':>10}{'withheld':>10}{'stacked':>9}{'no point':>10}"
        )
        runs = {}
        for label, folder in (("as generated", world), ("with town centres", centred)):
            out = runs[label] = Path(scratch) / f"run-{label.replace(' ', '-')}"
            files = [folder / name for name in frames]
            seconds, scores, moved_scores = scored_run(files, out, gold, of_moved)
            quarantine = pl.read_parquet(out / "quarantine.parquet")
            withheld = quarantine.filter(pl.col("field") == "lat, lon").height
            failed = dict(pl.read_parquet(out / "checks.parquet").select("check", "failed").rows())
            print(
                f"{label:<26}{seconds:>9.1f}{scores.precision:>8.4f}{scores.recall:>8.4f}"
                f"{scores.f1:>8.4f}{moved_scores.f1:>10.4f}{withheld:>10,}"
                f"{failed['stacked_point']:>9,}{failed['has_location']:>10,}"
            )
        # The last source as a feed matched against a run of the others (poiflow match).
        run = Path(scratch) / "run-of-the-others"
        conflated([world / name for name in frames if name != last], run)
        best = plurality(
            pl.read_parquet(run / "membership.parquet").join(gold, on=["source", "id"]),
            "place",
            "place_id",
        ).rename({"place_id": "expected"})
        print(f"\n{source} matched against a run of the other sources")
        print(f"{'feed':<26}{'seconds':>9}{'right':>8}{'moved right':>13}{'of':>7}")
        for label, folder in (("as generated", world), ("with town centres", centred)):
            started = time.perf_counter()
            answers = pl.DataFrame(pl.from_arrow(match(run, folder / last).matches))
            seconds = time.perf_counter() - started
            told = answers.join(gold, on=["source", "id"]).join(best, on="place")
            right = told.filter(pl.col("place_id") == pl.col("expected"))
            of = told.join(moved.select("id"), on="id")
            moved_right = right.join(moved.select("id"), on="id").height
            print(
                f"{label:<26}{seconds:>9.1f}{right.height / told.height:>8.2%}"
                f"{moved_right / of.height:>13.2%}{of.height:>7,}"
            )
        asked_alone(runs["with town centres"], frames[last], moved, source, gold)


def asked_alone(
    run: Path, frame: pl.DataFrame, moved: pl.DataFrame, source: str, gold: pl.DataFrame
) -> None:
    """The moved records asked about one request each against ``run``, with the points
    it withheld withheld from them and kept."""
    best = plurality(
        pl.read_parquet(run / "membership.parquet").join(gold, on=["source", "id"]),
        "place",
        "place_id",
    ).rename({"place_id": "expected"})
    rows = frame.join(moved.select("id"), on="id").with_columns(source=pl.lit(source))
    objects = [{k: v for k, v in r.items() if v is not None} for r in rows.to_dicts()]
    index = MatchIndex(run)
    print(f"\n{len(objects):,} moved records of {source} asked one at a time of the run")
    print(f"{'points':<26}{'seconds':>9}{'right':>8}{'withheld':>10}")
    for label, stacks in (("withheld as the run's", index.stacks), ("kept", KnownStacks.none())):
        index.stacks = stacks
        started = time.perf_counter()
        found = [index.match_objects([o])[0][0] for o in objects]
        seconds = time.perf_counter() - started
        answers = pl.DataFrame(
            {"source": source, "id": [m.id for m in found], "place_id": [m.place_id for m in found]}
        )
        told = answers.join(gold, on=["source", "id"]).join(best, on="place")
        right = told.filter(pl.col("place_id") == pl.col("expected")).height
        withheld = sum(any(w.startswith("lat, lon:") for w in m.withheld) for m in found)
        print(f"{label:<26}{seconds:>9.1f}{right / told.height:>8.2%}{withheld:>10,}")


if __name__ == "__main__":
    main()
