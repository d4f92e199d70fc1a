"""Train the matcher that ships with poiflow: src/poiflow/conflate/models/default.json.gz.

It learns from several generated worlds (different seeds, numbers of sources, and one in
which the vendor sources have no coordinates), so that it does not fit one noise profile.
Every step is seeded: the same poiflow gives the same model.
Run: .venv/bin/python scripts/train_default_model.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.matcher import train_matcher
from poiflow.conflate.training import labelled_pairs
from poiflow.generate import generate
from poiflow.pipeline import ingest

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "poiflow" / "conflate" / "models" / "default.json.gz"
WORLDS = (  # (places, sources, seed, vendor feeds without coordinates)
    (12_000, 3, 101, False),
    (12_000, 5, 102, False),
    (10_000, 4, 103, True),
    (8_000, 6, 104, False),
)


def main() -> None:
    features: dict[str, list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        for places, sources, seed, no_coordinates in WORLDS:
            folder = Path(tmp) / f"world-{seed}"
            made = generate(places, sources, seed, folder, drop_coordinates=no_coordinates)
            ingest(made.sources, folder / "records.parquet", workers=1)
            pair_features, pair_labels = labelled_pairs(
                folder / "records.parquet", read_gold(made.gold)
            )
            for name, column in pair_features.items():
                features.setdefault(name, []).append(column)
            labels.append(pair_labels)
            print(f"world {seed}: {len(pair_labels):,} pairs, {int(pair_labels.sum()):,} matches")
    merged = {name: np.concatenate(columns) for name, columns in features.items()}
    matcher = train_matcher(merged, np.concatenate(labels), seed=7, name="default-4")
    matcher.save(OUT)
    print(f"wrote {OUT}: held-out {matcher.info['holdout']}")


if __name__ == "__main__":
    main()
