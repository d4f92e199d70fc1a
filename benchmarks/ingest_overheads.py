"""What reading a generated world costs besides the work: the cycle collector and workers.

Generates (or reuses) a world, then times, in this process and on the same files:

1. validating and normalizing every file as one batch (what an ingest worker does), with
   Python's cycle collector on, and paused as ingest pauses it (``poiflow._gc``);
2. ``ingest`` of one file, then of all, each time in a fresh process (cold caches, as a
   command has them): in that process, and with the workers ingest chooses by the inputs'
   sizes, spawned (a fresh interpreter each) or forked from the prepared server
   (``poiflow.engines.prepare_workers``; Linux). The time includes waiting for the server
   to start, which ``conflate`` overlaps with loading the model.

Each figure is the median of ``--repeats`` runs, in records/s and seconds.

Usage:
    .venv/bin/python benchmarks/ingest_overheads.py [--places 365000] [--sources 4] [--seed 1234]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from measure import generated_world, median_seconds, world_arguments
from poiflow._gc import paused_gc
from poiflow.engines import local
from poiflow.pipeline import ingestion, preparing
from poiflow.sources import open_source


def collector(files: Sequence[Path], repeats: int) -> None:
    batches = [(b, s.name) for f in files for s in [open_source(f)] for b in s.batches(1 << 22)]
    records = sum(b.records.num_rows for b, _ in batches)

    def normalize_all() -> None:
        for batch, name in batches:
            preparing.checked_batch(batch, name)  # no pause of its own

    def paused() -> None:
        for batch, name in batches:
            preparing.ingest_batch(batch, name)  # paused per batch, as ingest does

    gc.collect()
    on = median_seconds(repeats, normalize_all)
    off = median_seconds(repeats, paused)
    print(f"validate + normalize {records:,} records, one batch a file:")
    for label, seconds in (("collector on", on), ("collector paused", off)):
        print(f"  {label:<18} {seconds:7.2f} s {records / seconds:>10,.0f} records/s")


def workers(files: Sequence[Path], repeats: int, folder: Path) -> None:
    ways = [("in this process", "1", "spawn"), ("workers, spawned", "auto", "spawn")]
    if local.FORKED_WORKERS:
        ways.append(("workers, forked", "auto", "fork"))
    print("ingest in a fresh process (cold caches), the collector paused as the pipeline does:")
    for label, parts, start in ways:
        for inputs, what in ((files[:1], "one file"), (files, f"{len(files)} files")):
            seconds = statistics.median(
                _one_ingest(inputs, parts, start, folder) for _ in range(repeats)
            )
            print(f"  {label:<18} {what:<9} {seconds:7.2f} s")


def _one_ingest(inputs: Sequence[Path], parts: str, start: str, folder: Path) -> float:
    command = [sys.executable, __file__, "--time-ingest", parts, start, str(folder)]
    done = subprocess.run([*command, *map(str, inputs)], check=True, capture_output=True)
    return float(done.stdout.decode().split()[-1])


def _time_ingest(parts: str, start: str, folder: str, inputs: list[str]) -> None:
    """(In the child.) ``ingest`` of ``inputs``, timed from just after the worker server
    was asked to start (conflate overlaps its start with loading the model; here it does
    not, so the figure includes waiting for it)."""
    local.FORKED_WORKERS = start == "fork"  # type: ignore[misc]
    started = time.perf_counter()
    if start == "fork":
        local.prepare_workers([ingestion.__name__, preparing.__name__])
    with paused_gc():
        ingestion.ingest(
            inputs, Path(folder) / "places.parquet", workers=None if parts == "auto" else 1
        )
    print(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    world_arguments(parser, places=365_000, sources=4, seed=1234)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--time-ingest", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_ingest:
        _time_ingest(*args.time_ingest[:3], args.time_ingest[3:])
        return
    world = generated_world(args.places, args.sources, args.seed)
    files = sorted(world.glob("source_*.csv"))
    size = sum(f.stat().st_size for f in files) / (1 << 20)
    print(f"world: {world.name}, {len(files)} files, {size:.0f} MiB")
    collector(files, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        workers(files, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
