#!/usr/bin/env bash
# Fetch S3Proxy (an S3-compatible server, Apache-2.0, one jar from Maven Central) for the
# object-storage tests. Usage: scripts/install_s3proxy.sh   (prints the jar's path)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.6.0
DIR=.s3proxy
JAR="$DIR/s3proxy-$VERSION.jar"
if [ ! -f "$JAR" ]; then
  echo "fetching S3Proxy $VERSION (once)" >&2
  mkdir -p "$DIR"
  mvn -q dependency:copy -Dartifact="org.gaul:s3proxy:$VERSION:jar:jar-with-dependencies" \
    -DoutputDirectory="$(pwd)/$DIR" -Dmdep.stripClassifier=true -Dmdep.stripVersion=false >&2
  mv "$DIR/s3proxy-$VERSION-jar-with-dependencies.jar" "$JAR" 2>/dev/null || true
fi
echo "$JAR"
