"""The ``poiflow`` command (and ``python -m poiflow``): the CLI, with a head start and a
quick exit.

- The CLI's imports take about half a second. A command that will read inputs in worker
  processes starts their server first (:func:`poiflow.pipeline.workers.start_early`), so
  that the server imports on the other core meanwhile, instead of after.
- When the command is done, the objects it made are frozen out of the cycle collector
  (``gc.freeze``): the interpreter's last collections on exit would otherwise walk every
  one of them, about 0.3 s after conflating 100k records, to free memory that goes back
  with the process anyway. Everything the command writes is closed by then, and exit
  handlers still run.
- numpy's arrays and Arrow's memory stay in small memory pages (:func:`small_pages`).
- The process is the command's own (``poiflow._imports.command_process``): LightGBM is
  imported without its scikit-learn estimators, which poiflow never uses.
- SIGTERM (what Kubernetes, Airflow and ``kill`` send) ends the command as Ctrl-C does:
  the work in hand is dropped, its staging and scratch folders removed, and the outputs
  of the last finished run stay as they were (:func:`end_on_sigterm`).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Any, NoReturn

from poiflow._imports import command_process

HUGE_PAGES_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"
"""numpy's own switch: whether it asks the kernel for huge pages for its arrays."""

ARROW_HUGE_PAGES_VARIABLE = "MIMALLOC_ALLOW_THP"
"""The switch of mimalloc, Arrow's default allocator: whether it asks the kernel for huge
pages for the arenas (1 GiB each) it hands Arrow's buffers from."""


def small_pages() -> None:
    """Have numpy and Arrow keep their memory in small (4 KiB) pages, in this process and
    in every process it starts (the workers, a Spark engine's Python), unless the user's
    environment already says (``NUMPY_MADVISE_HUGEPAGE=1``, ``MIMALLOC_ALLOW_THP=1`` ask
    for huge pages again).

    numpy asks for transparent huge pages (2 MiB) for every array of 4 MiB or more, and
    Arrow's mimalloc for all of its arenas. On a virtual machine that hands free memory
    back to its host (a balloon's free page reporting, as Firecracker and many cloud VMs
    do), the first touch of such a page waits for the host: here, 3-6 s to fill a fresh
    GiB in huge pages against 0.4-0.7 s in small ones. A 354k-record conflation's scoring
    took 6-9 s with numpy's huge pages and 3.5-4 s without; the whole run a tenth less
    again without Arrow's (``benchmarks/RESULTS.md``). Must run before numpy and pyarrow
    are imported.
    """
    os.environ.setdefault(HUGE_PAGES_VARIABLE, "0")
    os.environ.setdefault(ARROW_HUGE_PAGES_VARIABLE, "0")


def end_on_sigterm() -> None:
    """Make SIGTERM end the command by an exception (:class:`~poiflow.errors.Terminated`),
    so that its ``finally`` clauses run, rather than end the process at once. Commands
    that stop gently on it (``poiflow stream``, ``poiflow serve``) put their own handlers
    in its place."""
    from poiflow.errors import Terminated

    def terminated(signum: int, frame: Any) -> NoReturn:
        raise Terminated

    signal.signal(signal.SIGTERM, terminated)


def main() -> None:
    """Run the ``poiflow`` command line."""
    small_pages()
    command_process()
    end_on_sigterm()

    from poiflow.pipeline.workers import start_early

    start_early(sys.argv[1:])

    from poiflow.cli import main as cli_main

    try:
        cli_main()
    finally:
        gc.freeze()
