#!/usr/bin/env bash
# FQL benchmark: Manifold's C engine vs Segment's tsub (JavaScript), side by side.
#
#   bench/fql/run.sh [CPU_SECONDS_PER_FILTER]     (default 1; RUNS=3 repetitions)
#
# Same filters (bench/fql/filters.tsv) and the same events for both engines:
# shared/data/events/sample.jsonl (240 realistic events) when it is present
# beside the repo, else bench/fql/events.jsonl; override with EVENTS=file.
# Both sides evaluate pre-parsed events (jansson values / JS objects) with
# pre-compiled filters, one thread. tsub is run twice: as shipped (its
# matches() JSON.parses the IR string on every call) and with that parse
# memoised, which isolates evaluation alone (the stricter comparison). Rates
# are per CPU-second of the benchmark process, best of RUNS runs. Needs: make,
# cc, pkg-config, node + npm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SECS="${1:-1}"
RUNS="${RUNS:-3}"
EVENTS="${EVENTS:-}"
if [ -z "$EVENTS" ]; then
  for f in "$ROOT/../shared/data/events/sample.jsonl" "$ROOT/shared/data/events/sample.jsonl"; do
    [ -f "$f" ] && EVENTS="$f" && break
  done
  EVENTS="${EVENTS:-$HERE/events.jsonl}"
fi

# 1. JavaScript side: install the pinned packages into bench/fql/node_modules.
if [ ! -d "$HERE/node_modules/@segment/tsub" ] || [ ! -d "$HERE/node_modules/@segment/fql-ts" ]; then
  echo "installing @segment/tsub and @segment/fql-ts into bench/fql/node_modules ..." >&2
  (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >&2)
fi

# 2. C side: the library from the repo's own build, and a small driver.
LIB="${LIBMANIFOLD:-$ROOT/build/libmanifold.a}"
if [ -z "${LIBMANIFOLD:-}" ]; then
  make -s -C "$ROOT" build/libmanifold.a >&2
fi
BIN="$ROOT/build/bench/fql_bench"
mkdir -p "$(dirname "$BIN")"
# shellcheck disable=SC2046
cc -O2 -std=c17 -D_GNU_SOURCE -Isrc -I"$ROOT/src" -o "$BIN" "$HERE/fql_bench.c" "$LIB" \
  $(pkg-config --cflags --libs jansson libpcre2-8) -lpthread -lm

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "events: $EVENTS ($(grep -c . "$EVENTS") events), ${SECS}s of CPU time per filter per engine, best of $RUNS runs" >&2
for r in $(seq "$RUNS"); do
  "$BIN" "$HERE/filters.tsv" "$EVENTS" "$SECS" >> "$TMP/c.tsv"
  node "$HERE/tsub_bench.js" "$HERE/filters.tsv" "$EVENTS" "$SECS" >> "$TMP/js.tsv"
  node "$HERE/tsub_bench.js" "$HERE/filters.tsv" "$EVENTS" "$SECS" cached >> "$TMP/jsc.tsv"
done

# 3. Table: best rate of the runs per filter and engine (interference from other
#    processes on a shared machine only ever slows a run down). "overall" is the
#    harmonic mean: evaluations/second when every event goes through all
#    filters in turn.
best() { awk -F'\t' '{ if (!($1 in m) || $2 > m[$1]) m[$1] = $2; h[$1] = $3; if (!($1 in o)) o[$1] = n++ }
  END { for (k in o) print o[k] "\t" k "\t" m[k] "\t" h[k] }' "$1" | sort -n | cut -f2-; }
best "$TMP/c.tsv" > "$TMP/c.best"
best "$TMP/js.tsv" > "$TMP/js.best"
best "$TMP/jsc.tsv" > "$TMP/jsc.best"
paste "$TMP/c.best" "$TMP/js.best" "$TMP/jsc.best" | awk -F'\t' '
function fmt(x) { return sprintf("%.0f", x) }
BEGIN {
  printf "| filter | Manifold evals/s | tsub evals/s | speed-up | tsub, IR parse cached | speed-up | matches (C / tsub) |\n"
  printf "|---|---:|---:|---:|---:|---:|---|\n"
}
{
  if ($1 != $4 || $1 != $7) { print "filter order mismatch" > "/dev/stderr"; exit 1 }
  c = $2; j = $5; jc = $8
  n++; hc += 1 / c; hj += 1 / j; hjc += 1 / jc
  r = c / j; if (min == "" || r < min) min = r
  rc = c / jc; if (minc == "" || rc < minc) minc = rc
  printf "| %s | %s | %s | %.1fx | %s | %.1fx | %s / %s%s |\n", $1, fmt(c), fmt(j), c / j, fmt(jc), c / jc, $3, $6, ($3 == $6 ? "" : " (differs)")
}
END {
  printf "| **overall** (harmonic mean) | **%s** | **%s** | **%.1fx** | **%s** | **%.1fx** | |\n", fmt(n / hc), fmt(n / hj), (n / hc) / (n / hj), fmt(n / hjc), (n / hc) / (n / hjc)
  printf "\nsmallest per-filter speed-up: %.1fx vs tsub, %.1fx vs tsub with cached IR (target >= 10x)\n", min, minc
}'
