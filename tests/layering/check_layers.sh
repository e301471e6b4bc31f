#!/bin/sh
# Fails when a folder includes a header of a folder above it (docs/architecture.md, "Folders
# and layers"). Layers, lowest first: primitives, config, ledger, channels, actors, runtime,
# perf; metrics/ is a leaf beside them (it includes primitives/ at most) that ledger/ and
# config/ never include. tests/ may include anything.
# Usage: check_layers.sh [SOURCE_DIR]
set -eu
cd "${1:-$(dirname "$0")/../..}"

# The folders each folder may include, itself first.
allowed() {
  case "$1" in
    primitives) echo "primitives" ;;
    config) echo "config primitives" ;;
    ledger) echo "ledger config primitives" ;;
    metrics) echo "metrics primitives" ;;
    channels) echo "channels ledger config primitives metrics" ;;
    actors) echo "actors channels ledger config primitives metrics" ;;
    runtime) echo "runtime actors channels ledger config primitives metrics" ;;
    perf) echo "perf runtime actors channels ledger config primitives metrics" ;;
  esac
}

layers="primitives config ledger metrics channels actors runtime perf"
violations=0
for folder in $layers; do
  ok=$(allowed "$folder")
  # path:line:#include "dir/..." for every include of a folder of kassa
  for hit in $(grep -rnoE --include='*.cpp' --include='*.hpp' --include='*.h' \
                 '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][a-z_]+/' "$folder" |
               tr -d ' \t'); do
    target=${hit##*include}
    target=${target#?}
    target=${target%/}
    case " $layers tests " in *" $target "*) ;; *) continue ;; esac # not a folder of kassa
    case " $ok " in
      *" $target "*) ;;
      *)
        echo "layering: ${hit%%:#*} includes $target/, which $folder/ may not (may: $ok)"
        violations=$((violations + 1))
        ;;
    esac
  done
done
if [ "$violations" -ne 0 ]; then
  echo "layering: $violations include(s) against the layers of docs/architecture.md"
  exit 1
fi
echo "layering: every include of $layers points down"
