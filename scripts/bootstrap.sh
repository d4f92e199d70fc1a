#!/usr/bin/env bash
# Create the project's virtualenv with Python 3.11, installing what Debian lacks for it.
# Usage: scripts/bootstrap.sh VENV_DIR     (PYTHON=python3.11 by default)
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v "$python" >/dev/null 2>&1; then
  echo "poiflow needs Python 3.11: installing Debian's python3" >&2
  as_root apt-get update -qq && as_root apt-get install -y -qq python3 python3-venv
  python=python3
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "poiflow needs Python >= 3.11; $python is $("$python" --version 2>&1)" >&2
  exit 1
fi
# Debian splits venv and ensurepip out of the interpreter package.
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing Debian's python3-venv" >&2
  as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade 'pip>=24'
