"""The matcher's prediction: LightGBM itself against its trees compiled to native code.

Generates (or reuses) a world, conflates it to get its candidate pairs' features, then
times on the same pairs: LightGBM's own ``predict`` with prediction early stopping (what
poiflow did before), without it (what it does now below the compiled-trees threshold),
and the compiled trees (``poiflow.conflate.compiled``); the same for one pair, as a
request's matching has it; and compiling the model into an empty cache. Prints the
largest difference between LightGBM's probabilities and the compiled ones.

Usage:
    .venv/bin/python benchmarks/predict.py [--places 35000] [--sources 4] [--seed 2024]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq

from measure import generated_world, median_seconds, world_arguments
from poiflow.conflate.compiled import CACHE_ENV, compiled_trees
from poiflow.conflate.matcher import Matcher, load_matcher
from poiflow.pipeline import conflate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    world_arguments(parser, places=35_000, sources=4, seed=2024)
    args = parser.parse_args()
    world = generated_world(args.places, args.sources, args.seed)
    out = world / "run-default"
    if not (out / "pairs.parquet").exists():
        conflate(sorted(world.glob("source_*.csv")), out, workers=2)
    matcher = load_matcher("default")
    assert isinstance(matcher, Matcher)
    pairs = pq.read_table(out / "pairs.parquet", columns=list(matcher.features))
    columns = [pairs.column(n).to_numpy() for n in matcher.features]
    matrix = np.column_stack(columns).astype(np.float32)
    booster = matcher.booster

    def early() -> np.ndarray:
        return np.asarray(
            booster.predict(
                matrix,
                num_threads=2,
                pred_early_stop=True,
                pred_early_stop_freq=10,
                pred_early_stop_margin=12.0,
            )
        )

    def every_tree() -> np.ndarray:
        return np.asarray(booster.predict(matrix, num_threads=2))

    with tempfile.TemporaryDirectory() as cache:
        os.environ[CACHE_ENV] = cache
        text = booster.model_to_string()
        started = time.perf_counter()
        trees = compiled_trees(text)
        compile_s = time.perf_counter() - started
        if trees is None:
            raise SystemExit("lleaves is not installed: nothing compiled to compare")
        started = time.perf_counter()
        compiled_trees(text, compile_now=False)
        load_s = time.perf_counter() - started

        def compiled() -> np.ndarray:
            return trees.predict(columns)

        print(
            f"{len(matrix):,} candidate pairs of {world.name}; model: {booster.num_trees()} trees"
        )
        print(f"compiling into an empty cache: {compile_s:.2f} s", end="; ")
        print(f"loading it back: {load_s * 1000:.1f} ms")
        rows = [
            ("LightGBM, early stopping", median_seconds(3, early)),
            ("LightGBM, every tree", median_seconds(3, every_tree)),
            ("compiled trees", median_seconds(3, compiled)),
        ]
        one_matrix, one_columns = matrix[:1], [c[:1] for c in columns]
        single = [
            (
                "LightGBM, one pair",
                median_seconds(
                    5, lambda: [booster.predict(one_matrix, num_threads=1) for _ in range(1000)]
                )
                / 1000,
            ),
            (
                "compiled, one pair",
                median_seconds(
                    5, lambda: [trees.predict(one_columns, threads=1) for _ in range(1000)]
                )
                / 1000,
            ),
        ]
        for label, seconds in rows:
            print(f"{label:<28} {seconds:7.3f} s  {len(matrix) / seconds / 1e6:6.2f} M pairs/s")
        for label, seconds in single:
            print(f"{label:<28} {seconds * 1e6:7.1f} us")
        difference = np.abs(compiled() - every_tree()).max()
        print(f"largest difference, compiled against every tree: {difference:.2e}")
        stopped = np.abs(early() - every_tree()).max()
        print(f"largest difference, early stopping against every tree: {stopped:.2e}")


if __name__ == "__main__":
    main()
