#!/usr/bin/env bash
# Install Apache Airflow 3 into its own virtualenv (.venv-airflow) for the DAG tests.
# Airflow pins many of its dependencies; kept apart, it never dictates poiflow's own.
# Usage: scripts/install_airflow.sh [VENV]      (prints the airflow command's path)
set -euo pipefail
VENV=${1:-.venv-airflow}
VERSION=3.3.2
PYTHON=${PYTHON:-python3.11}
STAMP="$VENV/.installed-$VERSION"
if [ ! -f "$STAMP" ]; then
  echo "installing Apache Airflow $VERSION into $VENV (once)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  bash "$(dirname "$0")/pip_install.sh" "$VENV" \
    -c requirements/airflow-constraints.txt "apache-airflow==$VERSION"
  touch "$STAMP"
fi
echo "$VENV/bin/airflow"
