#!/usr/bin/env bash
# Fetch Hadoop's MiniDFSCluster (hadoop-minicluster of PySpark's Hadoop, with the JUnit
# classes its test utilities load) from Maven Central into .hdfs/jars, for the HDFS tests.
# Usage: scripts/install_hdfs.sh      (prints the folder of the jars)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
DIR=.hdfs/jars
HADOOP=$(hadoop_version)
fetch_once "$DIR" "hadoop-minicluster-$HADOOP" "hadoop-minicluster $HADOOP" \
  "org.apache.hadoop:hadoop-minicluster:$HADOOP" "org.junit.jupiter:junit-jupiter-api:5.10.2"
echo "$DIR"
