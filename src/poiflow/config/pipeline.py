"""A declared pipeline (``poiflow run PIPELINE.yaml``): its stages' settings, its own
stages and checks, the quality gate, and the whole spec."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from poiflow.config.base import StrictModel
from poiflow.config.platform import (
    ResourceSettings,
    SparkSettings,
    StreamSettings,
    TrackingSettings,
)
from poiflow.config.sources import SourceSpec
from poiflow.errors import did_you_mean

__all__ = [
    "CUSTOM_AFTER",
    "ENGINES",
    "STAGES",
    "BlockSettings",
    "ChecksSettings",
    "ClusterSettings",
    "CustomCheck",
    "CustomStage",
    "GateSettings",
    "IngestSettings",
    "MergeSettings",
    "PipelineSpec",
    "ScoreSettings",
    "StageSettings",
]

# The stages of a pipeline, in order. Custom stages run after one of those that hand on a
# table: "ingest" (the records), "score" (the scored pairs), "merge" (the golden places).
STAGES = ("ingest", "block", "score", "cluster", "merge", "evaluate")
CUSTOM_AFTER = ("ingest", "score", "merge")
Engine = Literal["local", "spark"]
ENGINES: tuple[Engine, ...] = ("local", "spark")
"""Where a run's stages run: this machine, or spread by Spark."""


class IngestSettings(StrictModel):
    """How inputs are read."""

    batch_size: int = Field(50_000, ge=1, description="Records per batch.")
    workers: int | None = Field(None, ge=1, description="Processes per input; default: auto.")


class BlockSettings(StrictModel):
    """How wide blocking casts its net (see ``poiflow.conflate.keys.BlockingConfig``)."""

    rare_token_share: float = Field(0.01, gt=0, le=1)
    rare_token_min: int = Field(200, ge=1)
    max_group: int = Field(300, ge=2)
    max_local_group: int = Field(40, ge=2)
    near_resolution: int = Field(11, ge=0, le=15)
    domain_resolution: int = Field(6, ge=0, le=15)


class ScoreSettings(StrictModel):
    """Which model scores the candidate pairs."""

    model: str = Field(
        "default",
        description="'default' (shipped), 'em' (fitted on the run, no labels), or a model "
        "file from 'poiflow train', relative to the pipeline file.",
    )


class ClusterSettings(StrictModel):
    """Clustering thresholds (see ``poiflow.conflate.clustering.ClusterConfig``)."""

    threshold: float | None = Field(
        None, ge=0, le=1, description="Default: 0.3, or the model's own (0.05 for 'em')."
    )
    same_source: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The bar for joining records of one source. Default: the model's own "
        "(0.8 for a trained model, which sees the sources itself; 0.9 for 'em').",
    )
    min_coverage: float = Field(0.5, ge=0, le=1)
    veto: float = Field(0.02, ge=0, le=1)


class MergeSettings(StrictModel):
    """How the golden record's attributes are chosen."""

    # Per source, the weight of its votes (1 for a source not named).
    trust: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    recency_weight: float = Field(0.2, ge=0)
    # Metres, per source: how far its points lie from the truth, where you know it better
    # than the run can learn it (it learns every other source's from its places).
    precision_m: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    # Per attribute (name, category, location, address, phone, website, opening_hours),
    # per source: how often its value is right, where you know it better than the run
    # (what the attribute's confidence is reckoned from, and how much say it has).
    accuracy: dict[
        Literal["name", "category", "location", "address", "phone", "website", "opening_hours"],
        dict[str, Annotated[float, Field(gt=0, lt=1)]],
    ] = Field(default_factory=dict)
    # Per source, where you know it better than the run (it learns them from how much of
    # the world each source covers): how often a place of its records alone is a whole
    # place, and how often a place without it lacks a record of it split off (what a
    # place's confidence is reckoned from).
    whole: dict[str, Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=dict)
    split: dict[str, Annotated[float, Field(ge=0, lt=1)]] = Field(default_factory=dict)


class StageSettings(StrictModel):
    """The settings of each stage; a stage left out keeps its defaults."""

    ingest: IngestSettings = IngestSettings()
    block: BlockSettings = BlockSettings()
    score: ScoreSettings = ScoreSettings()
    cluster: ClusterSettings = ClusterSettings()
    merge: MergeSettings = MergeSettings()


class CustomStage(StrictModel):
    """A stage of the user's own: a Python function of a table that returns the table.

    Example (YAML)::

        custom:
          - name: drop_closed
            function: my_rules.py:drop_closed    # or an importable module: pkg.rules:fn
            after: ingest                        # ingest (records), score (pairs), merge (places)
            params: {statuses: [permanently_closed]}

    The function is called as ``function(table, **params)`` and returns a table with the
    same columns: the records after ``ingest``, the scored pairs after ``score`` (change
    ``match_probability`` to overrule the model), the golden places after ``merge``.
    """

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="a name in lower case, digits and '_'"
    )
    function: str = Field(
        pattern=r"^[^:]+:[A-Za-z_][A-Za-z0-9_]*$",
        description="FILE.py:FUNCTION or package.module:FUNCTION",
    )
    after: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("after")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        if value not in CUSTOM_AFTER:
            raise ValueError(
                f"a custom stage runs after one of {', '.join(CUSTOM_AFTER)}, not "
                f"'{value}'.{did_you_mean(value, CUSTOM_AFTER)}"
            )
        return value


class CustomCheck(StrictModel):
    """A quality check of the user's own: a Python function of the golden places.

    Example (YAML)::

        checks:
          custom:
            - name: cafe_without_hours
              function: rules.py:cafes_without_hours
              severity: warn                        # warn (worth a look) or error
              description: a cafe has opening hours
              params: {category: cafe}

    The function is called as ``function(places, **params)`` with the golden places as a
    polars DataFrame (every column of ``places.parquet``, and ``name``, ``category`` and
    ``locality`` read out of their structs), and returns the places it flags: a table
    (polars, Arrow or pandas) with their ``id`` and, if it likes, a ``detail`` each.
    """

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="a name in lower case, digits and '_'"
    )
    function: str = Field(
        pattern=r"^[^:]+:[A-Za-z_][A-Za-z0-9_]*$",
        description="FILE.py:FUNCTION or package.module:FUNCTION",
    )
    severity: Literal["warn", "error"] = "warn"
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


Needed = Literal["phones", "websites", "opening_hours"]


class ChecksSettings(StrictModel):
    """Which quality checks the report stage runs, and how.

    Example (YAML)::

        checks:
          skip: [stale]                            # built-in checks not to run
          stale_years: 2                           # 'stale': not updated for this long
          needs: {pharmacy: [phones], restaurant: [opening_hours]}
          custom: [...]                            # your own (see CustomCheck)
    """

    skip: tuple[str, ...] = Field(
        (), description="Names of built-in checks not to run ('stale', 'in_the_sea', ...)."
    )
    stale_years: float = Field(
        3.0, gt=0, description="The 'stale' check flags places not updated for this many years."
    )
    needs: dict[str, tuple[Needed, ...]] | None = Field(
        None,
        description="What places of a category must have (phones, websites, opening_hours): "
        "one check each, named CATEGORY_has_FIELD; null: the built-in ones (a pharmacy, a "
        "hospital and a hotel have a phone).",
    )
    custom: tuple[CustomCheck, ...] = ()

    @field_validator("custom")
    @classmethod
    def _unique_names(cls, value: tuple[CustomCheck, ...]) -> tuple[CustomCheck, ...]:
        names = [check.name for check in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"custom check name '{name}' is taken twice; give it another")
        return value


class GateSettings(StrictModel):
    """How many flagged places a run may have and still be published: beyond any limit,
    the run stops after its report, and the outputs of the last run stay as they were.

    Example (YAML)::

        gate:
          error: 0                                 # places flagged by error-level checks
          warn: 500                                # by warn-level checks
          checks: {likely_duplicates: 50}          # by one check
    """

    error: int | None = Field(None, ge=0, description="The most places error-level checks flag.")
    warn: int | None = Field(None, ge=0, description="The most places warn-level checks flag.")
    checks: dict[str, int] = Field(
        default_factory=dict, description="The most places each named check flags."
    )

    @field_validator("checks")
    @classmethod
    def _not_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for name, most in value.items():
            if most < 0:
                raise ValueError(f"{name}: {most} is below 0")
        return value


class PipelineSpec(StrictModel):
    """A declared pipeline: what ``poiflow run PIPELINE.yaml`` runs.

    Paths are relative to the pipeline file. See ``poiflow init`` for a commented example.
    """

    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="a name of letters, digits, '.', '_' and '-' (it names the DAG and the job)",
    )
    description: str = ""
    sources: tuple[SourceSpec, ...] = Field(min_length=1)
    stages: StageSettings = StageSettings()
    custom: tuple[CustomStage, ...] = ()
    engine: Engine = Field(
        "local", description="Where stages run: 'local' (this machine) or 'spark'."
    )
    spark: SparkSettings = SparkSettings()
    resources: ResourceSettings = ResourceSettings()
    output: str = Field("out", min_length=1, description="The output folder.")
    cache: str | None = Field(
        ".poiflow-cache", description="Where stage outputs are kept for re-use; null: nowhere."
    )
    previous: str | None = Field(None, description="An earlier output folder: keep place ids.")
    gold: str | None = Field(None, description="Known truth (source,id,place): adds metrics.")
    gold_places: str | None = Field(
        None,
        description="The true places (a flat place file whose ids are gold's places, as "
        "'poiflow generate' writes gold_places.csv): adds how right the golden records "
        "are to the metrics. Needs gold.",
    )
    checks: ChecksSettings = Field(
        ChecksSettings(), description="Which quality checks the report stage runs, and how."
    )
    gate: GateSettings | None = Field(
        None,
        description="How many flagged places a run may have and still be published; "
        "null: no limit.",
    )
    decisions: str | None = Field(
        None,
        description="A person's decisions about pairs of records (a labels file, as "
        "'poiflow label' writes it: left_source, left_id, right_source, right_id, label): "
        "a match is one place and 'different' two, whatever the model says.",
    )
    schedule: str | None = Field(None, description="When a scheduler runs it ('@daily', cron).")
    tracking: TrackingSettings | None = Field(
        TrackingSettings(), description="Where runs are logged (MLflow); null: nowhere."
    )
    stream: StreamSettings = Field(
        StreamSettings(), description="Where 'poiflow stream' reads edits (Kafka)."
    )

    @field_validator("custom")
    @classmethod
    def _unique_names(cls, value: tuple[CustomStage, ...]) -> tuple[CustomStage, ...]:
        names = [stage.name for stage in value]
        for name in names:
            if name in STAGES or names.count(name) > 1:
                raise ValueError(f"custom stage name '{name}' is taken; give it another")
        return value

    @model_validator(mode="after")
    def _places_need_gold(self) -> PipelineSpec:
        if self.gold_places is not None and self.gold is None:
            raise ValueError("gold_places needs gold too: which true place each record describes")
        return self
