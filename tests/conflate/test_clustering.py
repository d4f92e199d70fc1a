from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from poiflow.conflate.clustering import ClusterConfig, cluster_records


def labels(
    n: int, edges: list[tuple[int, int, float]], sources: list[str] | None = None
) -> list[int]:
    left = np.array([min(a, b) for a, b, _ in edges], dtype=np.int64)
    right = np.array([max(a, b) for a, b, _ in edges], dtype=np.int64)
    p = np.array([w for _, _, w in edges], dtype=np.float32)
    src = np.array(sources or [f"s{i}" for i in range(n)], dtype=object)
    return cluster_records(n, left, right, p, src).tolist()


def test_no_chaining_through_a_weak_link() -> None:
    # A~B strong, B~C strong, but A and C were scored apart: C must not join A.
    assert labels(3, [(0, 1, 0.95), (1, 2, 0.9), (0, 2, 0.01)]) == [0, 0, 2]
    # When A and C agree too, all three are one place.
    assert labels(3, [(0, 1, 0.95), (1, 2, 0.9), (0, 2, 0.8)]) == [0, 0, 0]


def test_one_source_twice_needs_strong_evidence() -> None:
    same = ["osm", "osm"]
    assert labels(2, [(0, 1, 0.9)], same) == [0, 1]
    assert labels(2, [(0, 1, 0.99)], same) == [0, 0]
    assert labels(2, [(0, 1, 0.9)], ["osm", "vendor"]) == [0, 0]


def test_weak_edges_do_not_join() -> None:
    assert labels(2, [(0, 1, ClusterConfig().threshold - 0.01)]) == [0, 1]


@given(
    st.integers(2, 25).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0, 1)),
                max_size=60,
            ),
        )
    )
)
def test_clusters_partition_the_records(case: tuple[int, list[tuple[int, int, float]]]) -> None:
    n, raw = case
    seen: dict[tuple[int, int], float] = {}
    for a, b, w in raw:
        if a != b:
            seen.setdefault((min(a, b), max(a, b)), w)
    result = labels(n, [(a, b, w) for (a, b), w in seen.items()])
    assert len(result) == n
    for row, label in enumerate(result):
        assert label <= row  # a cluster is labelled by its smallest member
        assert result[label] == label
    # Every pair inside a cluster of two was an edge above the threshold.
    for cluster in set(result):
        members = [r for r, lab in enumerate(result) if lab == cluster]
        if len(members) == 2:
            assert seen.get((members[0], members[1]), 0) >= ClusterConfig().threshold
