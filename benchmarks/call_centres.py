"""A chain's call centre: what one phone that a source gives to many branches does to
conflation, and how well poiflow takes it.

Vendor feeds often list a chain's national number for every branch. Two branches of a
chain a few hundred metres apart then share a phone, which otherwise is among the
strongest evidence of one place. The generated world (the 100k Splink world by default)
is conflated as it is, and again after the last two sources give every record of the
world's largest chains the chain's one number. Printed side by side: pairwise precision,
recall and F1 against the truth, and the F1 of the chains' own records.

Usage:
    .venv/bin/python benchmarks/call_centres.py [--places 35000 --sources 4 --seed 2024]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from measure import scored_run, world_files
from poiflow.conflate.evaluate import read_gold

CHAINS = 9  # the largest chains, by their name's first word, that share one number


def main() -> None:
    world, frames = world_files(__doc__.splitlines()[0], places=35_000, sources=4, seed=2024)
    first_word = pl.col("name").str.split(" ").list.first().str.to_lowercase()
    # A chain: one of the commonest first words of names, in all sources together (a word
    # of many unrelated names, as "ravintola", comes in too: a placeholder number, then).
    chains = (
        pl.concat([f.select(first_word.alias("word")) for f in frames.values()])
        .group_by("word")
        .len()
        .filter(pl.col("len") >= 100)
        .sort("len", "word", descending=[True, False])
        .head(CHAINS)["word"]
        .to_list()
    )
    gold = read_gold(world / "gold.csv")
    of_chains = pl.concat(
        [
            f.filter(first_word.is_in(chains)).select(source=pl.lit(Path(n).stem), id="id")
            for n, f in frames.items()
        ]
    )
    with tempfile.TemporaryDirectory() as scratch:
        called = Path(scratch) / "called"
        called.mkdir()
        shared = 0
        for i, (name, frame) in enumerate(frames.items()):
            if i >= len(frames) - 2:  # the last two sources list the call centres
                is_chain = first_word.is_in(chains)
                shared += frame.filter(is_chain).height
                number = pl.lit("+358 20 ") + (first_word.hash(seed=1) % 1_000_000).cast(
                    pl.String
                ).str.zfill(6)
                frame = frame.with_columns(phone=pl.when(is_chain).then(number).otherwise("phone"))
            frame.write_csv(called / name)
        print(f"chains: {', '.join(chains)}; {shared:,} records given their chain's number")
        print(f"{'world':<28}{'seconds':>9}{'P':>8}{'R':>8}{'F1':>8}{'chains F1':>11}")
        for label, folder in (("as generated", world), ("with call centres", called)):
            out = Path(scratch) / f"run-{label.replace(' ', '-')}"
            files = [folder / name for name in frames]
            seconds, scores, chain_scores = scored_run(files, out, gold, of_chains)
            print(
                f"{label:<28}{seconds:>9.1f}{scores.precision:>8.4f}{scores.recall:>8.4f}"
                f"{scores.f1:>8.4f}{chain_scores.f1:>11.4f}"
            )


if __name__ == "__main__":
    main()
