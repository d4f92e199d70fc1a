"""The ``poiflow`` command (and ``python -m poiflow``): the CLI, after a head start.

The CLI's imports take about half a second. A command that will read inputs in worker
processes starts their server first (:func:`poiflow.pipeline.workers.start_early`), so that
the server imports on the other core meanwhile, instead of after.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the ``poiflow`` command line."""
    from poiflow.pipeline.workers import start_early

    start_early(sys.argv[1:])

    from poiflow.cli import main as cli_main

    cli_main()
