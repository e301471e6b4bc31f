#!/usr/bin/env bash
# kassa-report's command line: exit status 2 and a message for bad arguments and unreadable
# input, 1 for an output it cannot write, 0 with notes in the page for malformed lines.
# Usage: cli_test.sh KASSA_REPORT RESULTS.jsonl
set -uo pipefail
report=$1 results=$2

fail() { echo "FAIL: $*" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

expect() { # status what command...
  local want=$1 what=$2
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  [ "$got" -eq "$want" ] || { cat "$dir/err" >&2; fail "$what: exit status $got, expected $want"; }
}

expect 2 "no arguments" "$report"
grep -q usage "$dir/err" || fail "no usage message without arguments"
expect 2 "an unknown option" "$report" --colour "$results"
expect 2 "--out without a file" "$report" "$results" --out
expect 2 "a missing file" "$report" "$dir/missing.jsonl" --out "$dir/r.html"
grep -q "cannot read $dir/missing.jsonl" "$dir/err" || fail "the missing file is not named"
[ ! -e "$dir/r.html" ] || fail "a page was written for unreadable input"
expect 2 "a directory" "$report" "$dir" --out "$dir/r.html"
expect 1 "an unwritable output" "$report" "$results" --out "$dir/no/such/dir/r.html"

expect 0 "the sample" "$report" "$results" --out "$dir/r.html"
grep -q 'id="throughput-uniform"' "$dir/r.html" || fail "the sample's page has no throughput chart"
# Every chart is well-formed XML (an .svg file of its own would open).
python3 - "$dir/r.html" <<'PY' || fail "a chart is not well-formed XML"
import re, sys, xml.etree.ElementTree as ET
page = open(sys.argv[1], encoding="utf-8").read()
charts = re.findall(r"<svg .*?</svg>", page, re.S)
assert len(charts) == 11, len(charts)
for svg in charts:
    ET.fromstring(svg)
PY

: >"$dir/empty.jsonl"
expect 0 "an empty file" "$report" "$dir/empty.jsonl" --out "$dir/empty.html"
grep -q 'id="no-data"' "$dir/empty.html" || fail "an empty file's page does not say there is no data"

{ head -3 "$results"; echo 'not json'; echo '{"type":"tick"}'; } >"$dir/bad.jsonl"
expect 0 "malformed lines" "$report" "$dir/bad.jsonl" --out "$dir/bad.html"
grep -q "bad.jsonl:4: not JSON, skipped" "$dir/bad.html" || fail "the line that is not JSON is not noted"
grep -q "bad.jsonl:5: no &quot;scenario&quot;" "$dir/bad.html" || fail "the tick without a scenario is not noted"

# Two files, and standard input to standard output.
grep '"scenario":"hot"' "$results" >"$dir/hot.jsonl"
grep -v '"scenario":"hot"' "$results" >"$dir/rest.jsonl"
expect 0 "two files" "$report" "$dir/rest.jsonl" "$dir/hot.jsonl" --out "$dir/two.html"
grep -q 'id="throughput-hot"' "$dir/two.html" && grep -q 'id="throughput-uniform"' "$dir/two.html" ||
  fail "a scenario of the two files is missing"
expect 0 "standard input" bash -c "'$report' - <'$dir/hot.jsonl'"
grep -q 'id="throughput-hot"' "$dir/out" || fail "the page from standard input has no chart"
echo "report_cli: ok"
