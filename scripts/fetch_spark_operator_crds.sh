#!/usr/bin/env bash
# Refresh the Spark operator's CRDs the Kubernetes tests validate against (needs Go).
# Usage: scripts/fetch_spark_operator_crds.sh [VERSION]     (default v2.4.0)
set -euo pipefail
VERSION=${1:-v2.4.0}
DIR=$(go mod download -json "github.com/kubeflow/spark-operator/v2@$VERSION" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
for kind in sparkapplications scheduledsparkapplications; do
  gzip -9 -c "$DIR/config/crd/bases/sparkoperator.k8s.io_$kind.yaml" \
    > "tests/fixtures/k8s/sparkoperator.k8s.io_$kind.yaml.gz"
done
echo "CRDs of the Spark operator $VERSION in tests/fixtures/k8s/"
