#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (the report, the review page), if missing.
# Usage: scripts/install_chromium.sh      (prints the browser's path)
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
fi
command -v chromium
