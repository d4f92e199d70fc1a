"""The unsupervised matcher on its own: pair-level quality of the shipped EM fit.

For each world of the quality suite (``benchmarks/conflate.py``), fits a Fellegi-Sunter
model by EM on the world's candidate pairs, without labels, and scores the pairs against
the generator's truth at probability 0.5 and at the clustering threshold 0.05. Prints the
fitted prior next to the true share of matches, the EM steps and the fit time.

Usage:
    .venv/bin/python benchmarks/fellegi_sunter.py
"""

from __future__ import annotations

import time

import numpy as np

from conflate import SUITE
from embeddings import world
from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.fellegi_sunter import fit_fellegi_sunter
from poiflow.conflate.training import candidates, labels_of


def main() -> None:
    print(f"{'world':<42} {'prior':>6} {'true':>6} {'steps':>5} {'fit s':>6}  P/R/F1 @0.5, @0.05")
    for label, places, sources, seed, no_coordinates in SUITE:
        records, gold = world(places, sources, seed, no_coordinates)
        found = candidates(records)
        labels = labels_of(found, read_gold(gold))
        started = time.perf_counter()
        model = fit_fellegi_sunter(found.features)
        seconds = time.perf_counter() - started
        probability = model.predict(found.features)
        scores = []
        for threshold in (0.5, 0.05):
            predicted = probability >= threshold
            tp = int((predicted & (labels == 1)).sum())
            p = tp / max(1, int(predicted.sum()))
            r = tp / max(1, int(labels.sum()))
            scores.append(f"{p:.3f}/{r:.3f}/{2 * p * r / max(1e-9, p + r):.3f}")
        print(
            f"{label:<42} {model.prior:>6.3f} {np.mean(labels):>6.3f} "
            f"{model.info['iterations']:>5} {seconds:>6.2f}  {', '.join(scores)}"
        )


if __name__ == "__main__":
    main()
