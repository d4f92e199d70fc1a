"""The ``poiflow`` command: thin; it parses, calls the Python API, and draws the results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from poiflow._version import __version__
from poiflow.config import DEFAULT_OSM_KEYS, OsmOptions, SourceMapping, load_yaml
from poiflow.errors import PoiflowError
from poiflow.pipeline import IngestReport, ingest
from poiflow.quality import profile_places
from poiflow.sources import DEFAULT_BATCH_SIZE

__all__ = ["app", "main"]

console = Console(stderr=True)
out = Console()

app = typer.Typer(
    name="poiflow",
    help=(
        "Points of Interest from many sources into one clean set of places.\n\n"
        "Start with [bold]poiflow ingest --help[/bold]."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_INGEST_HELP = """
Read places from any mix of inputs, validate and normalize them, and write one GeoParquet.

The kind of each INPUT is told from its name:

  [bold]*.osm.pbf[/bold]        OpenStreetMap extract: every named object with an amenity, shop,
                   tourism, leisure, office, craft or healthcare tag (see --osm-keys)
  [bold]*.parquet[/bold]        Overture Maps places (its own columns), or flat places
  [bold]*.csv *.tsv *.jsonl[/bold]  flat places: columns source, id, name, lat, lon, category,
                   street, housenumber, postcode, city, country, phone, website, address
                   (only id and name are required; without 'source' the file's stem is the source)

Other column layouts are read through a mapping file (--mapping), e.g.:

  [dim]source: acme
  columns: {id: vendor_id, name: business_name, lat: latitude, lon: longitude}
  constants: {country: FI}
  ignore: [internal_score]
  csv: {delimiter: ";"}[/dim]

Records that cannot be places (no name, coordinates out of range, unparsable) go to the
quarantine file with the reason and their original values; values that cannot be
normalized (a phone that is not a number) are withheld there too, and the record goes on.
Every record read is counted: read = valid + quarantined.

[bold]Examples[/bold]

  poiflow ingest examples/helsinki/Helsinki.osm.pbf --output out/places.parquet
  poiflow ingest osm.pbf overture.parquet vendor.csv -o out/places.parquet
  poiflow ingest feed.csv --mapping feed.yaml -o out/feed.parquet --quarantine out/bad.parquet
"""


def _version(value: bool) -> None:
    if value:
        out.print(f"poiflow {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Points of Interest from many sources into one clean set of places."""


class _RichProgress:
    """Draws ingest progress: one bar per input, a spinner where the total is unknown."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def start(self, label: str, total: int | None) -> None:
        self._task = self._progress.add_task(label, total=total)

    def advance(self, records: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, records)

    def finish(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._task, total=task.completed)


@app.command(name="ingest", help=_INGEST_HELP, no_args_is_help=True)
def ingest_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Input files (kind told from the name).", metavar="INPUT...", show_default=False
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The places GeoParquet to write.")],
    quarantine: Annotated[
        Path | None,
        typer.Option(help="Where held-back records go [default: OUTPUT.quarantine.parquet]."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML mapping of a tabular feed's columns (see above).")
    ] = None,
    osm_keys: Annotated[
        str, typer.Option(help="OSM keys that make a named object a place, comma-separated.")
    ] = ",".join(DEFAULT_OSM_KEYS),
    relations: Annotated[
        bool, typer.Option(help="Include OSM multipolygon relations, at their centroid.")
    ] = True,
    batch_size: Annotated[
        int, typer.Option(min=100, help="Records per batch: memory grows with it, not the input.")
    ] = DEFAULT_BATCH_SIZE,
    json_report: Annotated[
        bool, typer.Option("--json", help="Print the run report as JSON on stdout.")
    ] = False,
) -> None:
    """Read, validate and normalize places from any mix of inputs."""
    source_mapping = load_yaml(mapping, SourceMapping) if mapping else None
    keys = tuple(k.strip() for k in osm_keys.split(",") if k.strip())
    osm = OsmOptions(keys=keys or DEFAULT_OSM_KEYS, relations=relations)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=json_report,
    ) as progress:
        report = ingest(
            inputs,
            output,
            quarantine,
            mapping=source_mapping,
            osm=osm,
            batch_size=batch_size,
            progress=_RichProgress(progress),
        )
    if json_report:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _print_report(report)


def _print_report(report: IngestReport) -> None:
    table = Table(title="Ingest", title_justify="left", show_edge=False)
    for column in ("input", "kind", "read", "valid", "quarantined", "values withheld", "records/s"):
        table.add_column(column, justify="right" if column not in ("input", "kind") else "left")
    for s in report.inputs:
        rate = f"{s.read / s.seconds:,.0f}" if s.seconds > 0 else "-"
        table.add_row(
            Path(s.path).name,
            s.kind,
            f"{s.read:,}",
            f"{s.valid:,}",
            f"{s.quarantined:,}",
            f"{s.withheld_values:,}",
            rate,
        )
    console.print(table)
    check = "[green]✓[/green]" if report.balanced else "[red]✗[/red]"
    console.print(
        f"{check} read {report.read:,} = valid {report.valid:,} + quarantined "
        f"{report.quarantined:,}; {report.withheld_values:,} values withheld "
        f"({report.seconds:.1f} s)"
    )
    console.print(f"places:     [bold]{report.output}[/bold]")
    console.print(f"quarantine: {report.quarantine}")


@app.command(no_args_is_help=True)
def summary(
    places: Annotated[Path, typer.Argument(help="A places file written by 'poiflow ingest'.")],
) -> None:
    """Profile a places file: sources, categories, completeness, quarantine reasons.

    [bold]Example[/bold]

      poiflow summary out/places.parquet
    """
    profile = profile_places(places)
    out.print(f"[bold]{profile.places:,} places[/bold] in {profile.path}")
    grid = Table.grid(padding=(0, 4))
    left = Table("source", "places", show_edge=False, title="By source", title_justify="left")
    for name, n in profile.by_source:
        left.add_row(name, f"{n:,}")
    middle = Table(
        "category", "places", show_edge=False, title="Top categories", title_justify="left"
    )
    for name, n in profile.top_categories:
        middle.add_row(name, f"{n:,}")
    right = Table("field", "share", show_edge=False, title="Completeness", title_justify="left")
    for name, share in profile.completeness:
        right.add_row(name, f"{share:6.1%}")
    grid.add_row(left, middle, right)
    out.print(grid)
    total, e164 = profile.phones_e164
    out.print(f"phones in E.164: {e164:,} of {total:,}")
    if profile.quarantine_reasons:
        held = Table(
            "scope", "reason", "count", show_edge=False, title="Quarantine", title_justify="left"
        )
        for scope, reason, n in profile.quarantine_reasons:
            held.add_row(scope, reason, f"{n:,}")
        out.print(held)
    out.print("[dim]Map data © OpenStreetMap contributors, where the sources include OSM.[/dim]")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a PoiflowError becomes one readable line and exit status 1."""
    try:
        app(args=argv)
    except PoiflowError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; no output was written[/yellow]")
        sys.exit(130)
