"""The Spark engine: Spark spreads the work, the stage functions stay the same.

An adapter of a few methods over a ``SparkSession``: read a table with its row numbers,
run a function of Arrow tables over every partition (``mapInArrow``), over whole hash
partitions of a key, or over the groups of two tables that share a key (``cogroup``
``applyInArrow``); sum partial counts; and connected components as DataFrame jobs
(large-star / small-star, no edge ever collected on the driver). The functions it runs
are plain top-level functions of ``pyarrow`` tables, the very ones the local engine calls.

PySpark is an optional extra: without it, :func:`spark_session` says how to install it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import logging
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from poiflow.errors import ConfigError, ServerUnavailableError
from poiflow.storage import filesystem, s3_endpoint, s3_region

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "SPARK_INSTALL",
    "SparkEngine",
    "decode_tables",
    "encode_table",
    "reach_master",
    "require_pyspark",
    "s3a_conf",
    "spark_session",
    "spark_uri",
]

SPARK_INSTALL: Final = ".venv/bin/pip install -e '.[spark]'  (or: pip install 'poiflow[spark]')"
PAYLOAD_SCHEMA: Final = "what string, payload binary"
_MAX_ROUNDS: Final = 100
_LOG_CONFIG: Final = Path(__file__).with_name("log4j2.properties")


def require_pyspark() -> None:
    """Raise a ConfigError with the install command if PySpark is not installed."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise ConfigError(
            "the spark engine needs PySpark, which is not installed; install it with: "
            + SPARK_INSTALL
        )


REACH_TIMEOUT_S: Final = 5.0


def reach_master(master: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Connect once to the master a cluster URL names (``spark://HOST:PORT``, several
    hosts for a standalone master with standbys; ``k8s://https://HOST:PORT``), before
    any work: a wrong address or a master not running is said in one line, not after a
    minute of Spark's retries and stack traces. Local and other masters (``local[2]``,
    ``yarn``, none) are not asked.

    Raises:
        ServerUnavailableError: None of the master's hosts takes a connection.
    """
    import socket
    from urllib.parse import urlsplit

    if master.startswith("spark://"):
        hosts = master.removeprefix("spark://").split(",")
        default = 7077
    elif master.startswith("k8s://"):
        where = urlsplit(master.removeprefix("k8s://"))
        hosts = [where.netloc]
        default = 443 if where.scheme != "http" else 80
    else:
        return
    reasons = []
    for host in hosts:
        name, _, port = host.strip().rpartition(":") if ":" in host else (host, "", "")
        name = name.strip("[]")  # an IPv6 address, [::1]:7077
        try:
            with socket.create_connection((name, int(port or default)), timeout=timeout_s):
                return
        except (OSError, ValueError) as exc:
            reasons.append(getattr(exc, "strerror", None) or str(exc))
    raise ServerUnavailableError(
        f"cannot reach the Spark master at {master} ({'; '.join(reasons)}): start it, or "
        "set spark.master (local[2] runs Spark on this machine)"
    )


def spark_session(master: str = "local[*]", conf: Mapping[str, str] | None = None) -> SparkSession:
    """A Spark session for poiflow (one per process; a second call returns the first).

    Python workers run this interpreter (``PYSPARK_PYTHON``), so they see the same
    packages. ``conf`` adds Spark settings (``spark.driver.memory``, ...).

    Raises:
        ConfigError: PySpark is not installed (the message has the install command).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            f"the spark engine needs PySpark, which is not installed: {SPARK_INSTALL}"
        ) from exc
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    logging.getLogger("py4j").setLevel(logging.ERROR)
    # PySpark 4.3 warns, on every Arrow function it is given, that it has not been tried
    # with pandas 3: poiflow hands Spark Arrow tables, never pandas frames.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    builder = SparkSession.builder
    if master:  # else the master spark-submit was given (the Spark operator's)
        builder = builder.master(master)
    builder = (
        builder.appName("poiflow")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "20000")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.memory", "4g")
        # Merge brings the golden places to the driver, which writes places.parquet
        # (~0.7 KiB a place on a generated world): past Spark's default cap (1 GiB) at
        # about 1.5M places. (Pairs come back through files, not results.) Three
        # quarters of the driver's memory (a pipeline's settings derive it from theirs:
        # SparkSettings.spark_conf).
        .config("spark.driver.maxResultSize", "3g")
        # The driver's log, quiet from its start: Spark's start-up notes are not news to
        # poiflow's users (a driver this process starts; see log4j2.properties).
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_LOG_CONFIG}")
    )
    jars = _s3a_jars()
    if jars:  # s3a is there whenever its jars are: a later staging run can use it
        if master.startswith("local"):
            # The executors are the driver's JVM: the jars go on its class path, where
            # spark.jars would copy them (the AWS SDK is 690 MB) into every session's
            # files: 4-6 s more on each start.
            builder = builder.config("spark.driver.extraClassPath", os.pathsep.join(jars))
        else:
            builder = builder.config("spark.jars", ",".join(jars))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_uri(uri: str) -> str:
    """Where Spark (Hadoop) finds the object at ``uri``: ``s3://`` through ``s3a://``, and
    ``hdfs://`` as it is."""
    scheme, _, rest = uri.partition("://")
    return f"s3a://{rest}" if scheme == "s3" else uri


def s3a_conf() -> dict[str, str]:
    """Spark settings to read and write ``s3a://`` with the AWS environment poiflow's own
    storage uses (endpoint, region, credentials). The hadoop-aws jars must be in
    ``POIFLOW_SPARK_JARS`` (default ``.spark-jars``: ``scripts/install_spark_s3.sh``), where
    :func:`spark_session` finds them.

    Raises:
        ConfigError: The jars are not there (the message says how to fetch them).
    """
    folder = os.environ.get("POIFLOW_SPARK_JARS", ".spark-jars")
    jars = _s3a_jars()
    if not jars:
        raise ConfigError(
            f"Spark reads object storage through hadoop-aws, which is not in {folder}: fetch "
            "it with scripts/install_spark_s3.sh (or point POIFLOW_SPARK_JARS at its jars)"
        )
    conf = {  # the jars themselves: spark_session adds them wherever they are
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.impl.disable.cache": "true",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.endpoint.region": s3_region() or "us-east-1",
    }
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:  # the driver's own keys (Spark's JVM may predate them)
        token = os.environ.get("AWS_SESSION_TOKEN")
        provider = "Temporary" if token else "Simple"
        conf |= {
            "spark.hadoop.fs.s3a.aws.credentials.provider": (
                f"org.apache.hadoop.fs.s3a.{provider}AWSCredentialsProvider"
            ),
            "spark.hadoop.fs.s3a.access.key": key,
            "spark.hadoop.fs.s3a.secret.key": secret,
            **({"spark.hadoop.fs.s3a.session.token": token} if token else {}),
        }
    endpoint = s3_endpoint()
    if endpoint:
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
        }
    return conf


def _s3a_jars() -> list[str]:
    """The hadoop-aws jars (and the AWS SDK) in ``POIFLOW_SPARK_JARS`` / ``.spark-jars``."""
    folder = Path(os.environ.get("POIFLOW_SPARK_JARS", ".spark-jars"))
    jars = sorted(str(p.resolve()) for p in folder.glob("*.jar"))
    return jars if any("hadoop-aws" in Path(j).name for j in jars) else []


def encode_table(table: pa.Table, what: str) -> pa.Table:
    """A table as one ``PAYLOAD_SCHEMA`` row of Arrow IPC bytes: every type (unsigned
    integers, nested structs, time zones) comes back exactly, which Spark's own types do
    not promise."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.table(
        {"what": [what], "payload": [sink.getvalue()]},
        schema=pa.schema([("what", pa.string()), ("payload", pa.binary())]),
    )


def decode_tables(payloads: pa.Table, what: str, schema: pa.Schema) -> pa.Table:
    """The tables of the ``what`` rows of :func:`encode_table`, concatenated."""
    tables = [
        pa.ipc.open_stream(payload.as_py()).read_all()
        for kind, payload in zip(payloads.column("what"), payloads.column("payload"), strict=True)
        if kind.as_py() == what
    ]
    return pa.concat_tables(tables) if tables else schema.empty_table()


@dataclass
class SparkEngine:
    """Spark, as poiflow's stages use it.

    Attributes:
        master: Where Spark runs: ``local[2]``, ``spark://host:7077``, ``k8s://...``.
        partitions: How many partitions key-hashed work is cut into.
        conf: More Spark settings.
        staging: An object-storage folder (``s3://...``, ``hdfs://...``) the tables Spark
            reads are put in first, and read from there (``s3`` through ``s3a``): on a
            cluster, executors cannot read the driver's disk. None: Spark reads the files
            where they are (local mode, or a volume every node mounts).
        shard_pairs: How many candidate pairs a scoring shard takes: a space cell with
            more (a dense city centre) is cut into several shards.
        driver_cluster_pairs: Up to how many scored pairs the driver clusters itself
            (scoring brought them to it already): Spark's connected components cost
            tens of joins, a minute at a million records, where the driver takes seconds.
    """

    master: str = "local[*]"
    partitions: int = 8
    conf: dict[str, str] = field(default_factory=dict)
    staging: str | None = None
    shard_pairs: int = 50_000
    driver_cluster_pairs: int = 20_000_000
    _session: SparkSession | None = None
    _spread: dict[int, list[int]] = field(default_factory=dict)

    @property
    def session(self) -> SparkSession:
        if self._session is None:
            conf = {"spark.sql.shuffle.partitions": str(self.partitions)}
            on_s3 = self.staging is not None and self.staging.startswith(("s3://", "s3a://"))
            s3a = s3a_conf() if on_s3 else {}
            self._session = spark_session(self.master, conf | s3a | self.conf)
            # The session may have been made before (getOrCreate): set the s3a settings
            # on its Hadoop configuration too, where they still take effect.
            hadoop = self._session.sparkContext._jsc.hadoopConfiguration()
            for key, value in s3a.items():
                if key.startswith("spark.hadoop."):
                    hadoop.set(key.removeprefix("spark.hadoop."), value)
        return self._session

    def read(self, path: str, columns: list[str] | None = None) -> DataFrame:
        """A Parquet file as a DataFrame, with each record's position in it as ``row``
        (through the staging folder, if there is one)."""
        from pyspark.sql import functions as sf

        frame = self.session.read.parquet(self.staged(path))
        chosen = [sf.col(c) for c in (columns or frame.columns)]
        return frame.select(*chosen, sf.col("_metadata.row_index").alias("row"))

    def staged(self, path: str) -> str:
        """Where Spark reads the local file ``path``: itself, or its copy in the staging
        folder (put there once: the copy is named by the file's size and time)."""
        if self.staging is None:
            return str(path)
        from poiflow.storage import exists, put_file

        local = Path(path)
        stat = local.stat()
        key = hashlib.blake2b(
            f"{local.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode(), digest_size=8
        ).hexdigest()
        uri = f"{self.staging.rstrip('/')}/{key}/{local.name}"
        if not exists(uri):
            put_file(local, uri)
        return spark_uri(uri)

    @contextlib.contextmanager
    def scratch(self, local: str) -> Iterator[str]:
        """A folder that tasks write files to and the driver reads them back from, for
        the block's length: the local folder ``local`` (Spark reads the local files too),
        or with a staging folder a fresh one in it (``s3a://``, ``hdfs://``). Removed,
        with what tasks wrote there, when the block ends."""
        if self.staging is None:
            Path(local).mkdir(parents=True, exist_ok=True)
            location = str(local)
        else:
            location = spark_uri(f"{self.staging.rstrip('/')}/scratch-{uuid.uuid4().hex}")
        try:
            yield location
        finally:
            if "://" not in location:
                shutil.rmtree(location, ignore_errors=True)
            else:
                fs, path = filesystem(location)
                with contextlib.suppress(OSError):
                    fs.delete_dir(path)

    def row_groups(self, path: str) -> DataFrame:
        """The row groups of the local Parquet file ``path``, one row each (``group``, and
        ``first``: the file row of its first record), spread over the partitions: for
        tasks that read their own rows of the file (with pyarrow, from where
        :meth:`staged` put it), so that wide records never pass through Spark's rows."""
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        firsts = list(itertools.accumulate(sizes, initial=0))[:-1]
        table = pa.table(
            {
                "group": pa.array(range(len(sizes)), pa.int32()),
                "first": pa.array(firsts, pa.int64()),
            }
        )
        frame = self.session.createDataFrame(table)
        return frame.repartition(max(1, min(self.partitions, len(sizes))))

    def spread_keys(self, count: int) -> list[int]:
        """``count`` keys that :meth:`by_key` sends to ``count`` different partitions (when
        ``count`` is the number of partitions): key ``i`` to partition ``i``, where hashing
        ``0..count-1`` would put some together and leave others empty."""
        from pyspark.sql import functions as sf

        if count not in self._spread:
            probe = self.session.range(64 * count).select(
                "id", sf.pmod(sf.hash("id"), sf.lit(self.partitions)).alias("part")
            )
            first: dict[int, int] = {}
            for row in probe.collect():
                first.setdefault(int(row["part"]), int(row["id"]))
            self._spread[count] = [first[i % self.partitions] for i in range(count)]
        return self._spread[count]

    def frame(self, table: pa.Table) -> DataFrame:
        """An Arrow table (small: it goes through the driver) as a DataFrame."""
        return self.session.createDataFrame(table)

    def map(
        self, frame: DataFrame, function: Callable[[pa.Table], pa.Table], schema: str | StructType
    ) -> DataFrame:
        """``function`` over each partition of ``frame``, all its batches as one table
        (``schema``: its output's, as DDL or a ``StructType``)."""
        return frame.mapInArrow(_whole_partition(function), schema)

    def by_key(
        self,
        frame: DataFrame,
        key: str | Column,
        function: Callable[[pa.Table], pa.Table],
        schema: str,
    ) -> DataFrame:
        """``function`` over hash partitions of ``key``: every row of a key in one call."""
        return self.map(frame.repartition(self.partitions, key), function, schema)

    def cogroup(
        self,
        left: DataFrame,
        right: DataFrame,
        key: str,
        function: Callable[[pa.Table, pa.Table], pa.Table],
        schema: str,
    ) -> DataFrame:
        """``function(left rows, right rows)`` for each value of ``key`` the two share."""
        grouped = left.groupBy(key).cogroup(right.groupBy(key))
        return grouped.applyInArrow(function, schema)

    def collect(self, frame: DataFrame) -> pa.Table:
        """A DataFrame as an Arrow table on the driver."""
        return frame.toArrow()

    def components(self, edges: DataFrame) -> DataFrame:
        """The connected components of an undirected graph: ``(node, component)`` for
        every node on an edge, the component named by its smallest node.

        ``edges`` has integer columns ``u`` and ``v``. Large-star and small-star rounds
        (Kiveris et al., "Connected Components in MapReduce and Beyond", 2014) until the
        edges stop changing: each round is a few DataFrame joins and group-bys.
        """
        from pyspark.sql import functions as sf

        current = edges.select(
            sf.greatest("u", "v").alias("u"), sf.least("u", "v").alias("v")
        ).where(sf.col("u") != sf.col("v"))
        current = current.distinct().localCheckpoint()
        signature = _signature(current)
        for _round in range(_MAX_ROUNDS):
            following = _small_star(_large_star(current)).localCheckpoint()
            # The same count and sum of edge hashes: the same edges (one aggregate, not a
            # comparison of the two sets; the last round is checked exactly).
            following_signature = _signature(following)
            if following_signature == signature and following.exceptAll(current).isEmpty():
                break
            current, signature = following, following_signature
        else:  # pragma: no cover - needs a graph beyond any real run
            raise RuntimeError(f"connected components did not settle in {_MAX_ROUNDS} rounds")
        stars = current.select(sf.col("u").alias("node"), sf.col("v").alias("component"))
        roots = current.select(sf.col("v").alias("node"), sf.col("v").alias("component"))
        return stars.union(roots).distinct()

    def stop(self) -> None:
        """Stop the Spark session."""
        if self._session is not None:
            self._session.stop()
            self._session = None


def _signature(edges: DataFrame) -> tuple[int, int]:
    from pyspark.sql import functions as sf

    row = edges.agg(
        sf.count("*").alias("n"), sf.sum(sf.xxhash64("u", "v").cast("decimal(38,0)")).alias("h")
    ).first()
    assert row is not None
    return int(row["n"]), int(row["h"] or 0)


def _large_star(edges: DataFrame) -> DataFrame:
    """Link every larger neighbour of a node to the node's smallest neighbour (or itself)."""
    from pyspark.sql import functions as sf

    both = edges.union(edges.select(sf.col("v").alias("u"), sf.col("u").alias("v")))
    least = both.groupBy("u").agg(sf.min("v").alias("m"))
    least = least.select("u", sf.least("m", "u").alias("m"))
    return (
        both.join(least, "u")
        .where(sf.col("v") > sf.col("u"))
        .select(sf.col("v").alias("u"), sf.col("m").alias("v"))
        .distinct()
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """Link a node and its smaller neighbours to the smallest of them."""
    from pyspark.sql import functions as sf

    oriented = edges.select(sf.greatest("u", "v").alias("u"), sf.least("u", "v").alias("v"))
    least = oriented.groupBy("u").agg(sf.min("v").alias("m"))
    neighbours = oriented.join(least, "u").select(sf.col("v").alias("u"), sf.col("m").alias("v"))
    own = least.select("u", sf.col("m").alias("v"))
    linked = neighbours.where(sf.col("u") != sf.col("v")).union(own)
    return linked.select(sf.greatest("u", "v").alias("u"), sf.least("u", "v").alias("v")).distinct()


def _whole_partition(
    function: Callable[[pa.Table], pa.Table],
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        collected = list(batches)
        if not collected:
            return
        out = function(pa.Table.from_batches(collected))
        yield from out.to_batches()

    return run
