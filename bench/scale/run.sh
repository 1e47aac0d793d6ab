#!/usr/bin/env bash
# Scale-out benchmark (docs/scaling.md): 1, 2 and 3 `manifold serve` processes on one
# PostgreSQL (a throwaway cluster started here, durable: fsync and synchronous_commit on),
# side by side with one process on SQLite. Two workloads, each measured with wrk:
#   get     authenticated GET of one source (bench/resources/get.lua), BENCH_CONNS connections
#   intake  POST /v1/batch of BENCH_EVENTS events (bench/intake/intake.lua), BENCH_CONNS connections
# With N processes, N wrk instances run at once, one per process with BENCH_CONNS/N
# connections each (what a load balancer would do, without its cost); the figures are
# summed. Intake counts are checked afterwards: the sources' accepted counts must equal
# the 200 answers × events per request, or the benchmark fails.
# Goal (issue 13): no collapse, 3 processes >= 90% of 1 (on 2 cores more processes cannot
# add CPU). The table goes into docs/scaling.md between the bench/scale markers.
#
# Knobs: BENCH_WARMUP (1 s), BENCH_DURATION (5 s), BENCH_CONNS (64), BENCH_EVENTS (20),
# BENCH_PROCS ("1 2 3"), BENCH_DB_CONNECTIONS (8: PostgreSQL connections of all processes together), MANIFOLD_BIN (build/manifold), PGBIN (the PostgreSQL server binaries),
# BENCH_OUT (build/bench/scale), BENCH_NO_DOCS=1 (leave docs/ alone).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
WARMUP=${BENCH_WARMUP:-1}
DURATION=${BENCH_DURATION:-5}
CONNS=${BENCH_CONNS:-64}
EVENTS=${BENCH_EVENTS:-20}
PROCS=${BENCH_PROCS:-1 2 3}
# PostgreSQL connections of all processes together (each gets its share, at least 2): the
# database has the same cores whatever the number of processes (docs/scaling.md)
DBCONN_TOTAL=${BENCH_DB_CONNECTIONS:-8}
BIN=${MANIFOLD_BIN:-$ROOT/build/manifold}
OUT=${BENCH_OUT:-$ROOT/build/bench/scale}
DOC="$ROOT/docs/scaling.md"
WS=/v1beta/workspaces/myworkspace

say() { printf 'bench/scale: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in wrk curl awk node; do
    command -v "$tool" >/dev/null || die "$tool not found (make bench installs it: scripts/install-deps.sh bench)"
done
if [ ! -x "$BIN" ]; then
    [ -z "${MANIFOLD_BIN:-}" ] || die "$BIN is not an executable"
    make -C "$ROOT" all >&2
fi

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
bench_workdir manifold-bench-scale
mkdir -p "$OUT"
rm -f "$OUT"/*.txt

json_get() { node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(String(eval(process.argv[1])))' "$2" <<<"$1"; }
kv() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print substr($0, length(k) + 2) }'; }

# ---- a throwaway PostgreSQL (as tests/run.sh, but durable) ---------------------------------
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PGBIN/initdb" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
PGTMP=$(mktemp -d /tmp/manifold-bench-pg.XXXXXX)
mkdir -p "$PGTMP/sock"
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres "$PGTMP"
    AS_PG=(runuser -u postgres --)
fi
pg_stop() {
    [ -f "$PGTMP/data/postmaster.pid" ] && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$PGTMP"
}
trap 'bench_cleanup; pg_stop' EXIT
pick_port
PGPORT_B=$PORT
(cd "$PGTMP" && "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-locale) >"$PGTMP/initdb.log" 2>&1 ||
    { cat "$PGTMP/initdb.log" >&2; die "initdb failed"; }
(cd "$PGTMP" && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $PGTMP/sock -p $PGPORT_B -c max_connections=300" start) >/dev/null 2>&1 ||
    { cat "$PGTMP/server.log" >&2; die "PostgreSQL did not start"; }
PG_ADMIN="postgresql://postgres@/postgres?host=$PGTMP/sock&port=$PGPORT_B"
say "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on $PGTMP/sock (fsync on)"

# ---- processes ------------------------------------------------------------------------------
# start_procs CONFIG N DATABASE: N processes on DATABASE sharing one key file; sets URLS,
# SPIDS, TOKEN.
start_procs() {
    local cfg=$1 n=$2 db=$3 i dir dbc
    URLS=(); SPIDS=()
    dbc=$(( DBCONN_TOTAL / n )); [ "$dbc" -ge 2 ] || dbc=2
    dir="$WORK/$cfg"
    mkdir -p "$dir/var"
    for i in $(seq "$n"); do
        pick_port
        (cd "$dir" && exec "$BIN" serve --listen "127.0.0.1:$PORT" --database "$db" --key-file "$dir/manifold.key" \
            --rate-limit 0 --max-per-ip 1024 --max-connections 2048 --db-connections "$dbc" >"$WORK/$cfg-$i.log" 2>&1) &
        SPIDS+=($!); PIDS+=($!)
        URLS+=("http://127.0.0.1:$PORT")
        wait_http "http://127.0.0.1:$PORT/readyz" "${SPIDS[-1]}" "$cfg-$i"
    done
    local tf="$dir/var/bootstrap-token"
    [ -f "$dir/bootstrap-token" ] && tf="$dir/bootstrap-token"
    TOKEN=$(cat "$tf")
}
stop_procs() {
    local p
    for p in "${SPIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${SPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# ---- workloads --------------------------------------------------------------------------------
declare -A RES
# run_get CFG SECS TAG: N wrk at once (one per process); sets GET_RPS
run_get() {
    local cfg=$1 secs=$2 tag=$3 n=${#URLS[@]} i c pids=()
    c=$(( CONNS / n ))
    for i in "${!URLS[@]}"; do
        MANIFOLD_TOKEN=$TOKEN timeout $((secs + 60)) wrk -t1 -c"$c" -d"${secs}s" --timeout 10s \
            -s bench/resources/get.lua "${URLS[$i]}$WS/sources/bench" >"$OUT/$cfg-get-$tag-$i.txt" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "wrk failed ($cfg get)"; done
    GET_RPS=0
    for i in "${!URLS[@]}"; do
        local line
        line=$(grep '^RESULT ' "$OUT/$cfg-get-$tag-$i.txt") || die "$cfg get: no RESULT line"
        [ "$(kv "$line" non2xx)" = 0 ] && [ "$(kv "$line" sockerr)" = 0 ] || die "$cfg get: errors: $line"
        GET_RPS=$(awk -v a="$GET_RPS" -v r="$(kv "$line" requests)" -v d="$(kv "$line" duration_us)" 'BEGIN { printf "%.0f", a + r / (d / 1e6) }')
    done
}
SENT_OK=0
# run_intake CFG SECS TAG: sets INTAKE_EPS; adds the 200s to SENT_OK
run_intake() {
    local cfg=$1 secs=$2 tag=$3 n=${#URLS[@]} i c pids=() st
    c=$(( CONNS / n ))
    for i in "${!URLS[@]}"; do
        st="$WORK/st-$cfg-$tag-$i"; rm -rf "$st"; mkdir -p "$st"
        env BENCH_MODE=batch BENCH_EVENTS="$EVENTS" BENCH_WRITE_KEY="$KEY" BENCH_RUN="s$$-$cfg-$tag-$i-$RANDOM" \
            BENCH_SECONDS="$secs" BENCH_THREADS=1 BENCH_STATE_DIR="$st" \
            timeout $((secs + 90)) wrk -t1 -c"$c" -d"$((secs + 60))s" --timeout 10s \
            -s bench/intake/intake.lua "${URLS[$i]}" >"$OUT/$cfg-intake-$tag-$i.txt" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    INTAKE_EPS=0
    for i in "${!URLS[@]}"; do
        local line
        line=$(grep '^RESULT ' "$OUT/$cfg-intake-$tag-$i.txt") || die "$cfg intake: no RESULT line"
        [ "$(kv "$line" failed)" = 0 ] && [ "$(kv "$line" sockerr)" = 0 ] || die "$cfg intake: errors: $line"
        SENT_OK=$((SENT_OK + $(kv "$line" ok)))
        INTAKE_EPS=$(awk -v a="$INTAKE_EPS" -v o="$(kv "$line" ok)" -v e="$EVENTS" -v d="$(kv "$line" elapsed_us)" 'BEGIN { printf "%.0f", a + o * e / (d / 1e6) }')
    done
}

measure() { # CFG N DATABASE
    local cfg=$1 n=$2 db=$3 body acc
    start_procs "$cfg" "$n" "$db"
    body=$(curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"source":{"name":"workspaces/myworkspace/sources/bench","catalog_name":"catalog/sources/javascript"}}' \
        "${URLS[0]}$WS/sources") || die "creating the source failed"
    KEY=$(json_get "$body" '(j.source || j).write_keys[0]') || die "no write key in: $body"
    say "$cfg: GET, ${WARMUP}s warm-up + ${DURATION}s, $CONNS connections over $n process(es)"
    run_get "$cfg" "$WARMUP" warm
    run_get "$cfg" "$DURATION" run
    RES[$cfg-get]=$GET_RPS
    say "$cfg: intake batches of $EVENTS, ${WARMUP}s warm-up + ${DURATION}s"
    SENT_OK=0
    run_intake "$cfg" "$WARMUP" warm
    run_intake "$cfg" "$DURATION" run
    RES[$cfg-intake]=$INTAKE_EPS
    # every acknowledged event was stored (the intake's log is written behind the answer)
    sleep 1
    acc=$(curl -sS -H "Authorization: Bearer $TOKEN" "${URLS[0]}$WS/sources/bench/events:summary")
    acc=$(json_get "$acc" 'j.accepted')
    [ "$acc" = $((SENT_OK * EVENTS)) ] || die "$cfg: $((SENT_OK * EVENTS)) events acknowledged but $acc accepted"
    say "$cfg: GET ${RES[$cfg-get]}/s, intake ${RES[$cfg-intake]} events/s ($acc events checked)"
    stop_procs
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
measure sqlite 1 "$WORK/sqlite/manifold.db"
for n in $PROCS; do
    "$PGBIN/psql" "$PG_ADMIN" -qAt -c "CREATE DATABASE scale$n" >/dev/null
    measure "pg$n" "$n" "postgresql://postgres@/scale$n?host=$PGTMP/sock&port=$PGPORT_B"
done

# ---- report --------------------------------------------------------------------------------------
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'; }
last=${PROCS##* }
ok_get=$(ge "${RES[pg$last-get]}" "$(awk -v a="${RES[pg1-get]}" 'BEGIN { print 0.9 * a }')")
ok_int=$(ge "${RES[pg$last-intake]}" "$(awk -v a="${RES[pg1-intake]}" 'BEGIN { print 0.9 * a }')")
REPORT="Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)), commit $(git rev-parse --short HEAD), load before: $LOAD_BEFORE;
wrk, $CONNS connections in all (split evenly over the processes), ${DURATION} s per row after ${WARMUP} s of warm-up;
$DBCONN_TOTAL PostgreSQL connections in all (\`--db-connections\` $DBCONN_TOTAL / processes, at least 2);
PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on the same box, durable (fsync, synchronous_commit on); release build.

| setup | authenticated GET /s | vs 1 PG process | intake events/s (batches of $EVENTS) | vs 1 PG process |
|---|---:|---:|---:|---:|
| SQLite, 1 process | $(fmt_int "${RES[sqlite-get]}") | | $(fmt_int "${RES[sqlite-intake]}") | |"
for n in $PROCS; do
    REPORT+="
| PostgreSQL, $n process(es) | $(fmt_int "${RES[pg$n-get]}") | $(pct "${RES[pg$n-get]}" "${RES[pg1-get]}") | $(fmt_int "${RES[pg$n-intake]}") | $(pct "${RES[pg$n-intake]}" "${RES[pg1-intake]}") |"
done
REPORT+="

Goal: $last processes >= 90% of 1 (no collapse): GET $(verdict "$ok_get"), intake $(verdict "$ok_int")."
printf '\n%s\n' "$REPORT"
write_doc_section scale "$DOC" "$REPORT"
