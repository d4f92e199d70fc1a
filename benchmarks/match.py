"""Real-time matching in process: how fast records are matched against a run's places,
and how often the answer is the run's own decision.

Takes a conflate/run output, loads the matcher (``MatchIndex``), then matches a random
sample of the run's own records, leave-one-out (a record is never its own evidence), in
one call, and compares each answer with the run: the record's place, or new where the run
left it alone. Prints the load time, records/s, the agreement rate and a few of the
disagreements. The aim (the serving issue) is 99% agreement.

Usage:
    .venv/bin/python benchmarks/match.py OUTPUT [--records 10000] [--model FILE]

``--model`` names the model that made an output older than outputs carrying their model
(``model.json.gz``), e.g. the shipped default for the Spark benchmark's local-engine run:
    .venv/bin/python benchmarks/match.py benchmarks/data/world-365000-4-1234/run-local-engine \\
        --model src/poiflow/conflate/models/default.json.gz
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.serving.matching import MatchIndex
from poiflow.sources import flat_place


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    index = MatchIndex(args.output, model=args.model)
    loaded = time.perf_counter() - started
    records = pq.read_table(args.output / "records.parquet")
    membership = pl.DataFrame(pq.read_table(args.output / "membership.parquet"))
    membership = membership.join(membership.group_by("place_id").len(), on="place_id")
    rng = np.random.default_rng(args.seed)
    picked = np.sort(rng.choice(records.num_rows, min(args.records, records.num_rows), False))
    sample = records.take(pa.array(picked))
    started = time.perf_counter()
    matches = index.match(sample)
    seconds = time.perf_counter() - started
    run = pl.DataFrame(sample.select(["source", "id"])).join(
        membership, on=["source", "id"], how="left", maintain_order="left"
    )
    expected = [p if n > 1 else None for p, n in zip(run["place_id"], run["len"], strict=True)]
    got = [m.place_id for m in matches]
    agree = sum(a == b for a, b in zip(expected, got, strict=True)) / len(got)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{records.num_rows:,} records in the run; matcher loaded in {loaded:.1f} s")
    print(
        f"matched {len(got):,} in {seconds:.2f} s ({len(got) / seconds:,.0f} records/s); "
        f"agreement with the run {agree:.2%}; peak RSS {peak:.2f} GB"
    )
    kinds = Counter(
        ("new" if e is None else "match", "new" if g is None else "match")
        for e, g in zip(expected, got, strict=True)
        if e != g
    )
    print("disagreements (run, here):", dict(kinds))
    one_at_a_time(index, sample)


def one_at_a_time(index: MatchIndex, sample: pa.Table, calls: int = 30) -> None:
    """What one call costs for a few records (a request, or the requests waiting together),
    and where one record's time goes: its blocking keys and its features, each on the
    plain-Python path a request takes and on the vectorized path a batch takes."""
    from poiflow.conflate.blocking import record_keys
    from poiflow.conflate.features import FEATURE_COLUMNS, RecordView, pair_features
    from poiflow.conflate.keys import BLOCKING_COLUMNS
    from poiflow.conflate.lookup import few_pair_features

    def median_ms(function, *args) -> float:  # type: ignore[no-untyped-def]
        function(*args)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            function(*args)
            times.append((time.perf_counter() - started) * 1000)
        return float(np.median(times))

    # Each size on both paths: where the plain-Python keys and features stop paying
    # (``FEW_RECORDS``, ``_FEW_PAIRS``).
    print("records per call   median ms per call   plain-Python paths   vectorized paths")
    for k in (1, 4, 16, 64, 128):
        some = sample.slice(0, k)
        as_is = median_ms(index.match, some)
        paths = []
        for few_records, few_pairs in ((10**9, 10**9), (0, 0)):
            with _paths(few_records, few_pairs):
                paths.append(median_ms(index.match, some))
        print(f"{k:16,} {as_is:20.1f} {paths[0]:20.1f} {paths[1]:18.1f}")
    one = sample.slice(0, 1)
    table = one.select(list(BLOCKING_COLUMNS)).append_column("row", pa.array([0], pa.int64()))
    few_keys = median_ms(index.stats.record_keys, table, index.blocking)
    batch_keys = median_ms(record_keys, table, index.stats.stats, index.blocking)
    compared = index.records.slice(0, 11).select(list(FEATURE_COLUMNS))  # one and ten others
    left, right = np.zeros(10, np.int64), np.arange(1, 11)

    def vectorized() -> None:
        view = RecordView.of(compared, index.features.narrowed(compared))
        pair_features(view, left, right)

    def plain() -> None:
        few_pair_features(compared.to_pylist(), left, right, index.features)

    # A request as the server gets it: one place as a JSON object, read to answer.
    requests = [flat_place(r) for r in sample.slice(0, 300).to_pylist()]
    for request in requests[:20]:
        index.answers([request])
    times = []
    for request in requests:
        started = time.perf_counter()
        index.answers([request])
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"one request from its JSON object (read, validate, normalize, match): median "
        f"{np.median(times):.2f} ms over {len(requests)} places"
    )
    print(
        f"one record: blocking keys {few_keys:.2f} ms (vectorized: {batch_keys:.2f} ms), "
        f"features of 10 pairs {median_ms(plain):.2f} ms (vectorized: "
        f"{median_ms(vectorized):.2f} ms), the whole match {median_ms(index.match, one):.2f} ms"
    )


@contextlib.contextmanager
def _paths(few_records: int, few_pairs: int) -> Iterator[None]:
    """Matching with other bounds for the plain-Python keys and features."""
    from poiflow.conflate import lookup
    from poiflow.serving import matching

    saved = lookup.FEW_RECORDS, matching._FEW_PAIRS
    lookup.FEW_RECORDS, matching._FEW_PAIRS = few_records, few_pairs  # type: ignore[misc]
    try:
        yield
    finally:
        lookup.FEW_RECORDS, matching._FEW_PAIRS = saved  # type: ignore[misc]


if __name__ == "__main__":
    main()
