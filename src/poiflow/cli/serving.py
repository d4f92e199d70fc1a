"""``poiflow publish`` (a flat file, a search index, the serving store) and ``poiflow
search``: publish the golden places of a run's output, and look places up from the
terminal."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from poiflow.cli import app, console, print_json
from poiflow.errors import InputError

publish = typer.Typer(
    name="publish",
    help=(
        "Publish the golden places of a conflate/run output (a GIS file, search index, "
        "serving store)."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(publish)


_PUBLISH_SEARCH_HELP = """Index the golden places of DIR (a conflate or run output) for search.

The index (Tantivy, embedded: no server to run) is written to [bold]DIR/search[/bold] and
swapped in whole when complete: readers never see a half-built index. Names and their
alternates, brand, categories and address are indexed transliterated to ASCII, so any
script finds its places. Each place's opening hours are indexed as the hours of the week
it is open in the year ahead (for [bold]poiflow search --open-at[/bold]): publish again
within a year. The index remembers the places it was built from: after a later run into
DIR, [bold]poiflow search[/bold] refuses it until it is published again.

With [bold]--opensearch URL[/bold] the places go to a search server instead: a new index
under the alias [bold]--index[/bold] (bulk writes, an index template), and the alias is
moved onto it in one atomic request when it is complete; the old index is then deleted.

[bold]Examples[/bold]

  poiflow conflate examples/helsinki/Helsinki.osm.pbf -o out/helsinki
  poiflow publish search out/helsinki
  poiflow search out/helsinki "kahvila" --near 60.17,24.94
  poiflow publish search out/helsinki --opensearch http://127.0.0.1:9200 --index helsinki
"""


_PUBLISH_FILE_HELP = """Write the golden places of DIR (a conflate or run output) as one flat file
for people and GIS tools, in the format OUTPUT's suffix names: [bold].gpkg[/bold] (a
GeoPackage for QGIS), [bold].geojson[/bold] or [bold].geojsonl[/bold] (a web map),
[bold].fgb[/bold] (FlatGeobuf), [bold].csv[/bold] (a spreadsheet) or [bold].parquet[/bold].

Each place is one row in the flat place format's columns (name, category, lat, lon,
street, ..., its phones joined by "; ", its first web site), then its [bold]confidence[/bold],
how many records it [bold]members[/bold], and the [bold]datasets[/bold] they came from.
DIR/places.parquet keeps the rest (alternate names, each attribute's confidence and
sources). The file is written beside OUTPUT and moved into place whole.

[bold]Examples[/bold]

  poiflow conflate examples/helsinki/Helsinki.osm.pbf -o out/helsinki
  poiflow publish file out/helsinki out/helsinki.gpkg
  poiflow publish file out/helsinki out/helsinki.csv
"""


@publish.command(name="file", help=_PUBLISH_FILE_HELP, no_args_is_help=True)
def publish_file(
    folder: Annotated[Path, typer.Argument(help="A conflate or run output folder.", metavar="DIR")],
    output: Annotated[
        Path,
        typer.Argument(
            help="The file: .gpkg, .geojson, .geojsonl, .fgb, .csv or .parquet.",
            metavar="OUTPUT",
        ),
    ],
) -> None:
    """Write DIR's golden places as one flat GIS file or table."""
    import pyarrow.parquet as pq

    from poiflow.serving import places_file
    from poiflow.sinks import write_places_file

    places = pq.read_table(places_file(folder))
    with console.status(f"writing {output}"):
        rows = write_places_file(places, output)
    console.print(f"[green]✓[/green] {rows:,} golden places written to {output}")


OPENSEARCH = typer.Option(
    "--opensearch",
    help="A search server (OpenSearch) instead of the embedded index, e.g. http://127.0.0.1:9200.",
    metavar="URL",
)
# What a person finds on a server poiflow serve starts.
_PAGES: Final = "search and a map at /, pairs to review at /review, the API at /docs"
INDEX = typer.Option(help="With --opensearch: the alias readers use.", metavar="NAME")


@publish.command(name="search", help=_PUBLISH_SEARCH_HELP, no_args_is_help=True)
def publish_search(
    folder: Annotated[Path, typer.Argument(help="A conflate or run output folder.", metavar="DIR")],
    opensearch: Annotated[str | None, OPENSEARCH] = None,
    index: Annotated[str, INDEX] = "poiflow_places",
) -> None:
    """Build DIR/search from DIR/places.parquet (or publish to a search server)."""
    from poiflow.serving.search import output_index, places_file

    places = places_file(folder)
    if opensearch is not None:
        from poiflow.serving.opensearch import OpenSearchIndex

        server = OpenSearchIndex(opensearch, index)
        with console.status(f"indexing the golden places into {opensearch}"):
            count = server.publish(places)
        console.print(
            f"indexed {count:,} places into {server.indices()[0]}; alias {server.alias} "
            "now points at it"
        )
        return
    with console.status("indexing the golden places"):
        embedded = output_index(folder, rebuild=True)
    console.print(f"indexed {len(embedded):,} places into {embedded.folder}")


_PUBLISH_STORE_HELP = """Load the golden places of DIR into Apache Cassandra, the serving store.

poiflow creates the keyspace and its tables when missing: places by id and by H3 cell
(about 5 km^2), each place's records and each record's place. Writes are prepared
statements run concurrently, and idempotent: publishing the same output again changes
nothing, and a newer output's publish removes the places and records that are gone.
Without a store, [bold]poiflow serve[/bold] reads DIR's own files (the embedded default).

[bold]Examples[/bold]

  scripts/cassandra_server.sh start out/cassandra 9042      # a one-node Cassandra here
  poiflow publish store out/helsinki --hosts 127.0.0.1:9042 --keyspace helsinki
  poiflow serve out/helsinki --cassandra 127.0.0.1:9042 --keyspace helsinki
"""


@publish.command(name="store", help=_PUBLISH_STORE_HELP, no_args_is_help=True)
def publish_store(
    folder: Annotated[Path, typer.Argument(help="A conflate or run output folder.", metavar="DIR")],
    hosts: Annotated[
        str, typer.Option(help="Contact points: HOST[:PORT][,HOST...]", metavar="HOSTS")
    ] = "127.0.0.1:9042",
    keyspace: Annotated[
        str, typer.Option(help="The keyspace (created when missing).", metavar="NAME")
    ] = "poiflow",
    replication_factor: Annotated[
        int,
        typer.Option(
            min=1, max=10, help="The keyspace's replication, when poiflow makes it.", metavar="N"
        ),
    ] = 1,
) -> None:
    """Load DIR's places and membership into Cassandra."""
    from rich.progress import Progress

    from poiflow.serving.cassandra import CassandraStore, parse_hosts

    contact, port = parse_hosts(hosts)
    with (
        CassandraStore(contact, port, keyspace, replication_factor=replication_factor) as store,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task("writing rows", total=None)
        report = store.publish(
            folder, progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    console.print(
        f"published {report.places:,} places and {report.records:,} records into "
        f"{keyspace} at {hosts} in {report.seconds:.1f} s; removed {report.removed_places:,} "
        f"places and {report.removed_records:,} records that are gone"
    )


_MATCH_HELP = """Match the records of INPUT against the golden places of DIR.

INPUT is any file [bold]poiflow ingest[/bold] reads (a vendor feed, an OSM extract, ...).
Each record is matched as the run matched its own records (as [bold]POST /match[/bold]
does): normalized alike, its candidates from the run's blocking keys, scored by the run's
own model, and judged by clustering's rules. OUTPUT (CSV or Parquet, by its suffix) gets
a row per record: [bold]decision[/bold] (match or new), [bold]place_id[/bold],
[bold]probability[/bold] and the runner-up. The new records are then clustered among
themselves as the run clusters: records of one new place (two sources announcing one
opening) share a [bold]new_place[/bold], named as a run would name it. What validation
holds back is written beside it (OUTPUT's name with .quarantine; empty when nothing), with
the reasons: records it refuses (a second record of one id too), and values withheld from
records answered without them.

[bold]Example[/bold]

  poiflow match out/helsinki new_vendor_feed.csv -o out/new_vendor_matches.csv
  poiflow match out/helsinki new_vendor_feed.csv -o out/matches.parquet --json   # for a script
"""


@app.command(name="match", help=_MATCH_HELP, no_args_is_help=True)
def match_command(
    folder: Annotated[Path, typer.Argument(help="A conflate or run output.", metavar="DIR")],
    source: Annotated[Path, typer.Argument(help="The records to match.", metavar="INPUT")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where the answers go (.csv or .parquet).", metavar="OUTPUT"
        ),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(help="YAML mapping of a tabular feed's columns.", metavar="FILE"),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            help="Records matched at a time: memory grows with it, not the file.",
            metavar="N",
        ),
    ] = 10_000,
    json_report: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the counts and where the answers and the quarantine are, as JSON.",
        ),
    ] = False,
) -> None:
    """Match a file of records against the golden places."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from poiflow.cli.reporting import counted
    from poiflow.config import SourceMapping, load_yaml
    from poiflow.serving.answers import MatchResult, match_file
    from poiflow.serving.matching import MatchIndex

    if output.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"--output: a .csv or .parquet file, not '{output.name}'")
    source_mapping = load_yaml(mapping, SourceMapping) if mapping else None
    with console.status("loading the run's records, keys and model"):
        index = MatchIndex(folder)
    with console.status("matching") as status:
        matches, quarantine = match_file(
            index,
            source,
            source_mapping,
            batch_size,
            progress=lambda n: status.update(f"matched {n:,}"),
            grouping=lambda n: status.update(f"finding the new places of {n:,} new records"),
        )

    def write(table: Any, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        if path.suffix.lower() == ".csv":
            pa_csv.write_csv(table, partial)
        else:
            pq.write_table(table, partial)
        partial.replace(path)

    write(matches, output)
    result = MatchResult(matches, quarantine)
    # Written even when empty, as ingest writes its own: a file left by an earlier match
    # to the same answers would say that this one held records back.
    held = output.with_name(f"{output.stem}.quarantine{output.suffix}")
    write(quarantine, held)
    if json_report:
        print_json(
            {
                "matched": result.matched,
                "new": result.new,
                "new_places": result.new_places,
                "held_back": result.held_back,
                "withheld_values": result.withheld_values,
                "answers": str(output),
                "quarantine": str(held),
            }
        )
        return
    said = [
        f"{counted(result.matched, 'record')} matched a place, "
        f"{result.new:,} {'is' if result.new == 1 else 'are'} new"
        + (f" ({counted(result.new_places, 'new place')})" if result.new else ""),
        f"answers in {output}",
    ]
    kept_back = [
        f"{counted(count, what)} {done}"
        for count, what, done in (
            (result.held_back, "record", "held back"),
            (result.withheld_values, "value", "withheld"),
        )
        if count
    ]
    if kept_back:
        said.append(f"{' and '.join(kept_back)} (see {held})")
    console.print("; ".join(said))


_SEARCH_HELP = """Search the golden places of DIR, indexed by [bold]poiflow publish search[/bold].

Words may have typos and the last one may be unfinished; [bold]--near[/bold] ranks nearer
places higher (with no words: the nearest places, nearest first), [bold]--category[/bold]
keeps one category only, [bold]--open-at[/bold] the
places open then (by their opening hours, in each place's own time zone, with its public
holidays), and says when each closes.

[bold]Examples[/bold]

  poiflow search out/helsinki "stockman"
  poiflow search out/helsinki "kahv" --near 60.17,24.94
  poiflow search out/helsinki "" --category pharmacy --near 60.17,24.94
  poiflow search out/helsinki "kahvila" --open-at now
  poiflow search out/helsinki "" --near 60.17,24.94 --open-at now     open near here
  poiflow search out/helsinki "" --category restaurant --open-at "Su 21:00"
"""


@app.command(name="search", help=_SEARCH_HELP, no_args_is_help=True)
def search_command(
    folder: Annotated[Path, typer.Argument(help="A published output folder.", metavar="DIR")],
    text: Annotated[str, typer.Argument(help="What to look for.", metavar="QUERY")],
    near: Annotated[
        str | None, typer.Option(help="LAT,LON: nearer places rank higher.", metavar="LAT,LON")
    ] = None,
    category: Annotated[
        str | None, typer.Option(help="Only this category.", metavar="CATEGORY")
    ] = None,
    open_at: Annotated[
        str | None,
        typer.Option(
            help="Only places open then: 'now'; 'HH:MM' (today) or 'Sa 10:00' (the coming "
            "Saturday), each place's local time; or ISO 8601 ('2026-12-24T10:00', with an "
            "offset an instant).",
            metavar="WHEN",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="How many results.", metavar="N")
    ] = 10,
    opensearch: Annotated[str | None, OPENSEARCH] = None,
    index: Annotated[str, INDEX] = "poiflow_places",
) -> None:
    """Search the golden places."""
    from poiflow.serving.opening import parse_when
    from poiflow.serving.opensearch import OpenSearchIndex
    from poiflow.serving.search import output_index

    point = _point(near) if near else None
    when = parse_when(open_at) if open_at is not None else None
    searched = (
        OpenSearchIndex(opensearch, index) if opensearch is not None else output_index(folder)
    )
    hits = searched.search(text, near=point, category=category, open_at=when, limit=limit)
    if not hits:
        console.print("no place matches" + (" and is open then" if when else ""))
        return
    closing = ["open until"] if when is not None else []
    away = ["km"] if point is not None else []  # how far from --near, when it is given
    columns = ["name", "category", *closing, *away, "score", "id"]
    title = f"{len(hits)} place{'' if len(hits) == 1 else 's'}"
    table = Table(title=title + (f" open at {open_at}" if when else ""))
    for column in columns:
        table.add_column(column, justify="right" if column in ("km", "score") else "left")
    for hit in hits:
        km = ["" if hit.distance_km is None else f"{hit.distance_km:.2f}"] if away else []
        closes = [_closing(hit.open_until)] if when is not None else []
        table.add_row(hit.name or "", hit.category or "", *closes, *km, f"{hit.score:.2f}", hit.id)
    console.print(table)


def _closing(until: str | None) -> str:
    """When an open place closes, in its own time: "Fri 17:00" (within the week ahead), or
    "Mon 04 Jan 09:00"."""
    if until is None:
        return "no end in sight"
    from datetime import datetime, timedelta

    moment = datetime.fromisoformat(until)
    soon = moment - datetime.now(moment.tzinfo) < timedelta(days=6)
    return f"{moment:%a %H:%M}" if soon else f"{moment:%a %d %b %H:%M}"


def _point(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--near takes LAT,LON (e.g. 60.17,24.94), not '{text}'") from None
    return lat, lon


_SERVE_HELP = """Serve the golden places of DIR over HTTP (FastAPI, on the embedded store).

[bold]GET /search[/bold]?q=&lat=&lon=&category=&open_at=&limit=, [bold]GET /places/ID[/bold] (with
provenance and member records), [bold]GET /places[/bold]?bbox=west,south,east,north&limit=&offset=,
[bold]GET /health[/bold]; [bold]POST /labels[/bold] (review answers, appended to
DIR/labels.csv) needs 'Authorization: Bearer TOKEN' with the token in the server's
POIFLOW_API_TOKEN (no token set: no writes). The OpenAPI description is at /openapi.json,
the interactive one at /docs. The search index is built first if DIR has none, or
has one older than its places (a later run). A later run into DIR is taken up while the
server answers ([bold]--watch[/bold]): loaded beside the last, then answered from.

[bold]POST /match[/bold] finds the golden place of a new record (or says it is new). The
pages [bold]/[/bold] (search on a map) and [bold]/review[/bold] (labelling) are for people.
With [bold]--cassandra[/bold], places by id come from the serving store published by
'poiflow publish store'; with [bold]--opensearch[/bold], /search asks that search server
(published by 'poiflow publish search --opensearch'); boxes and matching read DIR's files.

DIR may be in object storage (s3://BUCKET/PATH, hdfs://...; the endpoint and keys as for
any run: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...): it is answered from a local copy, and
a later run there is copied and taken up alike. Such a server takes no labels.

[bold]Example[/bold]

  poiflow serve out/helsinki --port 8000
  poiflow serve out/helsinki --workers 2     two processes: two cores answer
  poiflow serve s3://poi/helsinki --watch 60    what a Spark run on a cluster wrote
  curl 'http://127.0.0.1:8000/search?q=stokman&lat=60.17&lon=24.94'
  curl -H 'Content-Type: application/json' -d '{"id":"x1","name":"Stockmann"}' 127.0.0.1:8000/match
  open http://127.0.0.1:8000/ in a browser: search on a map; /review: label pairs
"""


@app.command(name="serve", help=_SERVE_HELP, no_args_is_help=True)
def serve_command(
    folder: Annotated[
        str,
        typer.Argument(
            help="A conflate or run output: a folder, or one in object storage (s3://, hdfs://).",
            metavar="DIR",
        ),
    ],
    host: Annotated[str, typer.Option(help="The address to listen on.", metavar="HOST")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="The port to listen on.", metavar="PORT")
    ] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes on the port. One answers on one core at a time; with N, "
            "N cores answer (each process loads DIR: memory grows N times).",
            metavar="N",
        ),
    ] = 1,
    cassandra: Annotated[
        str | None,
        typer.Option(
            help="Read places by id from this Cassandra (HOST[:PORT],...).", metavar="HOSTS"
        ),
    ] = None,
    keyspace: Annotated[
        str, typer.Option(help="With --cassandra: its keyspace.", metavar="NAME")
    ] = "poiflow",
    opensearch: Annotated[str | None, OPENSEARCH] = None,
    index: Annotated[str, INDEX] = "poiflow_places",
    watch: Annotated[
        float,
        typer.Option(
            min=0,
            help="Look for a later run of DIR this often, and answer from it once it is "
            "loaded (0: never).",
            metavar="SECONDS",
        ),
    ] = 5.0,
) -> None:
    """Serve the golden places over HTTP."""
    make_app = partial(_served_app, folder, cassandra, keyspace, opensearch, index, watch)
    if workers > 1:
        from poiflow.serving.processes import serve_processes

        console.print(
            f"starting {workers} server processes on http://{host}:{port} ({_PAGES}), "
            f"each loading {folder}; Ctrl-C stops"
        )
        if serve_processes(make_app, host, port, workers):
            raise InputError("a server process failed (its error is above); all were stopped")
        return
    from poiflow.serving.processes import listening_socket, serve_on

    sock = listening_socket(host, port)  # a port taken is said before the places load
    with console.status("loading the golden places"):
        api = make_app()
    console.print(f"serving {folder} on http://{host}:{port} ({_PAGES}); Ctrl-C stops")
    serve_on(api, sock)
    console.print("stopped")


def _served_app(
    folder: str,
    cassandra: str | None,
    keyspace: str,
    opensearch: str | None,
    index: str,
    watch: float = 0.0,
) -> Any:
    """The API over ``folder`` with the stores named (module level: each server process
    of ``--workers`` builds its own)."""
    from poiflow.serving.api import create_app

    store = None
    if cassandra is not None:
        from poiflow.serving.cassandra import CassandraStore, parse_hosts

        contact, cql_port = parse_hosts(cassandra)
        store = CassandraStore(contact, cql_port, keyspace)
        if store.release() is None:
            raise InputError(
                f"keyspace {keyspace!r} at {cassandra} holds no release: "
                f"run 'poiflow publish store {folder} --hosts {cassandra} --keyspace {keyspace}'"
            )
    server = None
    if opensearch is not None:
        from poiflow.serving.opensearch import OpenSearchIndex

        server = OpenSearchIndex(opensearch, index)
        len(server)  # published? (else one line saying how)
    return create_app(folder, cassandra=store, search_server=server, reload_s=watch or None)
