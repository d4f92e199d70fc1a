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
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Run the ``poiflow`` command line."""
    from poiflow.pipeline.workers import start_early

    start_early(sys.argv[1:])

    from poiflow.cli import main as cli_main

    try:
        cli_main()
    finally:
        gc.freeze()
