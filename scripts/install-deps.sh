#!/usr/bin/env bash
# Installs the Debian packages kassa builds and tests with. Safe to run again: it only calls
# apt-get when something is missing. Needs root (or sudo) on Debian bookworm.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libcaf-dev            # CAF 0.17.6, the actor runtime
  liblmdb-dev lmdb-utils
  libyaml-cpp-dev       # the YAML topology
  libboost-dev          # Multiprecision, CRC, Asio/Beast (header-only)
  nlohmann-json3-dev    # JSON of the provider API (channels/)
  libssl-dev            # OpenSSL libcrypto: SHA-256 and HMAC-SHA256 of authenticate (runtime/wire)
  catch2                # Catch2 2.x
  clang libclang-rt-14-dev  # libFuzzer and sanitizer runtimes for the fuzz targets
  python3               # tests/docs/docs_test.py, tests/report
  openssl               # keys: docs/security.md
  jq                    # reads kassa-bench's JSON lines in scripts and tests (perf/, tests/bench)
  curl                  # tests/reliability/crash_payments.sh talks to the channel simulator's admin API
  chromium              # headless, renders the benchmark report in its test (tests/report)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
