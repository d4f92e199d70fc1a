"""What the benchmark scripts share: wall time and peak memory of a whole command (or of
work in this process), the median of repeated timings, and the generated worlds they run
on (made once, kept in ``benchmarks/data``)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

T = TypeVar("T")

__all__ = [
    "DATA",
    "conflated",
    "free_port",
    "generated_world",
    "habit_suffix",
    "measure",
    "median_seconds",
    "scored_run",
    "their_places",
    "tree_cpu",
    "tree_rss",
    "with_peak_rss",
    "world_arguments",
    "world_files",
]

DATA = Path(__file__).resolve().parent / "data"


def generated_world(
    places: int,
    sources: int,
    seed: int,
    *,
    no_coordinates: bool = False,
    vendor_noise: dict[str, float] | None = None,
) -> Path:
    """The folder of ``poiflow generate``'s world for these settings, generated again where
    it is missing or an older generator wrote it (with what was made from it).
    ``vendor_noise`` is ``poiflow generate --vendor-noise`` (each habit in the name)."""
    from poiflow.generate import generate

    habits = habit_suffix(vendor_noise)
    name = f"world-{places}-{sources}-{seed}{'-nocoord' if no_coordinates else ''}{habits}"
    folder = DATA / name
    if fresh_folder(folder):
        generate(
            places,
            sources,
            seed,
            folder,
            drop_coordinates=no_coordinates,
            vendor_noise=vendor_noise,
        )
    return folder


def habit_suffix(vendor_noise: dict[str, float] | None) -> str:
    """A world folder's name's end for ``poiflow generate --vendor-noise``: each noise or
    habit set, "-name=value", in name order ("" for none); past 160 characters (a file
    name holds 255), the habits' count and a hash of them instead."""
    suffix = "".join(f"-{name}={value:g}" for name, value in sorted((vendor_noise or {}).items()))
    if len(suffix) <= 160:
        return suffix
    return f"-{len(vendor_noise or {})}-habits-{hashlib.sha256(suffix.encode()).hexdigest()[:12]}"


def fresh_folder(folder: Path, *made: Path) -> bool:
    """Empty ``folder`` and say True where it does not hold a world the current generator
    wrote, or lacks one of ``made`` (what a benchmark made from it): it is to be made again.
    A benchmark's figures are then those of the world a fresh clone generates."""
    from poiflow.generate import is_current

    if is_current(folder) and all(path.exists() for path in made):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def world_arguments(
    parser: argparse.ArgumentParser, *, places: int, sources: int, seed: int
) -> None:
    """Add ``--places``, ``--sources`` and ``--seed`` (the generated world), with defaults."""
    parser.add_argument("--places", type=int, default=places, help="places in the world")
    parser.add_argument("--sources", type=int, default=sources, help="sources describing them")
    parser.add_argument("--seed", type=int, default=seed, help="the generator's seed")


def scored_run(files: list[Path], out: Path, gold: Any, some: Any) -> tuple[float, Any, Any]:
    """``poiflow conflate`` of ``files`` into ``out``, in a process of its own: its wall
    seconds, its pair scores against ``gold`` (``source, id, place``), and those of the
    records ``some`` (``source, id``) alone."""
    import polars as pl

    from poiflow.conflate.evaluate import score_membership

    seconds = conflated(files, out)
    membership = pl.read_parquet(out / "membership.parquet")
    ours = membership.join(some, on=["source", "id"])
    return seconds, score_membership(membership, gold), score_membership(ours, gold)


def their_places(gold: Any, records: Any) -> Any:
    """``source, id`` of every record of the true places that hold one of ``records``."""
    places = gold.join(records, on=["source", "id"]).select("place").unique()
    return gold.join(places, on="place").select("source", "id")


def world_files(description: str, places: int, sources: int, seed: int) -> tuple[Path, dict]:
    """The generated world that the command line names (``--places``, ``--sources``,
    ``--seed``; these the defaults), and its source files as text (polars frames of
    strings) by file name, for a script that alters them."""
    import polars as pl

    parser = argparse.ArgumentParser(description=description)
    world_arguments(parser, places=places, sources=sources, seed=seed)
    args = parser.parse_args()
    world = generated_world(args.places, args.sources, args.seed)
    files = sorted(world.glob("source_*.csv"))
    return world, {path.name: pl.read_csv(path, infer_schema_length=0) for path in files}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server the benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median_seconds(repeats: int, work: Callable[[], object]) -> float:
    """The median of ``repeats`` timed runs of ``work`` (seconds)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def tree_rss(root: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (0 for any that just ended)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for member in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    return total


def tree_cpu(root: psutil.Process) -> float:
    """CPU seconds (user and system) spent so far by this process and everything it started:
    its threads, the processes it and they have waited for, and every descendant still
    running (with those it waited for). ``root`` must be this process."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    for member in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def measure(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of ``command``.

    The RSS is the peak of the sum over the whole process tree (the command and its worker
    processes), sampled every 50 ms.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        root = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(root))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{stderr[-2000:]}")
    return seconds, peak / 2**20, stdout


def conflated(files: list[Path], out: Path) -> float:
    """Wall seconds of ``poiflow conflate`` of ``files`` into ``out``, in a process of its own."""
    command = [sys.executable, "-m", "poiflow", "conflate", *map(str, files), "-o", str(out)]
    seconds, _, _ = measure(command)
    return seconds


def with_peak_rss(work: Callable[[], T]) -> tuple[T, int]:
    """What ``work`` returns, and this process's peak resident memory (bytes) while it
    ran, sampled every 20 ms (what the process held before counts too)."""
    me, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss(me))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return result, peak[0]
