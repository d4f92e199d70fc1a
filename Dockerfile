# The image `poiflow deploy k8s` manifests name (poiflow:latest by default):
#   docker build -t poiflow:latest .
# Local engine: the Job runs `poiflow run /work/pipeline.yaml` in it; with --serve and
# --stream, `poiflow serve` and `poiflow stream` run in it too (Kafka, Cassandra, OpenSearch).
# Spark engine: the Spark operator starts the driver and the executors from it, through
# Spark's Kubernetes entrypoint (taken from Apache Spark's own image of the same version),
# with the Spark that PySpark carries as SPARK_HOME.
ARG SPARK_VERSION=4.3.0
FROM apache/spark:${SPARK_VERSION} AS spark

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/poiflow/src
COPY pyproject.toml README.md LICENSE ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY src src
RUN pip install --no-cache-dir -c requirements/constraints.txt \
    ".[spark,tracking,gis,streaming,cassandra,opensearch]"
COPY scripts/spark_main.py /opt/poiflow/spark_main.py
COPY --from=spark /opt/entrypoint.sh /opt/decom.sh /opt/
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=python3 \
    PYTHONUNBUFFERED=1
RUN useradd --uid 185 --create-home spark && mkdir /work && chown spark /work
USER 185
# The default matcher's trees compiled into the user's cache, for nodes of the build
# machine's CPU (on another, the first run compiles them, a few seconds).
RUN python -c "from poiflow.conflate.matcher import load_matcher; load_matcher('default').prepare()"
WORKDIR /work
# Spark's entrypoint: "driver" and "executor" start Spark's processes (the operator's
# pods); any other command runs as it is, under tini (the Job runs `poiflow run ...`).
ENTRYPOINT ["/opt/entrypoint.sh"]
CMD ["poiflow", "--help"]
