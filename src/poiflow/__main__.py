"""``python -m poiflow`` runs the CLI."""

from poiflow._launch import main

main()
