#!/usr/bin/env bash
# Fetch the jars Spark reads s3a:// with (hadoop-aws of PySpark's Hadoop, and the AWS SDK
# it needs) from Maven Central into .spark-jars/; poiflow's Spark engine adds them when it
# finds them there (or where POIFLOW_SPARK_JARS points).
# Usage: scripts/install_spark_s3.sh [DIR]     (prints the folder)
set -euo pipefail
DIR=${1:-.spark-jars}
HADOOP=$(ls .venv/lib/python3*/site-packages/pyspark/jars/hadoop-client-api-*.jar 2>/dev/null \
  | sed -E 's/.*hadoop-client-api-(.*)\.jar/\1/' | head -1)
HADOOP=${HADOOP:-3.5.0}
STAMP="$DIR/.hadoop-aws-$HADOOP"
if [ ! -f "$STAMP" ]; then
  echo "fetching hadoop-aws $HADOOP and the AWS SDK bundle into $DIR (once)" >&2
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  cat > "$WORK/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>poiflow</groupId><artifactId>spark-s3</artifactId><version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.hadoop</groupId><artifactId>hadoop-aws</artifactId>
      <version>$HADOOP</version>
    </dependency>
  </dependencies>
</project>
POM
  rm -rf "$DIR"
  mvn -q -f "$WORK/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$(pwd)/$DIR" >&2
  touch "$STAMP"
fi
echo "$DIR"
