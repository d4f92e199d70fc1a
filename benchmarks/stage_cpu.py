"""CPU time of a conflate run, stage by stage: how busy each stage keeps the cores.

Runs ``poiflow.conflate`` in this process with the environment the ``poiflow`` command
sets, and reads the CPU time (user and system) of the whole process tree as each stage
starts and when the run ends: this process and its threads, the ingest workers while they
run, and those that have ended. A stage that keeps every core busy has as many CPU seconds
as wall seconds times the cores; one that waits has fewer. The time before the first
stage (loading the model, starting the workers) is ``setup``.

Usage:
    .venv/bin/python benchmarks/stage_cpu.py benchmarks/data/splink-35000-4-2024
"""

from __future__ import annotations

from poiflow._launch import small_pages

small_pages()  # as the command does, before numpy and pyarrow are imported

import argparse  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402

from measure import tree_cpu  # noqa: E402
from poiflow.pipeline import conflate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of source_*.csv files")
    args = parser.parse_args()
    process = psutil.Process()
    marks: list[tuple[str, float, float]] = [("setup", time.perf_counter(), tree_cpu(process))]

    def started(name: str) -> None:
        marks.append((name, time.perf_counter(), tree_cpu(process)))

    with tempfile.TemporaryDirectory() as out:
        conflate(sorted(args.folder.glob("source_*.csv")), out, on_stage=started)
    marks.append(("end", time.perf_counter(), tree_cpu(process)))
    cores = os.cpu_count() or 1
    print(f"{'stage':<10} {'wall s':>8} {'CPU s':>8} {'cores busy':>11}  (of {cores})")
    for (name, wall, cpu), (_, next_wall, next_cpu) in itertools.pairwise(marks):
        seconds, used = next_wall - wall, next_cpu - cpu
        print(f"{name:<10} {seconds:>8.2f} {used:>8.2f} {used / max(seconds, 1e-9):>11.2f}")
    wall, used = marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2]
    print(f"{'whole':<10} {wall:>8.2f} {used:>8.2f} {used / wall:>11.2f}")


if __name__ == "__main__":
    main()
