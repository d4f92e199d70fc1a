"""``poiflow init`` and ``poiflow run``: pipelines declared in a YAML file."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from poiflow.cli import Engine, _stages, app, console, print_json
from poiflow.cli.reporting import checks_line, counted, decisions_line, golden_line
from poiflow.errors import ConfigError, PoiflowError
from poiflow.quality.notes import input_notes

if TYPE_CHECKING:
    from poiflow.pipeline.declared import Pipeline

__all__: list[str] = []

_RUN_HELP = """
Run the pipeline a YAML file declares, re-using every stage whose inputs and settings
have not changed.

Each stage's output is kept in the pipeline's cache (its [bold]cache[/bold] key, default
.poiflow-cache beside the file) under a key made of poiflow's code, the stage's settings
and the keys of its inputs. Change one setting and only the stages from there on run
again; the table at the end says which stages were reused.

Stages, in order: ingest, block, score, cluster, merge, and evaluate when the pipeline
names known truth ([bold]gold[/bold]); custom stages run where the file puts them.

The output folder gets what [bold]poiflow conflate[/bold] writes. A failed run prints the
command that resumes it; outputs are moved into place only when every stage is done.

[bold]Examples[/bold]

  poiflow init my-pipeline && poiflow run my-pipeline/pipeline.yaml
  poiflow run pipeline.yaml --output out/try-2
  poiflow run pipeline.yaml --from cluster     # re-run clustering and what follows
  poiflow run pipeline.yaml --only block       # one stage (its inputs must be cached)
  poiflow run pipeline.yaml --dry-run          # which stages would run, and why
"""

_TEMPLATE = """\
# A poiflow pipeline. Run it with:  poiflow run {file}
# Paths are relative to this file. Only name and sources are required; every other key
# shows its default. A misspelt key is an error that names the line and the key.
name: {name}
description: {description}

# Any mix of inputs: OpenStreetMap *.osm.pbf, Overture *.parquet, flat *.csv *.tsv
# *.jsonl *.parquet (columns source, id, name, lat, lon, category, street, housenumber,
# postcode, city, country, phone, website; only id and name are required).
sources:
{sources}
stages:
  ingest:
    batch_size: 50000        # records per batch; memory grows with it
  block:
    max_group: 300           # a key shared by more records than this proposes no pairs
    max_local_group: 40      # the same for a name word within one H3 cell
  score:
    model: default           # default (shipped) | em (fitted on this run, no labels) | a file
  cluster:
    # threshold: 0.3         # least match probability that joins records (em: 0.05)
    # same_source: 0.8       # the bar for joining records of one source (em: 0.9)
    veto: 0.02               # one pair scored below this keeps two clusters apart
  merge:
    trust: {{}}                # a source's weight when values disagree, e.g. {{osm: 1.5}}
    recency_weight: 0.2      # extra weight of the most recent record

# Stages of your own: a Python function of a table that returns the table. After ingest
# it gets the records, after score the scored pairs, after merge the golden places.
# rules.py beside this file holds the example below; take out the '#' to run it.
# custom:
#   - name: drop_closed
#     function: rules.py:drop_closed
#     after: ingest
#     params: {{statuses: [permanently_closed]}}

output: out                  # the output folder
cache: .poiflow-cache        # where stage outputs are kept for re-use; null: nowhere
# checks:                    # the quality checks of the report stage
#   skip: [stale]            # built-in checks not to run
#   needs: {{pharmacy: [phones], restaurant: [opening_hours]}}
#   custom: [{{name: no_closed_cafes, function: rules.py:FUNCTION, severity: error}}]
# gate: {{error: 0, checks: {{likely_duplicates: 50}}}}   # beyond these: not published
# previous: out-last-release # keep the place ids of an earlier output
# decisions: labels.csv      # pairs a person decided (poiflow label): they overrule the model
{gold}
# schedule: "@daily"         # when a scheduler should run it (poiflow deploy airflow|k8s)

# engine: spark              # the same stages on Spark (same outputs); default: local
# spark: {{master: "local[*]", partitions: 8, executors: 4, executor_memory: 4g}}
# resources: {{cpu: "2", memory: 8Gi}}   # what a Kubernetes pod asks for

# poiflow stream: edits in from Kafka, applied to this output's places, change events out
# stream: {{brokers: "127.0.0.1:9092", edits: poi-edits, events: place-changes,
#          dead_letters: poi-edits-dead, group: poiflow-stream, batch_size: 5000}}
"""

_RULES = '''\
"""Custom stages of this pipeline: each is a function of a table that returns the table.

Test them on tables as a run hands them over (hypothesis draws them; poiflow.testing):

    from hypothesis import given
    from poiflow.testing import records, stage_result

    @given(records())
    def test_drop_closed_leaves_out_the_closed(table):
        kept = stage_result(drop_closed, table, after="ingest", statuses=["permanently_closed"])
        assert "permanently_closed" not in kept.column("operating_status").to_pylist()
"""

import pyarrow as pa
import pyarrow.compute as pc


def drop_closed(records: pa.Table, statuses: list[str]) -> pa.Table:
    """Leave out records whose operating status is one of ``statuses``."""
    closed = pc.is_in(records.column("operating_status"), pa.array(statuses))
    return records.filter(pc.invert(pc.fill_null(closed, False)))
'''


@app.command(name="init", no_args_is_help=True)
def init_command(
    folder: Annotated[Path, typer.Argument(help="Where to write pipeline.yaml.", metavar="FOLDER")],
    force: Annotated[bool, typer.Option(help="Replace an existing pipeline.yaml.")] = False,
) -> None:
    """Write a commented example pipeline (and a custom stage) to start from.

    The pipeline reads the bundled Helsinki data (OpenStreetMap and a vendor feed) when
    poiflow runs from its source folder; elsewhere it generates a small multi-source set
    with known truth into FOLDER/data, so that it runs anywhere.
    """
    import os

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "pipeline.yaml"
    if target.exists() and not force:
        raise ConfigError("already exists; pass --force to replace it", path=target)
    examples = Path(__file__).resolve().parents[3] / "examples" / "helsinki"
    if (examples / "Helsinki.osm.pbf").exists():
        relative = Path(os.path.relpath(examples, folder.resolve()))
        sources = (
            f"  - path: {relative / 'Helsinki.osm.pbf'}\n"
            "    # osm: {keys: [amenity, shop, tourism, leisure, office, craft, healthcare]}\n"
            f"  - path: {relative / 'vendor_feed.csv'}\n"
            "    # mapping: {source: vendor, columns: {id: vendor_id}}  # other column names\n"
        )
        name, description = "helsinki", "OpenStreetMap's Helsinki places with a vendor feed."
        gold = (
            "# gold: gold.csv             # known truth (source,id,place): adds precision/recall/F1"
        )
    else:
        from poiflow.generate import generate

        generate(2000, 3, 7, folder / "data")
        sources = "".join(
            f"  - path: data/{p.name}\n" for p in sorted((folder / "data").glob("source_*.csv"))
        )
        name, description = "generated", "A generated multi-source set with known truth."
        gold = (
            "gold: data/gold.csv          # known truth (source,id,place): adds precision/recall/F1"
            "\ngold_places: data/gold_places.csv  # the true places: how right golden records are"
        )
    target.write_text(
        _TEMPLATE.format(
            file=target, name=name, description=description, sources=sources, gold=gold
        ),
        "utf-8",
    )
    (folder / "rules.py").write_text(_RULES, "utf-8")
    console.print(f"wrote [bold]{target}[/bold] and {folder / 'rules.py'}")
    console.print(f"run it:  poiflow run {shlex.quote(str(target))}")


def _say_dry_run(
    pipeline: Pipeline, from_stage: str | None, only: str | None, use_cache: bool, as_json: bool
) -> None:
    """What ``poiflow run --dry-run`` prints: each stage, would it run, and why."""
    planned = pipeline.dry_run(from_stage=from_stage, only=only, use_cache=use_cache)
    if as_json:
        print_json(
            {
                "pipeline": pipeline.spec.name,
                "stages": [
                    {
                        "stage": p.name,
                        "key": p.key,
                        "runs": p.runs,
                        "cached": p.cached,
                        "why": p.why,
                    }
                    for p in planned
                ],
            }
        )
        return
    table = Table(
        title=f"Pipeline {pipeline.spec.name}: what a run would do",
        title_justify="left",
        show_edge=False,
    )
    for column in ("stage", "would", "why"):
        table.add_column(column, overflow="fold")
    for stage in planned:
        would = "run" if stage.runs else "[dim]reuse[/dim]" if stage.cached else "missing"
        table.add_row(stage.name, would, escape(stage.why))
    console.print(table)
    running = sum(p.runs for p in planned)
    console.print(
        f"{running} of {len(planned)} stage{'s' * (len(planned) != 1)} would run; "
        "nothing was run or written"
    )


@app.command(name="run", help=_RUN_HELP, no_args_is_help=True)
def run_command(
    pipeline_file: Annotated[Path, typer.Argument(help="The pipeline file.", metavar="PIPELINE")],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="The output folder or s3://, hdfs:// URI (default: the pipeline's).",
            metavar="DIR",
        ),
    ] = None,
    from_stage: Annotated[
        str | None,
        typer.Option("--from", help="Re-run this stage and those after it.", metavar="STAGE"),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(help="Run only this stage; what it needs must be cached.", metavar="STAGE"),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every stage, keep nothing.")
    ] = False,
    no_track: Annotated[
        bool, typer.Option("--no-track", help="Do not log this run to MLflow.")
    ] = False,
    engine: Annotated[
        Engine | None,
        typer.Option(help="Run on this engine instead of the pipeline's own 'engine'."),
    ] = None,
    json_report: Annotated[bool, typer.Option("--json", help="Print run.json on stdout.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say which stages would run and why, and which are cached; run nothing "
            "(with --json: as JSON).",
        ),
    ] = False,
) -> None:
    """Run a pipeline file."""
    from poiflow.pipeline.declared import Pipeline

    pipeline = Pipeline.from_yaml(pipeline_file)
    if engine is not None:
        pipeline = pipeline.replace({"engine": engine.value})
    if dry_run:
        _say_dry_run(pipeline, from_stage, only, not no_cache, json_report)
        return
    stage_names = pipeline.stages
    try:
        with _stages(pipeline.spec.name, stage_names, hidden=json_report) as stages:
            result = pipeline.run(
                output,
                from_stage=from_stage,
                only=only,
                use_cache=not no_cache,
                track=not no_track,
                progress=stages.reading,
                on_stage=stages,
            )
    except PoiflowError as exc:
        if exc.stage is not None and exc.stage != stage_names[0]:
            command = ["poiflow", "run", str(pipeline_file)]
            if output is not None:
                command += ["--output", str(output)]
            command += ["--from", exc.stage]
            exc.message += (
                f"\nthe stages before '{exc.stage}' are kept; resume with:\n  "
                + shlex.join(command)
            )
        raise
    if json_report and result.output is not None:
        data = json.loads((result.output / "run.json").read_text("utf-8"))
        print_json(data | {"mlflow_run_id": result.run_id})
        return
    table = Table(title=f"Pipeline {pipeline.spec.name}", title_justify="left", show_edge=False)
    for column, justify in (("stage", "left"), ("ran or reused", "left"), ("seconds", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for run in result.stages:
        table.add_row(
            run.name,
            "[dim]reused[/dim]" if run.reused else "ran",
            f"{run.seconds:.2f}" if not run.reused else "",
        )
    console.print(table)
    if result.reused:
        console.print(f"reused from the cache: {', '.join(result.reused)}")
    if result.output is None:
        console.print(f"stage '{only}' done; its output is in the cache {pipeline.cache}")
        return
    run_json = json.loads((result.output / "run.json").read_text("utf-8"))
    counts = run_json["counts"]
    if counts.get("quarantined") or counts.get("withheld_values"):
        where = result.uploaded_to or result.output
        console.print(
            f"read {counts['read']:,} = {counts['records']:,} records + "
            f"{counts['quarantined']:,} quarantined (their reasons: {where}/quarantine.parquet); "
            f"{counts.get('withheld_values', 0):,} values withheld"
        )
    for note in input_notes(run_json.get("inputs", [])):
        console.print(f"[yellow]note[/yellow]: {escape(note)}")
    console.print(
        f"{counted(counts['records'], 'record')} -> {counted(counts['places'], 'place')} "
        f"({counts['multi_source_places']:,} from 2+ records), model {run_json['model']}"
    )
    if run_json.get("decisions"):
        console.print(decisions_line(run_json["decisions"]))
    if pipeline.spec.gate is not None:
        console.print("quality gate passed: no more issues than its limits allow")
    checked = checks_line(run_json.get("checks") or {}, str(result.uploaded_to or result.output))
    if checked:
        console.print(checked)
    if "metrics" in run_json:
        m = run_json["metrics"]
        console.print(
            f"against the truth: precision {m['precision']:.4f}, recall {m['recall']:.4f}, "
            f"F1 {m['f1']:.4f}, B-cubed F1 {m['bcubed_f1']:.4f}"
        )
        if "missed_blocking" in m:
            console.print(
                f"pairs missed: {m['missed_blocking']:,} by blocking, {m['missed_matcher']:,} "
                f"by the matcher, {m['missed_clustering']:,} by clustering; wrongly joined: "
                f"{m['wrong_matcher']:,} by the matcher, {m['wrong_clustering']:,} by "
                "clustering (report.html shows them; poiflow evaluate --errors lists them)"
            )
        golden = golden_line(m)
        if golden:
            console.print(golden)
    console.print(f"outputs in [bold]{result.uploaded_to or result.output}[/bold]")
    if result.run_id is not None and result.repeats_run:
        console.print(
            f"nothing changed since MLflow run [bold]{result.run_id}[/bold]: not logged again"
        )
    elif result.run_id is not None:
        console.print(f"MLflow run [bold]{result.run_id}[/bold] in {pipeline.tracking_uri}")


@app.command(name="compare")
def compare_command(
    runs: Annotated[
        list[str] | None,
        typer.Argument(help="MLflow run ids (a unique prefix will do).", metavar="RUN"),
    ] = None,
    pipeline_file: Annotated[
        Path | None,
        typer.Option(
            "--pipeline",
            "-p",
            help="Take the tracking store from this pipeline.",
            metavar="PIPELINE",
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="The MLflow tracking URI (instead of --pipeline).", metavar="URI"),
    ] = None,
    last: Annotated[
        int | None,
        typer.Option(
            min=2, help="Compare the pipeline's last N runs (with --pipeline).", metavar="N"
        ),
    ] = None,
    chart_path: Annotated[
        Path, typer.Option("--chart", help="Where to write the chart (PNG).", metavar="FILE")
    ] = Path("compare.png"),
    only: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Show only the metrics whose name has this in it ('golden', 'accuracy', "
            "'seconds').",
            metavar="TEXT",
        ),
    ] = None,
) -> None:
    """Put logged runs side by side: the settings that changed, and every metric with its
    change from the first run (green: better, red: worse).

    [bold]Examples[/bold]

      poiflow compare --pipeline pipeline.yaml --last 2
      poiflow compare 3f2a9c 81be07 --pipeline pipeline.yaml --chart out/compare.png
      poiflow compare RUN1 RUN2 --tracking-uri http://127.0.0.1:5000
      poiflow compare --pipeline pipeline.yaml --last 3 --metrics golden
    """
    from poiflow.pipeline.declared import Pipeline
    from poiflow.pipeline.tracking import compare

    ids = list(runs or [])
    pipeline = Pipeline.from_yaml(pipeline_file) if pipeline_file else None
    uri = tracking_uri or (pipeline.tracking_uri if pipeline else None)
    if uri is None:
        raise ConfigError("say where the runs are: --pipeline PIPELINE.yaml or --tracking-uri")
    experiment = pipeline.experiment if pipeline else None
    comparison = compare(uri, ids, experiment=experiment, last=last)
    shown = comparison.cells(only)
    if not shown:
        raise ConfigError(
            f"no metric of these runs has '{only}' in its name "
            "(a run given the true places has golden.*; one given gold, f1 and the like)"
        )
    names = comparison.names

    params = Table(title="Settings that differ", title_justify="left", show_edge=False)
    params.add_column("parameter")
    for name in names:
        params.add_column(name)
    for key, texts in comparison.params:
        params.add_row(key, *("" if v is None else v for v in texts))
    if not comparison.params:
        params.add_row("(none: the runs share every setting)", *([""] * len(names)))
    console.print(params)

    metrics = Table(title="Metrics", title_justify="left", show_edge=False)
    metrics.add_column("metric")
    for name in names:
        metrics.add_column(name, justify="right")
    colour = {None: "dim", True: "green", False: "red"}
    for key, said in shown:
        cells = [
            f"{text} [{colour[verdict]}]({change})[/{colour[verdict]}]" if change else text
            for text, change, verdict in said
        ]
        metrics.add_row(key, *cells)
    console.print(metrics)
    console.print(f"chart: [bold]{comparison.chart(chart_path)}[/bold]")
