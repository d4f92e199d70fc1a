"""Conflate: ingest, block, score, cluster and merge into golden places.

Outputs, in the output folder:

- ``places.parquet``: the golden places (GeoParquet, ``GOLDEN_PLACE_SCHEMA``);
- ``membership.parquet``: each valid record's place (``source, id, place_id``);
- ``pairs.parquet``: every scored candidate pair, its probability and its features;
- ``records.parquet``: the normalized records the run matched;
- ``quarantine.parquet``: what validation held back;
- ``changes.parquet``: what changed since ``--previous`` (every place ``created`` without);
- ``decisions.parquet``: a person's decisions (``decisions``) and what became of each
  (empty without them);
- ``checks.parquet`` and ``issues.parquet``: the quality checks and the places they flag;
- ``report.html``: one self-contained page of the run, its map and its checks;
- ``model.json.gz``: the model that scored the run;
- ``run.json``: counts, timings per stage, the model, and where each output is.

Everything is written to a hidden staging folder first and moved into place at the end,
``run.json`` last: a run that fails leaves the previous outputs as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poiflow.config import (
    BlockSettings,
    ClusterSettings,
    IngestSettings,
    MergeSettings,
    OsmOptions,
    ScoreSettings,
    SourceMapping,
    SparkSettings,
    validated,
)
from poiflow.errors import InputError
from poiflow.pipeline.artifacts import Artifacts, StageContext
from poiflow.pipeline.plan import build_plan, run_json
from poiflow.pipeline.runner import RunResult, run_plan
from poiflow.pipeline.stage_results import read_previous
from poiflow.pipeline.stages import make_engine
from poiflow.storage import TEMP_ROOT, fetch, is_remote, output_staging, put_folder

if TYPE_CHECKING:  # conflate imports the stages' modules when it runs
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.conflate.keys import BlockingConfig
    from poiflow.conflate.merge import MergeConfig
    from poiflow.pipeline.ingest_report import IngestProgress, IngestReport
    from poiflow.sources import Inputs

DEFAULT_BATCH_SIZE = 50_000

__all__ = ["OUTPUTS", "ConflateReport", "conflate", "conflate_stages"]

OUTPUTS = (
    "places.parquet",
    "membership.parquet",
    "pairs.parquet",
    "records.parquet",
    "quarantine.parquet",
    "changes.parquet",
    "decisions.parquet",
    "checks.parquet",
    "issues.parquet",
    "report.html",
    "model.json.gz",
    "run.json",
)


@dataclass(slots=True, repr=False)
class ConflateReport:
    """What a conflate run did: counts and seconds per stage, and the model it used."""

    output: Path
    ingest: IngestReport
    model: str
    model_info: dict[str, Any] = field(default_factory=dict)
    records: int = 0
    candidate_pairs: int = 0
    matched_pairs: int = 0
    places: int = 0
    multi_source_places: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    pairs_by_key: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, result: RunResult) -> ConflateReport:
        """The report of a finished run of the conflation plan."""
        from poiflow.pipeline.ingest_report import IngestReport

        data = run_json(result)
        summary = {run.name: run.summary for run in result.stages}
        ingest_report = IngestReport.from_dict(summary["ingest"])
        counts = data["counts"]
        return cls(
            output=result.output or Path(),
            ingest=ingest_report,
            model=data["model"],
            model_info=data["model_info"],
            records=counts["records"],
            candidate_pairs=counts["candidate_pairs"],
            matched_pairs=counts["matched_pairs"],
            places=counts["places"],
            multi_source_places=counts["multi_source_places"],
            seconds=data["seconds"],
            pairs_by_key=data["candidate_pairs_by_key"],
            changes=data["changes"],
            run=data,
        )

    def __repr__(self) -> str:
        return (
            f"ConflateReport(output={str(self.output)!r}, records={self.records}, "
            f"places={self.places}, multi_source_places={self.multi_source_places}, "
            f"candidate_pairs={self.candidate_pairs}, matched_pairs={self.matched_pairs}, "
            f"model={self.model!r}, seconds={sum(self.seconds.values()):.1f})"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: the inputs, what came out, and each stage's seconds."""
        from poiflow.pipeline.ingest_report import report_table

        counts = [
            ["records", self.records],
            ["candidate pairs", self.candidate_pairs],
            ["matched pairs", self.matched_pairs],
            ["places", self.places],
            ["places of 2+ records", self.multi_source_places],
            *[[f"{stage} (s)", float(seconds)] for stage, seconds in self.seconds.items()],
        ]
        return self.ingest._repr_html_() + report_table(
            ["", ""],
            counts,
            caption=f"conflate: {self.output} (model {self.model})",
            note=f"Open {Path(self.output) / 'report.html'} for the quality report.",
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (what ``run.json`` holds)."""
        return self.run


def conflate_stages(*, gold: bool = False) -> list[str]:
    """The stages a :func:`conflate` run goes through, in order, as ``on_stage`` names
    them: with ``gold``, an ``evaluate`` stage too (for a progress display's total)."""
    plan = build_plan(
        ingest=IngestSettings(),
        block=BlockSettings(),
        score=ScoreSettings(),
        cluster=ClusterSettings(),
        merge=MergeSettings(),
        inputs_identity="",
        gold_identity="" if gold else None,
    )
    return [stage.name for stage in plan]


def conflate(
    inputs: Inputs,
    output: str | Path,
    *,
    model: str | Path = "default",
    previous: str | Path | None = None,
    mapping: SourceMapping | None = None,
    mappings: Mapping[str, SourceMapping] | None = None,
    osm: OsmOptions | None = None,
    blocking: BlockingConfig | None = None,
    clustering: ClusterConfig | None = None,
    merging: MergeConfig | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    progress: IngestProgress | None = None,
    on_stage: Any = None,
    engine: str = "local",
    spark: SparkSettings | None = None,
    gold: str | Path | None = None,
    gold_places: str | Path | None = None,
    decisions: str | Path | None = None,
) -> ConflateReport:
    """Find the records of all inputs that are the same place and merge them.

    Args:
        inputs: Files of any kind ``ingest`` reads (local, or ``s3://``, ``hdfs://``
            URIs), or opened sources; one alone needs no list.
        output: The output folder (created; earlier outputs in it are replaced), or an
            ``s3://`` or ``hdfs://`` URI (written locally, then uploaded whole, ``run.json`` last).
        model: A model file, ``"default"`` for the model poiflow ships, or ``"em"`` to fit
            an unsupervised Fellegi-Sunter model on this run's own candidate pairs (no
            labels needed; its match weights are reported in ``run.json``).
        previous: An earlier output folder: places keep their ids where they persist, and
            ``changes.parquet`` says what changed.
        mapping, mappings, osm, batch_size, workers, progress: As for
            :func:`poiflow.ingest` (``mappings`` keyed by the inputs as given, before any
            is fetched).
        blocking, clustering, merging: Settings of those stages. Without ``clustering``,
            a Fellegi-Sunter model clusters at its own threshold. Of ``merging``, the
            settings a pipeline's ``stages.merge`` has; the run counts its own names'
            words (``name_words``).
        on_stage: Called with each stage's name as it starts (for progress displays).
        engine: ``"local"`` (this machine) or ``"spark"`` (the same stages spread by
            Spark; same outputs); ``spark`` says where Spark runs.
        gold: Known truth (CSV of ``source,id,place``): the run is scored against it
            (``run.json``'s ``metrics``: pairwise and B-cubed scores, and the missed and
            wrong pairs of each stage), and ``report.html`` shows where the errors are.
        gold_places: The true places (a flat place file whose ids are ``gold``'s places,
            as ``poiflow generate`` writes ``gold_places.csv``): ``metrics`` say too how
            right the golden records are (``golden.<attribute>.accuracy`` and so on).
        decisions: A person's decisions about pairs of records: a labels file, as
            ``poiflow label`` writes it (``left_source, left_id, right_source, right_id,
            label``): a ``match`` is one place and ``different`` two, whatever the model
            says (see ``poiflow.conflate.decisions``); ``decisions.parquet`` and
            ``run.json`` say what became of each.

    Raises:
        poiflow.errors.ModelError: The model cannot be used (checked before any work).
        poiflow.errors.ConfigError: No input; ``spark`` without PySpark; an engine that is neither;
            settings out of their range (``batch_size`` 0, a ``clustering`` threshold
            above 1; all checked before any work).
        poiflow.errors.InputError: An input cannot be read.
        poiflow.errors.OutputError: No record survived validation.
    """
    # Only what runs before ingest is imported here: the stages import their own modules
    # (polars, scipy, rapidfuzz), on a side thread while ingest's workers read.
    from poiflow.conflate.matcher import UNSUPERVISED, load_matcher
    from poiflow.sources import Source, input_list, mapping_for, refuse_unknown_inputs
    from poiflow.sources.base import companion_suffixes

    inputs = input_list(inputs)
    refuse_unknown_inputs(inputs, mappings)
    # Settings that do not fit are refused before any work, named as the arguments; so is
    # an engine that is not one (Spark itself starts when a stage first needs it).
    spreads = make_engine(engine, spark)
    ingest_settings = validated(IngestSettings, {"batch_size": batch_size, "workers": workers})
    block_settings = (
        validated(BlockSettings, asdict(blocking), "blocking") if blocking else BlockSettings()
    )
    cluster_settings = (
        validated(ClusterSettings, asdict(clustering), "clustering")
        if clustering
        else ClusterSettings()
    )
    merge_settings = (
        validated(
            MergeSettings,
            {
                "trust": dict(merging.trust),
                "recency_weight": merging.recency_weight,
                "precision_m": dict(merging.precision_m),
                "accuracy": {a: dict(v) for a, v in merging.accuracy.items()},
                "whole": dict(merging.whole),
                "split": dict(merging.split),
            },
            "merging",
        )
        if merging
        else MergeSettings()
    )
    # Each input's mapping, told from the input as given (a fetched copy has another path).
    per_source = [
        (None if isinstance(i, Source) else mapping_for(i, mapping, mappings), osm) for i in inputs
    ]
    # Object storage: inputs, the model and the previous release are fetched first; the
    # output is written to a local folder and uploaded whole at the end.
    downloads = TEMP_ROOT / "downloads"
    inputs = [
        fetch(i, downloads, companion_suffixes(i)) if isinstance(i, str) and is_remote(i) else i
        for i in inputs
    ]
    if isinstance(model, str) and is_remote(model):
        model = fetch(model, downloads)
    if isinstance(previous, str) and is_remote(previous):
        previous = fetch(previous, downloads)
    if engine == "local":  # the ingest workers' server imports while the model loads
        from poiflow.pipeline.ingestion import prepare_ingest

        prepare_ingest(
            inputs,
            mappings={str(i): m for i, (m, _) in zip(inputs, per_source, strict=True) if m},
            osm=osm,
            workers=workers,
        )
    remote = str(output) if is_remote(str(output)) else None
    if remote is not None:
        output = output_staging(remote)
    # Fail before any work on a bad model or previous release.
    matcher = None if str(model) == UNSUPERVISED else load_matcher(model)
    if previous is not None:
        read_previous(Path(previous))
    if gold is not None:
        from poiflow.conflate.evaluate import read_gold

        read_gold(gold)  # a bad truth file fails before any work
    objects: dict[str, Any] = {"matcher": matcher}
    if decisions is not None:  # so do bad decisions (read once: the stage takes them)
        from poiflow.conflate.decisions import read_decisions

        objects["decisions"] = read_decisions(decisions)
    if gold_places is not None and (gold is None or not Path(gold_places).is_file()):
        raise InputError(
            "the true places need the gold file too"
            if gold is None
            else "the true places file does not exist",
            path=str(gold_places),
        )
    plan = build_plan(
        ingest=ingest_settings,
        block=block_settings,
        score=ScoreSettings(model=str(model)),
        cluster=cluster_settings,
        merge=merge_settings,
        inputs_identity="",
        gold_identity=None if gold is None else str(gold),
        gold_places_identity=str(gold_places or ""),
        decisions_identity=str(decisions or ""),
        engine=engine,
    )
    context = StageContext(
        Path(),
        Artifacts(),
        {},
        sources=inputs,
        per_source=per_source,
        osm=osm,
        previous=Path(previous) if previous is not None else None,
        gold=Path(gold) if gold is not None else None,
        gold_places=Path(gold_places) if gold_places is not None else None,
        decisions=Path(decisions) if decisions is not None else None,
        progress=progress,
        objects=objects,
        engine=spreads,
    )
    result = run_plan(
        plan,
        context,
        output=Path(output),
        cache=None,
        report=run_json,
        on_stage=None if on_stage is None else lambda name, _reused: on_stage(name),
    )
    if remote is not None and result.output is not None:
        put_folder(result.output, remote)
        result.uploaded_to = remote
    return ConflateReport.of(result)
