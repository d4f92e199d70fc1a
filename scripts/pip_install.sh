#!/usr/bin/env bash
# Install packages into a virtualenv as `pip install ARGS...` would, with uv (pinned in
# requirements/constraints.txt) where it can be had: it fetches in parallel and links from
# its cache, minutes quicker than pip for this project's set. Where uv cannot be installed
# or cannot install (no wheel for the machine, an index or certificate only pip is set up
# for), pip does it instead, as it always did.
# Usage: scripts/pip_install.sh VENV ARGS...      (ARGS as pip install takes them)
set -euo pipefail
venv=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if "${pip[@]}" -c "$here/requirements/constraints.txt" uv >/dev/null 2>&1 &&
  UV_SYSTEM_CERTS=1 "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" "$@"; then
  exit 0
fi
echo "installing with pip instead of uv (slower, the same packages)" >&2
"${pip[@]}" "$@"
