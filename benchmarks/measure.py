"""Wall time and peak memory of a whole command, for the benchmark scripts."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time

import psutil

__all__ = ["measure", "tree_rss"]


def tree_rss(root: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (0 for any that just ended)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for member in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
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
