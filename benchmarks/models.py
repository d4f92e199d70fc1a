"""Matchers side by side on generated worlds none of them was trained on.

A change to the features or the training worlds changes the default model, and retraining
alone moves a world's F1 by a few thousandths either way: one world says little. This runs
``poiflow conflate --model M`` for each model on every world of a fixed set (2 to 10
sources, vendors with and without coordinates, one dense city, and worlds whose vendors
have real feeds' habits: points rounded to about a kilometre, records at their town's
centre or at (0, 0), text garbled on its way), scores each run against the truth, and
prints pairwise precision, recall and F1 per world and model, with the mean F1 and, for a
second model, its gain over the first on each world.

Usage:
    .venv/bin/python benchmarks/models.py --model default --model /tmp/other.json.gz
    .venv/bin/python benchmarks/models.py --model default --model em --world habits
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from measure import generated_world, measure
from poiflow.conflate.evaluate import read_gold, score_membership

# Real feeds' habits, as ``vs_splink.py --vendor-noise`` sets them.
FEEDS = {
    "rounded_points": 0.3,
    "town_centre": 0.03,
    "null_island": 0.01,
    "mojibake": 0.1,
    "web_escaped": 0.1,
    "numeric_postcode": 0.3,
}


@dataclass(frozen=True, slots=True)
class World:
    label: str
    places: int
    sources: int
    seed: int
    no_coordinates: bool = False
    habits: tuple[tuple[str, float], ...] = ()
    group: str = "plain"


WORLDS = (
    World("20k places, 2 sources", 20_000, 2, 61),
    World("15k, 2, vendor without coordinates", 15_000, 2, 62, no_coordinates=True),
    World("15k, 3", 15_000, 3, 63),
    World("20k, 4", 20_000, 4, 7),
    World("20k, 5", 20_000, 5, 99),
    World("15k, 3, vendors without coordinates", 15_000, 3, 31, no_coordinates=True),
    World("2.5k, 6, one dense city", 2_500, 6, 55),
    World("6k, 8", 6_000, 8, 64),
    World("4k, 10", 4_000, 10, 65),
    World("35k, 4 (vs_splink.py's world)", 35_000, 4, 2024),
    World(
        "8k, 4, a third of vendor points rounded",
        8_000,
        4,
        71,
        habits=(("rounded_points", 0.3),),
        group="habits",
    ),
    World(
        "6k, 3, every vendor point rounded",
        6_000,
        3,
        72,
        habits=(("rounded_points", 1.0),),
        group="habits",
    ),
    World("10k, 4, real feeds' habits", 10_000, 4, 73, habits=tuple(FEEDS.items()), group="habits"),
    World(
        "8k, 2, vendor at town centres and (0, 0)",
        8_000,
        2,
        74,
        habits=(("town_centre", 0.1), ("null_island", 0.03)),
        group="habits",
    ),
)


def run(world: World, model: str, tag: str) -> tuple[float, object]:
    """``poiflow conflate --model model`` of the world's sources: wall seconds and scores."""
    folder = generated_world(
        world.places,
        world.sources,
        world.seed,
        no_coordinates=world.no_coordinates,
        vendor_noise=dict(world.habits) or None,
    )
    files = sorted(str(p) for p in folder.glob("source_*.csv"))
    out = folder / f"run-model-{tag}"
    command = [sys.executable, "-m", "poiflow", "conflate", *files, "-o", str(out), "--json"]
    seconds, _, _ = measure([*command, "--model", model])
    membership = pl.read_parquet(out / "membership.parquet")
    return seconds, score_membership(membership, read_gold(folder / "gold.csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="a model file, 'default' or 'em' (repeatable; the first is the baseline)",
    )
    parser.add_argument(
        "--world",
        choices=("all", "plain", "habits"),
        default="all",
        help="which worlds: all, those as generated (plain), or those with feeds' habits",
    )
    args = parser.parse_args()
    worlds = [w for w in WORLDS if args.world in ("all", w.group)]
    tags = [Path(m).name.split(".")[0] or m for m in args.model]
    f1: dict[str, list[float]] = {m: [] for m in args.model}
    head = "".join(f" {t[:16]:>16} {'P':>6} {'R':>6} {'s':>5}" for t in tags)
    print(f"{'world':<44}{head}")
    for world in worlds:
        cells = []
        for model, tag in zip(args.model, tags, strict=True):
            seconds, score = run(world, model, tag)
            f1[model].append(score.f1)
            cells.append(
                f" {score.f1:>16.4f} {score.precision:>6.4f} {score.recall:>6.4f} {seconds:>5.1f}"
            )
        gain = f"  {f1[args.model[-1]][-1] - f1[args.model[0]][-1]:+.4f}" if len(tags) > 1 else ""
        print(f"{world.label:<44}{''.join(cells)}{gain}", flush=True)
    means = "".join(f" {statistics.mean(f1[m]):>16.4f} {'':>6} {'':>6} {'':>5}" for m in args.model)
    print(f"{'mean F1':<44}{means}")
    if len(tags) > 1:
        gains = [b - a for a, b in zip(f1[args.model[0]], f1[args.model[-1]], strict=True)]
        better = sum(g > 0 for g in gains)
        print(
            f"{tags[-1]} against {tags[0]}: better on {better} of {len(gains)} worlds, "
            f"mean {statistics.mean(gains):+.4f}, worst {min(gains):+.4f}"
        )


if __name__ == "__main__":
    main()
