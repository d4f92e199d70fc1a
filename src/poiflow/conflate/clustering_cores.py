"""Clustering on every core: :func:`~poiflow.conflate.clustering.cluster_part` of the
whole, its work shared out between processes by whole components of the strong edges.

Clustering's loop runs in Python, one record's cluster at a time. A component's clustering
depends on that component alone, so processes on other cores each cluster some of them,
and the labels and best matches are those of the whole.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from poiflow.conflate.clustering import ClusterConfig, as_decided, cluster_part, positions
from poiflow.engines import prepare_workers, release_workers, run_partitioned

__all__ = [
    "PARALLEL_INSIDE",
    "PARALLEL_SHARE",
    "ClusterInput",
    "cluster_on_cores",
    "component_shards",
]

PARALLEL_INSIDE: Final = 2_000_000
"""Scored pairs inside components of more than two records (what clustering's loop
checks) from which :func:`cluster_on_cores` shares the work out between processes; below
it, starting them costs about what they save (``benchmarks/RESULTS.md``)."""

PARALLEL_SHARE: Final = 0.2
"""The least share of all the scored pairs those must be, too. A run writes its scored
pairs on another core while it clusters (``pairs.parquet``, about 0.55 µs a pair here,
against about 3.5 µs a pair for the loop); where the loop is not the larger work, the
processes would only take that core from the writing. At a million records the default
model's clustering has 12% of its pairs there (one process), ``--model em``'s 39% (all
cores)."""


class ClusterInput(NamedTuple):
    """What :func:`~poiflow.conflate.clustering.cluster_part` clusters: some records (all
    of them, or whole components), their rows in the whole table ascending, their
    sources, the scored pairs among them by those rows, each pair's decision (None: no
    person decided any), and each record's place in the order of (source, id) (None: ties
    go by rows; see ``clustering.key_rank``)."""

    rows: np.ndarray
    sources: np.ndarray
    left: np.ndarray
    right: np.ndarray
    probability: np.ndarray
    decided: np.ndarray | None = None
    rank: np.ndarray | None = None

    def cluster(self, config: ClusterConfig) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, best)`` of these records, as ``cluster_part`` gives them."""
        return cluster_part(
            self.rows,
            self.sources,
            self.left,
            self.right,
            self.probability,
            config,
            self.decided,
            self.rank,
        )

    def save(self, path: Path) -> None:
        """Write it to ``path`` (NumPy's ``.npz``), for a worker to :meth:`load`."""
        np.savez(path, **{name: a for name, a in self._asdict().items() if a is not None})

    @classmethod
    def load(cls, path: Path) -> ClusterInput:
        """Read what :meth:`save` wrote."""
        with np.load(path) as saved:
            return cls(**{name: saved[name] for name in saved.files})


def cluster_on_cores(
    whole: ClusterInput, config: ClusterConfig | None = None, *, parts: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``whole.cluster(config)``, with the same labels and best matches, its components
    shared out between ``parts`` processes (default: one per core where
    ``PARALLEL_INSIDE`` pairs, and ``PARALLEL_SHARE`` of them all, lie inside components
    of more than two records; else this process alone)."""
    config = config or ClusterConfig()
    shards = component_shards(whole, config, parts)
    if shards is None:
        return whole.cluster(config)
    labels, best = whole.rows.astype(np.int64), np.ones(len(whole.rows))

    def put(rows: np.ndarray, found: tuple[np.ndarray, np.ndarray]) -> None:
        at = np.searchsorted(whole.rows, rows)
        labels[at], best[at] = found

    if len(shards) < 2:  # every component of two records or more fell to one shard, or none
        for shard in shards:
            put(shard.rows, shard.cluster(config))
        return labels, best
    members = [shard.rows for shard in shards]
    with tempfile.TemporaryDirectory(prefix="poiflow-clusters-") as folder:
        for part, shard in enumerate(shards):
            shard.save(Path(folder) / f"{part}.npz")
        del shards, shard  # each worker reads its own from its file
        prepare_workers([__name__])
        task = functools.partial(_cluster_shard, folder, config)
        try:
            for rows, found in zip(members, run_partitioned(task, len(members)), strict=True):
                put(rows, found)
        finally:
            release_workers(wait=False)
    return labels, best


def component_shards(
    whole: ClusterInput, config: ClusterConfig, parts: int | None = None
) -> list[ClusterInput] | None:
    """The records in components of more than one record and their pairs, dealt into
    ``parts`` shards of whole components (by component number; a shard that gets none is
    left out; sources as codes); None where the work is left to one process (see
    :func:`cluster_on_cores`). A record in no shard is alone: its own label, best 1.0."""
    rows, left = whole.rows, whole.left
    n = len(rows)
    if parts == 1 or n < 3:
        return None
    local_left, local_right = positions(rows, left, whole.right)
    strong = np.flatnonzero(as_decided(whole.probability, whole.decided) >= config.threshold)
    graph = sparse.coo_matrix(
        (np.ones(len(strong)), (local_left[strong], local_right[strong])), shape=(n, n)
    )
    _, component = csgraph.connected_components(graph, directed=False)
    size = np.bincount(component, minlength=n)
    inside = component[local_left] == component[local_right]
    if parts is None:
        crowded = int(np.count_nonzero(inside & (size[component[local_left]] > 2)))
        many = crowded >= max(PARALLEL_INSIDE, PARALLEL_SHARE * len(left))
        parts = (os.cpu_count() or 1) if many else 1
    if parts <= 1:
        return None
    codes = np.unique(np.asarray(whole.sources).astype(str), return_inverse=True)[1]
    shard = np.arange(n) % parts  # a component's shard, by its number
    shards = []
    for part in range(parts):
        members = np.flatnonzero((shard[component] == part) & (size[component] > 1))
        if not len(members):
            continue
        pairs = np.flatnonzero(inside & (shard[component[local_left]] == part))
        shards.append(
            ClusterInput(
                rows[members],
                codes[members].astype(np.int32),
                left[pairs],
                whole.right[pairs],
                whole.probability[pairs],
                None if whole.decided is None else whole.decided[pairs],
                None if whole.rank is None else whole.rank[members],
            )
        )
    return shards


def _cluster_shard(
    folder: str, config: ClusterConfig, part: int, parts: int
) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """A worker's task: the clustering of its shard (``folder/PART.npz``)."""
    yield part, ClusterInput.load(Path(folder) / f"{part}.npz").cluster(config)
