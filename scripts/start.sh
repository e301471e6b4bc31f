#!/usr/bin/env bash
# Installs what kassa needs, builds it and starts kassad on config/kassa.yaml with its data
# under ./data. Stop it with Ctrl-C (SIGINT) or SIGTERM: it drains and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
exec build/runtime/kassad --config config/kassa.yaml "$@"
