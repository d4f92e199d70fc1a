"""Peak memory of a conflate run, stage by stage.

Runs ``poiflow.conflate`` in this process and samples the resident memory of the process
tree (workers included) every 0.1 s, attributing each sample to the stage then running.

Usage:
    .venv/bin/python benchmarks/stage_memory.py benchmarks/data/world-365000-4-1234
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil

from measure import tree_rss
from poiflow.pipeline import conflate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of source_*.csv files")
    args = parser.parse_args()
    process = psutil.Process()
    stage = ["start"]
    peaks: dict[str, int] = {}
    running = True

    def sample() -> None:
        while running:
            peaks[stage[0]] = max(peaks.get(stage[0], 0), tree_rss(process))
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as out:
        conflate(
            sorted(args.folder.glob("source_*.csv")),
            out,
            on_stage=lambda name: stage.__setitem__(0, name),
        )
    time.sleep(0.3)
    running = False
    for name, peak in peaks.items():
        print(f"{name:<10} {peak / 2**20:>8,.0f} MiB")


if __name__ == "__main__":
    main()
