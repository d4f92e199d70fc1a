"""A later run under a stream: what going on from it costs, and what it gives.

Makes a generated world and conflates it, applies a day of edits to it as the stream does
(``StreamState.apply``, one batch) and snapshots the places, then runs the same sources
again into a copy of the output (a later run: its ``run.json`` is written anew). Times,
in this process, each best of ``--repeat``:

1. **snapshot**: ``StreamState.open`` of the stream's snapshot, no later run (a restart);
2. **later run**: ``StreamState.open`` when the output holds the later run: the places
   start from it and the stream's edits are carried over (``StreamState.carry``);
3. the peer: **replay**, what an operator does without it: the later run's places loaded
   and the whole day of edits applied to them again (the consumer group's offsets reset to
   before the day).

and counts the golden places of 2 and 3 that differ from the stream's own (the same
sources, so a later run that changed nothing: they should hardly differ).

Usage:
    .venv/bin/python benchmarks/stream_rebase.py [--places 20000] [--edits 5000]
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from typing import Any

import polars as pl

from poiflow.generate.edits import generate_edits
from poiflow.pipeline import conflate
from poiflow.streaming import StreamState, edit_message, parse_edit
from stream import DATA, world

COMPARED = ["id", "names", "categories", "phones", "websites", "operating_status", "members"]


def best(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def differing(a: StreamState, b: StreamState) -> int:
    """Golden places of ``a`` with no place of ``b`` alike in every compared column."""
    left = pl.DataFrame(a.places).select(COMPARED)
    right = pl.DataFrame(b.places).select(COMPARED)
    return left.join(right, on=COMPARED, how="anti", nulls_equal=True).height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=20_000)
    parser.add_argument("--edits", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    sources, out = world(args.places, args.seed)
    edits = [
        parse_edit(edit_message(e["edit_id"], e["op"], e["time"], e["place"]))
        for e in generate_edits(sources, args.edits, 3)
    ]
    work = DATA / f"stream-rebase-{args.places}-{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    stream = StreamState(out)
    stream.apply(edits)
    stream.save(work / "state")
    later = work / "later"
    shutil.copytree(out, later)
    conflate(sorted(sources.glob("source_*.csv")), later, workers=2)

    def replay() -> StreamState:
        state = StreamState(later)
        state.apply(edits)
        return state

    restart, _ = best(args.repeat, lambda: StreamState.open(out, work / "state"))
    rebase, carried = best(args.repeat, lambda: StreamState.open(later, work / "state"))
    again, replayed = best(args.repeat, replay)
    assert carried.rebased is not None
    counts = carried.rebased[1].counts
    print(
        f"{stream.index.size:,} records, {stream.places.num_rows:,} places; "
        f"{len(edits):,} edits of {len(stream.stamps):,} records"
    )
    print(f"snapshot (a restart):          {restart:6.2f} s")
    print(
        f"later run, edits carried over: {rebase:6.2f} s  "
        f"({counts['applied']:,} carried, {counts['stale']:,} the run had as new; "
        f"{differing(carried, stream):,} places differ from the stream's)"
    )
    print(
        f"peer: later run, day replayed: {again:6.2f} s  "
        f"({differing(replayed, stream):,} places differ from the stream's)"
    )


if __name__ == "__main__":
    main()
