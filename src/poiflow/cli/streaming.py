"""``poiflow stream``, ``poiflow send-edits`` and ``poiflow generate-edits``: POI edits
through Kafka, applied to a pipeline's golden places as they arrive."""

from __future__ import annotations

import contextlib
import json
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from poiflow.cli import app, console
from poiflow.cli.reporting import counted
from poiflow.errors import InputError

__all__: list[str] = []

_STREAM_HELP = """Apply POI edits from Kafka to the golden places of PIPELINE's output.

Reads edits (the flat place format plus an operation: upsert, close or delete, and the
source's time; see poiflow.streaming.edits) from the pipeline's [bold]stream.edits[/bold]
topic in batches; validates and normalizes each as the batch does (a refused edit goes
to [bold]stream.dead_letters[/bold] with the reason in its "reason" header); matches each
against the places with the model of the run; merges every place it touches again; and
produces a change event per place (created, updated with the changed attributes, closed,
merged, removed) to [bold]stream.events[/bold], keyed by place id.

The live places are written after every batch as a snapshot under
[bold]OUTPUT/stream[/bold] (or [bold]stream.state[/bold]): a complete output that
[bold]poiflow serve[/bold] reads. Offsets are committed only after the events and the
snapshot are written: a crash replays the batch, a replayed edit changes nothing twice,
and every event carries the ids of the edits that caused it. Per record, the edit with
the latest source time wins (a late, older edit changes nothing).

Run the pipeline first ([bold]poiflow run PIPELINE.yaml[/bold]): the stream starts from
its output. After a later run into that output (the sources' next release) it goes on
from that run, when it starts or between batches, with its own edits carried over where
they are later than the run's records. SIGTERM or Ctrl-C stops it after the batch in hand.

[bold]Examples[/bold]

  poiflow run pipeline.yaml
  poiflow stream pipeline.yaml
  poiflow stream pipeline.yaml --brokers kafka-1:9092,kafka-2:9092 --until-idle 30
"""

_SEND_HELP = """Send edits (a JSON-lines file, one edit message per line) to the edits topic.

Each message is keyed by the H3 region of its place, so that the edits of one place stay
in one partition and in order; an edit without coordinates (a close, a delete) takes the
key of the last edit of its record in the file, or "unlocated".

[bold]Example[/bold]

  poiflow generate-edits out/gen --count 5000 -o out/gen/edits.jsonl
  poiflow send-edits pipeline.yaml out/gen/edits.jsonl
"""

_GENERATE_HELP = """Write a day of edits of a generated world (see poiflow generate).

New phone numbers and opening hours, conflicting edits of one place by two sources,
closures, deletions, new records of known places from a new source ("user"), new places,
and some edits that arrive late or twice. The same arguments give the same lines.

[bold]Example[/bold]

  poiflow generate --places 2000 --sources 3 --seed 7 -o out/gen
  poiflow generate-edits out/gen --count 2000 --seed 1 -o out/gen/edits.jsonl
"""

PIPELINE = typer.Argument(
    help="The pipeline file (its output and stream settings).", metavar="PIPELINE"
)
BROKERS = typer.Option(
    help="Kafka bootstrap servers (HOST:PORT[,HOST:PORT...]), instead of the pipeline's "
    "stream.brokers.",
    metavar="HOSTS",
)


def _pipeline(path: Path, brokers: str | None) -> Any:
    from poiflow.pipeline import Pipeline

    pipeline = Pipeline.from_yaml(path)
    if brokers:
        pipeline = pipeline.replace({"stream": {"brokers": brokers}})
    return pipeline


@app.command(name="stream", help=_STREAM_HELP, no_args_is_help=True)
def stream_command(
    pipeline_file: Annotated[Path, PIPELINE],
    brokers: Annotated[str | None, BROKERS] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="Where snapshots go (default: the pipeline's).", metavar="DIR"),
    ] = None,
    until_idle: Annotated[
        float | None,
        typer.Option(help="Stop when no edit came for this many seconds.", metavar="SECONDS"),
    ] = None,
    batches: Annotated[
        int | None, typer.Option(help="Stop after this many batches.", metavar="N")
    ] = None,
    create_topics: Annotated[
        bool, typer.Option(help="Create the stream's topics that are missing (3 partitions).")
    ] = False,
) -> None:
    """Consume edits, update the places, produce change events."""
    from poiflow.conflate.merge import MergeConfig
    from poiflow.storage import file_stamp
    from poiflow.streaming.consumer import EditStream, StreamMetrics, reach_brokers

    pipeline = _pipeline(pipeline_file, brokers)
    output = pipeline.output
    if not isinstance(output, Path):
        raise InputError(f"the stream starts from a local output folder, not {output}")
    if not (output / "places.parquet").exists():
        raise InputError(
            f"no places at {output} yet: the stream starts from the pipeline's output; "
            f"run 'poiflow run {pipeline_file}' first"
        )
    settings = pipeline.spec.stream
    with console.status(f"reaching Kafka at {settings.brokers} ..."):
        reach_brokers(settings)  # said now, not after the places are loaded and indexed
    folder = state or (pipeline.resolve(settings.state) if settings.state else output / "stream")
    merge = MergeConfig(**pipeline.spec.stages.merge.model_dump())

    def show(metrics: StreamMetrics) -> None:
        s = metrics.summary()
        console.print(
            f"batch {s['batches']:,}: {s['received']:,} edits ({s['edits_per_s']:,}/s), "
            f"{s.get('events', 0):,} events, {s.get('dead', 0):,} dead letters, "
            f"{s.get('stale', 0) + s.get('duplicate', 0):,} stale or repeated; "
            f"lag {s['total_lag']:,}",
            highlight=False,
        )

    if create_topics:
        from poiflow.streaming.producer import create_topics as make_topics

        made = make_topics(settings)
        console.print(f"created topics: {', '.join(made)}" if made else "the topics exist")
    run_file = output / "run.json"
    while True:
        # Seen before the places load: a run landing meanwhile is started from next.
        seen = file_stamp(run_file)
        live = _live_places(output, folder, merge, settings)
        publishers = _publishers(live, folder, settings, rebased=live.rebased is not None)
        stream = EditStream(
            live,
            folder,
            settings,
            on_batch=show,
            publishers=publishers,
            later_run=partial(_rewritten, run_file, seen),
        )
        try:
            metrics = stream.run(idle_exit_s=until_idle, max_batches=batches)
        finally:
            for publisher in publishers:
                if hasattr(publisher, "close"):
                    publisher.close()
        if not stream.later_run_seen:
            break
        console.print(f"a later run landed in {output}: the stream starts again from it")
        if batches is not None:
            batches -= int(metrics.counts.get("batches", 0))
            if batches <= 0:
                break
    console.print(f"stopped; metrics in {folder / 'metrics.json'}")
    console.print_json(json.dumps(metrics.summary()))


def _rewritten(path: Path, seen: tuple[int, int, int] | None) -> bool:
    """Whether ``path`` was written again since it was ``seen`` (``file_stamp``)."""
    from poiflow.storage import file_stamp

    return file_stamp(path) != seen


def _live_places(output: Path, folder: Path, merge: Any, settings: Any) -> Any:
    """The stream's places: its latest snapshot, or the run in ``output`` (said when a
    later run there replaced the snapshots'), loaded with a status line."""
    from poiflow.streaming.state import StreamState

    with console.status("loading the places ..."):
        live = StreamState.open(output, folder, merge)
    if live.rebased is not None:
        replaced, carried = live.rebased
        live.save(folder, {"rebased_from": replaced.name, **carried.counts})
        console.print(
            f"{output} holds a later run than the stream's snapshots ({replaced.name}): "
            f"the places start from it, with the stream's later edits of "
            f"{counted(carried.counts['applied'], 'record')} carried over"
            + (
                f" ({counted(carried.counts['stale'], 'record')} the run has as new or newer "
                "kept as the run has them)"
                if carried.counts["stale"]
                else ""
            )
        )
    console.print(
        f"{len(live.index.place_ids):,} places from {live.folder}; reading "
        f"[bold]{settings.edits}[/bold] at {settings.brokers} (Ctrl-C stops after the batch)"
    )
    return live


def _publishers(live: Any, folder: Path, settings: Any, *, rebased: bool = False) -> list[Any]:
    """The search indexes and stores the stream keeps current, each filled with the live
    places first when it has none yet, when the stream stopped while writing them, or
    when the places start from a later run (``rebased``)."""
    from poiflow.streaming.consumer import publishers_current

    fresh = rebased or not publishers_current(folder)
    if fresh and not rebased:
        console.print("the last run stopped while writing its indexes: filling them again")
    found: list[Any] = []
    if settings.search:
        from poiflow.serving.search import SEARCH_FOLDER, SearchIndex, build_search_index

        where = folder / SEARCH_FOLDER
        kept = None
        if not fresh:
            with contextlib.suppress(InputError):  # none, or another version's: built anew
                kept = SearchIndex(where)
        if kept is None:
            with console.status("building the search index ..."):
                kept = build_search_index(live.places, where)
        found.append(kept)
    if settings.opensearch:
        from poiflow.serving.opensearch import OpenSearchIndex

        server = OpenSearchIndex(settings.opensearch, settings.index)
        if fresh or not server.indices():
            with console.status(f"publishing the places to {settings.opensearch} ..."):
                server.publish(live.places)
        found.append(server)
    if settings.cassandra:
        from poiflow.serving.cassandra import CassandraStore, parse_hosts

        hosts, port = parse_hosts(settings.cassandra)
        store = CassandraStore(hosts, port, settings.keyspace)
        store.create_schema()
        if fresh or store.release() is None:
            with console.status(f"publishing the places to {settings.cassandra} ..."):
                store.publish(live.folder)
        found.append(store)
    return found


@app.command(name="send-edits", help=_SEND_HELP, no_args_is_help=True)
def send_edits_command(
    pipeline_file: Annotated[Path, PIPELINE],
    edits: Annotated[
        Path, typer.Argument(help="Edit messages, one JSON object per line.", metavar="EDITS")
    ],
    brokers: Annotated[str | None, BROKERS] = None,
) -> None:
    """Produce edits to the pipeline's edits topic, keyed by region."""
    from poiflow.streaming.producer import send_edits

    pipeline = _pipeline(pipeline_file, brokers)
    if not edits.exists():
        raise InputError("no such file", path=edits)
    sent = send_edits(pipeline.spec.stream, edits.read_bytes().splitlines())
    console.print(f"{sent:,} edits sent to {pipeline.spec.stream.edits}")


@app.command(name="generate-edits", help=_GENERATE_HELP, no_args_is_help=True)
def generate_edits_command(
    world: Annotated[
        Path, typer.Argument(help="A folder poiflow generate wrote.", metavar="WORLD")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The JSON-lines file to write.", metavar="FILE")
    ],
    count: Annotated[int, typer.Option(min=1, help="How many edits.", metavar="N")] = 1000,
    seed: Annotated[int, typer.Option(help="Everything follows from it.", metavar="N")] = 0,
) -> None:
    """Write a day of edits of a generated world."""
    from poiflow.generate.edits import generate_edits
    from poiflow.streaming.edits import edit_message

    if not (world / "gold.csv").exists():
        raise InputError("not a folder poiflow generate wrote (no gold.csv)", path=world)
    edits = generate_edits(world, count, seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as handle:
        for e in edits:
            handle.write(edit_message(e["edit_id"], e["op"], e["time"], e["place"]) + b"\n")
    console.print(f"{len(edits):,} edits: {output}")
