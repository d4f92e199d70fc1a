"""Active learning with a simulated labeller: does F1 rise over the pretrained model?

On the hardest generated world (vendor feeds without coordinates), rounds of ``poiflow
label`` questions are answered from the truth, the shipped model is refined on all
answers so far (``poiflow train --labels``), and the pipeline is re-run with it (ingest
and blocking come from the cache). Printed: the learning curve, answers against pairwise
precision/recall/F1 and B-cubed F1, beside the same number of answers to random candidate
pairs (the peer: labelling without choosing). Two more columns hold the same answers as a
person's decisions (``poiflow conflate --decisions``): with the refined model, and with
the shipped model alone (clustering re-runs; scoring comes from the cache).

With ``--vendor-noise NAME=VALUE`` the world's vendor feeds get a noise the shipped model
was not trained on instead (coordinates kept), e.g. ``jitter_m=250``: feeds geocoded to
the street, 250 m off, where the generator the model learnt from puts vendors 10-60 m off.
That is the case active learning is for: a new feed unlike the training data.

Usage:
    .venv/bin/python benchmarks/active_learning.py                # 5 rounds of 10
    .venv/bin/python benchmarks/active_learning.py --rounds 8 --per-round 25
    .venv/bin/python benchmarks/active_learning.py --vendor-noise jitter_m=250
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from measure import fresh_folder
from poiflow import Pipeline
from poiflow.conflate.active import (
    append_label,
    label_features,
    pick_pairs,
    read_labels,
    refine_matcher,
)
from poiflow.conflate.matcher import Matcher, load_matcher
from poiflow.generate import generate
from poiflow.generate.noise import parse_noise

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--places", type=int, default=15000)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument(
        "--vendor-noise",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a noise of every vendor feed (see poiflow generate); coordinates are kept",
    )
    args = parser.parse_args()
    noise = parse_noise(args.vendor_noise)
    if noise:
        named = "-".join(f"{n}{v:g}" for n, v in sorted(noise.items()))
        world = DATA / f"world-{args.places}-3-{args.seed}-{named}"
        about = f"vendor feeds with {', '.join(args.vendor_noise)}"
    else:
        world = DATA / f"world-{args.places}-3-{args.seed}-nocoord"
        about = "vendors without coordinates"
    if fresh_folder(world):
        generate(args.places, 3, args.seed, world, drop_coordinates=not noise, vendor_noise=noise)
    gold = pl.read_csv(world / "gold.csv", schema_overrides={"id": pl.String, "place": pl.String})
    truth = {(s, i): p for s, i, p in gold.iter_rows()}
    base = load_matcher("default")
    assert isinstance(base, Matcher)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = "".join(f"  - path: {p}\n" for p in sorted(world.glob("source_*.csv")))
        (folder / "p.yaml").write_text(
            f"name: al\nsources:\n{sources}gold: {world / 'gold.csv'}\n"
            "cache: cache\ntracking: null\noutput: out\n"
        )
        pipeline = Pipeline.from_yaml(folder / "p.yaml")
        pipeline.run()
        start = _scores(folder / "out")
        records = pq.read_table(folder / "out" / "records.parquet").drop_columns(["geometry"])
        curves = {}
        for strategy in ("active", "random"):
            labels = folder / f"{strategy}.csv"
            run = folder / "out"
            curve = [(0, start)]
            for round_ in range(1, args.rounds + 1):
                pairs = pl.read_parquet(run / "pairs.parquet")
                membership = pl.read_parquet(run / "membership.parquet")
                answered = read_labels(labels)
                if strategy == "active":
                    chosen = pick_pairs(pairs, membership, count=args.per_round, labelled=answered)
                else:
                    chosen = pairs.sample(args.per_round, seed=round_)
                for pair in chosen.iter_rows(named=True):
                    left = truth.get((pair["left_source"], pair["left_id"]))
                    same = left is not None and left == truth.get(
                        (pair["right_source"], pair["right_id"])
                    )
                    append_label(
                        labels, pair, "match" if same else "different", labeller="simulated"
                    )
                found = label_features(records, read_labels(labels))
                model_path = folder / f"{strategy}-{round_}.json.gz"
                if len(set(found.labels.tolist())) == 2:
                    model = refine_matcher(base, found.features, found.labels, seed=0)
                    model.save(model_path)
                else:  # answers of one kind cannot refine a model (train refuses them)
                    base.save(model_path)
                run = folder / f"{strategy}-out-{round_}"
                tuned = pipeline.replace({"stages": {"score": {"model": str(model_path)}}})
                result = tuned.run(run)
                assert result.reused[:2] == ["ingest", "block"], result.reused
                scores = _scores(run)
                if strategy == "active":  # the same answers, held as decisions
                    decided = {"decisions": str(labels)}
                    both = folder / f"decided-{round_}"
                    tuned.replace(decided).run(both)
                    alone = folder / f"decided-alone-{round_}"
                    result = pipeline.replace(decided).run(alone)
                    assert "score" in result.reused, result.reused
                    scores |= {
                        "decided_f1": _scores(both)["f1"],
                        "decided_alone_f1": _scores(alone)["f1"],
                    }
                curve.append((round_ * args.per_round, scores))
            curves[strategy] = curve

    print(f"world {world.name}: {start['records']:,} records, {about}")
    head = (
        "answers",
        "active: P",
        "R",
        "F1",
        "B3 F1",
        "+decided F1",
        "decided alone F1",
        "random: F1",
        "B3 F1",
    )
    print("{:>8} | {:>9} {:>7} {:>7} {:>7} | {:>11} {:>16} | {:>10} {:>7}".format(*head))
    row = "{:>8} | {:9.4f} {:7.4f} {:7.4f} {:7.4f} | {:>11} {:>16} | {:10.4f} {:7.4f}"
    for (n, a), (_, r) in zip(curves["active"], curves["random"], strict=True):
        decided = [f"{a[k]:.4f}" if k in a else "-" for k in ("decided_f1", "decided_alone_f1")]
        scores = (a["precision"], a["recall"], a["f1"], a["bcubed_f1"], *decided)
        print(row.format(n, *scores, r["f1"], r["bcubed_f1"]))
    gain = curves["active"][-1][1]["f1"] - start["f1"]
    print(f"F1 after {curves['active'][-1][0]} answers: {gain:+.4f} over the pretrained model")


def _scores(run: Path) -> dict[str, float]:
    data = json.loads((run / "run.json").read_text())
    return {**data["metrics"], "records": data["counts"]["records"]}


if __name__ == "__main__":
    main()
