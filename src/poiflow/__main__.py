"""``python -m poiflow`` runs the CLI."""

from poiflow.cli import main

main()
