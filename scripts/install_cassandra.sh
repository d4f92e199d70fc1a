#!/usr/bin/env bash
# Fetch Apache Cassandra (cassandra-all and its runtime jars) from Maven Central into
# .cassandra/jars, for the serving-store tests.
# Usage: scripts/install_cassandra.sh      (prints the folder of the jars)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VERSION=5.0.6
DIR=.cassandra/jars
fetch_once "$DIR" "cassandra-all-$VERSION" "cassandra-all $VERSION" \
  "org.apache.cassandra:cassandra-all:$VERSION"
echo "$DIR"
