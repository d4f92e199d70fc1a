"""``poiflow publish search`` and ``poiflow search``: index the golden places of a run's
output, and look places up in that index from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from poiflow.cli import app, console
from poiflow.errors import InputError

publish = typer.Typer(
    name="publish",
    help="Publish the golden places of a conflate/run output (search index).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(publish)

SEARCH_FOLDER = "search"

_PUBLISH_SEARCH_HELP = """Index the golden places of DIR (a conflate or run output) for search.

The index (Tantivy, embedded: no server to run) is written to [bold]DIR/search[/bold] and
swapped in whole when complete: readers never see a half-built index. Names and their
alternates, brand, categories and address are indexed transliterated to ASCII, so any
script finds its places.

[bold]Example[/bold]

  poiflow conflate examples/helsinki/Helsinki.osm.pbf -o out/helsinki
  poiflow publish search out/helsinki
  poiflow search out/helsinki "kahvila" --near 60.17,24.94
"""


@publish.command(name="search", help=_PUBLISH_SEARCH_HELP, no_args_is_help=True)
def publish_search(
    folder: Annotated[Path, typer.Argument(help="A conflate or run output folder.", metavar="DIR")],
) -> None:
    """Build DIR/search from DIR/places.parquet."""
    from poiflow.serving import build_search_index, places_file

    places = places_file(folder)
    with console.status("indexing the golden places"):
        index = build_search_index(places, folder / SEARCH_FOLDER)
    console.print(f"indexed {len(index):,} places into {index.folder}")


_SEARCH_HELP = """Search the golden places of DIR, indexed by [bold]poiflow publish search[/bold].

Words may have typos and the last one may be unfinished; [bold]--near[/bold] ranks nearer
places higher, [bold]--category[/bold] keeps one category only.

[bold]Examples[/bold]

  poiflow search out/helsinki "stockman"
  poiflow search out/helsinki "kahv" --near 60.17,24.94
  poiflow search out/helsinki "" --category pharmacy --near 60.17,24.94
"""


@app.command(name="search", help=_SEARCH_HELP, no_args_is_help=True)
def search_command(
    folder: Annotated[Path, typer.Argument(help="A published output folder.", metavar="DIR")],
    text: Annotated[str, typer.Argument(help="What to look for.", metavar="QUERY")],
    near: Annotated[
        str | None, typer.Option(help="LAT,LON: nearer places rank higher.", metavar="LAT,LON")
    ] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many results.")] = 10,
) -> None:
    """Search the golden places."""
    from poiflow.serving import SearchIndex

    point = _point(near) if near else None
    hits = SearchIndex(folder / SEARCH_FOLDER).search(
        text, near=point, category=category, limit=limit
    )
    if not hits:
        console.print("no place matches")
        return
    table = Table(title=f"{len(hits)} places")
    for column in ("name", "category", "km", "score", "id"):
        table.add_column(column, justify="right" if column in ("km", "score") else "left")
    for hit in hits:
        km = "" if hit.distance_km is None else f"{hit.distance_km:.2f}"
        table.add_row(hit.name or "", hit.category or "", km, f"{hit.score:.2f}", hit.id)
    console.print(table)


def _point(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--near takes LAT,LON (e.g. 60.17,24.94), not '{text}'") from None
    return lat, lon


_SERVE_HELP = """Serve the golden places of DIR over HTTP (FastAPI, on the embedded store).

[bold]GET /search[/bold]?q=&lat=&lon=&category=&limit=, [bold]GET /places/ID[/bold] (with
provenance and member records), [bold]GET /places[/bold]?bbox=west,south,east,north&limit=&offset=,
[bold]GET /health[/bold]; [bold]POST /labels[/bold] (review answers, appended to
DIR/labels.csv) needs 'Authorization: Bearer TOKEN' with the token in the server's
POIFLOW_API_TOKEN (no token set: no writes). The OpenAPI description is at /openapi.json,
the interactive one at /docs. The search index is built first if DIR has none.

[bold]Example[/bold]

  poiflow serve out/helsinki --port 8000
  curl 'http://127.0.0.1:8000/search?q=stokman&lat=60.17&lon=24.94'
"""


@app.command(name="serve", help=_SERVE_HELP, no_args_is_help=True)
def serve_command(
    folder: Annotated[Path, typer.Argument(help="A conflate or run output.", metavar="DIR")],
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
) -> None:
    """Serve the golden places over HTTP."""
    import uvicorn

    from poiflow.serving.api import create_app

    with console.status("loading the golden places"):
        api = create_app(folder)
    console.print(f"serving {folder} on http://{host}:{port} (OpenAPI: /docs); Ctrl-C stops")
    uvicorn.run(api, host=host, port=port, log_level="warning")
