#!/usr/bin/env bash
# Install what the tests run for real beside poiflow: Debian's Chromium (browser tests),
# Apache Airflow in .venv-airflow (DAG tests), S3Proxy (object-storage tests), the
# hadoop-aws jars Spark reads s3a:// with, Hadoop's MiniDFSCluster (HDFS tests), Apache
# Cassandra (serving-store tests), OpenSearch (search-server tests) and Apache Kafka
# (streaming tests). Each is fetched once; a re-run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_chromium.sh >/dev/null
bash scripts/install_airflow.sh >/dev/null
bash scripts/install_s3proxy.sh >/dev/null
bash scripts/install_spark_s3.sh >/dev/null
bash scripts/install_hdfs.sh >/dev/null
bash scripts/install_cassandra.sh >/dev/null
bash scripts/install_opensearch.sh >/dev/null
bash scripts/install_kafka.sh >/dev/null
