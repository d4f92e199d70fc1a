"""Clustering: scored pairs into places, without chaining.

Edges are taken strongest first. Two clusters join only when the pairs *across* them agree:
their mean match probability (over the cross pairs blocking proposed) must reach the
threshold, at least half of the cross pairs must have been proposed at all, and none may
have been scored clearly apart. So A~B and B~C do not glue A to C when A and C differ.
Two clusters that each hold a record of the same source must clear a higher bar, since a
source rarely lists one place twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClusterConfig", "cluster_records"]


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Thresholds of clustering.

    Attributes:
        threshold: Least match probability of an edge, and least mean probability across
            two clusters, for them to join.
        same_source: The bar for joining clusters that share a source.
        min_coverage: Least share of the cross pairs that blocking proposed.
        veto: A cross pair scored below this (the two were clearly told apart) keeps the
            clusters apart, however strong the other links.
    """

    threshold: float = 0.3
    same_source: float = 0.95
    min_coverage: float = 0.5
    veto: float = 0.02


class _PairLookup:
    """Probability of any candidate pair, by binary search over sorted pair keys."""

    def __init__(self, n: int, left: np.ndarray, right: np.ndarray, probability: np.ndarray):
        self.n = np.int64(n)
        keys = left.astype(np.int64) * self.n + right.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.probability = probability[order]

    def get(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
        keys = lo * self.n + hi
        at = np.clip(np.searchsorted(self.keys, keys), 0, max(0, len(self.keys) - 1))
        found = self.keys[at] == keys if len(self.keys) else np.zeros(len(keys), dtype=bool)
        return found, np.where(found, self.probability[at] if len(self.keys) else 0.0, 0.0)


def cluster_records(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    sources: np.ndarray,
    config: ClusterConfig | None = None,
) -> np.ndarray:
    """A cluster label (the smallest member row) for each of ``n`` records.

    Args:
        n: Number of records.
        left, right: Record rows of the scored candidate pairs.
        probability: Match probability of each pair.
        sources: Source name of each record.
        config: Thresholds.

    Deterministic: ties between equally strong edges are broken by the pair's rows.
    """
    config = config or ClusterConfig()
    lookup = _PairLookup(n, left, right, probability)
    parent = np.arange(n)
    members: dict[int, list[int]] = {}
    source_sets: dict[int, set[object]] = {}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = int(parent[root])
        while parent[x] != root:
            parent[x], x = root, int(parent[x])
        return root

    strong = np.flatnonzero(probability >= config.threshold)
    order = strong[np.lexsort((right[strong], left[strong], -probability[strong]))]
    for edge in order:
        a, b = find(int(left[edge])), find(int(right[edge]))
        if a == b:
            continue
        group_a = members.get(a, [a])
        group_b = members.get(b, [b])
        sources_a = source_sets.get(a) or {sources[a]}
        sources_b = source_sets.get(b) or {sources[b]}
        bar = config.same_source if sources_a & sources_b else config.threshold
        if len(group_a) == 1 and len(group_b) == 1:
            mean, coverage = float(probability[edge]), 1.0
        else:
            xa = np.repeat(np.asarray(group_a), len(group_b))
            xb = np.tile(np.asarray(group_b), len(group_a))
            found, p = lookup.get(xa, xb)
            coverage = float(found.mean())
            mean = float(p[found].mean()) if found.any() else 0.0
            if found.any() and float(p[found].min()) < config.veto:
                continue
        if mean < bar or coverage < config.min_coverage:
            continue
        root, other = (a, b) if a < b else (b, a)
        parent[other] = root
        members[root] = group_a + group_b
        source_sets[root] = sources_a | sources_b
        members.pop(other, None)
        source_sets.pop(other, None)
    labels = np.array([find(i) for i in range(n)])
    # Label each cluster by its smallest row, whatever order the merges took.
    smallest = np.full(n, n)
    np.minimum.at(smallest, labels, np.arange(n))
    return np.asarray(smallest[labels], dtype=np.int64)
