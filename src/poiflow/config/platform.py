"""Where a pipeline runs and logs: a Kubernetes pod's resources, Spark, MLflow, Kafka."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from pydantic import Field

from poiflow.config.base import StrictModel

__all__ = ["ResourceSettings", "SparkSettings", "StreamSettings", "TrackingSettings"]

_TOPIC: Final = r"^[A-Za-z0-9._-]+$"
_TOPIC_SAYS: Final = "a Kafka topic's name: letters, digits, '.', '_' and '-'"


class ResourceSettings(StrictModel):
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


class SparkSettings(StrictModel):
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
    driver_cluster_pairs: int = Field(
        20_000_000,
        ge=0,
        description="Scored pairs the driver clusters itself, as the local engine does (it "
        "holds them already, from scoring); a run with more clusters on Spark (connected "
        "components by joins, then clustering per component).",
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
        """The Spark settings these stand for, ``conf`` last (it wins). The driver may
        take results of up to three quarters of its memory: merge brings the golden places
        to it (~0.7 KiB a place), past Spark's 1 GiB default at about 1.5M places. (The
        pairs come back through files, a range at a time.)"""
        return {
            "spark.driver.memory": self.driver_memory,
            "spark.driver.maxResultSize": f"{_mebibytes(self.driver_memory) * 3 // 4}m",
            "spark.executor.memory": self.executor_memory,
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.instances": str(self.executors),
            **self.conf,
        }


def _mebibytes(size: str) -> int:
    """A JVM memory size as Spark reads ``spark.driver.memory`` ('4g', '512m', '2048':
    MiB without a unit), in MiB."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    unit = size[-1].lower() if size[-1].isalpha() else "m"
    number = int(size[:-1] if size[-1].isalpha() else size)
    return max(1, int(number * units[unit]))


class TrackingSettings(StrictModel):
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


class StreamSettings(StrictModel):
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

    HEARTBEAT: ClassVar[str] = "heartbeat"
    """The file in the state folder whose time says the stream's loop is turning: touched
    every few seconds while it takes edits, applies them or waits for a broker or store
    that is away (a liveness probe reads its age; nothing else does)."""

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
