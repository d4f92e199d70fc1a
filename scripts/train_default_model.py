"""Train the matcher that ships with poiflow: src/poiflow/conflate/models/default.json.gz.

It learns from several generated worlds (different seeds, numbers of sources, and one in
which the vendor sources have no coordinates), so that it does not fit one noise profile.
``benchmarks/models.py`` compares a model made here (``--output``) with the shipped one on
worlds neither saw. Worlds whose vendors have real feeds' habits (rounded points above
all) were tried in training and did not pay (RESULTS.md, "Experiments not kept").
Every step is seeded: the same poiflow gives the same model.
Run: .venv/bin/python scripts/train_default_model.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.feature_names import FEATURES
from poiflow.conflate.matcher import train_matcher
from poiflow.conflate.training import labelled_pairs
from poiflow.generate import generate
from poiflow.pipeline import ingest

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "poiflow" / "conflate" / "models" / "default.json.gz"
# Features the shipped model does not read. How many records carry a name in all the data
# grows with the data: the training worlds' counts say nothing of a run ten or a hundred
# times their size (an independent place's name seen in many towns looks like a chain's).
# The model reads how common the name is in its area instead (``name_area_commonness``);
# Fellegi-Sunter still reads the count in all the data, its levels cut for it.
LEFT_OUT = ("name_commonness",)
WORLDS = (  # (places, sources, seed, vendor feeds without coordinates, vendors' habits)
    (12_000, 3, 101, False, {}),
    (12_000, 5, 102, False, {}),
    (10_000, 4, 103, True, {}),
    (8_000, 6, 104, False, {}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUT, help=f"where to write it ({OUT.name})")
    parser.add_argument(
        "--leave-out",
        action="append",
        default=[],
        choices=FEATURES,
        metavar="FEATURE",
        help="train without this feature (repeatable): what it is worth, in benchmarks/models.py",
    )
    args = parser.parse_args()
    features: dict[str, list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        for places, sources, seed, no_coordinates, habits in WORLDS:
            folder = Path(tmp) / f"world-{seed}"
            made = generate(
                places,
                sources,
                seed,
                folder,
                drop_coordinates=no_coordinates,
                vendor_noise=habits,
            )
            ingest(made.sources, folder / "records.parquet", workers=1)
            pair_features, pair_labels = labelled_pairs(
                folder / "records.parquet", read_gold(made.gold)
            )
            for name, column in pair_features.items():
                features.setdefault(name, []).append(column)
            labels.append(pair_labels)
            print(f"world {seed}: {len(pair_labels):,} pairs, {int(pair_labels.sum()):,} matches")
    merged = {name: np.concatenate(columns) for name, columns in features.items()}
    kept = tuple(name for name in FEATURES if name not in {*LEFT_OUT, *args.leave_out})
    matcher = train_matcher(
        merged, np.concatenate(labels), seed=7, name="default-5", feature_names=kept
    )
    matcher.save(args.output)
    print(f"wrote {args.output}: held-out {matcher.info['holdout']}")


if __name__ == "__main__":
    main()
