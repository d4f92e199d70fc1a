"""How long ``poiflow serve`` takes to answer from an output in object storage, against
the same output in a folder.

Starts S3Proxy (``scripts/s3_server.sh``, on 127.0.0.1) in SCRATCH_FOLDER, uploads OUTPUT
there (``storage.put_folder``, as a run's upload does), then starts ``poiflow serve`` three
times and times each from its start to its first ``/health`` answer: on the folder, on
``s3://`` with no copy yet (the server copies the output), and on ``s3://`` again (the
copy is there: one listing). Prints each, and the copy's size.

Usage:
    .venv/bin/python benchmarks/serve_s3.py OUTPUT SCRATCH_FOLDER
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from measure import free_port

ROOT = Path(__file__).resolve().parents[1]


def until_it_answers(location: str, env: dict[str, str]) -> float:
    """Seconds from ``poiflow serve LOCATION``'s start to its first ``/health`` answer."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "poiflow", "serve", location, "--port", str(port), "--watch", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=60):
                    return time.perf_counter() - started
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"poiflow serve {location} stopped") from None
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="a conflate/run output folder")
    parser.add_argument("scratch", type=Path, help="where S3Proxy keeps its buckets")
    args = parser.parse_args()
    shutil.rmtree(args.scratch, ignore_errors=True)
    args.scratch.mkdir(parents=True)
    script = ROOT / "scripts" / "s3_server.sh"
    printed = subprocess.run(
        ["bash", str(script), "start", str(args.scratch), str(free_port())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = {**os.environ, **dict(line.split("=", 1) for line in printed.split())}
    env["TMPDIR"] = str(args.scratch / "tmp")  # where the server keeps its copies
    os.environ.update(env)
    try:
        from poiflow.storage import put_folder

        (args.scratch / "data" / "poi").mkdir(parents=True)
        (args.scratch / "tmp").mkdir()
        local = args.scratch / "local"
        shutil.copytree(args.output, local, ignore=shutil.ignore_patterns("search"))
        started = time.perf_counter()
        put_folder(local, "s3://poi/out")
        print(f"uploaded in {time.perf_counter() - started:.1f} s")
        for said, location in (
            ("FOLDER (its search index built)", str(local)),
            ("FOLDER again", str(local)),
            ("s3:// (copied, its search index built)", "s3://poi/out"),
            ("s3:// again (the copy there)", "s3://poi/out"),
        ):
            print(f"poiflow serve {said}: {until_it_answers(location, env):.1f} s")
        copied = sum(f.stat().st_size for f in (args.scratch / "tmp").rglob("*") if f.is_file())
        print(f"the copy with its search index: {copied / 2**20:.0f} MiB")
    finally:
        subprocess.run(["bash", str(script), "stop", str(args.scratch)], check=False)


if __name__ == "__main__":
    main()
