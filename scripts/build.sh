#!/usr/bin/env bash
# Configures and builds kassa with Ninja and ccache.
# Usage: scripts/build.sh [BUILD_DIR=build] [extra cmake arguments...]
# KASSA_TARGETS="a b" builds only those targets (and what they need).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
# ccache: paths relative to the clone, and no hash of the build directory, so that a fresh
# clone somewhere else still hits the cache (only debug info's paths differ).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
shift || true
jobs=$(nproc)
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# shellcheck disable=SC2086 # KASSA_TARGETS is a list of target names
cmake --build "$dir" -j "$jobs" ${KASSA_TARGETS:+--target $KASSA_TARGETS}
