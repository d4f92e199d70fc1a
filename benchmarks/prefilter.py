"""How much a cheap pre-filter before the matcher would save, and what it would cost.

On one generated world (seeded), counts the candidate pairs that a rule on the cheap
features would drop before scoring (low name similarity, no shared phone or website
domain), and how many true matches it would drop with them.

Usage:
    .venv/bin/python benchmarks/prefilter.py [--places 20000] [--sources 5] [--seed 99]
"""

from __future__ import annotations

import argparse

from measure import DATA, fresh_folder, world_arguments
from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.training import labelled_pairs
from poiflow.generate import generate
from poiflow.pipeline import ingest

RULES = ((0.3, 0.1), (0.35, 0.2), (0.4, 0.2), (0.5, 0.3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    world_arguments(parser, places=20_000, sources=5, seed=99)
    args = parser.parse_args()
    folder = DATA / f"prefilter-{args.places}-{args.sources}-{args.seed}"
    if fresh_folder(folder, folder / "records.parquet"):
        made = generate(args.places, args.sources, args.seed, folder)
        ingest(made.sources, folder / "records.parquet")
    features, labels = labelled_pairs(folder / "records.parquet", read_gold(folder / "gold.csv"))
    matches = int(labels.sum())
    print(f"{len(labels):,} candidate pairs, {matches:,} true matches")
    print(f"{'token set <':>12} {'tf-idf <':>9} {'pairs dropped':>14} {'matches dropped':>16}")
    for token_set, tfidf in RULES:
        drop = (
            (features["name_token_set"] < token_set)
            & (features["name_tfidf"] < tfidf)
            & (features["phone_match"] != 1)
            & (features["domain_match"] != 1)
        )
        lost = int((drop & (labels == 1)).sum())
        print(f"{token_set:>12} {tfidf:>9} {drop.mean():>14.1%} {lost:>9,} of {matches:,}")


if __name__ == "__main__":
    main()
