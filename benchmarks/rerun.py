"""A no-change re-run of a pipeline against its first run (target: at least 10x faster).

Times ``poiflow run`` as whole processes (a fresh cache for each first run; a warm one for
each re-run), and the same through ``Pipeline.run()`` in one Python process (a notebook's
loop), and checks that the re-run's outputs are the first run's, byte for byte.

Usage:
    .venv/bin/python benchmarks/rerun.py                      # the Helsinki pipeline
    .venv/bin/python benchmarks/rerun.py --pipeline examples/generated/pipeline.yaml
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from poiflow import Pipeline

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("places", "membership", "pairs", "records", "quarantine", "changes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", type=Path, default=ROOT / "examples/helsinki/pipeline.yaml")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind")
    parser.add_argument("--no-track", action="store_true", help="without MLflow logging")
    args = parser.parse_args()
    source = Pipeline.from_yaml(args.pipeline)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = yaml.safe_load(args.pipeline.read_text())
        for item in data["sources"]:
            item["path"] = str(source.resolve(item["path"]))
        for key in ("gold", "previous"):
            if data.get(key):
                data[key] = str(source.resolve(data[key]))
        data |= {"output": "out", "cache": "cache"}
        if args.no_track:
            data["tracking"] = None
        path = folder / "pipeline.yaml"
        path.write_text(yaml.safe_dump(data))
        command = [str(Path(sys.executable).parent / "poiflow"), "run", str(path)]

        def fresh() -> float:
            shutil.rmtree(folder / "cache", ignore_errors=True)
            return timed(command)

        first = [fresh() for _ in range(args.repeat)]
        reference = {n: (folder / "out" / f"{n}.parquet").read_bytes() for n in OUTPUTS}
        again = [timed(command) for _ in range(args.repeat)]
        same = all((folder / "out" / f"{n}.parquet").read_bytes() == reference[n] for n in OUTPUTS)

        pipeline = Pipeline.from_yaml(path)
        shutil.rmtree(folder / "cache", ignore_errors=True)
        started = time.perf_counter()
        pipeline.run()
        api_first = time.perf_counter() - started
        api_again = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = pipeline.run()
            api_again.append(time.perf_counter() - started)
        assert result.ran == [], result.ran

    tracking = "off" if args.no_track else "on"
    print(f"pipeline {source.spec.name} ({args.pipeline}), tracking {tracking}")
    print(f"{'':32} {'first run s':>12} {'re-run s':>10} {'ratio':>7}")
    row = "{:32} {:12.2f} {:10.3f} {:6.1f}x"
    cli_first, cli_again = statistics.median(first), statistics.median(again)
    print(row.format("poiflow run (whole process)", cli_first, cli_again, cli_first / cli_again))
    api_again_s = statistics.median(api_again)
    print(
        row.format("Pipeline.run() (in process)", api_first, api_again_s, api_first / api_again_s)
    )
    print(f"re-run outputs identical to the first run's: {same}")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
