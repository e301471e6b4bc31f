#!/usr/bin/env bash
# Renders a results file with kassa-report, opens the page in headless Chromium and checks that
# the charts really rendered: a measuring script (measure.js, added here, never part of the
# report) writes each chart's laid-out size and drawn marks into the DOM, which --dump-dom
# returns. Also takes a screenshot of the page itself.
# Usage: browser_test.sh KASSA_REPORT RESULTS.jsonl MEASURE.js
set -euo pipefail
report=$1 results=$2 measure=$3

fail() { echo "FAIL: $*" >&2; exit 1; }

browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || fail "chromium not found (scripts/install-deps.sh installs the Debian package)"
[ -x "$report" ] || fail "$report is not built"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$report" "$results" --out "$dir/report.html" || fail "kassa-report exited with $?"
if grep -qi '<script' "$dir/report.html"; then fail "the report itself has a script"; fi

# The test page: the report with measure.js before </body>.
{
  sed '/<\/body>/,$d' "$dir/report.html"
  echo '<script>'
  cat "$measure"
  echo '</script>'
  echo '</body></html>'
} >"$dir/measured.html"

# As root Chromium refuses to start with its sandbox; the page is our own, so none is needed.
chromium() {
  timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$dir/profile" "$@" 2>>"$dir/chromium.log"
}

status=0
chromium --window-size=1340,2000 --dump-dom "file://$dir/measured.html" >"$dir/dom.html" || status=$?
if [ "$status" -ne 0 ]; then
  tail -20 "$dir/chromium.log" >&2
  [ "$status" -eq 124 ] && fail "chromium --dump-dom did not finish in 60 s"
  fail "chromium --dump-dom exited with $status"
fi

measured=$(sed -n '/<pre id="measured">/,/^end$/p' "$dir/dom.html" | sed 's/.*<pre id="measured">//')
[ -n "$measured" ] || fail "the measuring script left no result in the DOM (did the page load?)"
echo "$measured"

# chart id and the marks it must show: 10 ticks (uniform's last, 13 ms long, left out of its
# throughput), p50+p99 per tick, 5 percentiles, 5 stages x
# (mean, p99) and their 5 shares, 2 workloads x (kassa, peer); histograms: the non-empty bins
# of 1/20 decade that the sample's ~3%-wide buckets fall into.
expected="throughput-uniform=10 latency-uniform=22 percentiles-uniform=5 histogram-uniform=41
stages-uniform=10 shares-uniform=5 throughput-hot=10 latency-hot=20 percentiles-hot=5 histogram-hot=40 compare-1=4"
for e in $expected; do
  id=${e%=*} points=${e#*=}
  row=$(echo "$measured" | grep "^chart $id " || true)
  [ -n "$row" ] || fail "no chart $id in the rendered page"
  field() { echo "$row" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  [ "$(field declared)" = "$points" ] || fail "$id declares $(field declared) points, expected $points"
  [ "$(field marks)" = "$points" ] || fail "$id has $(field marks) marks, expected $points"
  [ "$(field drawn)" = "$points" ] || fail "$id: only $(field drawn) of $points marks drawn inside the chart"
  [ "$(field width)" -ge 300 ] || fail "$id is $(field width) px wide"
  [ "$(field height)" -ge 100 ] || fail "$id is $(field height) px high"
  [ "$(field title)" -gt 0 ] || fail "$id: its title has no width (text not rendered)"
  case $id in
  shares-*) ;; # one stacked bar, no axis
  *) [ "$(field ticks)" -ge 2 ] || fail "$id has $(field ticks) tick labels" ;;
  esac
done
count=$(echo "$measured" | grep -c '^chart ' || true)
[ "$count" -eq 11 ] || fail "$count charts in the page, expected 11 (no stages charts for hot)"

# The report itself (no script in it: checked above).
chromium --window-size=1340,5000 --screenshot="$dir/report.png" "file://$dir/report.html" \
  >/dev/null || fail "chromium --screenshot exited with $?"
[ -f "$dir/report.png" ] || fail "no screenshot written"
[ "$(head -c 8 "$dir/report.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] ||
  fail "the screenshot is not a PNG"
size=$(stat -c %s "$dir/report.png")
[ "$size" -ge 100000 ] || fail "the screenshot is only $size bytes (a blank page?)"
echo "report_browser: 11 charts rendered with every point, screenshot $size bytes"
