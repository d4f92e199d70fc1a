from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate.clustering import SAME_SOURCE, ClusterConfig, cluster_records, key_rank


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
    below = SAME_SOURCE - 0.05  # above the threshold, below the bar of one source
    assert labels(2, [(0, 1, below)], same) == [0, 1]
    assert labels(2, [(0, 1, 0.99)], same) == [0, 0]
    assert labels(2, [(0, 1, below)], ["osm", "vendor"]) == [0, 0]


def test_weak_edges_do_not_join() -> None:
    assert labels(2, [(0, 1, ClusterConfig().threshold - 0.01)]) == [0, 1]


def test_clusters_refused_once_join_when_one_grows_closer_but_a_veto_holds() -> None:
    """Clustering remembers the vetoes it met (a pair across stays across however the two
    clusters grow), not every refusal: a mean too low at one edge may clear the bar at a
    later one, once a cluster has grown by records nearer the other."""
    edges = [
        (0, 1, 0.95),
        (0, 4, 0.9),  # A = {0, 1, 4}
        (2, 3, 0.85),  # B = {2, 3}
        (0, 2, 0.5),  # A and B: mean (0.5 + 0.1 + 0.1) / 3 under 0.3: refused
        (1, 2, 0.1),
        (1, 3, 0.1),
        (4, 5, 0.45),  # 5 joins A, with (0, 5) too
        (0, 5, 0.35),
        (5, 2, 0.44),  # now the mean across is (0.7 + 0.44 + 0.43) / 5: joined
        (5, 3, 0.43),
    ]
    assert labels(6, edges) == [0, 0, 0, 0, 0, 0]
    # Had 1 and 3 been told apart, every edge between A and B after the first is vetoed.
    vetoed = [(a, b, 0.01 if (a, b) == (1, 3) else p) for a, b, p in edges]
    assert labels(6, vetoed) == [0, 0, 2, 2, 0, 0]


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


def reference_labels(
    n: int,
    edges: dict[tuple[int, int], float],
    sources: list[str],
    config: ClusterConfig,
    decided: dict[tuple[int, int], int] | None = None,
) -> list[int]:
    """The clustering rule written plainly (module docstring): the records decided one
    place start as one cluster; then strong edges strongest first, ties by rows; two
    clusters join when the pairs across them agree and none of them is decided apart."""
    decided = decided or {}
    edges = edges | {pair: 1.0 if d > 0 else 0.0 for pair, d in decided.items() if d}
    cluster = {row: {row} for row in range(n)}  # row -> its cluster (shared sets)
    for (a, b), d in decided.items():
        if d > 0 and cluster[a] is not cluster[b]:
            joined = cluster[a] | cluster[b]
            for row in joined:
                cluster[row] = joined
    apart = {pair for pair, d in decided.items() if d < 0}
    strong = sorted(
        ((a, b, p) for (a, b), p in edges.items() if p >= config.threshold),
        key=lambda e: (-np.float32(e[2]), e[0], e[1]),
    )
    for a, b, p in strong:
        group_a, group_b = cluster[a], cluster[b]
        if group_a is group_b:
            continue
        if any((min(x, y), max(x, y)) in apart for x in group_a for y in group_b):
            continue
        shared = {sources[r] for r in group_a} & {sources[r] for r in group_b}
        bar = config.source_bar if shared else config.threshold
        if len(group_a) == len(group_b) == 1:
            mean, coverage = float(np.float32(p)), 1.0
        else:
            cross = [edges.get((min(x, y), max(x, y))) for x in group_a for y in group_b]
            known = [float(np.float32(q)) for q in cross if q is not None]
            coverage = len(known) / len(cross)
            mean = math.fsum(known) / len(known) if known else 0.0
            if known and min(known) < config.veto:
                continue
        if mean < bar or coverage < config.min_coverage:
            continue
        joined = group_a | group_b
        for row in joined:
            cluster[row] = joined
    return [min(cluster[row]) for row in range(n)]


def graphs(
    max_edges: int, *more: Callable[[int], st.SearchStrategy[Any]]
) -> st.SearchStrategy[tuple[Any, ...]]:
    """``(n, edges, sources, *more)``: ``n`` records of three sources, and scored pairs
    among them (a record with itself, or a pair twice, is left to the test to drop) at
    probabilities on both sides of every bar; ``more`` draws more of ``n``."""

    def of(n: int) -> st.SearchStrategy[tuple[Any, ...]]:
        edges = st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.integers(0, n - 1),
                st.sampled_from([0.01, 0.2, 0.35, 0.5, 0.8, 0.88, 0.93, 0.97, 0.99]),
            ),
            max_size=max_edges,
        )
        sources = st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)
        return st.tuples(st.just(n), edges, sources, *(draw(n) for draw in more))

    return st.integers(2, 10).flatmap(of)


@settings(max_examples=300)
@given(
    graphs(50),
    st.sampled_from([ClusterConfig(), ClusterConfig(threshold=0.05), ClusterConfig(veto=0.4)]),
)
def test_clusters_follow_the_rule_written_plainly(
    case: tuple[int, list[tuple[int, int, float]], list[str]], config: ClusterConfig
) -> None:
    """The fast paths (components of one edge, whole cliques merged at once, cross pairs
    looked up by integer keys) give the plain rule's clusters."""
    n, raw, sources = case
    edges: dict[tuple[int, int], float] = {}
    for a, b, p in raw:
        if a != b:
            edges.setdefault((min(a, b), max(a, b)), p)
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    p = np.array(list(edges.values()), dtype=np.float32)
    got = cluster_records(n, left, right, p, np.array(sources, dtype=object), config)
    assert got.tolist() == reference_labels(n, edges, sources, config)


@settings(max_examples=300)
@given(graphs(50, lambda n: st.permutations(range(n))))
def test_the_clusters_do_not_depend_on_the_order_the_records_come_in(
    case: tuple[int, list[tuple[int, int, float]], list[str], list[int]],
) -> None:
    # Edges of one probability are many (the model's probabilities repeat): which is
    # taken first goes by the records' source and id, not by their rows.
    n, raw, sources, order = case
    keys = [(source, f"r{row}") for row, source in enumerate(sources)]
    edges: dict[tuple[int, int], float] = {}
    for a, b, p in raw:
        if a != b:
            edges.setdefault((min(a, b), max(a, b)), p)

    def clusters(rows: list[int]) -> set[frozenset[tuple[str, str]]]:
        at = {row: i for i, row in enumerate(rows)}  # where each record is put
        left = np.array([at[a] for a, _ in edges], dtype=np.int64)
        right = np.array([at[b] for _, b in edges], dtype=np.int64)
        listed = [keys[row] for row in rows]
        got = cluster_records(
            n,
            left,
            right,
            np.array(list(edges.values()), dtype=np.float32),
            np.array([s for s, _ in listed], dtype=object),
            ClusterConfig(),
            rank=key_rank([s for s, _ in listed], [i for _, i in listed]),
        )
        return {frozenset(listed[i] for i in np.flatnonzero(got == label)) for label in set(got)}

    assert clusters(list(order)) == clusters(list(range(n)))


def test_a_decided_match_joins_what_the_model_keeps_apart() -> None:
    # Two records of one source the model scored apart, and a third scored apart from
    # one of them: a person's match joins the first two, the third stays on its own.
    left, right = np.array([0, 0]), np.array([1, 2])
    p = np.array([0.001, 0.001])
    sources = np.array(["osm", "osm", "vendor"], dtype=object)
    assert cluster_records(3, left, right, p, sources).tolist() == [0, 1, 2]
    decided = np.array([1, 0], dtype=np.int8)
    assert cluster_records(3, left, right, p, sources, decided=decided).tolist() == [0, 0, 2]


def test_a_decided_difference_splits_what_the_model_joins_and_holds_against_chains() -> None:
    # A~B~C all strong; a person says A and C are different places: B goes with the
    # stronger of its two links, and A and C never meet, whatever the veto's bar.
    left, right = np.array([0, 1, 0]), np.array([1, 2, 2])
    p = np.array([0.99, 0.9, 0.95])
    sources = np.array(["a", "b", "c"], dtype=object)
    assert cluster_records(3, left, right, p, sources).tolist() == [0, 0, 0]
    decided = np.array([0, 0, -1], dtype=np.int8)
    for config in (ClusterConfig(), ClusterConfig(veto=0.0)):
        got = cluster_records(3, left, right, p, sources, config, decided)
        assert got.tolist() == [0, 0, 2]


@settings(max_examples=300)
@given(
    graphs(
        40,
        lambda n: st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.sampled_from([1, -1])),
            max_size=8,
        ),
    ),
    st.sampled_from([ClusterConfig(), ClusterConfig(threshold=0.05), ClusterConfig(veto=0.0)]),
)
def test_decisions_hold_and_the_rest_follows_the_rule(
    case: tuple[int, list[tuple[int, int, float]], list[str], list[tuple[int, int, int]]],
    config: ClusterConfig,
) -> None:
    """Records decided one place end in one cluster, records decided different places
    in two, and the fast paths still give the plain rule's clusters."""
    n, raw, sources, said = case
    edges: dict[tuple[int, int], float] = {}
    for a, b, p in raw:
        if a != b:
            edges.setdefault((min(a, b), max(a, b)), p)
    # Consistent decisions, as reading a decisions file leaves them: matches first (with
    # what they join), then differences between records no match joins.
    group = list(range(n))

    def root(x: int) -> int:
        while group[x] != x:
            x = group[x]
        return x

    decided: dict[tuple[int, int], int] = {}
    for a, b, d in sorted(said, key=lambda s: -s[2]):
        pair = (min(a, b), max(a, b))
        if a == b or pair in decided:
            continue
        if d > 0:
            group[root(a)] = root(b)
        elif root(a) == root(b):
            continue
        decided[pair] = d
    pairs = sorted(set(edges) | set(decided))
    left = np.array([a for a, _ in pairs], dtype=np.int64)
    right = np.array([b for _, b in pairs], dtype=np.int64)
    p = np.array([edges.get(pair, 0.5) for pair in pairs], dtype=np.float32)
    flags = np.array([decided.get(pair, 0) for pair in pairs], dtype=np.int8)
    got = cluster_records(n, left, right, p, np.array(sources, dtype=object), config, flags)
    scored = {pair: edges.get(pair, 0.5) for pair in pairs}
    assert got.tolist() == reference_labels(n, scored, sources, config, decided)
    for (a, b), d in decided.items():
        assert (got[a] == got[b]) == (d > 0)
