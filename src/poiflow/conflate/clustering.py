"""Clustering: scored pairs into places, without chaining.

Edges are taken strongest first. Two clusters join only when the pairs *across* them agree:
their mean match probability (over the cross pairs blocking proposed) must reach the
threshold, at least half of the cross pairs must have been proposed at all, and none may
have been scored clearly apart. So A~B and B~C do not glue A to C when A and C differ.
Two clusters that each hold a record of the same source must clear a higher bar, since a
source rarely lists one place twice.

A person's decisions come first (``decided``): records decided to be one place start in
one cluster, whatever their scores, and two records decided to be different places veto
any join of their clusters, whatever the thresholds.

Edges of one probability are taken in the order of their records' ``rank`` (each record's
place in the order of source and id: :func:`key_rank`), not of their rows, and the means
across clusters are summed exactly: the clusters do not depend on the order in which the
input files list their records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy import sparse
from scipy.sparse import csgraph

__all__ = [
    "SAME_SOURCE",
    "ClusterConfig",
    "as_decided",
    "cluster_part",
    "cluster_records",
    "key_rank",
    "positions",
]

SAME_SOURCE = 0.9
"""The bar for joining clusters that share a source, unless the model or the settings say
another: a source rarely lists one place twice, and a model that does not see the
sources (Fellegi-Sunter's comparisons are independent) cannot weigh that itself. With
Fellegi-Sunter's three-stage fit, 0.9 gave a higher F1 than 0.95 on twelve of thirteen
generated worlds (and 0.0002 lower on the other); 0.8 did worse than 0.9 on the dense one
and on one without vendor coordinates (benchmarks/RESULTS.md)."""


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Thresholds of clustering.

    Attributes:
        threshold: Least match probability of an edge, and least mean probability across
            two clusters, for them to join.
        same_source: The bar for joining clusters that share a source; None:
            ``SAME_SOURCE`` (a pipeline takes the model's own, ``source_bar``).
        min_coverage: Least share of the cross pairs that blocking proposed.
        veto: A cross pair scored below this (the two were clearly told apart) keeps the
            clusters apart, however strong the other links.
    """

    threshold: float = 0.3
    same_source: float | None = None
    min_coverage: float = 0.5
    veto: float = 0.02

    @property
    def source_bar(self) -> float:
        """The bar for joining clusters that share a source."""
        return SAME_SOURCE if self.same_source is None else self.same_source


def key_rank(
    sources: Sequence[str] | pa.Array | pa.ChunkedArray,
    ids: Sequence[str] | pa.Array | pa.ChunkedArray,
) -> np.ndarray:
    """Each record's place in the order of its (source, id): what clustering breaks ties
    between equally strong edges by, so that they do not hang on the input's row order."""
    import pyarrow.compute as pc

    keys = pa.table({"source": sources, "id": ids})
    order = pc.sort_indices(keys, sort_keys=[("source", "ascending"), ("id", "ascending")])
    rank = np.empty(keys.num_rows, dtype=np.int64)
    rank[order.to_numpy()] = np.arange(keys.num_rows, dtype=np.int64)
    return rank


def cluster_part(
    rows: np.ndarray,
    sources: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    config: ClusterConfig | None = None,
    decided: np.ndarray | None = None,
    rank: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster some records: each one's label and its strongest match in its cluster.

    The clustering of a connected component of strong edges depends on that component
    alone, so any set of whole components (a shard) clusters as it would in the whole.

    Args:
        rows: The records' rows in the whole table, ascending.
        sources: Each record's source.
        left, right: The rows (in the whole table) of the scored pairs among them.
        probability: Each pair's match probability.
        config: Thresholds.
        decided: Each pair's decision, if a person made any: 1 one place, -1 different
            places, 0 none (see :func:`cluster_records`).
        rank: Each record's place in the order of (source, id), or any order of theirs
            that keeps it (see :func:`cluster_records`).

    Returns:
        ``(labels, best)``: each record's cluster label (its smallest member's row) and
        its best match probability within its cluster (1.0 for a record alone).
    """
    n = len(rows)
    local_left, local_right = positions(rows, left, right)
    probability = as_decided(probability, decided)
    labels = cluster_records(
        n, local_left, local_right, probability, sources, config, decided, rank
    )
    together = labels[local_left] == labels[local_right]
    best = np.zeros(n)
    np.maximum.at(best, local_left[together], probability[together])
    np.maximum.at(best, local_right[together], probability[together])
    best[best == 0] = 1.0  # a record alone is its own place
    return rows[labels].astype(np.int64), best


def positions(rows: np.ndarray, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, ...]:
    """The pairs' records as positions in ``rows`` (ascending)."""
    n = len(rows)
    if n and rows[0] == 0 and rows[-1] == n - 1:  # every row (ascending): rows are positions
        return np.asarray(left), np.asarray(right)
    return np.searchsorted(rows, left), np.searchsorted(rows, right)


def cluster_records(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    sources: np.ndarray,
    config: ClusterConfig | None = None,
    decided: np.ndarray | None = None,
    rank: np.ndarray | None = None,
) -> np.ndarray:
    """A cluster label (the smallest member row) for each of ``n`` records.

    Args:
        n: Number of records.
        left, right: Record rows of the scored candidate pairs.
        probability: Match probability of each pair.
        sources: Source name of each record.
        config: Thresholds.
        decided: Each pair's decision, if a person made any: 1 the two records are one
            place (joined first, through each other too), -1 they are different places
            (their clusters never join), 0 none. Decisions must not contradict each
            other (``decisions.read_decisions`` refuses a file whose matches join two
            records it says are different).
        rank: Each record's place in the order of (source, id) (:func:`key_rank`; any
            numbers in that order will do): ties between equally strong edges go to the
            pair whose records come first in it, so that the clusters are the same
            whatever order the records come in. None: by their rows.
    """
    config = config or ClusterConfig()
    probability = as_decided(probability, decided)
    parent, groups = _decided_groups(n, left, right, decided)
    strong = np.flatnonzero(probability >= config.threshold)
    # Components of the strong edges: a component of one edge needs no cross-pair checks
    # (its edge is the only cross pair), so only larger components go through the loop.
    graph = sparse.coo_matrix((np.ones(len(strong)), (left[strong], right[strong])), shape=(n, n))
    _, component = csgraph.connected_components(graph, directed=False)
    size = np.bincount(component, minlength=n)
    simple = size[component[left[strong]]] == 2
    for edge in strong[simple]:
        a, b = int(left[edge]), int(right[edge])
        bar = config.source_bar if sources[a] == sources[b] else config.threshold
        if probability[edge] >= bar:
            parent[max(a, b)] = min(a, b)
    strong = strong[~simple]
    # A component whose records are all from different sources and whose every pair is a
    # strong edge would be merged whole by the loop below (every cross mean clears the
    # bar, nothing is vetoed): merge it at once. Most places seen by several sources are.
    pair_count = np.bincount(component[left[strong]], minlength=n)
    source_codes = np.unique(sources.astype(str), return_inverse=True)[1]
    distinct = np.bincount(
        np.unique(component.astype(np.int64) * (source_codes.max() + 1) + source_codes)
        // (source_codes.max() + 1),
        minlength=n,
    )
    clique = (size > 2) & (pair_count == size * (size - 1) // 2) & (distinct == size)
    clique &= config.veto <= config.threshold  # else a strong edge could still veto
    in_clique = clique[component]
    smallest_row = np.full(n, n)
    np.minimum.at(smallest_row, component, np.arange(n))
    parent[in_clique] = smallest_row[component[in_clique]]
    strong = strong[~in_clique[left[strong]]]
    at = np.arange(n, dtype=np.int64) if rank is None else np.asarray(rank, dtype=np.int64)
    first, second = at[left[strong]], at[right[strong]]
    ends = (np.maximum(first, second), np.minimum(first, second))
    order = strong[np.lexsort((*ends, -probability[strong]))]
    # Every scored pair inside the larger components, for the cross-pair checks, keyed by
    # its rows in one integer, the lower first. Stored both ways round, a check would need
    # no comparison, but the index twice the size is slower to make and to read (at 354k
    # records with --model em, 2.6 against 1.9 s; benchmarks/RESULTS.md).
    crowded = (size[component] > 2) & ~in_clique
    inside = np.flatnonzero(crowded[left] & crowded[right] & (component[left] == component[right]))
    a_side, b_side = left[inside].astype(np.int64), right[inside].astype(np.int64)
    across = probability[inside]
    if decided is not None:  # a pair decided different vetoes whatever the veto's bar
        across = np.where(decided[inside] < 0, -1.0, across)
    lo, hi = np.minimum(a_side, b_side), np.maximum(a_side, b_side)
    scored = dict(zip((lo * n + hi).tolist(), across.tolist(), strict=True))
    bits = (1 << source_codes.astype(object)).tolist()  # each record's source, as one bit
    merged = _merge_in_order(
        parent.tolist(),
        left[order].tolist(),
        right[order].tolist(),
        probability[order].tolist(),
        bits,
        scored,
        n,
        config,
        {root: rows for root, rows in groups.items() if crowded[root]},
    )
    parent = np.asarray(merged, dtype=np.int64)
    labels = parent.copy()  # every root, by pointer jumping
    while True:
        jumped = labels[labels]
        if np.array_equal(jumped, labels):
            break
        labels = jumped
    # Label each cluster by its smallest row, whatever order the merges took.
    smallest = np.full(n, n)
    np.minimum.at(smallest, labels, np.arange(n))
    return np.asarray(smallest[labels], dtype=np.int64)


def as_decided(probability: np.ndarray, decided: np.ndarray | None) -> np.ndarray:
    """The probabilities with each decided pair's: 1.0 one place, 0.0 different places."""
    if decided is None or not decided.any():
        return probability
    return np.where(decided > 0, 1.0, np.where(decided < 0, 0.0, probability))


def _decided_groups(
    n: int, left: np.ndarray, right: np.ndarray, decided: np.ndarray | None
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Each record's first parent (the smallest row of the records decided one place with
    it, through each other too; else itself), and those groups' rows by that row."""
    parent = np.arange(n)
    if decided is None or not (decided > 0).any():
        return parent, {}
    same = np.flatnonzero(decided > 0)
    graph = sparse.coo_matrix((np.ones(len(same)), (left[same], right[same])), shape=(n, n))
    _, group = csgraph.connected_components(graph, directed=False)
    smallest = np.full(n, n)
    np.minimum.at(smallest, group, np.arange(n))
    parent = smallest[group]
    joined = np.flatnonzero(parent != np.arange(n))
    groups: dict[int, list[int]] = {}
    for root in np.unique(parent[joined]).tolist():
        groups[root] = [root]
    for row, root in zip(joined.tolist(), parent[joined].tolist(), strict=True):
        groups[root].append(row)
    return parent, groups


def _merge_in_order(
    parent: list[int],
    left: list[int],
    right: list[int],
    probability: list[float],
    bits: list[int],
    scored: dict[int, float],
    n: int,
    config: ClusterConfig,
    groups: dict[int, list[int]],
) -> list[int]:
    """Take the edges in the order given, joining two clusters when the pairs across them
    agree (see the module's docstring); ``parent`` is updated and returned. ``scored``:
    each pair's probability by ``lower * n + higher`` row; ``groups``: the clusters of more
    than one record that ``parent`` starts with, by their root."""
    members: dict[int, list[int]] = dict(groups)  # each cluster's rows, by its root
    source_bits: dict[int, int] = {}
    for root, rows in groups.items():
        for row in rows:
            source_bits[root] = source_bits.get(root, 0) | bits[row]

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    get = scored.get
    # Two clusters a pair across has vetoed stay apart however either grows: the pair
    # stays across. Their roots are remembered, and a root that stays one keeps its vetoes.
    vetoed: set[int] = set()
    same_source = config.source_bar
    for a, b, p in zip(left, right, probability, strict=True):
        a, b = find(a), find(b)
        if a == b:
            continue
        group_a = members.get(a) or [a]
        group_b = members.get(b) or [b]
        sources_a = source_bits.get(a, bits[a])
        sources_b = source_bits.get(b, bits[b])
        bar = same_source if sources_a & sources_b else config.threshold
        if len(group_a) == 1 and len(group_b) == 1:
            mean, coverage = p, 1.0
        else:
            pair = a * n + b if a < b else b * n + a
            if pair in vetoed:
                continue
            known = [
                q
                for x in group_a
                for y in group_b
                if (q := get(x * n + y if x < y else y * n + x)) is not None
            ]
            coverage = len(known) / (len(group_a) * len(group_b))
            # Summed exactly: in another order of the members, the same mean to the bit.
            mean = math.fsum(known) / len(known) if known else 0.0
            if known and min(known) < config.veto:
                vetoed.add(pair)
                continue
        if mean < bar or coverage < config.min_coverage:
            continue
        root, other = (a, b) if a < b else (b, a)
        parent[other] = root
        members[root] = group_a + group_b
        source_bits[root] = sources_a | sources_b
        members.pop(other, None)
        source_bits.pop(other, None)
    return parent
