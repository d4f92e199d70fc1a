#!/usr/bin/env bash
# Fetch the jars Spark reads s3a:// with (hadoop-aws of PySpark's Hadoop, and the AWS SDK
# it needs) from Maven Central into .spark-jars/; poiflow's Spark engine adds them when it
# finds them there (or where POIFLOW_SPARK_JARS points).
# Usage: scripts/install_spark_s3.sh [DIR]     (prints the folder)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DIR=${1:-.spark-jars}
HADOOP=$(hadoop_version)
fetch_once "$DIR" "hadoop-aws-$HADOOP" "hadoop-aws $HADOOP and the AWS SDK bundle" \
  "org.apache.hadoop:hadoop-aws:$HADOOP"
echo "$DIR"
