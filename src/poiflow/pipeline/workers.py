"""The ingest workers' server, started as early as it can be.

Ingest reads several inputs at once, or one large input in parts, in worker processes
(``poiflow.engines``). On Linux they are forked from a server that has already imported
the readers and normalizers, and that server takes about 0.45 s to start and import. When
ingest starts it, its first workers wait for it; so it is started ahead:

- by the ``poiflow`` command (:func:`start_early`), before the command's own imports, when
  the command line says it will read enough local input to use workers: the server
  imports on the other core while the command imports;
- by :func:`poiflow.pipeline.conflate`, before it loads the model (``prepare_ingest``).

Ingest stops the server when it is done, used or not (its ~100 MiB are better spent on the
stages after it); a later pool starts it again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Final

from poiflow.engines import FORKED_WORKERS, prepare_workers

__all__ = ["GROUP_MIN_BYTES", "WORKER_MODULES", "WORKER_UNUSED", "start_early"]

WORKER_MODULES: Final = (
    "poiflow.pipeline.ingestion",
    "poiflow.pipeline.preparing",
    "poiflow.normalize",
    "polars",
)
"""What the server imports before it forks: the ingest module (and so every reader), the
normalizers (which ingest imports on first use, so that the command's own process, which
only waits for the workers, never loads them), and polars, with which the normalizers read
phones and websites column-wise."""

WORKER_UNUSED: Final = ("pandas",)
"""What the workers never use, and so cannot import (``run_partitioned``'s ``unused``).
pyarrow imports pandas the first time it converts a list, only to ask whether the list
is a pandas object: 0.3 s of import, in every worker or in the server before it forks,
that made the first workers of a 100k-record ``poiflow conflate`` start 0.6-0.7 s after
the command's own imports were done, instead of 0.2-0.4 s (``benchmarks/RESULTS.md``)."""

GROUP_MIN_BYTES: Final = (4 if FORKED_WORKERS else 16) << 20
"""Several small inputs that add up to this are read at once, one worker per input. A
spawned worker costs about 0.6 s to start (a fresh interpreter and its imports); one forked
from the prepared server (Linux), milliseconds. By ``benchmarks/ingest_overheads.py`` on 2
cores, 4 CSV files of 12 MiB in all: 2.0 s in one process, 1.8-1.9 s with workers."""

_READING_COMMANDS: Final = frozenset({"conflate", "ingest"})


def start_early(argv: Sequence[str]) -> bool:
    """Start the workers' server now if ``argv`` (a ``poiflow`` command line, without the
    program) runs a command that reads inputs, on this machine, from local files of at
    least ``GROUP_MIN_BYTES`` in all. Whether the server started.

    A guess from the words alone, before the command line is parsed (parsing needs the
    imports this is meant to overlap): every existing file named counts, a mapping or a
    model too. A wrong guess costs little: a server started for nothing is stopped when
    ingest ends (or with this process), and one not started is started by ingest.
    """
    if not FORKED_WORKERS or not argv or argv[0] not in _READING_COMMANDS:
        return False
    words = list(argv[1:])
    if "--help" in words or any(_is_other_engine(w, words, i) for i, w in enumerate(words)):
        return False
    size = 0
    for word in words:
        try:
            found = os.stat(word)
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(found.st_mode):
            size += found.st_size
    if size < GROUP_MIN_BYTES:
        return False
    prepare_workers(WORKER_MODULES)
    return True


def _is_other_engine(word: str, words: list[str], index: int) -> bool:
    """Whether ``word`` chooses an engine other than the local one (``--engine spark``)."""
    if word.startswith("--engine="):
        return word.removeprefix("--engine=") != "local"
    if word == "--engine":
        return index + 1 >= len(words) or words[index + 1] != "local"
    return False
