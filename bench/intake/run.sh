#!/usr/bin/env bash
# Tracking API intake benchmark: how many events per second manifold accepts durably, with
# wrk on this box, side by side in the same run with a bare libmicrohttpd server
# (bench/http/ceiling.c: manifold's threading mode, reads the whole body, answers
# 200 {"success":true}; the ceiling of the HTTP layer). Rows, each against both servers:
#   batch-64    POST /v1/batch, BENCH_EVENTS (20) events of ~1.2 KB per request, 64 connections
#   batch-256   the same with 256 connections
#   track-64    POST /v1/track, one event per request, 64 connections
# Every event has a unique messageId (bench/intake/intake.lua), every request the source's
# write key in HTTP Basic. manifold runs release (build/manifold) on a fresh SQLite database
# with --rate-limit 0; every row has its own source. After the run, for every source,
# events:summary's accepted count must equal (200 answers × events per request) over the
# warm-up and the measured window: the benchmark fails otherwise. Goals are printed as
# verdicts; the table goes into docs/benchmarks-intake.md between the bench/intake markers.
#
# Knobs (environment): BENCH_WARMUP seconds (2), BENCH_DURATION seconds (10), BENCH_THREADS
# wrk threads (nproc), BENCH_EVENTS (20), BENCH_ROWS ("batch-64 batch-256 track-64"),
# MANIFOLD_BIN (build/manifold), MANIFOLD_THREADS (its --threads; default its own),
# BENCH_NO_MANIFOLD=1 (only the bare server: to try the script without an intake),
# BENCH_OUT (build/bench/intake: raw output), BENCH_NO_DOCS=1 (leave docs/ alone).
# Loopback only; every run is bounded in time; every process it starts is stopped on exit.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
bench_init intake

WARMUP=${BENCH_WARMUP:-2}
DURATION=${BENCH_DURATION:-10}
THREADS=${BENCH_THREADS:-$(nproc)}
EVENTS=${BENCH_EVENTS:-20}
ROWS=${BENCH_ROWS:-batch-64 batch-256 track-64}
BIN=${MANIFOLD_BIN:-$ROOT/build/manifold}
NO_MANIFOLD=${BENCH_NO_MANIFOLD:-0}
OUT=${BENCH_OUT:-$ROOT/build/bench/intake}
DOC="$ROOT/docs/benchmarks-intake.md"
WS=/v1beta/workspaces/myworkspace
RUDDER=1700 # RudderStack's published figure: ~1,700 events/s on 2 cores

need_tools wrk cc curl awk pkg-config
[ "$NO_MANIFOLD" = 1 ] || need_manifold

bench_workdir manifold-bench-intake
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.log

load_before

# ---- manifold ----------------------------------------------------------------------------------
MTHREADS=${MANIFOLD_THREADS:-}
MAXHDR=32768
declare -A KEY
if [ "$NO_MANIFOLD" != 1 ]; then
    command -v node >/dev/null || die "node not found (make bench installs it)"
    extra=()
    [ -n "$MTHREADS" ] && extra=(--threads "$MTHREADS")
    start_manifold "$WORK/manifold" /readyz --rate-limit 0 --max-per-ip 1024 --max-connections 2048 \
        --max-header-bytes "$MAXHDR" "${extra[@]}"
    [ -n "$MTHREADS" ] || MTHREADS=$((8 * $(nproc)))
    for row in $ROWS; do
        body=$(curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            -d "{\"source\":{\"name\":\"workspaces/myworkspace/sources/bench-$row\",\"catalog_name\":\"catalog/sources/javascript\"}}" \
            "$M$WS/sources") || die "creating source bench-$row failed"
        KEY[$row]=$(json_get "$body" '(j.source || j).write_keys[0]') || die "no write key in: $body"
    done
    # The intake must be there: one event, answered 200 {"success": true}, then counted.
    first=${ROWS%% *}
    probe=$(curl -sS -o "$WORK/probe.json" -w '%{http_code}' -u "${KEY[$first]}:" -H 'Content-Type: application/json' \
        -d '{"userId":"probe","event":"Bench Probe","messageId":"bench-probe-'$$'"}' "$M/v1/track") || true
    if [ "$probe" != 200 ]; then
        die "manifold ($(git -C "$ROOT" rev-parse --short HEAD)) answered POST /v1/track with $probe $(head -c 200 "$WORK/probe.json"): no Tracking API intake in this build? (BENCH_NO_MANIFOLD=1 runs the bare server alone)"
    fi
    PROBE_COUNT=1
else
    MTHREADS=${MTHREADS:-$((8 * $(nproc)))}
fi

# ---- the bare libmicrohttpd server -----------------------------------------------------------
say "building bench/http/ceiling.c (the bare libmicrohttpd server)"
printf '{"success":true}' >"$WORK/ok.json"
# shellcheck disable=SC2046
cc -O2 -Wall -Wextra -o "$WORK/bare_mhd" "$HERE/../http/ceiling.c" $(pkg-config --cflags --libs libmicrohttpd) -lpthread
for attempt in 1 2 3 4 5; do
    pick_port
    "$WORK/bare_mhd" "$PORT" "$WORK/ok.json" "$MTHREADS" "$MAXHDR" >"$WORK/bare.log" 2>&1 &
    BPID=$!
    PIDS+=("$BPID")
    B="http://127.0.0.1:$PORT"
    sleep 0.2
    if ! kill -0 "$BPID" 2>/dev/null && grep -q 'cannot listen' "$WORK/bare.log"; then continue; fi
    break
done
wait_http "$B/" "$BPID" bare

# ---- rows ---------------------------------------------------------------------------------------
declare -A RES OKS
ERRORS=0
run_wrk() { # KEY URL PID MODE CONNS SECONDS WRITE_KEY WINDOWED(0|1)
    local key=$1 url=$2 pid=$3 mode=$4 conns=$5 secs=$6 wk=$7 windowed=$8 line st
    st="$WORK/state-$key-$windowed"
    rm -rf "$st"; mkdir -p "$st"
    local cmd=(env BENCH_MODE="$mode" BENCH_EVENTS="$EVENTS" BENCH_WRITE_KEY="$wk" BENCH_RUN="r$$-$key-$windowed-$RANDOM"
        BENCH_SECONDS="$secs" BENCH_THREADS="$THREADS" BENCH_STATE_DIR="$st"
        timeout $((secs + 90)) wrk -t"$THREADS" -c"$conns" -d"$((secs + 60))s" --timeout 10s --latency
        -s "$HERE/intake.lua" "$url")
    if [ "$windowed" = 1 ]; then
        window "$pid" "${cmd[@]}" >"$OUT/$key.txt"
    else
        "${cmd[@]}" >"$OUT/$key-warmup.txt" 2>>"$WORK/cmd.err"
    fi
    line=$(grep '^RESULT ' "$OUT/$key$([ "$windowed" = 1 ] || echo -warmup).txt") || die "$key: wrk printed no result"
    [ "$(kv "$line" sent)" = "$(kv "$line" requests)" ] ||
        { say "$key: sent $(kv "$line" sent) requests but wrk counted $(kv "$line" requests) answers"; ERRORS=1; }
    if [ "$(kv "$line" failed)" != 0 ] || [ "$(kv "$line" sockerr)" != 0 ]; then
        say "$key: $(kv "$line" failed) non-200 answers, $(kv "$line" sockerr) socket errors; first: $(kv "$line" first_error)"
        ERRORS=1
    fi
    LAST=$line
}
row() { # ROW SERVER(manifold|bare)
    local r=$1 srv=$2 mode conns url pid wk key
    mode=${r%-*}; conns=${r#*-}
    key="$r-$srv"
    if [ "$srv" = manifold ]; then url=$M; pid=$MPID; wk=${KEY[$r]}; else url=$B; pid=$BPID; wk=bare-has-no-keys; fi
    say "$key: POST /v1/$mode, ${WARMUP}s warm-up then ${DURATION}s measured ($conns connections, $THREADS wrk threads)"
    run_wrk "$key" "$url" "$pid" "$mode" "$conns" "$WARMUP" "$wk" 0
    OKS[$key]=$(kv "$LAST" ok)
    run_wrk "$key" "$url" "$pid" "$mode" "$conns" "$DURATION" "$wk" 1
    OKS[$key]=$(( ${OKS[$key]} + $(kv "$LAST" ok) ))
    RES[$key]="$LAST srv=$WIN_SRV gen=$WIN_GEN other=$WIN_OTHER secs=$WIN_SECS"
}
for r in $ROWS; do
    case $r in batch-*|track-*) ;; *) die "unknown row $r (batch-N or track-N)" ;; esac
    [ "$NO_MANIFOLD" = 1 ] || row "$r" manifold
    row "$r" bare
done

# ---- every 200 was stored: events:summary per source ----------------------------------------------
CHECKS=""
STORED_OK=1
if [ "$NO_MANIFOLD" != 1 ]; then
    for r in $ROWS; do
        per=$EVENTS; [ "${r%-*}" = track ] && per=1
        want=$(( ${OKS[$r-manifold]} * per ))
        [ "$r" = "$first" ] && want=$((want + PROBE_COUNT))
        got=""
        for _ in $(seq 50); do # counting may trail the answers by a moment
            sum=$(curl -sS -H "Authorization: Bearer $TOKEN" "$M$WS/sources/bench-$r/events:summary") || sum='{}'
            got=$(json_get "$sum" 'j.accepted === undefined ? "missing" : j.accepted' 2>/dev/null || echo "unreadable")
            [ "$got" = "$want" ] && break
            sleep 0.1
        done
        CHECKS+="
| $r: events:summary of source bench-$r after the run | accepted $(case $got in *[!0-9]*|"") echo "$got" ;; *) fmt_int "$got" ;; esac) for $(fmt_int "$want") = $(fmt_int "${OKS[$r-manifold]}") answers 200 × $per$([ "$r" = "$first" ] && echo " + 1 probe") (summary: \`$(echo "$sum" | tr -d '\n' | cut -c1-160)\`) | $(verdict "$([ "$got" = "$want" ] && echo 1 || echo 0)") |"
        if [ "$got" != "$want" ]; then
            say "MISMATCH $r: events:summary says accepted=$got, but $want events were answered 200: $sum"
            STORED_OK=0
        fi
    done
    HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MPID/status")
    DBKB=$(du -sk "$WORK/manifold" | cut -f1)
    cp "$WORK/manifold.log" "$OUT/manifold.log"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- table, goals ------------------------------------------------------------------------------
r_() { kv "${RES[$1]}" "$2"; }
rps() { awk -v n="$(r_ "$1" ok)" -v d="$(r_ "$1" elapsed_us)" 'BEGIN { printf "%.0f", n / (d / 1e6) }'; }
eps() { local per=$EVENTS; [ "${1%%-*}" = track ] && per=1; awk -v r="$(rps "$1")" -v p="$per" 'BEGIN { printf "%.0f", r * p }'; }
TABLE="| Request | Server | Connections | events/s accepted | req/s | p50 | p99 | vs bare | server CPU | wrk CPU | other load |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
OTHER_MAX=0
for r in $ROWS; do
    mode=${r%-*}; conns=${r#*-}
    label="POST /v1/track (1 event, $(fmt_int "$(awk -v b="$(r_ "$r-bare" body_bytes)" -v n="$(r_ "$r-bare" sent)" 'BEGIN { printf "%.0f", b / n }')") B)"
    [ "$mode" = batch ] && label="POST /v1/batch ($EVENTS events, $(fmt_int "$(awk -v b="$(r_ "$r-bare" body_bytes)" -v n="$(r_ "$r-bare" sent)" 'BEGIN { printf "%.0f", b / n }')") B)"
    for srv in manifold bare; do
        k="$r-$srv"
        [ -n "${RES[$k]:-}" ] || continue
        share="100%"
        [ "$srv" = manifold ] && share=$(awk -v a="$(rps "$k")" -v b="$(rps "$r-bare")" 'BEGIN { printf "%.0f%%", 100 * a / b }')
        name=$srv; [ "$srv" = bare ] && name="bare libmicrohttpd"
        TABLE+="
| $label | $name | $conns | **$(fmt_int "$(eps "$k")")** | $(fmt_int "$(rps "$k")") | $(ms "$(r_ "$k" p50_us)") | $(ms "$(r_ "$k" p99_us)") | $share | $(r_ "$k" srv) cores | $(r_ "$k" gen) cores | $(r_ "$k" other) cores |"
        OTHER_MAX=$(awk -v a="$OTHER_MAX" -v b="$(r_ "$k" other)" 'BEGIN { print (b > a) ? b : a }')
    done
done

GOALS="| Goal | Measured | Verdict |
|---|---|---|"
if [ "$NO_MANIFOLD" != 1 ]; then
    for r in $ROWS; do
        k="$r-manifold"
        if [ "${r%-*}" = batch ]; then
            GOALS+="
| ≥ 50,000 events/s accepted durably in batches ($r) | $(fmt_int "$(eps "$k")") events/s ($(awk -v a="$(eps "$k")" -v b="$RUDDER" 'BEGIN { printf "%.0f", a / b }')× RudderStack's published ~1,700 events/s on 2 cores) | $(verdict "$(ge "$(eps "$k")" 50000)") |"
        else
            GOALS+="
| ≥ 20,000 single-event requests/s ($r) | $(fmt_int "$(rps "$k")") req/s | $(verdict "$(ge "$(rps "$k")" 20000)") |"
        fi
        GOALS+="
| p99 < 50 ms ($r) | $(ms "$(r_ "$k" p99_us)") | $(verdict "$(lt "$(r_ "$k" p99_us)" 50000)") |"
    done
    GOALS+="$CHECKS"
fi

machine_info
[ -n "${MANIFOLD_BIN:-}" ] && COMMIT="$COMMIT, but the binary under test was MANIFOLD_BIN=$BIN"
BUSY_NOTE="quiet enough: numbers stand"
if [ "$(ge "$OTHER_MAX" 0.2)" = 1 ]; then
    BUSY_NOTE="**the box was busy with other work during the run (up to $OTHER_MAX cores): treat the numbers as lower bounds and re-run when it is quiet**"
fi
MLINE="manifold: release build, default flags but \`--rate-limit 0 --max-per-ip 1024 --max-connections 2048\`, $MTHREADS threads, a fresh SQLite database (files on $DISK), one source per row; peak RSS (VmHWM) $(fmt_int "${HWM:-0}") KiB, database directory $(fmt_int "${DBKB:-0}") KiB after the run."
[ "$NO_MANIFOLD" = 1 ] && MLINE="manifold: **not measured in this run** (\`BENCH_NO_MANIFOLD=1\`)."
REPORT="Command: \`make bench\` (this section: \`bench/intake/run.sh\`), $(date -u '+%Y-%m-%d %H:%M UTC'), manifold at commit $COMMIT.

Machine: $(nproc) cores, $CPU_MODEL, $MEM RAM, $OS, kernel $(uname -r). Load average $LOAD_BEFORE before the run, $LOAD_AFTER after — $BUSY_NOTE.
Load: wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') on the same box, $THREADS threads, keep-alive connections, \`bench/intake/intake.lua\`: a ~1.2 KB \"Order Completed\" track event (properties with two products, a full context), a unique messageId on every event, \`Authorization: Basic base64(<write key>:)\`; ${WARMUP} s warm-up, then ${DURATION} s measured per row; at the end of a window wrk stops sending and waits for every answer, so every request sent is counted.
$MLINE
bare libmicrohttpd: \`bench/http/ceiling.c\`, the same epoll thread pool ($MTHREADS threads) and per-connection memory ($MAXHDR B) as manifold, reads each body whole and answers 200 \`{\"success\":true}\`: no auth, no JSON, no storage.

$TABLE

\"events/s accepted\" counts events in requests answered 200 (batch: req/s × $EVENTS). CPU columns: cores used during the measured window by the server, by wrk, and by everything else on the box ($(nproc) cores in all).

$GOALS"

printf '\n%s\n\n' "$REPORT"
write_doc_section intake "$DOC" "$REPORT"
printf '%s\n' "$REPORT" >"$OUT/results.md"
[ "$STORED_OK" = 1 ] || die "events answered 200 are missing from events:summary (see MISMATCH above)"
[ "$ERRORS" -eq 0 ] || die "some requests failed (see above and $OUT)"
