"""User-facing configuration: pydantic models shared by YAML files, the CLI and Python.

Every model forbids unknown keys, and :func:`load_yaml` turns a validation failure into a
:class:`~poiflow.errors.ConfigError` that names the file, the line and the key, with a
"did you mean" for misspelt keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from poiflow.errors import ConfigError, did_you_mean
from poiflow.schema import FLAT_EXTRA_FIELDS, FLAT_FIELDS

__all__ = [
    "DEFAULT_OSM_KEYS",
    "STAGES",
    "BlockSettings",
    "ChecksSettings",
    "ClusterSettings",
    "CsvOptions",
    "CustomCheck",
    "CustomStage",
    "GateSettings",
    "IngestSettings",
    "MergeSettings",
    "OsmOptions",
    "PipelineSpec",
    "ScoreSettings",
    "SourceMapping",
    "SourceSpec",
    "StageSettings",
    "StreamSettings",
    "TrackingSettings",
    "load_yaml",
]

_TOPIC: Final = r"^[A-Za-z0-9._-]+$"
_TOPIC_SAYS: Final = "a Kafka topic's name: letters, digits, '.', '_' and '-'"
DEFAULT_OSM_KEYS = ("amenity", "shop", "tourism", "leisure", "office", "craft", "healthcare")

Model = TypeVar("Model", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# What Arrow (as pandas) reads as no value: spreadsheets', R's, databases' and C's spellings.
_MISSING: Final = (
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"),
)


class CsvOptions(_Strict):
    """How to read a delimited text file."""

    delimiter: str = Field(
        ",",
        min_length=1,
        max_length=1,
        description=(
            "Between values. Left unset, a header that is one column by ',' is read by "
            "';', a tab or '|', whichever splits it most."
        ),
    )
    quote_char: str = Field('"', min_length=1, max_length=1)
    encoding: str = "utf-8"
    missing: tuple[str, ...] = Field(
        _MISSING,
        description=(
            "Values that mean 'no value' (a field left empty always does). The default is "
            "what spreadsheets, R and databases write; a feed whose 'NA' is Namibia or "
            "whose 'Null' is a name says 'missing: [\"\"]'."
        ),
    )


class SourceMapping(_Strict):
    """How the columns of a tabular feed map onto the flat place format.

    Example (YAML)::

        source: acme            # the source's name; default: the file's stem
        columns:                # flat field: the feed's column
          id: vendor_id
          name: business_name
          lat: latitude
          lon: longitude
          category: type
        constants:              # flat field: a value for every row
          country: FI
        ignore: [internal_score]
        csv: {delimiter: ";"}
        layer: kahvilat         # a GeoPackage's layer, where it holds several
        crs: EPSG:3067          # lat and lon as metres of another coordinate system
        categories:             # the feed's own category labels or codes: a category
          "5812": restaurant    #   of poiflow's taxonomy each
          "5814": fast_food_restaurant
    """

    source: str | None = Field(None, min_length=1)
    format: Literal["csv", "tsv", "jsonl", "geojson", "gis", "parquet"] | None = None
    layer: str | None = Field(
        None, min_length=1, description="The layer of a GeoPackage that holds several."
    )
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str] = Field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    csv: CsvOptions = CsvOptions()
    crs: str | None = Field(
        None,
        min_length=1,
        description="The coordinate system of the lat and lon columns where it is not WGS 84: "
        "'EPSG:3067' (Finland's), 'EPSG:3857' (web maps' metres), any system PROJ knows. lat "
        "is then the northing (y), lon the easting (x). A file whose points are a geometry "
        "says its own system. Needs the 'gis' extra (pyproj).",
    )

    categories: dict[str, str] = Field(
        default_factory=dict,
        description="The feed's own category labels or codes, each a category of poiflow's "
        "taxonomy ('5812': restaurant); a label not listed is read as any is. The label is "
        "kept as the record's source_category.",
    )

    @field_validator("categories", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        """A code YAML reads as a number (5812: restaurant) is the label "5812"."""
        if isinstance(value, dict):
            return {str(label): category for label, category in value.items()}
        return value

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, str]) -> dict[str, str]:
        from poiflow.taxonomy import taxonomy

        known = taxonomy().categories
        for label, category in value.items():
            if category not in known:
                raise ValueError(
                    f"'{label}' maps to '{category}', not a category of the taxonomy."
                    f"{did_you_mean(category, list(known))} (src/poiflow/data/categories.yaml "
                    "lists them)"
                )
        return value

    @field_validator("columns", "constants")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        known = (*FLAT_FIELDS, *FLAT_EXTRA_FIELDS)
        for field in value:
            if field not in known:
                raise ValueError(
                    f"unknown flat field '{field}'.{did_you_mean(field, known)} "
                    f"Known fields: {', '.join(known)}"
                )
        return value


class OsmOptions(_Strict):
    """Which OpenStreetMap objects become places."""

    keys: tuple[str, ...] = Field(DEFAULT_OSM_KEYS, min_length=1)
    ways: bool = True
    relations: bool = Field(True, description="Multipolygon relations, placed at their centroid.")
    locations: Literal["memory", "disk"] = Field(
        "memory",
        description="Where the nodes' locations are held while ways are placed: 'memory' "
        "(the fastest; a large country's extract needs several GB), or 'disk' (a file in the "
        "temporary folder, removed after: for an extract larger than memory).",
    )


# The stages of a pipeline, in order. Custom stages run after one of those that hand on a
# table: "ingest" (the records), "score" (the scored pairs), "merge" (the golden places).
STAGES = ("ingest", "block", "score", "cluster", "merge", "evaluate")
CUSTOM_AFTER = ("ingest", "score", "merge")


class SourceSpec(_Strict):
    """One input of a pipeline: a file, and how to read it.

    Example (YAML)::

        - path: Helsinki.osm.pbf          # relative to the pipeline file
          osm: {keys: [amenity, shop]}
        - path: vendor_feed.csv
          mapping: {source: vendor, columns: {id: vendor_id}}
        - places.parquet                  # a path alone: read as it is
    """

    path: str = Field(min_length=1)
    mapping: SourceMapping | None = None
    osm: OsmOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _just_a_path(cls, data: Any) -> Any:
        """A source given as its path alone (``- places.csv``) is read as ``{path: ...}``."""
        return {"path": data} if isinstance(data, str) else data


class IngestSettings(_Strict):
    """How inputs are read."""

    batch_size: int = Field(50_000, ge=1, description="Records per batch.")
    workers: int | None = Field(None, ge=1, description="Processes per input; default: auto.")


class BlockSettings(_Strict):
    """How wide blocking casts its net (see ``poiflow.conflate.keys.BlockingConfig``)."""

    rare_token_share: float = Field(0.01, gt=0, le=1)
    rare_token_min: int = Field(200, ge=1)
    max_group: int = Field(300, ge=2)
    max_local_group: int = Field(40, ge=2)
    near_resolution: int = Field(11, ge=0, le=15)
    domain_resolution: int = Field(6, ge=0, le=15)


class ScoreSettings(_Strict):
    """Which model scores the candidate pairs."""

    model: str = Field(
        "default",
        description="'default' (shipped), 'em' (fitted on the run, no labels), or a model "
        "file from 'poiflow train', relative to the pipeline file.",
    )


class ClusterSettings(_Strict):
    """Clustering thresholds (see ``poiflow.conflate.clustering.ClusterConfig``)."""

    threshold: float | None = Field(
        None, ge=0, le=1, description="Default: 0.3, or the model's own (0.05 for 'em')."
    )
    same_source: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The bar for joining records of one source. Default: the model's own "
        "(0.8 for a trained model, which sees the sources itself; 0.95 for 'em').",
    )
    min_coverage: float = Field(0.5, ge=0, le=1)
    veto: float = Field(0.02, ge=0, le=1)


class MergeSettings(_Strict):
    """How the golden record's attributes are chosen."""

    trust: dict[str, float] = Field(default_factory=dict)
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


class StageSettings(_Strict):
    """The settings of each stage; a stage left out keeps its defaults."""

    ingest: IngestSettings = IngestSettings()
    block: BlockSettings = BlockSettings()
    score: ScoreSettings = ScoreSettings()
    cluster: ClusterSettings = ClusterSettings()
    merge: MergeSettings = MergeSettings()


class CustomStage(_Strict):
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


class ResourceSettings(_Strict):
    """What one run asks of a Kubernetes cluster (``poiflow deploy k8s``): the pod of the
    local engine, or the Spark driver (executors: ``spark``'s executor settings).

    Example (YAML)::

        resources: {cpu: "4", memory: 16Gi}
    """

    cpu: str = Field("2", pattern=r"^[0-9]+(\.[0-9]+)?m?$", description="CPU cores ('2', '500m').")
    memory: str = Field(
        "8Gi",
        pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        description="memory as Kubernetes writes it ('8Gi', '512Mi').",
    )


class SparkSettings(_Strict):
    """Where and how the spark engine runs (``engine: spark``).

    Example (YAML)::

        engine: spark
        spark:
          master: local[2]                # or spark://HOST:7077, k8s://https://HOST:443
          partitions: 16                  # hash partitions of blocking keys and clusters
          executors: 4                    # what a cluster deployment asks for
          executor_cores: 2
          executor_memory: 4g
          driver_memory: 4g
          conf: {spark.sql.shuffle.partitions: "64"}
    """

    master: str = Field(
        "local[*]",
        description="Spark master URL; empty: the one spark-submit was given (on Kubernetes).",
    )
    partitions: int = Field(8, ge=1, description="Partitions of key-hashed work.")
    shard_pairs: int = Field(
        50_000,
        ge=100,
        description="Pairs per scoring shard: a denser H3 cell is cut into several shards.",
    )
    executors: int = Field(2, ge=1, description="Executors a cluster deployment asks for.")
    executor_cores: int = Field(1, ge=1)
    executor_memory: str = Field(
        "2g", pattern=r"^[0-9]+[kmgt]?$", description="Memory of an executor ('2g', '512m')."
    )
    driver_memory: str = Field(
        "4g", pattern=r"^[0-9]+[kmgt]?$", description="Memory of the driver ('4g')."
    )
    conf: dict[str, str] = Field(default_factory=dict, description="More Spark settings.")
    staging: str | None = Field(
        None,
        pattern=r"^((s3|s3a)://[^/]+|hdfs://)",
        description="An s3:// or hdfs:// folder the stages hand Spark their tables through "
        "(s3 read with s3a): on a cluster, executors cannot read the driver's disk.",
    )

    def spark_conf(self) -> dict[str, str]:
        """The Spark settings these stand for, ``conf`` last (it wins)."""
        return {
            "spark.driver.memory": self.driver_memory,
            "spark.executor.memory": self.executor_memory,
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.instances": str(self.executors),
            **self.conf,
        }


class TrackingSettings(_Strict):
    """Where runs are logged (MLflow).

    Example (YAML)::

        tracking:
          uri: http://127.0.0.1:5000      # default: sqlite:///mlflow.db beside the pipeline
          experiment: helsinki            # default: the pipeline's name
    """

    uri: str | None = Field(
        None,
        description="MLflow tracking URI; default: sqlite:///mlflow.db beside the pipeline "
        "(a relative SQLite path starts at the pipeline file).",
    )
    experiment: str | None = Field(None, description="Default: the pipeline's name.")


class StreamSettings(_Strict):
    """Where ``poiflow stream PIPELINE.yaml`` reads edits and writes change events (Kafka).

    Example (YAML)::

        stream:
          brokers: 127.0.0.1:9092         # bootstrap servers, comma-separated
          edits: poi-edits                # the topic of POI edits
          events: place-changes           # change events, keyed by place id
          dead_letters: poi-edits-dead    # refused edits, each with its reason
          group: poiflow-stream           # the consumer group (committed offsets)
          batch_size: 5000                # at most this many edits applied together
          checkpoint_ms: 5000             # snapshot + offset commit at most this often
          state: stream                   # snapshots of the live places (default: OUTPUT/stream)
          search: true                    # an embedded search index, kept current (STATE/search)
          opensearch: http://127.0.0.1:9200   # and/or a search server's, under the alias
          index: poiflow-places
          cassandra: 127.0.0.1:9042       # and/or a Cassandra serving store's keyspace
          keyspace: poiflow
    """

    brokers: str = Field("127.0.0.1:9092", min_length=1)
    edits: str = Field("poi-edits", pattern=_TOPIC, description=_TOPIC_SAYS)
    events: str = Field("place-changes", pattern=_TOPIC, description=_TOPIC_SAYS)
    dead_letters: str = Field("poi-edits-dead", pattern=_TOPIC, description=_TOPIC_SAYS)
    group: str = Field("poiflow-stream", min_length=1)
    batch_size: int = Field(
        5000,
        ge=1,
        le=100_000,
        description="At most this many edits applied together: a backlog fills a batch "
        "(each batch has a fixed cost of about 0.13 s), a steady stream is cut by wait_ms.",
    )
    wait_ms: int = Field(
        200, ge=1, le=60_000, description="How long a batch waits to fill before it is applied."
    )
    state: str | None = Field(
        None, description="Snapshots of the live places; default OUTPUT/stream."
    )
    checkpoint_ms: int = Field(
        5000,
        ge=0,
        le=600_000,
        description="How often the snapshot is written and offsets committed (0: every "
        "batch); a crash replays what came since.",
    )
    config: dict[str, str] = Field(
        default_factory=dict, description="More client settings (security.protocol, sasl.*)."
    )
    consumer: dict[str, str] = Field(
        default_factory=dict,
        description="Settings of the consumer alone (session.timeout.ms, group.instance.id).",
    )
    search: bool = Field(
        True, description="Keep an embedded search index of the live places (STATE/search)."
    )
    opensearch: str | None = Field(
        None, description="Also keep this OpenSearch server's index current (a URL)."
    )
    index: str = Field("poiflow-places", description="With opensearch: the alias to write.")
    cassandra: str | None = Field(
        None, description="Also keep this Cassandra serving store current (host:port,...)."
    )
    keyspace: str = Field("poiflow", description="With cassandra: the keyspace.")

    @classmethod
    def prefixed(cls, brokers: str, prefix: str, **more: Any) -> StreamSettings:
        """Settings whose topics and group all start with ``prefix`` (``PREFIX-edits``,
        ``-events``, ``-dead``, ``-group``): one stream's own, beside others on a broker."""
        return cls(
            brokers=brokers,
            edits=f"{prefix}-edits",
            events=f"{prefix}-events",
            dead_letters=f"{prefix}-dead",
            group=f"{prefix}-group",
            **more,
        )


class CustomCheck(_Strict):
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


class ChecksSettings(_Strict):
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


class GateSettings(_Strict):
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


class PipelineSpec(_Strict):
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
    engine: Literal["local", "spark"] = Field(
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


def load_yaml(path: str | Path, model: type[Model]) -> Model:
    """Load ``path`` as YAML into ``model``, or raise a ConfigError naming file, line and key.

    Args:
        path: The YAML file.
        model: The pydantic model the file describes.

    Raises:
        ConfigError: The file is missing, is not YAML, or does not fit the model.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", path=path, location=line) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys to values, found {type(data).__name__}", path=path
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(root, model, error) for error in exc.errors()]
        line, first = problems[0]
        # Every problem at once, each where it is: one run of the command to mend them all.
        rest = "".join(
            f"\n  and {path}{'' if at is None else f':{at}'}: {text}" for at, text in problems[1:]
        )
        raise ConfigError(first + rest, path=path, location=line) from exc


def _problem(root: yaml.Node | None, model: type[BaseModel], error: Any) -> tuple[int | None, str]:
    """One of pydantic's validation errors as ``(line, "key: what is wrong")``."""
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if loc[-1:] == ("[key]",):  # a mapping's key is what is wrong, not its value
        loc = loc[:-1]
        message = f"not a key here: {message}"
    key = ".".join(str(part) for part in loc) or "(top level)"
    # A validator of a whole mapping names the bad key in its message; point at that key.
    named = re.search(r"'([^']+)'", message)
    line = _line_of(root, (*loc, named.group(1)) if named else loc)
    if error["type"] == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        message = f"unknown key '{loc[-1]}'.{did_you_mean(str(loc[-1]), known)}"
        if known:
            message += f" Known keys: {', '.join(known)}"
    elif error["type"] == "string_pattern_mismatch":
        # The field's own words for what it takes, rather than its regular expression.
        described = _field_description(model, loc)
        if described:
            message = f"{error['input']!r}: expected {described}"
    return line, f"{key}: {message}"


def _field_description(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The description of the field at ``loc`` inside ``model``, without its last full stop."""
    if not loc or isinstance(loc[-1], int):
        return None
    fields = getattr(_model_in(_annotation_at(model, loc[:-1])), "model_fields", None) or {}
    described = fields[loc[-1]].description if loc[-1] in fields else None
    return described.rstrip(".") if described else None


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == part]
            keys = [k for k, _ in node.value if k.value == part]
            if not match:
                return line
            line = keys[0].start_mark.line + 1
            node = match[0]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys accepted at ``loc`` inside ``model``, for "did you mean"."""
    fields = getattr(_model_in(_annotation_at(model, loc)), "model_fields", None)
    return list(fields) if fields else []


def _annotation_at(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The type of the value at ``loc`` inside ``model`` (an item of a list: the list's
    item type), or None where ``loc`` names no field."""
    current: Any = model
    for part in loc:
        current = _model_in(current)
        if isinstance(part, int):
            continue  # an item of a list: the list's type was unwrapped to its item's model
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = fields[part].annotation
    return current


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X | None``, ``tuple[X, ...]`` or ``list[X]``, else as is."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation
