"""The batch commands: ``poiflow ingest``, ``poiflow summary`` and ``poiflow conflate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Literal

import typer
from rich.markup import escape
from rich.table import Table

from poiflow._imports import kept_out
from poiflow.cli import (
    DEFAULT_BATCH_SIZE,
    NOT_USED_HERE,
    Engine,
    _progress,
    _RichProgress,
    _stages,
    app,
    console,
    out,
    print_json,
    print_weights,
)
from poiflow.cli.reporting import (
    checks_line,
    counted,
    decisions_line,
    golden_line,
    print_ingest_report,
)
from poiflow.config import DEFAULT_OSM_KEYS, OsmOptions, SourceMapping, SparkSettings, load_yaml
from poiflow.errors import ConfigError
from poiflow.quality.notes import unjudged_notes
from poiflow.storage import is_remote

if TYPE_CHECKING:
    from poiflow.conflate.clustering import ClusterConfig

__all__: list[str] = []

_INGEST_HELP = """
Read places from any mix of inputs, validate and normalize them, and write one GeoParquet.

The kind of each INPUT is told from its name:

  [bold]*.osm.pbf[/bold]        OpenStreetMap extract: every named object with an
                   amenity, shop, tourism, leisure, office, craft or
                   healthcare tag (see --osm-keys)
  [bold]*.parquet[/bold]        Overture Maps places (its own columns), or flat places;
                   GeoParquet's geometry (geopandas, DuckDB) as lat/lon
  [bold]*.csv *.tsv *.jsonl[/bold]  flat places: columns source, id, name, lat, lon,
                   category, street, housenumber, postcode, city, country,
                   phone, website, address (only id and name are required;
                   without 'source' the file's stem is the source;
                   latitude, longitude and lng read as lat and lon); also
                   compressed: feed.csv.gz, .bz2, .zst, .zip; a spatial
                   table's export: its WKT or hex WKB column (geometry,
                   wkt, geom) in place of lat/lon
  [bold]*.geojson[/bold]        GeoJSON features (a FeatureCollection, or one a line:
                   .geojsonl, .geojsons; a .json of features too): flat
                   properties as above, or OpenStreetMap tags (amenity,
                   addr:street: an Overpass export, All the Places), or
                   Overture's (its download tool's -f geojson); a polygon
                   is placed at its centroid
  [bold]*.gpkg *.shp *.fgb *.gdb[/bold]  GeoPackage, Shapefile (.shp.zip too), FlatGeobuf,
                   Esri's File Geodatabase (a .gdb folder is one input),
                   SpatiaLite (.sqlite), GML (.gml), MapInfo (.tab, .mif):
                   attribute columns as a CSV's, the geometry as lat/lon
                   (reprojected to WGS 84 where the layer is not in it);
                   several layers: 'layer:' in a mapping names one
  [bold]*.xlsx *.ods[/bold]      a spreadsheet's sheet, its columns as a CSV's (several
                   sheets: 'layer:' in a mapping names one)
  [bold]*.kml *.kmz *.gpx[/bold]  placemarks of every folder (Google My Maps), a GPS's
                   waypoints; one without an id gets one from its name
                   and point; a folder named for a kind of place
                   ('Cafes') is its placemarks' category
  [bold]a folder[/bold]         one input of all its files, of one kind, in name order
                   (an Overture release's theme=places/ parts, Spark's
                   output); files named .* or _* (_SUCCESS) are left out;
                   folders named key=value (country=FI/) give the files
                   under them that column, where it is a flat field or
                   the mapping reads it

Other column layouts are read through a mapping file (--mapping), e.g.:

  [dim]source: acme
  columns: {id: vendor_id, name: business_name, lat: latitude, lon: longitude}
  constants: {country: FI}
  ignore: \\[internal_score]
  csv: {delimiter: ";"}
  crs: EPSG:3067          # lat and lon in metres of another system
  categories: {"5812": restaurant}  # the feed's own codes: categories[/dim]

--mapping FILE is for every tabular input (an OSM extract takes none); --mapping
INPUT=FILE is for that input alone, as it is given; repeat it for several feeds.

Records that cannot be places (no name, coordinates out of range, unparsable) go to the
quarantine file with the reason and their original values; values that cannot be
normalized (a phone that is not a number) are withheld there too, and the record goes on.
Every record read is counted: read = valid + quarantined.

[bold]Examples[/bold]

  poiflow ingest examples/helsinki/Helsinki.osm.pbf --output out/places.parquet
  poiflow ingest osm.pbf overture.parquet vendor.csv -o out/places.parquet
  poiflow ingest feed.csv --mapping feed.yaml -o out/feed.parquet --quarantine out/bad.parquet
  poiflow ingest city.osm.pbf a.csv b/ --mapping a.csv=a.yaml --mapping b=b.yaml -o out/p.parquet
  poiflow ingest overpass.geojson alltheplaces/ vendor.gpkg -o out/p.parquet
"""


_WORKERS: Final = typer.Option(
    min=1,
    metavar="N",
    help="Processes that read each large input (default: one per core). 1 reads in this "
    "process alone: the least memory (an OSM extract's node locations are held once "
    "either way).",
    show_default=False,
)


@app.command(name="ingest", help=_INGEST_HELP, no_args_is_help=True)
def ingest_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Input files or folders (kind told from the names).",
            metavar="INPUT",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The places GeoParquet to write.", metavar="FILE"),
    ],
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Where held-back records go (default: beside the places, "
            "NAME.quarantine.parquet for NAME.parquet).",
            metavar="FILE",
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            help="YAML mapping of a tabular feed's columns (see above): FILE for every "
            "tabular input, INPUT=FILE for one (repeat the option for several).",
            metavar="[INPUT=]FILE",
        ),
    ] = None,
    osm_keys: Annotated[
        str,
        typer.Option(
            help="OSM keys that make a named object a place, comma-separated.", metavar="KEYS"
        ),
    ] = ",".join(DEFAULT_OSM_KEYS),
    relations: Annotated[
        bool, typer.Option(help="Include OSM multipolygon relations, at their centroid.")
    ] = True,
    osm_locations: Annotated[
        Literal["memory", "disk"],
        typer.Option(
            help="Where an OSM extract's node locations are held while its ways are placed: "
            "memory (the fastest), or disk (a file in the temporary folder, for an extract "
            "larger than memory).",
        ),
    ] = "memory",
    batch_size: Annotated[
        int,
        typer.Option(
            min=100, help="Records per batch: memory grows with it, not the input.", metavar="N"
        ),
    ] = DEFAULT_BATCH_SIZE,
    workers: Annotated[int | None, _WORKERS] = None,
    json_report: Annotated[
        bool, typer.Option("--json", help="Print the run report as JSON on stdout.")
    ] = False,
) -> None:
    """Read, validate and normalize places from any mix of inputs."""
    from poiflow.pipeline import ingest

    source_mapping, mappings = _mappings(mapping)
    keys = tuple(k.strip() for k in osm_keys.split(",") if k.strip())
    osm = OsmOptions(keys=keys or DEFAULT_OSM_KEYS, relations=relations, locations=osm_locations)
    with _progress(hidden=json_report) as progress, kept_out(NOT_USED_HERE):
        report = ingest(
            inputs,
            output,
            quarantine,
            mapping=source_mapping,
            mappings=mappings,
            osm=osm,
            batch_size=batch_size,
            workers=workers,
            progress=_RichProgress(progress),
        )
    if json_report:
        print_json(report.to_dict())
    else:
        print_ingest_report(report)


def _mappings(values: list[str] | None) -> tuple[SourceMapping | None, dict[str, SourceMapping]]:
    """``--mapping`` values: the one FILE for every tabular input, and INPUT=FILE ones.

    Raises:
        ConfigError: Two mappings for every input, or a mapping file that is not one.
    """
    every: SourceMapping | None = None
    single: dict[str, SourceMapping] = {}
    for value in values or []:
        target, equals, file = value.rpartition("=")
        if not equals or Path(value).is_file():  # a file whose own name has an '='
            if every is not None:
                raise ConfigError(
                    f"two mappings for every input ({value}); give the others as INPUT=FILE",
                    path=value,
                )
            every = load_yaml(value, SourceMapping)
        else:
            single[target] = load_yaml(file, SourceMapping)
    return every, single


@app.command(no_args_is_help=True)
def summary(
    places: Annotated[
        Path, typer.Argument(help="A places file written by 'poiflow ingest'.", metavar="PLACES")
    ],
) -> None:
    """Profile a places file: sources, categories, completeness, quarantine reasons.

    [bold]Example[/bold]

      poiflow summary out/places.parquet
    """
    from poiflow.quality import profile_places

    profile = profile_places(places)
    out.print(f"[bold]{profile.places:,} places[/bold] in {profile.path}")
    left = Table("source", "records", show_edge=False, title="By source", title_justify="left")
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
    tables = (left, middle, right)
    if sum(out.measure(t).maximum for t in tables) + 8 <= out.width:
        grid = Table.grid(padding=(0, 4))
        grid.add_row(*tables)
        out.print(grid)
    else:  # side by side, a narrow terminal would cut their names short: one under another
        for table in tables:
            out.print(table)
    total, e164 = profile.phones_e164
    out.print(f"phones in E.164: {e164:,} of {total:,}")
    if profile.quarantine_reasons:
        held = Table(
            "scope", "reason", "count", show_edge=False, title="Quarantine", title_justify="left"
        )
        for scope, reason, n in profile.quarantine_reasons:
            held.add_row(scope, reason, f"{n:,}")
        out.print(held)
    if profile.unknown_categories:
        unknown = Table(
            "label",
            "records",
            show_edge=False,
            title="Category labels not in the taxonomy",
            title_justify="left",
            min_width=40,
        )
        for label, n in profile.unknown_categories:
            unknown.add_row(label, f"{n:,}")
        out.print(unknown)
        out.print(
            "[dim]A feed's own labels or codes map to categories with 'categories:' in a "
            "mapping (poiflow ingest --help).[/dim]"
        )
    out.print("[dim]Map data © OpenStreetMap contributors, where the sources include OSM.[/dim]")


_CONFLATE_HELP = """
Find the records that are the same place and merge them into golden places.

Every group of records describing one place becomes one golden place, with provenance and
confidence.

INPUTs are read as by [bold]poiflow ingest[/bold] (OSM PBF, Overture GeoParquet, flat CSV/TSV/JSON
lines/Parquet, or any layout through --mapping). The output folder gets:

  [bold]places.parquet[/bold]      golden places (GeoParquet): each attribute chosen by
                      agreement, source trust and recency, with confidence
                      and the record it came from
  [bold]membership.parquet[/bold]  source, id, place_id: every valid record's place
  [bold]pairs.parquet[/bold]       every scored candidate pair, its probability and
                      the features behind it
  [bold]records.parquet[/bold]     the normalized records
  [bold]quarantine.parquet[/bold]  what validation held back
  [bold]changes.parquet[/bold]     created / merged / split / updated / removed
                      since --previous
  [bold]decisions.parquet[/bold]   the --decisions, each with what the model had
                      said and whether the run had both records
  [bold]checks.parquet[/bold]      the quality checks: one row each, passed or not
  [bold]issues.parquet[/bold]      one row per place a check flagged, and why
  [bold]report.html[/bold]         one page to open in a browser: counts, a map,
                      the sources, the checks (and the errors, with --gold)
  [bold]model.json.gz[/bold]       the very model that scored the run
  [bold]run.json[/bold]            counts, seconds per stage, the model

Matching uses the model poiflow ships (trained on its own generator) unless --model names
another ([bold]poiflow train[/bold] makes one). [bold]--model em[/bold] needs no model and no
labels: it fits a Fellegi-Sunter model by EM on this run's own candidate pairs, and
run.json shows its match weights.

A person has the last word: [bold]--decisions[/bold] takes pairs someone decided (the labels file
[bold]poiflow label[/bold] writes, or any CSV of left_source, left_id, right_source, right_id,
label): a [bold]match[/bold] is one place and [bold]different[/bold] two, whatever the model
says, run after run.

[bold]Examples[/bold]

  poiflow conflate examples/helsinki/Helsinki.osm.pbf examples/helsinki/vendor_feed.csv -o out/run
  poiflow conflate osm.pbf overture.parquet vendor.csv -o out/run --model my-model.json.gz
  poiflow conflate osm.pbf vendor-2026-12.csv -o out/dec --previous out/nov
  poiflow conflate feed-a.csv feed-b.csv -o out/run --model em
  poiflow conflate osm.pbf vendor.csv -o out/run --decisions labels.csv
  poiflow conflate out/gen/source_*.csv -o out/run --gold out/gen/gold.csv
  poiflow conflate out/gen/source_*.csv -o out/run --gold out/gen/gold.csv \\
      --gold-places out/gen/gold_places.csv
"""


@app.command(name="conflate", help=_CONFLATE_HELP, no_args_is_help=True)
def conflate_command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Input files or folders (or s3://, hdfs:// URIs of either; http(s):// files).",
            metavar="INPUT",
            show_default=False,
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="The output folder (or an s3://, hdfs:// URI).", metavar="DIR"
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            help="A model file from 'poiflow train', 'default' (the shipped model), or 'em' "
            "(fit a Fellegi-Sunter model on this run, without labels).",
            metavar="MODEL",
        ),
    ] = "default",
    previous: Annotated[
        str | None,
        typer.Option(
            help="An earlier output folder: keep place ids, write what changed.", metavar="DIR"
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            help="YAML mapping of a tabular feed's columns: FILE for every tabular input, "
            "INPUT=FILE for one (repeat the option for several; see poiflow ingest --help).",
            metavar="[INPUT=]FILE",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Least match probability that joins records "
            "(default: 0.3; 0.05 with a Fellegi-Sunter model).",
            show_default=False,
            metavar="P",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(help="Where the stages run: this machine, or Spark (same outputs)."),
    ] = Engine.local,
    spark_master: Annotated[
        str,
        typer.Option(
            help="With --engine spark: the Spark master (local[N], spark://HOST:PORT).",
            metavar="MASTER",
        ),
    ] = "local[*]",
    gold: Annotated[
        Path | None,
        typer.Option(
            help="Known truth (CSV of source,id,place): score the run against it, and show "
            "where the errors are in report.html.",
            metavar="CSV",
        ),
    ] = None,
    gold_places: Annotated[
        Path | None,
        typer.Option(
            help="With --gold, the true places (gold_places.csv of 'poiflow generate'): "
            "score the golden records' attributes too (run.json's metrics golden.*).",
            metavar="CSV",
        ),
    ] = None,
    decisions: Annotated[
        Path | None,
        typer.Option(
            help="Pairs a person decided, which overrule the model: a labels file of "
            "'poiflow label' (or a CSV of left_source, left_id, right_source, right_id, "
            "label: match, different or unsure).",
            show_default=False,
            metavar="CSV",
        ),
    ] = None,
    workers: Annotated[int | None, _WORKERS] = None,
    json_report: Annotated[bool, typer.Option("--json", help="Print run.json on stdout.")] = False,
) -> None:
    """Find the records that are the same place and merge them."""
    from poiflow.pipeline import conflate
    from poiflow.pipeline.conflation import conflate_stages

    source_mapping, mappings = _mappings(mapping)
    unused = NOT_USED_HERE if engine is Engine.local else ()  # Spark's driver may use it
    names = conflate_stages(gold=gold is not None)
    with _stages("conflate", names, hidden=json_report) as stages, kept_out(unused):
        report = conflate(
            [i if is_remote(i) else Path(i) for i in inputs],
            output if is_remote(output) else Path(output),
            model=model,
            previous=previous,
            mapping=source_mapping,
            mappings=mappings,
            clustering=None if threshold is None else _cluster_config(threshold),
            progress=stages.reading,
            on_stage=stages,
            engine=engine.value,
            spark=SparkSettings(master=spark_master),
            gold=gold,
            gold_places=gold_places,
            decisions=decisions,
            workers=workers,
        )
    if json_report:
        print_json(report.to_dict())
        return
    where = output if is_remote(output) else report.output
    print_ingest_report(
        report.ingest, paths=False, quarantine=f"{str(where).rstrip('/')}/quarantine.parquet"
    )
    counts = report.to_dict()["counts"]
    table = Table(title="Conflate", title_justify="left", show_edge=False)
    table.add_column("stage")
    table.add_column("result", justify="right")
    table.add_column("seconds", justify="right")
    rows = [
        (
            "block",
            f"{counts['candidate_pairs']:,} candidate pairs "
            f"({counts['candidates_per_record']:.1f} per record)",
        ),
        ("score", f"{counts['candidate_pairs']:,} pairs, model {report.model}"),
        ("cluster", f"{counts['matched_pairs']:,} matched pairs"),
        (
            "merge",
            f"{counted(counts['places'], 'place')}, {counts['multi_source_places']:,} from 2+ "
            "records; " + ", ".join(f"{n:,} {kind}" for kind, n in sorted(report.changes.items())),
        ),
    ]
    for stage, result in rows:
        table.add_row(stage, result, f"{report.seconds.get(stage, 0.0):.2f}")
    console.print(table)
    decided = report.run.get("decisions")
    if decided:
        console.print(decisions_line(decided))
    precision = report.run.get("source_precision_m") or {}
    if precision:  # learnt from the run's places: what each source's points are worth
        console.print(
            "golden points weigh each source by how far its points typically lie from "
            "the places they describe: "
            + ", ".join(f"{s} {m:g} m" for s, m in sorted(precision.items(), key=lambda i: i[1]))
        )
    covered = report.run.get("place_coverage") or {}
    if covered.get("coverage"):  # learnt from the places sources share: what a place's
        covers = sorted(covered["coverage"].items(), key=lambda i: -i[1])  # confidence reads
        console.print(
            f"the places sources share imply about {covered['places']:,} places; each source "
            "covers " + ", ".join(f"{s} {c:.0%}" for s, c in covers)
        )
    accuracy = report.run.get("source_accuracy") or {}
    if accuracy:  # learnt likewise: what each attribute's confidence is reckoned from
        judged = [a for a in ("name", "category", "location", "address", "phone") if a in accuracy]
        sources = Table(
            "source",
            *judged,
            show_edge=False,
            title="how often each source is right, as the other records of its places judge it",
            title_justify="left",
        )
        for source in sorted({s for a in judged for s in accuracy[a]}):
            sources.add_row(
                source,
                *(f"{accuracy[a][source]:.2f}" if source in accuracy[a] else "-" for a in judged),
            )
        console.print(sources)
        for line in unjudged_notes(accuracy, judged):
            console.print(f"[dim]{escape(line)}[/dim]")
    if "match_weights" in report.model_info:  # fitted by EM on this run: show what it learnt
        info = report.model_info
        print_weights(info, info["prior"], info["match_weights"])
    checked = checks_line(report.run.get("checks") or {}, str(where))
    if checked:
        console.print(checked)
    metrics = report.to_dict().get("metrics")
    if metrics:
        console.print(
            f"against the truth: precision {metrics['precision']:.4f}, recall "
            f"{metrics['recall']:.4f}, F1 {metrics['f1']:.4f}, B-cubed F1 "
            f"{metrics['bcubed_f1']:.4f}; where the errors are: report.html, or poiflow "
            "evaluate --errors"
        )
        golden = golden_line(metrics)
        if golden:
            console.print(golden)
    from poiflow.pipeline.conflation import OUTPUTS

    console.print(f"outputs in [bold]{where}[/bold]: " + ", ".join(OUTPUTS))
    if not is_remote(output):
        console.print(
            f"[dim]why a place says what it says: poiflow explain {where} PLACE; why two "
            f"records are one place or two: poiflow explain {where} SOURCE:ID SOURCE:ID[/dim]",
            highlight=False,
        )


def _cluster_config(threshold: float) -> ClusterConfig:
    """Clustering at ``threshold`` (imported only then: its module imports scipy, which the
    run needs only after ingest)."""
    from poiflow.conflate.clustering import ClusterConfig

    return ClusterConfig(threshold=threshold)
