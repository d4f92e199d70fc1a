#!/usr/bin/env bash
# Fetch Apache Kafka (the broker, kafka_2.13, and its runtime jars, with log4j's SLF4J
# binding so that it logs) from Maven Central into .kafka/libs, for the streaming tests.
# Usage: scripts/install_kafka.sh      (prints the folder of the jars)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
VERSION=4.4.0
DIR=.kafka/libs
fetch_once "$DIR" "kafka-$VERSION" "kafka $VERSION" "org.apache.kafka:kafka_2.13:$VERSION" \
  "org.apache.logging.log4j:log4j-slf4j-impl:2.25.5"
echo "$DIR"
