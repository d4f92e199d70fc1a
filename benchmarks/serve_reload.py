"""``/search`` latency of ``poiflow serve`` before and while it takes up a later run.

Copies a conflate/run output, serves it (``--watch 1``), asks ``/search`` one request after
another for 8 s, then writes the output's ``run.json`` again (as a later run that changed
nothing writes it: the server loads the whole release again, beside the last) and asks
for 12 s more. Prints each part's requests, p50, p99 and slowest, and the server's line
saying it took the run up.

Usage:
    .venv/bin/python benchmarks/serve_reload.py OUTPUT SCRATCH_FOLDER
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from measure import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="a conflate/run output folder")
    parser.add_argument("scratch", type=Path, help="where its copy is served from")
    args = parser.parse_args()
    folder = args.scratch
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(args.output, folder)
    port = free_port()
    command = [sys.executable, "-m", "poiflow", "serve", str(folder), "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--watch", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=60) as answer:
            return json.loads(answer.read())

    for _ in range(600):
        try:
            get("/health")
            break
        except OSError:
            time.sleep(0.2)

    def sample(seconds: float) -> np.ndarray:
        took = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            get("/search?q=kahvila&lat=60.17&lon=24.94&limit=5")
            took.append(time.perf_counter() - started)
        return np.array(took) * 1000

    calm = sample(8)
    again = folder / ".run.json.again"
    again.write_bytes((folder / "run.json").read_bytes())
    os.replace(again, folder / "run.json")
    loading = sample(12)
    server.terminate()
    said = server.communicate(timeout=60)[1]
    for name, took in (("before", calm), ("while it loads the later run", loading)):
        print(
            f"{name}: {len(took):,} requests, p50 {np.percentile(took, 50):.1f} ms, "
            f"p99 {np.percentile(took, 99):.1f} ms, slowest {took.max():.1f} ms"
        )
    print("\n".join(line for line in said.splitlines() if "later run" in line))


if __name__ == "__main__":
    main()
